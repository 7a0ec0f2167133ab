"""The GUI's single point of contact with the engine.

:class:`SessionController` owns the :class:`~core.pruning.session.PruningSession`
and a :class:`~gui.session.requests.RequestQueue`. Widgets read the session
when told something changed and send commands here. Every command that can
take long runs as a core job in a worker, during which the session belongs to
that worker (``busy`` is True and views show it), and returns a
:class:`~gui.session.requests.Request`: the caller hears *its* result, error or
cancellation from the request, never from a broadcast. What every view must
know (a new model, changed masks, the history, fresh statistics) is broadcast.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from core.analysis.stats import ModelStats, stats_job
from core.common.jobs import CancelToken, Job, Progress
from core.demos import evaluate_accuracy
from core.io.checkpoints import SavedFiles, save_job
from core.io.loading import TARGET_OPTIONS, FactoryRequired, TrustRequired
from core.pruning.history import DEFAULT_BUDGET
from core.pruning.methods.patterns import Pattern
from core.pruning.operations import GlobalPrune, LayerPrune, MakePermanent, Operation, Reset
from core.pruning.session import PruningSession
from core.pruning.targets import find_targets
from gui.session.disposal import dispose
from gui.session.figures import FiguresCache, LayerFigures, measure_job
from gui.session.layer_reads import preview_job, read_layer_job
from gui.session.loaded import LoadedModel, OpenRequest, open_job
from gui.session.measurements import AUTO_ACCURACY, test_accuracy
from gui.session.requests import MakeJob, Request, RequestQueue, RequestState
from gui.session.target_kinds import model_key, remembered_options


class _ChangeWatch:
    """What a job that changes the session touched: parameters, and the model itself."""

    def __init__(self, session: PruningSession) -> None:
        self.session = session
        self.model = session.model
        self.touched: set[str] = set()
        self._unsubscribe = session.subscribe(self.touched.update)

    def stop(self) -> tuple[tuple[str, ...], bool]:
        """Stop watching; the parameters changed (model order), and whether the model changed."""
        self._unsubscribe()
        changed = tuple(n for n in self.session.names if n in self.touched)
        return changed, self.session.model is not self.model


class SessionController(QObject):
    """Commands for the window, requests and broadcasts back (see module docstring).

    Signals:
        model_loaded(): a new model/session replaced the old one.
        model_replaced(): an operation (slim, replace, or its undo) swapped the
            session's model; its parameters and shapes may all differ.
        masks_changed(names): masks (and weights) of these parameters changed.
        history_changed(): the undo history changed.
        busy_changed(busy): a job started, or the last one finished.
        mutating_changed(mutating): a job that changes weights started or finished
            (views of layers show "working" meanwhile).
        stats_ready(stats): fresh :class:`ModelStats`.
        accuracy_ready(accuracy): top-1 test accuracy of the current state: measured after
            every operation for the digits demos, else the one an evaluation stored at
            this history step (NaN when there is none).
        figures_ready(names): fresh :class:`LayerFigures` of these layers are
            available from :meth:`layer_figures`.
        request_started(request): a request's job started (the status bar names it).
        progress(fraction, message): the running request reported progress.
        cancelled(request): the user cancelled the running request (:meth:`cancel`).
        error(message, details): a request failed and its caller does not handle
            the error; show it to the user.
    """

    model_loaded = Signal()
    model_replaced = Signal()
    masks_changed = Signal(tuple)
    history_changed = Signal()
    busy_changed = Signal(bool)
    mutating_changed = Signal(bool)
    stats_ready = Signal(object)
    accuracy_ready = Signal(float)
    figures_ready = Signal(tuple)
    request_started = Signal(object)
    progress = Signal(float, str)
    cancelled = Signal(object)
    error = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue = RequestQueue(self)
        q = self._queue
        q.busy_changed.connect(self.busy_changed)
        q.request_started.connect(self.request_started)
        q.progress.connect(self.progress)
        q.cancelled.connect(self.cancelled)
        q.error.connect(self.error)
        self.loaded: LoadedModel | None = None
        self.session: PruningSession | None = None
        self._mutating = False
        self._watch: _ChangeWatch | None = None  # of the running job that changes the session
        #: Bytes of undo data a session's history keeps (see :meth:`set_history_budget`).
        self.history_budget = DEFAULT_BUDGET
        self._saved_ops: list[int] = []  # ids of the operations at the last save or load
        self._saved_keep: list[Operation] = []  # keeps those ids from being reused
        # Connected first, so figures are forgotten before any widget hears of a change.
        self._figures = FiguresCache()
        self.masks_changed.connect(self._figures.forget)
        self.model_loaded.connect(lambda: self._figures.forget())
        self.model_replaced.connect(lambda: self._figures.forget())

    # -- state ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether a worker currently owns the session."""
        return self._queue.busy

    @property
    def mutating(self) -> bool:
        """Whether a job that changes weights is running."""
        return self._mutating

    @property
    def running(self) -> Request | None:
        """The request whose job runs now."""
        return self._queue.running

    @property
    def queued(self) -> int:
        """Number of commands waiting for the running job to finish."""
        return self._queue.queued

    def cancel(self) -> None:
        """Cancel the running request (the session rolls back)."""
        self._queue.cancel()

    # -- model ------------------------------------------------------------------
    def load(self, loaded: LoadedModel) -> None:
        """Replace the current model with ``loaded`` (closing the old session)."""
        if self.busy:
            raise RuntimeError("a job is running; wait or cancel it first")
        self._queue.clear()
        if self.session is not None:
            self.session.close()
        dispose((self.loaded, self.session))  # a big model is freed off the GUI thread
        self.loaded = loaded
        self.session = loaded.session or PruningSession(
            loaded.model,
            example_input=loaded.example_input,
            history_budget=self.history_budget,
            # The kinds of parameters made prunable for this model (gui.session.target_kinds).
            **remembered_options(loaded.key),
        )
        self.session.history.set_budget(self.history_budget)
        self._figures.session = self.session
        self._mark_saved()
        self.model_loaded.emit()
        self.history_changed.emit()
        self.refresh()

    def retarget(self, options: Mapping[str, bool]) -> None:
        """Make the kinds of parameters ``options`` choose prunable (see ``TARGET_OPTIONS``).

        Options left out keep their current value. Widening a session with pruning
        steps adds the new targets, unpruned, and keeps the steps (``model_replaced``);
        otherwise the session is built again with these options (``model_loaded``),
        from the unpruned model when it had steps: those, and the steps undo could
        redo, are discarded (ask first).
        """
        if self.busy:
            raise RuntimeError("a job is running; wait or cancel it first")
        session, loaded = self._require_session(), self.loaded
        assert loaded is not None
        current = session.target_options
        wanted = {o: bool(options.get(o, current.get(o, False))) for o in TARGET_OPTIONS}
        if wanted == current:
            return
        has_steps = bool(session.operations) or session.history.can_redo()
        if has_steps and all(wanted[o] or not current[o] for o in TARGET_OPTIONS):
            chosen = (info.name for info in find_targets(session.model, **wanted))
            session.add_targets(chosen, coupled=False)  # global pruning ranks them too
            current.update(wanted)  # saved with the session, so it reopens the same way
            self.model_replaced.emit()
            self.history_changed.emit()
            self.refresh()
            return
        model = session.unpruned_copy() if session.operations else session.model
        fresh = PruningSession(
            model,
            example_input=session.example_input,
            history_budget=self.history_budget,
            **wanted,
        )
        self.load(replace(loaded, model=model, session=fresh))

    def open(self, request: OpenRequest) -> Request:
        """Open a model in a worker (after queued commands), then show it.

        The request finishes with the :class:`LoadedModel` once it is shown. It
        fails with :class:`TrustRequired` or :class:`FactoryRequired` when the
        loader needs the user first (those are the caller's to handle); other
        errors are reported too, and the current model stays.
        """
        # The kinds of parameters the user made prunable for this file (gui.session.target_kinds).
        kinds = remembered_options(model_key(request.source, None))
        budget = self.history_budget

        def show(state: RequestState, loaded: Any) -> None:
            if state is RequestState.FINISHED:
                self.load(loaded)

        label = f"Open {Path(request.source).name or request.spec}"
        opening = Request(
            label,
            lambda token: open_job(request, budget, kinds, token),
            silent_errors=(TrustRequired, FactoryRequired),
            on_end=show,
        )
        return self._queue.submit(opening)

    def save(self, path: str, format: str) -> Request:
        """Save the session in a worker (see :func:`core.io.checkpoints.save_job`).

        The request finishes with the :class:`~core.io.checkpoints.SavedFiles`.
        """
        session = self._require_session()
        reference = self.loaded.reference if self.loaded is not None else None
        reference_data = reference.to_dict() if reference is not None else None

        def job(token: CancelToken) -> Job[SavedFiles]:
            return (
                yield from save_job(session, path, format, reference=reference_data, token=token)
            )

        def saved(state: RequestState, _files: object) -> None:
            if state is RequestState.FINISHED:
                self._mark_saved()

        return self._queue.submit(Request(f"Save {Path(path).name}", job, on_end=saved))

    def unsaved_steps(self) -> int:
        """How many of the operations that made the current state were not saved (0: none)."""
        if self.session is None:
            return 0
        now = [id(op) for op in self.session.operations]
        same = 0
        for a, b in zip(now, self._saved_ops, strict=False):
            if a != b:
                break
            same += 1
        if same == len(now) == len(self._saved_ops):
            return 0
        return max(1, len(now) - same)

    def _mark_saved(self) -> None:
        self._saved_ops = [] if self.session is None else [id(op) for op in self.session.operations]
        self._saved_keep = [] if self.session is None else list(self.session.operations)

    def set_history_budget(self, budget: int) -> None:
        """Keep at most ``budget`` bytes of undo data (drops the oldest at once if needed)."""
        if self.busy:
            raise RuntimeError("a job is running; wait or cancel it first")
        self.history_budget = budget
        if self.session is not None:
            self.session.history.set_budget(budget)
            self.history_changed.emit()

    # -- commands that change the session -------------------------------------------------
    def apply(self, op: Operation) -> Request:
        """Apply an operation in a worker (it finishes with the history entry, or None)."""
        session = self._require_session()
        return self.submit(op.label, lambda token: session.apply_job(op, token), mutating=True)

    def undo(self) -> Request | None:
        """Undo the last operation in a worker (None: nothing to undo)."""
        session = self._require_session()
        if not session.history.can_undo():
            return None
        return self.submit("Undo", session.undo_job, mutating=True)

    def redo(self) -> Request | None:
        """Redo the last undone operation in a worker (None: nothing to redo)."""
        session = self._require_session()
        if not session.history.can_redo():
            return None
        return self.submit("Redo", session.redo_job, mutating=True)

    def goto(self, cursor: int) -> Request:
        """Undo/redo until ``cursor`` history entries are applied, in one worker job."""
        session = self._require_session()

        def job(token: CancelToken) -> Job[None]:
            while session.history.cursor > cursor:
                token.check()
                yield from session.undo_job(token)
            while session.history.cursor < cursor:
                token.check()
                yield from session.redo_job(token)

        return self.submit("Go to history step", job, mutating=True)

    def reset_all(self) -> Request:
        """Restore every layer's original weights (undoable)."""
        session = self._require_session()
        return self.apply(Reset(tuple(session.names)))

    def make_permanent(self, names: tuple[str, ...]) -> Request:
        """Bake zeros in for ``names``; clears the undo history (ask first!)."""
        return self.apply(MakePermanent(names))

    def submit(
        self,
        label: str,
        make_job: MakeJob,
        *,
        mutating: bool = False,
        silent_errors: tuple[type[BaseException], ...] = (),
    ) -> Request:
        """Queue a job after the commands before it; listen to the returned request.

        ``mutating=True`` is for jobs that change the session (weights, masks,
        the model): layer views show "working" while it runs, and when it ends
        the history, masks and statistics are refreshed, before the request
        says how it ended. Errors of the ``silent_errors`` types are the
        caller's to show; others are reported on ``error`` too.
        """
        self._require_session()
        if not mutating:
            return self._queue.submit(Request(label, make_job, silent_errors=silent_errors))
        request = Request(
            label,
            make_job,
            silent_errors=silent_errors,
            on_start=self._begin_change,
            on_end=lambda state, _result: self._end_change(state),
        )
        return self._queue.submit(request)

    def _begin_change(self) -> None:
        self._watch = _ChangeWatch(self._require_session())
        self._mutating = True
        self.mutating_changed.emit(True)

    def _end_change(self, state: RequestState) -> None:
        """A job that may have changed the session ended (however): tell every view.

        Statistics are measured again unless it was cancelled without a change
        (the session rolled back).
        """
        watch, self._watch = self._watch, None
        changed, replaced = watch.stop() if watch is not None else ((), False)
        try:
            self.history_changed.emit()
            if replaced:
                self.model_replaced.emit()
            elif changed:
                self.masks_changed.emit(changed)
            if changed or replaced or state is not RequestState.CANCELLED:
                self.refresh()
        finally:
            self._mutating = False
            self.mutating_changed.emit(False)

    # -- reads for the views (the latest of each kind counts) -------------------------------
    def preview(self, op: LayerPrune | GlobalPrune) -> Request:
        """Compute the masks ``op`` would produce, without applying.

        The request finishes with a :class:`~gui.session.layer_reads.Preview`
        (the first target's mask unpacked in the worker) unless a later
        preview superseded it.
        """
        session = self._require_session()
        return self._queue.submit(
            Request("Preview", lambda token: preview_job(session, op, token), kind="preview")
        )

    def plan(self, op: GlobalPrune) -> Request:
        """Plan a global pruning without applying it (finishes with a ``GlobalPlan``)."""
        session = self._require_session()
        return self._queue.submit(
            Request(
                "Plan global pruning",
                lambda token: session.global_plan_job(op, token),
                kind="plan",
            )
        )

    def fetch_layer(self, name: str) -> Request:
        """Copy a layer's original weights, mask and effective weights in a worker.

        Big layers take a while to restore from the vault; the GUI thread only
        receives the finished copies: the request finishes with a
        :class:`~gui.session.layer_reads.LayerSnapshot`, which brings the
        layer's figures too (and the patterns asked of them meanwhile).
        """
        session = self._require_session()

        def make(token: CancelToken) -> Job[Any]:
            patterns, known = self._figures.take_wanted(name)
            return read_layer_job(session, name, patterns, known, token)

        def store(state: RequestState, snapshot: Any) -> None:
            if state is RequestState.FINISHED:
                self._store_figures([snapshot.figures])

        return self._queue.submit(Request(f"Read {name}", make, kind="layer", on_end=store))

    def layer_figures(self, name: str) -> LayerFigures | None:
        """The current :class:`LayerFigures` of ``name``, or None when none are measured.

        Cheap (no tensor is read): figures of a mask the session no longer
        holds, or of a layer a job changed since, are not returned.
        """
        return self._figures.get(name)

    def measure_layers(
        self, names: Iterable[str], patterns: Iterable[Pattern] = ()
    ) -> Request | None:
        """Measure the figures of ``names`` (with ``patterns``' remaining units) in a worker.

        None when every layer's figures are current and know every pattern.
        The job starts on the next event-loop turn at the earliest, after any
        layer read (:meth:`fetch_layer`) asked for meanwhile, which brings the
        figures of its layer; asks made before it starts are merged. The
        layers measured are announced with ``figures_ready(names)``.
        """
        session = self._require_session()
        wanted = tuple(patterns)
        missing = self._figures.missing(names, wanted)
        if not missing:
            return None
        self._figures.want(missing, wanted)

        def make(token: CancelToken) -> Job[list[LayerFigures]]:
            # What is still unknown when it starts (a layer read may have brought it).
            return measure_job(session, self._figures.take_all_wanted(), token)

        def store(state: RequestState, measured: Any) -> None:
            if state is RequestState.FINISHED:
                self._store_figures(measured)

        request = Request(
            "Measure layers",
            make,
            kind="figures",
            needed=self._figures.anything_wanted,
            on_end=store,
        )
        return self._queue.submit(request, defer=True)

    def _store_figures(self, measured: list[LayerFigures]) -> None:
        names = self._figures.store(measured)
        if names:
            self.figures_ready.emit(names)

    def refresh(self) -> Request:
        """Recompute statistics and accuracy in a worker (``stats_ready``, ``accuracy_ready``)."""
        session = self._require_session()
        loaded = self.loaded

        def measured(state: RequestState, result: Any) -> None:
            # Broadcast only the latest statistics (a later refresh may be on its way).
            if state is RequestState.FINISHED and not request.superseded:
                self._measured(*result)

        request = Request(
            "Statistics",
            lambda token: _measure(session, loaded, token),
            kind="refresh",
            on_end=measured,
        )
        return self._queue.submit(request)

    def _measured(self, stats: ModelStats, accuracy: float) -> None:
        session = self._require_session()
        measurements = session.history.measurements()
        if math.isnan(accuracy):  # no built-in data: what an evaluation stored here
            accuracy = test_accuracy(measurements)
        elif measurements.get(AUTO_ACCURACY) != accuracy:
            measurements[AUTO_ACCURACY] = accuracy  # the history list shows it
            self.history_changed.emit()
        self.stats_ready.emit(stats)
        self.accuracy_ready.emit(accuracy)

    # -- measurements ---------------------------------------------------------------
    def record_measurement(self, key: str, value: Any) -> None:
        """Attach a JSON-safe measurement to the current history step.

        It travels with its entry through undo and redo (see
        :meth:`core.pruning.history.History.measurements`); ``history_changed``
        and ``accuracy_ready`` follow so the history list and the status bar show it.
        Call it between jobs (e.g. from a request's ``finished``).
        """
        session = self._require_session()
        if self.busy:
            raise RuntimeError("a job is running; record measurements from its result")
        session.history.measurements()[key] = value
        self.history_changed.emit()
        self.accuracy_ready.emit(self.accuracy())

    def accuracy(self) -> float:
        """The top-1 test accuracy measured at the current history step (NaN: none)."""
        if self.session is None:
            return math.nan
        return test_accuracy(self.session.history.measurements())

    # -- helpers ------------------------------------------------------------------
    def _require_session(self) -> PruningSession:
        if self.session is None:
            raise RuntimeError("no model is loaded")
        return self.session


def _measure(
    session: PruningSession, loaded: LoadedModel | None, token: CancelToken
) -> Job[tuple[ModelStats, float]]:
    stats = yield from stats_job(session, token)
    accuracy = float("nan")
    if loaded is not None and loaded.data is not None:
        yield Progress(1.0, "evaluating accuracy")
        data = loaded.data
        accuracy = evaluate_accuracy(session.model, data.test_x, data.test_y)
    return stats, accuracy
