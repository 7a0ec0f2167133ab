"""Letting go of big tensors off the GUI thread.

Freeing a 268 MB tensor unmaps 65,536 pages of 4 KiB: about 20 ms in the thread
that drops the last reference. When that is the GUI thread (a view replacing
the layer it showed), the window stalls for that long. Torch releases the GIL
while it frees a tensor's memory, so the same free in another thread costs the
GUI thread nothing.

:func:`dispose` hands an object to one background thread that drops it a
moment later (:data:`DELAY_S`), once the caller's own short-lived references
(locals, the views' previous contents replaced in the same event-loop turn)
are gone, so the thread's reference is the last one. Holders that live longer
may still drop theirs later on the GUI thread; nothing breaks then, the free
just happens there.
"""

from __future__ import annotations

import queue
import threading
import time

#: How long a disposed object is kept before the background thread drops it (s).
DELAY_S = 0.25

_queue: queue.SimpleQueue[tuple[float, object]] = queue.SimpleQueue()
_thread: threading.Thread | None = None
_lock = threading.Lock()


def dispose(obj: object) -> None:
    """Drop ``obj`` in the background thread after :data:`DELAY_S` (None is ignored)."""
    if obj is None:
        return
    _start()
    _queue.put((time.monotonic() + DELAY_S, obj))


def _start() -> None:
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(
                target=_drop_forever, name="prunescope-disposal", daemon=True
            )
            _thread.start()


def _drop_forever() -> None:
    while True:
        due, obj = _queue.get()
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        del obj  # often the last reference: its memory is freed here, not on the GUI thread
