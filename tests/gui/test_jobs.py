"""The GUI's job runner: progress, details, results, cancel, errors, off the GUI thread."""

from __future__ import annotations

import threading

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
