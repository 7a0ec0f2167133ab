"""The GUI's single point of contact with the engine.

:class:`SessionController` owns the :class:`~core.pruning.session.PruningSession` and a
:class:`~gui.session.jobs.JobRunner`. Widgets read the session when told something
changed and send commands here; every command that can take long runs as a
core job in a worker, during which the session belongs to that worker
(``busy`` is True and views show it). Results are swapped in on the GUI thread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QObject, QTimer, Signal
from torch import nn

from core.analysis.stats import ModelStats, stats_job
from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.demos import DigitsData, evaluate_accuracy, load_digits
from core.io.checkpoints import SavedFiles, save_job
from core.io.loading import (
    TARGET_OPTIONS,
    FactoryRequired,
    TrustRequired,
    open_model_job,
    open_session,
)
from core.io.references import ModelReference
from core.pruning.history import DEFAULT_BUDGET
from core.pruning.masks import PackedMask
from core.pruning.methods.patterns import Pattern
from core.pruning.operations import GlobalPrune, LayerPrune, MakePermanent, Operation, Reset
from core.pruning.session import PruningSession
from core.pruning.targets import find_targets
from gui.session.jobs import JobRunner
from gui.session.magnitudes import MagnitudeCounts, largest_pruned, magnitude_counts
from gui.session.measurements import AUTO_ACCURACY, test_accuracy
from gui.session.target_kinds import model_key, remembered_options


@dataclass
class LoadedModel:
    """What the window is showing: a model, its name, and optional demo data."""

    model: nn.Module
    name: str
    example_input: torch.Tensor | None = None
    data: DigitsData | None = None
    source: str = ""  # file path, or "" for a built-in demo
    #: How to build the model again (saved in session checkpoints), when known.
    reference: ModelReference | None = None
    #: A session prepared in a worker (masks or a saved state put back); else a fresh one.
    session: PruningSession | None = None
    #: What the loader wants the user to know.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpenRequest:
    """What :meth:`SessionController.open` was asked to open (to ask again with more)."""

    spec: str
    weights: str | None = None
    args: tuple[tuple[str, Any], ...] = ()
    trust: bool = False


@dataclass(frozen=True, eq=False)
class LayerFigures:
    """What widgets need to know of one layer's current state, measured in a worker.

    Widgets never read a whole layer on the GUI thread (a worker may be writing
    it, and 67M weights take a while): they ask :meth:`SessionController.layer_figures`
    and, when it has nothing yet, :meth:`SessionController.measure_layers`.
    """

    name: str
    #: The packed mask measured (None: nothing pruned); the figures hold while the
    #: session keeps this very mask and no job changed the layer's values.
    mask: PackedMask | None
    numel: int
    pruned: int
    #: The largest |w| of the effective weights (0.0 for an empty layer).
    largest: float
    #: Units that each pattern finds still (partly) kept, for the patterns asked for.
    remaining: Mapping[Pattern, int] = field(default_factory=dict)

    @property
    def sparsity(self) -> float:
        """Fraction of the layer's entries that are pruned."""
        return self.pruned / self.numel if self.numel else 0.0

    def knows(self, patterns: Iterable[Pattern]) -> bool:
        """Whether the remaining units of every one of ``patterns`` are known."""
        return all(pattern in self.remaining for pattern in patterns)


def measure_figures(
    session: PruningSession,
    name: str,
    patterns: Iterable[Pattern] = (),
    known: LayerFigures | None = None,
    effective: torch.Tensor | None = None,
) -> LayerFigures:
    """Measure :class:`LayerFigures` of ``name`` (in a worker: it reads the whole layer).

    ``known`` figures of the same mask are reused (only missing patterns are
    counted); ``effective`` is a copy of the effective weights already made.
    Patterns that do not fit the layer's shape are left out.
    """
    info = session.info(name)
    mask = session.packed_mask(name)
    if known is not None and known.mask is not mask:
        known = None
    if known is not None:
        largest = known.largest
    else:
        weights = session.effective(name) if effective is None else effective
        largest = float(torch.linalg.vector_norm(weights, float("inf"))) if weights.numel() else 0.0
    remaining = dict(known.remaining) if known is not None else {}
    for pattern in patterns:
        if pattern in remaining:
            continue
        try:
            pattern.check(info.shape)
            remaining[pattern] = (
                pattern.units(info.shape)
                if mask is None
                else pattern.remaining_units(info.shape, mask)
            )
        except PruningError:
            continue
    pruned = 0 if mask is None else mask.pruned  # counts the bits here, not on the GUI thread
    return LayerFigures(name, mask, info.numel, pruned, largest, remaining)


@dataclass(frozen=True, eq=False)
class LayerSnapshot:
    """Copies of one layer's three views and its |w| histogram, made in a worker.

    ``figures`` were measured with them: the GUI thread never reads the layer.
    """

    original: torch.Tensor
    mask: torch.Tensor
    effective: torch.Tensor
    counts: MagnitudeCounts
    figures: LayerFigures


@dataclass(frozen=True, eq=False)
class LayerPreview:
    """One layer of a preview: its unpacked mask and the largest |w| it would prune."""

    name: str
    mask: torch.Tensor
    threshold: float | None


class SessionController(QObject):
    """Commands for the window, signals back (see module docstring).

    Signals:
        model_loaded(): a new model/session replaced the old one.
        opened(loaded): a model opened by :meth:`open` is shown (after model_loaded).
        open_refused(request, error): opening needs the user's trust or a factory first.
        open_failed(request, error): opening failed (``error`` also reports it).
        saved(files): :meth:`save` wrote a :class:`~core.io.checkpoints.SavedFiles`.
        masks_changed(names): masks (and weights) of these parameters changed.
        model_replaced(): an operation (slim, replace, or its undo) swapped the
            session's model; its parameters and shapes may all differ.
        history_changed(): the undo history changed.
        busy_changed(busy): a job started or finished.
        mutating_changed(mutating): a job that changes weights started or finished
            (views of layers should show "working" meanwhile).
        stats_ready(stats): fresh :class:`ModelStats`.
        accuracy_ready(accuracy): top-1 test accuracy of the current state: measured after
            every operation for the digits demos, else the one an evaluation stored at
            this history step (NaN when there is none).
        preview_ready(masks): masks a layer operation would produce (not applied).
        preview_layer_ready(preview): the :class:`LayerPreview` of the previewed
            operation's first target, unpacked in the worker.
        plan_ready(plan): a global pruning plan (not applied).
        layer_ready(name, views): a :class:`LayerSnapshot` of one layer.
        figures_ready(names): fresh :class:`LayerFigures` of these layers are
            available from :meth:`layer_figures`.
        error(message, details): something failed; show it to the user.
    """

    model_loaded = Signal()
    opened = Signal(object)
    open_refused = Signal(object, object)
    open_failed = Signal(object, object)
    saved = Signal(object)
    masks_changed = Signal(tuple)
    model_replaced = Signal()
    history_changed = Signal()
    busy_changed = Signal(bool)
    mutating_changed = Signal(bool)
    stats_ready = Signal(object)
    accuracy_ready = Signal(float)
    preview_ready = Signal(object)
    preview_layer_ready = Signal(object)
    plan_ready = Signal(object)
    layer_ready = Signal(str, object)
    figures_ready = Signal(tuple)
    error = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(self)
        self.runner.failed.connect(
            lambda _label, message, details: self.error.emit(message, details)
        )
        self.runner.started.connect(lambda _label: self.busy_changed.emit(True))
        self.runner.finished.connect(self._next)
        self.loaded: LoadedModel | None = None
        self.session: PruningSession | None = None
        # Work asked for while a job runs: commands in order, the latest preview/refresh.
        self._commands: list[Callable[[], None]] = []
        self._latest: dict[str, Callable[[], None]] = {}
        self._mutating = False
        self._end_watch: Callable[[], None] | None = None  # see _mutate
        self.mutating_changed.connect(lambda on: setattr(self, "_mutating", on))
        #: Bytes of undo data a session's history keeps (see :meth:`set_history_budget`).
        self.history_budget = DEFAULT_BUDGET
        self._saved_ops: list[int] = []  # ids of the operations at the last save or load
        self._saved_keep: list[Operation] = []  # keeps those ids from being reused
        # Figures of layers (see layer_figures), and the patterns asked for since the last job.
        # Connected first, so they are forgotten before any widget hears of a change.
        self._figures: dict[str, LayerFigures] = {}
        self._wanted: dict[str, set[Pattern]] = {}
        # measure_layers starts its job a moment later, so that a layer read asked for
        # in the same event-loop turn (a new selection) goes first and brings the figures.
        self._measure_soon = QTimer(self)
        self._measure_soon.setSingleShot(True)
        self._measure_soon.setInterval(0)
        self._measure_soon.timeout.connect(self._next_if_queued)
        self.masks_changed.connect(self._forget_figures)
        self.model_loaded.connect(self._forget_figures)
        self.model_replaced.connect(self._forget_figures)

    # -- model ------------------------------------------------------------------
    def load(self, loaded: LoadedModel) -> None:
        """Replace the current model with ``loaded`` (closing the old session)."""
        if self.runner.busy:
            raise RuntimeError("a job is running; wait or cancel it first")
        self._commands.clear()
        self._latest.clear()
        if self.session is not None:
            self.session.close()
        self.loaded = loaded
        self.session = loaded.session or PruningSession(
            loaded.model,
            example_input=loaded.example_input,
            history_budget=self.history_budget,
            # The kinds of parameters made prunable for this model (gui.session.target_kinds).
            **remembered_options(model_key(loaded.source, loaded.reference)),
        )
        self.session.history.set_budget(self.history_budget)
        self._mark_saved()
        self.model_loaded.emit()
        self.history_changed.emit()
        self.refresh()

    def retarget(self, options: Mapping[str, bool]) -> None:
        """Make the kinds of parameters ``options`` choose prunable (see ``TARGET_OPTIONS``).

        Options left out keep their current value. Widening a session with pruning
        steps adds the new targets, unpruned, and keeps the steps (``model_replaced``);
        otherwise the session is built again with these options (``model_loaded``),
        from the unpruned model when it had steps: those are discarded (ask first).
        """
        if self.runner.busy:
            raise RuntimeError("a job is running; wait or cancel it first")
        session, loaded = self._require_session(), self.loaded
        assert loaded is not None
        current = session.target_options
        wanted = {o: bool(options.get(o, current.get(o, False))) for o in TARGET_OPTIONS}
        if wanted == current:
            return
        if session.operations and all(wanted[o] or not current[o] for o in TARGET_OPTIONS):
            session.add_targets(info.name for info in find_targets(session.model, **wanted))
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

    def open(self, request: OpenRequest) -> bool:
        """Open a model in a worker (after queued commands), then show it.

        Emits ``opened(loaded)``; ``open_refused(request, error)`` when the
        loader needs the user first (:class:`TrustRequired`, :class:`FactoryRequired`);
        other errors reach ``open_failed`` and ``error``, and the current model stays.
        """

        # The kinds of parameters the user made prunable for this file (gui.session.target_kinds).
        kinds = remembered_options(model_key(request.weights or request.spec, None))

        def job(token: CancelToken) -> Job[LoadedModel]:
            opened = yield from open_model_job(
                request.spec,
                weights=request.weights,
                args=dict(request.args),
                trust=request.trust,
                token=token,
            )
            yield Progress(0.95, "preparing the session")
            session = open_session(opened, history_budget=self.history_budget, **kinds)
            data = load_digits() if opened.has_data else None
            return LoadedModel(
                opened.model,
                opened.name,
                opened.example_input,
                data,
                source=request.weights or request.spec,
                reference=opened.reference,
                session=session,
                notes=opened.notes,
            )

        def done(loaded: LoadedModel) -> None:
            self.load(loaded)
            self.opened.emit(loaded)

        def refused(exc: BaseException) -> bool:
            if isinstance(exc, TrustRequired | FactoryRequired):
                self.open_refused.emit(request, exc)
                return True
            self.open_failed.emit(request, exc)
            return False

        label = f"Open {Path(request.weights or request.spec).name or request.spec}"
        self._commands.append(lambda: self.runner.run(label, job, done, refused))
        self._next()
        return True

    def save(self, path: str, format: str) -> bool:
        """Save the session in a worker (see :func:`core.io.checkpoints.save_job`).

        Emits ``saved(files)``; errors reach ``error``.
        """
        session = self._require_session()
        reference = self.loaded.reference if self.loaded is not None else None
        reference_data = reference.to_dict() if reference is not None else None

        def job(token: CancelToken) -> Job[SavedFiles]:
            return (
                yield from save_job(session, path, format, reference=reference_data, token=token)
            )

        def done(files: SavedFiles) -> None:
            self._mark_saved()
            self.saved.emit(files)

        label = f"Save {Path(path).name}"
        self._commands.append(lambda: self.runner.run(label, job, done))
        self._next()
        return True

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
        if self.runner.busy:
            raise RuntimeError("a job is running; wait or cancel it first")
        self.history_budget = budget
        if self.session is not None:
            self.session.history.set_budget(budget)
            self.history_changed.emit()

    @property
    def busy(self) -> bool:
        """Whether a worker currently owns the session."""
        return self.runner.busy

    @property
    def mutating(self) -> bool:
        """Whether a job that changes weights is running."""
        return self._mutating

    @property
    def queued(self) -> int:
        """Number of commands waiting for the running job to finish."""
        return len(self._commands)

    # -- commands -----------------------------------------------------------------
    def apply(self, op: Operation) -> bool:
        """Apply an operation in a worker; False if busy."""
        session = self._require_session()
        return self._mutate(op.label, lambda token: session.apply_job(op, token))

    def undo(self) -> bool:
        """Undo the last operation in a worker."""
        session = self._require_session()
        if not session.history.can_undo():
            return False
        return self._mutate("Undo", session.undo_job)

    def redo(self) -> bool:
        """Redo the last undone operation in a worker."""
        session = self._require_session()
        if not session.history.can_redo():
            return False
        return self._mutate("Redo", session.redo_job)

    def goto(self, cursor: int) -> bool:
        """Undo/redo until ``cursor`` history entries are applied, in one worker job."""
        session = self._require_session()

        def job(token: CancelToken) -> Job[None]:
            while session.history.cursor > cursor:
                token.check()
                yield from session.undo_job(token)
            while session.history.cursor < cursor:
                token.check()
                yield from session.redo_job(token)

        return self._mutate("Go to history step", job)

    def reset_all(self) -> bool:
        """Restore every layer's original weights (undoable)."""
        session = self._require_session()
        return self.apply(Reset(tuple(session.names)))

    def make_permanent(self, names: tuple[str, ...]) -> bool:
        """Bake zeros in for ``names``; clears the undo history (ask first!)."""
        return self.apply(MakePermanent(names))

    def cancel(self) -> None:
        """Cancel the running job (the session rolls back)."""
        self.runner.cancel()

    def preview(self, op: LayerPrune | GlobalPrune) -> bool:
        """Compute masks ``op`` would produce, without applying; emits preview_ready.

        For the operation's first target it also unpacks the mask and finds the
        largest |w| it would prune, in the worker (``preview_layer_ready``).
        """
        session = self._require_session()

        def job(token: CancelToken) -> Job[tuple[dict[str, Any], LayerPreview | None]]:
            masks = yield from session.masks_job(op, token)
            for packed in masks.values():
                if packed is not None:
                    _ = packed.kept  # counted here, not when the GUI thread asks
            focus = next((name for name in op.targets if name in masks), None)
            if focus is None:
                return masks, None
            mask = masks[focus]
            shape = session.info(focus).shape
            full = torch.ones(shape, dtype=torch.bool) if mask is None else mask.to_bool()
            threshold = largest_pruned(session.original(focus), full)
            return masks, LayerPreview(focus, full, threshold)

        def done(result: tuple[dict[str, Any], LayerPreview | None]) -> None:
            masks, layer = result
            self.preview_ready.emit(masks)
            if layer is not None:
                self.preview_layer_ready.emit(layer)

        self._latest["preview"] = lambda: self.runner.run("Preview", job, on_result=done)
        self._next()
        return True

    def plan(self, op: GlobalPrune) -> bool:
        """Plan a global pruning without applying it; emits plan_ready."""
        session = self._require_session()
        self._latest["plan"] = lambda: self.runner.run(
            "Plan global pruning",
            lambda token: session.global_plan_job(op, token),
            on_result=lambda plan: self.plan_ready.emit(plan),
        )
        self._next()
        return True

    def fetch_layer(self, name: str) -> bool:
        """Copy a layer's original weights, mask and effective weights in a worker.

        Big layers take a while to restore from the vault; the GUI thread only
        receives the finished copies (``layer_ready``).
        """
        session = self._require_session()

        def job(
            _token: CancelToken, patterns: set[Pattern], known: LayerFigures | None
        ) -> Job[LayerSnapshot]:
            yield Progress(0.0, f"reading {name}")
            original, mask = session.original(name), session.mask(name)
            counts = magnitude_counts(original, mask)
            effective = session.effective(name).clone()
            figures = measure_figures(session, name, patterns, known, effective)
            return LayerSnapshot(original, mask, effective, counts, figures)

        def start(token: CancelToken) -> Job[LayerSnapshot]:
            # The figures asked for this layer come with it (on the GUI thread: _wanted).
            return job(token, self._wanted.pop(name, set()), self._figures.get(name))

        def done(views: LayerSnapshot) -> None:
            self._store_figures([views.figures])
            self.layer_ready.emit(name, views)

        self._latest["layer"] = lambda: self.runner.run(f"Read {name}", start, on_result=done)
        self._next()
        return True

    # -- figures of layers ------------------------------------------------------------
    def layer_figures(self, name: str) -> LayerFigures | None:
        """The current :class:`LayerFigures` of ``name``, or None when none are measured.

        Cheap (no tensor is read): figures of a mask the session no longer
        holds, or of a layer a job changed since, are not returned.
        """
        figures = self._figures.get(name)
        if figures is None or self.session is None:
            return None
        try:
            current = self.session.packed_mask(name)
        except (PruningError, KeyError):
            return None
        return figures if figures.mask is current else None

    def measure_layers(self, names: Iterable[str], patterns: Iterable[Pattern] = ()) -> bool:
        """Measure the figures of ``names`` (with ``patterns``' remaining units) in a worker.

        Layers whose figures are current and know every pattern are skipped;
        False when there is nothing to measure. The job starts on the next
        event-loop turn at the earliest, after any layer read (:meth:`fetch_layer`)
        asked for meanwhile, which brings the figures of its layer; requests made
        before it starts are merged. The layers measured are announced with
        ``figures_ready(names)`` (read them with :meth:`layer_figures`).
        """
        self._require_session()
        wanted = tuple(patterns)
        missing = [
            name
            for name in names
            if not ((figures := self.layer_figures(name)) is not None and figures.knows(wanted))
        ]
        if not missing:
            return False
        for name in missing:
            self._wanted.setdefault(name, set()).update(wanted)
        self._latest["figures"] = self._start_measuring
        self._measure_soon.start()
        return True

    def _next_if_queued(self) -> None:
        if not self.runner.busy and (self._commands or self._latest):
            self._next()

    def _start_measuring(self) -> None:
        """Measure what was asked for and is still unknown (a layer read may have brought it)."""
        session = self._require_session()
        asked, self._wanted = self._wanted, {}
        wanted = {
            name: patterns
            for name, patterns in asked.items()
            if not ((figures := self.layer_figures(name)) is not None and figures.knows(patterns))
        }
        if not wanted:
            return
        known = {name: self._figures.get(name) for name in wanted}

        def job(token: CancelToken) -> Job[list[LayerFigures]]:
            measured = []
            for i, (name, patterns) in enumerate(wanted.items()):
                token.check()
                measured.append(measure_figures(session, name, patterns, known[name]))
                yield Progress((i + 1) / len(wanted), f"measured {name}")
            return measured

        self.runner.run("Measure layers", job, on_result=self._store_figures)

    def _store_figures(self, measured: list[LayerFigures]) -> None:
        """Keep figures that still describe the session's layers; announce them."""
        names = []
        for figures in measured:
            self._figures[figures.name] = figures
            if self.layer_figures(figures.name) is figures:
                names.append(figures.name)
            else:
                del self._figures[figures.name]
        if names:
            self.figures_ready.emit(tuple(names))

    def _forget_figures(self, names: tuple[str, ...] | None = None) -> None:
        """Drop figures of ``names`` (all by default): their layers changed."""
        if names is None:
            self._figures.clear()
            self._wanted.clear()
            return
        for name in names:
            self._figures.pop(name, None)

    def refresh(self) -> bool:
        """Recompute statistics and accuracy in a worker."""
        session = self._require_session()
        loaded = self.loaded
        self._latest["refresh"] = lambda: self.runner.run(
            "Statistics",
            lambda token: _measure(session, loaded, token),
            on_result=self._measured,
        )
        self._next()
        return True

    # -- helpers ------------------------------------------------------------------
    def _require_session(self) -> PruningSession:
        if self.session is None:
            raise RuntimeError("no model is loaded")
        return self.session

    def submit(
        self,
        label: str,
        make_job: Callable[[CancelToken], Job[Any]],
        on_result: Callable[[Any], None] | None = None,
        *,
        mutating: bool = False,
        on_error: Callable[[BaseException], bool | None] | None = None,
    ) -> bool:
        """Queue a job after the commands before it; its result goes to ``on_result``.

        ``mutating=True`` is for jobs that change the session (weights, masks,
        the model): layer views show "working" while it runs, and afterwards the
        history, masks and statistics are refreshed, as for :meth:`apply`. Its
        progress ``detail`` items reach ``runner.detail``. ``on_error`` returning
        True means it handled the error (else ``error`` is emitted).
        """
        self._require_session()
        if mutating:
            return self._mutate(label, make_job, on_result, on_error)
        self._commands.append(
            lambda: self.runner.run(label, make_job, on_result=on_result, on_error=on_error)
        )
        self._next()
        return True

    def _mutate(
        self,
        label: str,
        make_job: Callable[[CancelToken], Job[Any]],
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], bool | None] | None = None,
    ) -> bool:
        session = self._require_session()

        def start() -> None:
            # Everything the job changes (masks, floors, kept values) the session reports.
            touched: set[str] = set()
            unsubscribe = session.subscribe(touched.update)
            self._end_watch = unsubscribe  # also ended when the job is cancelled (_next)
            model = session.model

            def done(_result: Any) -> None:
                changed = tuple(n for n in session.names if n in touched)
                self.history_changed.emit()
                if session.model is not model:
                    self.model_replaced.emit()
                elif changed:
                    self.masks_changed.emit(changed)
                self.refresh()

            def failed(exc: BaseException) -> bool | None:
                self._stop_watching()
                self.mutating_changed.emit(False)
                self._failed(exc)
                return on_error(exc) if on_error is not None else None

            def finished(result: Any) -> None:
                self._stop_watching()
                try:
                    done(result)
                    if on_result is not None:
                        on_result(result)
                finally:
                    self.mutating_changed.emit(False)

            if self.runner.run(label, make_job, on_result=finished, on_error=failed):
                self.mutating_changed.emit(True)

        self._commands.append(start)
        self._next()
        return True

    def _stop_watching(self) -> None:
        if self._end_watch is not None:
            self._end_watch()
            self._end_watch = None

    def _failed(self, _exc: BaseException) -> None:
        self.history_changed.emit()
        self.refresh()

    def _next(self, _label: str = "") -> None:
        """Start the next queued piece of work, if idle; else report idleness."""
        if self.runner.busy:
            return
        if self._mutating:  # a cancelled command reports no result
            self._stop_watching()
            self.mutating_changed.emit(False)
        # A piece of work that finds nothing to do starts no job: go on with the next.
        while not self.runner.busy and (self._commands or self._latest):
            if self._commands:
                self._commands.pop(0)()
            else:  # measuring figures last: a layer read on the way brings them
                key = next((k for k in self._latest if k != "figures"), "figures")
                self._latest.pop(key)()
        if not self.runner.busy:
            self.busy_changed.emit(False)

    def _measured(self, result: tuple[ModelStats, float]) -> None:
        stats, accuracy = result
        session = self.session
        if session is not None:
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
        Call it between jobs (e.g. from a job's result callback).
        """
        session = self._require_session()
        if self.runner.busy:
            raise RuntimeError("a job is running; record measurements from its result")
        session.history.measurements()[key] = value
        self.history_changed.emit()
        self.accuracy_ready.emit(self.accuracy())

    def accuracy(self) -> float:
        """The top-1 test accuracy measured at the current history step (NaN: none)."""
        if self.session is None:
            return math.nan
        return test_accuracy(self.session.history.measurements())


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


def load_builtin_demo(name: str = "cnn") -> LoadedModel:
    """A built-in demo model with its example input and (for digits models) data."""
    from core.demos import load_demo

    demo = load_demo(name)
    data = load_digits() if demo.has_data else None
    reference = ModelReference("demo", name)  # so a saved session can rebuild it
    return LoadedModel(demo.model, f"demo {name}", demo.example_input, data, reference=reference)
