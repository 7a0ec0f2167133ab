"""Requests with handles: each call's own result, the latest of a kind, interactive first."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from gui.session.requests import PRIORITY, Request, RequestQueue, RequestState

TIMEOUT = 10_000


class Gate:
    """A job that waits for :meth:`open` (or a cancel), then returns its value."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def open(self) -> None:
        self.event.set()

    def job(self, value: object) -> object:
        def make(token: CancelToken) -> Job[object]:
            while not self.event.wait(0.005):
                token.check()
            yield Progress(1.0, "opened")
            return value

        return make


def instant(value: object):
    def make(_token: CancelToken) -> Job[object]:
        yield Progress(1.0, "done")
        return value

    return make


@pytest.fixture
def queue(qtbot: QtBot) -> Iterator[RequestQueue]:
    q = RequestQueue()
    yield q
    q.cancel()
    qtbot.waitUntil(lambda: not q.busy, timeout=TIMEOUT)


def outcomes(request: Request) -> list[tuple[str, object]]:
    """What a request says, in order."""
    said: list[tuple[str, object]] = []
    request.finished.connect(lambda result: said.append(("finished", result)))
    request.failed.connect(lambda error: said.append(("failed", error)))
    request.cancelled.connect(lambda: said.append(("cancelled", None)))
    return said


def test_a_request_hands_its_own_result_to_its_caller(qtbot, queue):
    request = Request("Answer", instant(42))
    said = outcomes(request)
    with qtbot.waitSignal(request.ended, timeout=TIMEOUT):
        queue.submit(request)
    assert said == [("finished", 42)]
    assert request.state is RequestState.FINISHED and request.result == 42 and request.done


def test_interactive_kinds_start_before_statistics_and_figures(qtbot, queue):
    gate = Gate()
    queue.submit(Request("Busy", gate.job(None)))  # keeps the queue busy while we ask
    started: list[str] = []
    queue.request_started.connect(lambda request: started.append(request.kind))
    # asked in the least favourable order: slow, whole-model work first
    for kind in ("figures", "refresh", "plan", "preview", "layer"):
        queue.submit(Request(kind, instant(kind), kind=kind))
    gate.open()
    qtbot.waitUntil(lambda: len(started) == 5 and not queue.busy, timeout=TIMEOUT)
    assert started == list(PRIORITY)
    assert PRIORITY[:2] == ("layer", "preview")


def test_a_newer_request_of_a_kind_supersedes_the_waiting_one(qtbot, queue):
    gate = Gate()
    queue.submit(Request("Busy", gate.job(None)))
    older = Request("Preview 30%", instant(30), kind="preview")
    newer = Request("Preview 60%", instant(60), kind="preview")
    said_older, said_newer = outcomes(older), outcomes(newer)
    queue.submit(older)
    queue.submit(newer)
    assert said_older == [("cancelled", None)] and older.superseded
    gate.open()
    qtbot.waitUntil(lambda: newer.done, timeout=TIMEOUT)
    assert said_newer == [("finished", 60)]


def test_a_running_request_that_is_superseded_never_delivers(qtbot, queue):
    gate = Gate()
    older = Request("Preview 30%", gate.job(30), kind="preview")
    said = outcomes(older)
    queue.submit(older)
    assert older.running
    newer = Request("Preview 60%", instant(60), kind="preview")
    queue.submit(newer)  # cancels the running one: its result would be thrown away
    qtbot.waitUntil(lambda: newer.done, timeout=TIMEOUT)
    assert said == [("cancelled", None)] and older.superseded
    assert newer.result == 60


def test_a_superseded_result_that_arrives_anyway_is_dropped(qtbot, queue):
    """Figures are not cancelled when superseded (they are merged); a late result still is not
    the latest of its kind, so nobody hears of it."""
    gate = Gate()
    older = Request("Measure", gate.job("old"), kind="figures")
    said = outcomes(older)
    queue.submit(older)
    newer = Request("Measure", instant("new"), kind="figures")
    queue.submit(newer)
    gate.open()
    qtbot.waitUntil(lambda: newer.done, timeout=TIMEOUT)
    assert said == [("cancelled", None)]
    assert newer.result == "new"


def test_commands_run_in_order_before_any_read(qtbot, queue):
    gate = Gate()
    queue.submit(Request("Busy", gate.job(None)))
    started: list[str] = []
    queue.request_started.connect(lambda request: started.append(request.label))
    queue.submit(Request("Preview", instant(1), kind="preview"))
    queue.submit(Request("Apply", instant(2)))
    queue.submit(Request("Undo", instant(3)))
    gate.open()
    qtbot.waitUntil(lambda: len(started) == 3 and not queue.busy, timeout=TIMEOUT)
    assert started == ["Apply", "Undo", "Preview"]


def test_cancelling_a_queued_request_cancels_only_it(qtbot, queue):
    gate = Gate()
    queue.submit(Request("Busy", gate.job(None)))
    doomed, kept = Request("Save", instant(1)), Request("Apply", instant(2))
    said = outcomes(doomed)
    queue.submit(doomed)
    queue.submit(kept)
    doomed.cancel()
    assert said == [("cancelled", None)] and not doomed.superseded
    announced: list[Request] = []
    queue.cancelled.connect(announced.append)
    gate.open()
    qtbot.waitUntil(lambda: kept.done, timeout=TIMEOUT)
    assert kept.result == 2 and announced == []  # only the window's Cancel is announced


def test_the_windows_cancel_is_announced(qtbot, queue):
    gate = Gate()
    request = Request("Endless", gate.job(None))
    queue.submit(request)
    with qtbot.waitSignal(queue.cancelled, timeout=TIMEOUT) as blocker:
        queue.cancel()
    assert blocker.args == [request] and request.state is RequestState.CANCELLED


def test_errors_reach_the_request_and_the_window_unless_the_caller_handles_them(qtbot, queue):
    def broken(_token: CancelToken) -> Job[None]:
        yield Progress(0.0, "about to fail")
        raise PruningError("no such layer")

    reported: list[str] = []
    queue.error.connect(lambda message, _details: reported.append(message))
    loud = Request("Loud", broken)
    quiet = Request("Quiet", broken, silent_errors=(PruningError,))
    said_loud, said_quiet = outcomes(loud), outcomes(quiet)
    queue.submit(loud)
    queue.submit(quiet)
    qtbot.waitUntil(lambda: loud.done and quiet.done, timeout=TIMEOUT)
    assert [kind for kind, _ in said_loud] == ["failed"]
    assert isinstance(said_quiet[0][1], PruningError)
    assert reported == ["no such layer"]  # once: the quiet one is its caller's to show


def test_bookkeeping_runs_before_the_caller_hears(qtbot, queue):
    order: list[str] = []
    request = Request(
        "Apply",
        instant(1),
        on_start=lambda: order.append("start"),
        on_end=lambda state, _result: order.append(f"end {state.value}"),
    )
    request.finished.connect(lambda _result: order.append("caller"))
    with qtbot.waitSignal(request.ended, timeout=TIMEOUT):
        queue.submit(request)
    assert order == ["start", "end finished", "caller"]


def test_a_request_not_needed_when_its_turn_comes_runs_no_job(qtbot, queue):
    started: list[Request] = []
    queue.request_started.connect(started.append)
    request = Request("Measure", instant([1]), kind="figures", needed=lambda: False)
    with qtbot.waitSignal(request.finished, timeout=TIMEOUT) as blocker:
        queue.submit(request, defer=True)
    assert blocker.args == [None] and started == []


def test_a_request_is_submitted_once(queue):
    request = Request("Once", instant(1))
    queue.submit(request)
    with pytest.raises(RuntimeError, match="submitted already"):
        queue.submit(request)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown request kind"):
        Request("Odd", instant(1), kind="odd")


def test_an_ended_request_lets_go_of_what_its_slots_and_job_hold(qtbot, queue):
    class Held:
        pass

    held = Held()
    alive = weakref.ref(held)
    request = queue.submit(Request("keeps a cycle", instant(held)))
    # A slot that captures its own request: a cycle through Qt that gc cannot see.
    request.ended.connect(lambda _state, request=request, held=held: (request, held))
    with qtbot.waitSignal(request.ended, timeout=TIMEOUT):
        pass
    request.result = None
    del held, request
    gc.collect()
    assert alive() is None
