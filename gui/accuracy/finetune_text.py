"""How a fine-tune is told in the Accuracy tab: one line per epoch, one at the end.

:func:`epoch_text` is the status line while a run goes (``epoch 3 · train loss
0.41 · validation 97.2%``); :func:`finetune_summary` says how it ended and which
epoch was kept.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from gui.accuracy.evaluation_view import percent

if TYPE_CHECKING:
    from core.training.finetune import EpochRecord, FinetuneResult


def finetune_summary(result: FinetuneResult) -> str:
    """One line on how a fine-tune ended, e.g.
    ``Fine-tuned 10 epochs · kept epoch 7 (best validation 97.9%)``."""
    done = [r for r in result.records if r.epoch >= 1]
    n = len(done)
    epochs = f"{n} epoch{'s' if n != 1 else ''}"
    chosen = next((r for r in done if r.epoch == result.chosen_epoch), None)
    best = max((r.val_top1 for r in done if r.val_top1 is not None), default=None)
    if result.cancelled:
        head = f"Cancelled after {epochs}"
    elif result.stopped_early:
        head = f"Stopped early after {epochs} (validation stopped improving)"
    else:
        head = f"Fine-tuned {epochs}"
    if result.entry is None or result.chosen_epoch <= 0:
        if result.cancelled:
            return f"{head} · the model is as it was before the run"
        start = result.baseline
        baseline = (
            f" ({percent(start.val_top1)})" if start is not None and _finite(start.val_top1) else ""
        )
        return f"{head} · no epoch beat the starting validation score{baseline}: model unchanged"
    if chosen is None:
        return f"{head} · kept epoch {result.chosen_epoch}"
    if _finite(chosen.val_top1):
        is_best = best is not None and chosen.val_top1 == best
        what = "best validation" if is_best else "validation"
        return f"{head} · kept epoch {chosen.epoch} ({what} {percent(chosen.val_top1)})"
    if _finite(chosen.val_loss):
        return f"{head} · kept epoch {chosen.epoch} (validation loss {chosen.val_loss:.4g})"
    return f"{head} · kept epoch {chosen.epoch}"


def epoch_text(record: EpochRecord) -> str:
    """The status line after an epoch: its train loss, and the validation figures it has."""
    parts = [f"epoch {record.epoch}", f"train loss {record.train_loss:.4g}"]
    if _finite(record.val_loss):
        parts.append(f"validation loss {record.val_loss:.4g}")
    if _finite(record.val_top1):
        parts.append(f"validation {percent(record.val_top1)}")
    return " · ".join(parts)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
