"""The window's command line: bad input is a one-line error with exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.demos import DEMO_NAMES
from gui.app import DEMO_NAMES as APP_DEMO_NAMES
from gui.app import _parse_args

REPO = Path(__file__).resolve().parents[1]


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The message argparse gives for ``argv`` (after checking it exits with code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        _parse_args(list(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("prunescope: error: "), err
    assert "Traceback" not in err
    return lines[-1]


def test_the_demo_names_are_the_engines() -> None:
    assert APP_DEMO_NAMES == DEMO_NAMES


def test_an_unknown_demo_is_an_error_naming_the_choices(capsys) -> None:
    message = parse_error(capsys, "--demo", "nosuchdemo")
    assert "nosuchdemo" in message
    assert all(name in message for name in DEMO_NAMES)


@pytest.mark.parametrize("argv", [["--demos", "mlp"], ["-platform", "offscreen"], ["--nope"]])
def test_an_unknown_option_is_an_error(capsys, argv: list[str]) -> None:
    message = parse_error(capsys, *argv)
    assert "unrecognized arguments" in message
    assert argv[0] in message


def test_qt_options_go_after_the_separator() -> None:
    args, qt_args = _parse_args(["model.pt", "--demo", "mlp", "--", "-platform", "offscreen"])
    assert (args.model, args.demo) == ("model.pt", "mlp")
    assert qt_args == ["-platform", "offscreen"]
    args, qt_args = _parse_args([])
    assert (args.model, args.demo, qt_args) == (None, "cnn", [])


def test_help_says_how_to_give_qt_options(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        _parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "-- -platform offscreen" in out
    assert "QT_QPA_PLATFORM" in out
    assert ", ".join(DEMO_NAMES) in out


def test_main_py_with_an_unknown_demo_exits_with_code_2_and_no_traceback(tmp_path) -> None:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    proc = subprocess.run(
        [sys.executable, "main.py", "--demo", "nosuchdemo", "--quit-after", "100"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("prunescope: error: ")
    assert "nosuchdemo" in proc.stderr
