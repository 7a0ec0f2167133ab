"""The plans the global pruning panel asks for: the live plan's delay and the plan on its way.

:class:`PlanRequests` waits for the panel's controls to settle
(:data:`~gui.pruning.method_pages.PREVIEW_DELAY_MS` after the last change) before
saying a live plan is due, and keeps the plan asked of the controller until it
arrives, so a change of the controls can cancel it (a plan of what the panel
no longer shows is never shown).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from gui.pruning.method_pages import PREVIEW_DELAY_MS

if TYPE_CHECKING:
    from core.pruning.global_prune import GlobalPlan
    from core.pruning.operations import GlobalPrune
    from gui.session.controller import SessionController
    from gui.session.requests import Request


class PlanRequests(QObject):
    """The global panel's live plan timer and the plan it asked for (see module docstring).

    Signals:
        due(): the controls stayed unchanged for the delay; a live plan is due.
        ready(plan): the :class:`~core.pruning.global_prune.GlobalPlan` asked for arrived.
        failed(message): planning failed.
    """

    due = Signal()
    ready = Signal(object)
    failed = Signal(str)

    def __init__(self, controller: SessionController, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._request: Request | None = None  # the plan asked for, until it is shown
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self.due)

    @property
    def scheduled(self) -> bool:
        """Whether a live plan waits for the controls to settle."""
        return self._timer.isActive()

    @property
    def pending(self) -> bool:
        """Whether a plan was asked for and not shown yet (nor cancelled)."""
        return self._request is not None

    def schedule(self) -> None:
        """Say :attr:`due` once the controls stay unchanged for the delay."""
        self._timer.start()

    def stop(self) -> None:
        """Drop the live plan that waits (one already asked for still arrives)."""
        self._timer.stop()

    def ask(self, op: GlobalPrune) -> None:
        """Ask the controller for a plan of ``op``; it arrives on :attr:`ready`."""
        request = self._request = self.controller.plan(op)
        request.finished.connect(self._on_finished)
        request.failed.connect(self._on_failed)
        # However it ends (a failure, a cancel, a newer plan), it is no longer on its way.
        request.ended.connect(lambda _state: self._forget(request))

    def cancel(self) -> None:
        """Cancel the plan asked for, if any: it is of what the panel no longer shows."""
        if self._request is not None:
            self._request.cancel()
            self._request = None

    def _on_finished(self, plan: GlobalPlan) -> None:
        self._request = None
        self.ready.emit(plan)

    def _on_failed(self, error: BaseException) -> None:
        self.failed.emit(str(error))

    def _forget(self, request: Request) -> None:
        if self._request is request:
            self._request = None
