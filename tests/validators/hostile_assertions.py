"""Code assertions that try to get out of the sandbox, each with the substring its `error`
verdict must carry. The test runs every one on a shared pool and then checks that a benign
assertion on the same pool still gets correct verdicts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostileAssertion:
    name: str
    source: str
    expected_detail: str


def _check(body: str, prelude: str = "") -> str:
    indented = "\n".join("    " + line for line in body.strip("\n").splitlines())
    return f"{prelude}def check(output, input, reference, meta):\n{indented}\n"


UNDERSCORE_ATTRIBUTE = 'is an invalid attribute name because it starts with "_"'
NOT_DEFINED = "is not defined"

HOSTILE_ASSERTIONS: tuple[HostileAssertion, ...] = (
    # --- files and the environment ---
    HostileAssertion(
        "read_etc_passwd", _check("return 'root' in open('/etc/passwd').read()"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "read_etc_shadow", _check("return len(open('/etc/shadow').read()) > 0"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "write_file", _check("open('pwned.txt', 'w').write(output)\nreturn True"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "os_environ_at_module_level",
        _check("return 'SECRET_KEY' in ENV", prelude="import os\nENV = os.environ\n"),
        "ImportError: import of 'os' is not allowed (line 1)",
    ),
    # --- imports outside the allow-list ---
    HostileAssertion(
        "import_os_inside_check", _check("import os\nreturn os.getcwd() != ''"),
        "ImportError: import of 'os' is not allowed (line 2)",
    ),
    HostileAssertion(
        "import_subprocess", _check("import subprocess\nreturn subprocess.call(['id']) == 0"),
        "import of 'subprocess' is not allowed",
    ),
    HostileAssertion(
        "import_socket",
        _check("import socket\nsocket.create_connection(('127.0.0.1', 80))\nreturn True"),
        "import of 'socket' is not allowed",
    ),
    HostileAssertion(
        "import_ctypes", _check("import ctypes\nreturn ctypes.CDLL(None) is not None"),
        "import of 'ctypes' is not allowed",
    ),
    HostileAssertion(
        "import_importlib",
        _check("import importlib\nreturn importlib.import_module('os') is not None"),
        "import of 'importlib' is not allowed",
    ),
    HostileAssertion(
        "import_sys_for_stdout",
        _check("import sys\nsys.stdout.write('garbage')\nreturn True"),
        "import of 'sys' is not allowed",
    ),
    HostileAssertion(
        "import_submodule_of_allowed", _check("import json.decoder\nreturn True"),
        "import of 'json.decoder' is not allowed",
    ),
    HostileAssertion(
        "dunder_import", _check("return __import__('os').getcwd() != ''"),
        '"__import__" is an invalid variable name because it starts with "_"',
    ),
    HostileAssertion(
        "eval_string", _check("return eval(\"__import__('os')\") is not None"),
        "Eval calls are not allowed",
    ),
    # --- reaching modules the allowed modules imported ---
    HostileAssertion(
        "module_attribute_to_sys",
        _check("import statistics\nreturn statistics.sys.modules['os'].fork() >= 0"),
        "AttributeError: module 'statistics' has no attribute 'sys'",
    ),
    HostileAssertion(
        "module_attribute_to_codecs_open",
        _check("import json\nreturn json.codecs.open('/etc/passwd').read() != ''"),
        "AttributeError: module 'json' has no attribute 'codecs'",
    ),
    HostileAssertion(
        "monkeypatch_shared_module",
        _check("import json\njson.loads = lambda text: 'pwned'\nreturn True"),
        "TypeError: attribute-less object (assign or del)",
    ),
    # --- introspection escapes ---
    HostileAssertion(
        "subclasses_walk", _check("return len(().__class__.__bases__[0].__subclasses__()) > 0"),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "check_globals", _check("return '__builtins__' in check.__globals__"),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "getattr_underscore_name", _check("return getattr(output, '__class__') is str"),
        'AttributeError: "__class__" is an invalid attribute name because it starts with "_"',
    ),
    HostileAssertion(
        "getattr_globals_of_check", _check("return getattr(check, '__globals__') is not None"),
        'AttributeError: "__globals__" is an invalid attribute name',
    ),
    HostileAssertion(
        "sys_getframe", _check("import sys\nreturn sys._getframe(1).f_globals is not None"),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "traceback_frame_walk",
        _check(
            "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n"
            "    frame = exc.__traceback__.tb_frame.f_back\n"
            "    return frame.f_globals is not None"
        ),
        UNDERSCORE_ATTRIBUTE,
    ),
    HostileAssertion(
        "traceback_via_getattr",
        _check(
            "try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n"
            "    return getattr(getattr(exc, '__traceback__'), 'tb_frame') is not None"
        ),
        'AttributeError: "__traceback__" is an invalid attribute name',
    ),
    HostileAssertion(
        "frame_f_back", _check("frame = meta.get('frame')\nreturn frame.f_back is not None"),
        '"f_back" is a restricted name, that is forbidden to access in RestrictedPython',
    ),
    HostileAssertion(
        "generator_frame_globals",
        _check(
            "generator = (x for x in [1])\n"
            "return generator.gi_frame.f_globals is not None"
        ),
        '"gi_frame" is a restricted name, that is forbidden to access in RestrictedPython',
    ),
    HostileAssertion(
        "generator_frame_via_getattr",
        _check(
            "generator = (x for x in [1])\n"
            "return getattr(generator, 'gi_frame') is not None"
        ),
        'AttributeError: "gi_frame" is a restricted name',
    ),
    HostileAssertion(
        "str_format_attribute_walk", _check("return '{0.__class__.__mro__}'.format(output) != ''"),
        "NotImplementedError: Using the format*() methods of `str` is not safe",
    ),
    HostileAssertion(
        "str_format_via_type", _check("return str.format('{0.__class__}', output) != ''"),
        "NotImplementedError: Using the format*() methods of `str` is not safe",
    ),
    HostileAssertion(
        "string_formatter",
        _check(
            "return string.Formatter().vformat('{0.__class__}', [output], {}) != ''",
            prelude="import string\n",
        ),
        "AttributeError: module 'string' has no attribute 'Formatter'",
    ),
    HostileAssertion(
        "string_formatter_from_import", _check("from string import Formatter\nreturn True"),
        "ImportError: cannot import name 'Formatter' from 'string'",
    ),
    HostileAssertion(
        "type_three_arguments",
        _check("Escape = type('Escape', (object,), {})\nreturn Escape is not None"),
        "NameError: name 'type' is not defined",
    ),
    HostileAssertion(
        "metaclass_keyword",
        _check("class Escape(metaclass=Meta):\n    pass\nreturn True",
               prelude="class Meta:\n    pass\n"),
        'The keyword argument "metaclass" is not allowed',
    ),
    HostileAssertion(
        "globals_builtin", _check("return globals() is not None"),
        "NameError: name 'globals' is not defined",
    ),
    HostileAssertion(
        "setattr_underscore",
        _check("setattr(check, '__code__', None)\nreturn True"),
        "NameError: name 'setattr' is not defined",
    ),
    # --- the pipe the runner talks on ---
    HostileAssertion(
        "open_stdout_descriptor", _check("open(1, 'w').write('\\x00\\x00\\x00\\x05junk')\nreturn True"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "open_stdin_descriptor", _check("open(0).close()\nreturn True"),
        "NameError: name 'open' is not defined",
    ),
    HostileAssertion(
        "fork_through_os", _check("import os\nreturn os.fork() >= 0"),
        "import of 'os' is not allowed",
    ),
    # --- resources ---
    HostileAssertion(
        "infinite_loop", _check("while True:\n    pass"),
        "timed out after 1.0 s",
    ),
    HostileAssertion(
        "infinite_loop_at_module_level", "while True:\n    pass\n" + _check("return True"),
        "timed out after 1.0 s while loading the assertion",
    ),
    HostileAssertion(
        "memory_bomb_repeat", _check("return len('x' * 10**10) > 0"),
        "memory limit exceeded (256 MB)",
    ),
    HostileAssertion(
        "memory_bomb_doubling",
        _check("text = 'x'\nwhile True:\n    text = text + text"),
        "memory limit exceeded (256 MB)",
    ),
    HostileAssertion(
        "memory_bomb_list", _check("cells = [0] * (10**9)\nreturn len(cells) > 0"),
        "memory limit exceeded (256 MB)",
    ),
    HostileAssertion(
        "recursion_bomb", _check("return deeper(1)", prelude="def deeper(n):\n    return deeper(n + 1)\n"),
        "RecursionError: maximum recursion depth exceeded",
    ),
    HostileAssertion(
        "huge_string_returned", _check("return 'x' * (100 * 1024 * 1024)"),
        "check returned str; expected bool, a number or None",
    ),
    HostileAssertion(
        "huge_list_returned", _check("return [output] * (10**7)"),
        "check returned list; expected bool, a number or None",
    ),
    HostileAssertion(
        "huge_error_message", _check("raise ValueError('x' * (50 * 1024 * 1024))"),
        "ValueError: xxxxxxxx",
    ),
    HostileAssertion(
        "huge_integer_returned", _check("return 10**100000"),
        "check returned a number too large for a float",
    ),
    HostileAssertion(
        "system_exit", _check("raise SystemExit(0)"),
        "SystemExit: 0 (line 2)",
    ),
)
