"""The live preview of the layer controls: throttled, and shown only while current.

:class:`LivePreview` waits for the controls to settle (:data:`PREVIEW_DELAY_MS`
after the last change), then asks the controller for a preview of the
operation they describe. A later request supersedes an earlier one (the
controller keeps only the latest preview), so previews never pile up, and a
result is passed on only while the controls still describe its operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal

from core.common.errors import PruningError
from gui.pruning.method_pages import PREVIEW_DELAY_MS
from gui.pruning.preview_status import preview_status

if TYPE_CHECKING:
    from core.pruning.operations import LayerPrune
    from gui.session.controller import SessionController
    from gui.session.layer_reads import Preview


class LivePreview(QObject):
    """Previews the operation ``current()`` returns once the controls settle.

    ``current()`` is the operation the controls describe (None: invalid);
    ``live()`` says whether previews are wanted at all.

    Signals:
        ready(preview, text, style): a :class:`~gui.session.layer_reads.Preview` of
            the current operation arrived, with the status line that describes it
            (:func:`~gui.pruning.preview_status.preview_status`).
        failed(message): computing the preview failed.
    """

    ready = Signal(object, str, str)
    failed = Signal(str)

    def __init__(
        self,
        controller: SessionController,
        current: Callable[[], LayerPrune | None],
        live: Callable[[], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self._current = current
        self._live = live
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self._request)

    @property
    def scheduled(self) -> bool:
        """Whether a preview waits for the controls to settle."""
        return self._timer.isActive()

    def schedule(self) -> None:
        """Preview once the controls stay unchanged for :data:`PREVIEW_DELAY_MS`."""
        self._timer.start()

    def stop(self) -> None:
        """Drop the preview that waits (one already asked for still arrives)."""
        self._timer.stop()

    def _request(self) -> None:
        op = self._current()
        if op is None or not self._live() or self.controller.session is None:
            return
        request = self.controller.preview(op)
        request.finished.connect(self._on_finished)
        request.failed.connect(self._on_failed)

    def _on_finished(self, preview: Preview) -> None:
        """Pass on a preview of the operation the controls still describe (else it is stale)."""
        op = self._current()
        if op is None or not (preview.op is op or preview.op.to_dict() == op.to_dict()):
            return
        session = self.controller.session
        if session is None:
            raise PruningError("no model is loaded")
        self.ready.emit(preview, *preview_status(session, preview.masks))

    def _on_failed(self, error: BaseException) -> None:
        self.failed.emit(str(error))
