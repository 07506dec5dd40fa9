"""Running the installed `screening` command as a user does, with a wide terminal."""
import os
import subprocess
import sys
from pathlib import Path

SCREENING = str(Path(sys.executable).with_name("screening"))


def run(*args, cwd):
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([SCREENING, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120,
                          env=env)


def assert_clean_failure(proc, position: str, message: str):
    """Exit 2, one message at file:line:column, no traceback."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert f"{position}: {message}" in proc.stderr, proc.stderr
