"""Shell completion: typer's ``--show-completion``/``--install-completion`` are on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MESHPLANE = str(Path(sys.executable).parent / "meshplane")


def test_show_completion_in_bash_prints_a_completion_script() -> None:
    """`meshplane --show-completion` run from bash prints bash's completion function.

    typer detects the shell from the parent processes (not from an argument), so the
    command runs under a real bash, as a user's would.
    """
    env = {**os.environ, "SHELL": "/bin/bash"}
    done = subprocess.run(
        # Two commands, so bash forks meshplane instead of exec-ing it (its parent stays bash).
        ["bash", "-c", f"{MESHPLANE} --show-completion; exit $?"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "_meshplane_completion() {"
    assert lines[-1] == "complete -o default -F _meshplane_completion meshplane"


def test_the_completion_script_completes_a_command_name() -> None:
    """What the script asks for `meshplane se<TAB>` answers `serve`, the one command so named."""
    env = {
        **os.environ,
        "SHELL": "/bin/bash",
        "_MESHPLANE_COMPLETE": "complete_bash",
        "COMP_WORDS": "meshplane se",
        "COMP_CWORD": "1",
    }
    done = subprocess.run(
        [MESHPLANE], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["serve"]
