"""`make run` stops cleanly: its shell's trap once sent TERM to its own process group, caught
its own signal, ran the trap again and died of a stack overflow ("Segmentation fault" on every
Ctrl+C). The recipe's shell is run here with the web server and the worker replaced by sleeps."""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_recipe_shell() -> str:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1)
    script = re.search(r"@bash -c '(.*?)'\n", recipe.replace("\\\n", "\n"), re.S).group(1)
    script = re.sub(r"\$\(BIN\)/celery [^&]*&", "sleep 60 &", script)
    return re.sub(r"\$\(MANAGE\) runserver \S+", "sleep 60", script)


def test_ctrl_c_stops_server_and_worker_without_a_crash():
    script = run_recipe_shell()
    assert script.count("sleep 60") == 2, script
    shell = subprocess.Popen(
        ["bash", "-c", script], start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # A terminal's Ctrl+C reaches processes whose SIGINT is not ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(0.5)

    os.killpg(shell.pid, signal.SIGINT)  # what Ctrl+C does to the foreground group
    output = shell.communicate(timeout=20)[0].decode()

    assert shell.returncode == 0, (shell.returncode, output)
    assert "Segmentation" not in output
    leftovers = subprocess.run(["pgrep", "-g", str(shell.pid)], capture_output=True, text=True).stdout
    assert leftovers == ""
