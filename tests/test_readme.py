"""The README's engine example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def engine_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The engine") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the engine section has no python example"
    return match.group(1)


def test_the_engine_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(engine_example(), "README.md", "exec"), namespace)
    assert (tmp_path / "recipe.json").exists()
    assert "pruned, Undo reaches back" in capsys.readouterr().out
    session = namespace["session"]
    assert not session.history.entries  # make_permanent ended the undo history
