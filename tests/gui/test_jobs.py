"""The GUI's job runner: progress, details, results, cancel, errors, off the GUI thread."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from core.common.jobs import CancelToken, Job, Progress
from gui.session.jobs import JobRunner


def _counting(token: CancelToken, seen_threads: list[int]) -> Job[int]:
    seen_threads.append(threading.get_ident())
    for i in range(3):
        token.check()
        yield Progress((i + 1) / 3, f"step {i}", detail={"step": i})
    yield Progress(1.0, "no detail")
    return 42


def test_runner_forwards_progress_details_and_result(qtbot: QtBot) -> None:
    runner = JobRunner()
    threads: list[int] = []
    details: list[object] = []
    messages: list[str] = []
    results: list[int] = []
    runner.detail.connect(details.append)
    runner.progress.connect(lambda _f, m: messages.append(m))
    with qtbot.waitSignal(runner.finished, timeout=5000):
        assert runner.run("count", lambda t: _counting(t, threads), results.append)
    assert results == [42]
    assert details == [{"step": 0}, {"step": 1}, {"step": 2}]
    assert messages[-1] == "no detail"
    assert threads and threads[0] != threading.get_ident()
    assert not runner.busy


def test_runner_reports_cancel_and_errors(qtbot: QtBot) -> None:
    runner = JobRunner()

    def slow(token: CancelToken) -> Job[None]:
        while True:
            token.check()
            yield Progress(0.0, "waiting")

    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        runner.run("slow", slow)
        runner.cancel()

    def broken(_token: CancelToken) -> Job[None]:
        yield Progress(0.0, "about to fail")
        raise RuntimeError("boom")

    with qtbot.waitSignal(runner.failed, timeout=5000) as failed:
        runner.run("broken", broken)
    assert failed.args[:2] == ["broken", "boom"]


HUGE_PAGES = Path("/sys/kernel/mm/transparent_hugepage/enabled")
BACKED_BY_HUGE_PAGES = """
import gui, torch

def huge_kib():
    with open("/proc/self/smaps_rollup") as rollup:
        return sum(int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages:"))

before = huge_kib()
tensor = torch.ones(4096, 4096)  # 64 MiB, written
print(huge_kib() - before)
"""


@pytest.mark.skipif(
    not HUGE_PAGES.exists() or "[never]" in HUGE_PAGES.read_text(),
    reason="the kernel offers no transparent huge pages",
)
@pytest.mark.parametrize(("given", "backed"), [(None, True), ("0", False)])
def test_big_tensors_are_backed_by_huge_pages_unless_told_not_to(given, backed) -> None:
    """Freeing a big layer's tensors must not cost the GUI thread tens of milliseconds
    (65,536 pages of 4 KiB to unmap for 256 MiB; 128 of 2 MiB)."""
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if given is not None:
        env["THP_MEM_ALLOC_ENABLE"] = given
    out = subprocess.run(
        [sys.executable, "-c", BACKED_BY_HUGE_PAGES],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    huge_kib = int(out.stdout.split()[-1])
    assert (huge_kib >= 32 * 1024) is backed
