"""Accuracy in the loop: evaluation data, evaluation, masked fine-tuning with distillation.

* :mod:`core.training.data`: :func:`load_data` turns a spec (``digits``, a
  tensor file, an image folder, ``package.module:function``) into a
  :class:`Dataset` with train / val / test splits; :func:`check_data` checks it
  fits a model before anything runs.
* :mod:`core.training.evaluate`: loss, top-1/top-5, per-class accuracy, the
  confusion matrix and fidelity to the unpruned model, as a cancellable job.
* :mod:`core.training.finetune`: fine-tuning a session's model with its masks
  held exactly (SGD, Adam, AdamW; constant, cosine, one-cycle), optionally
  distilled from the unpruned model, choices on validation only, applied as
  one undoable weight update.

Example:
    >>> data = load_data("digits")
    >>> run_job(evaluate_session_job(session, data)).summary()
    >>> run_job(finetune_job(session, data, FinetuneConfig(epochs=30, distill=True)))
"""

from core.training.data import DATA_HELP, DataError, Dataset, check_data, load_data, load_data_job
from core.training.evaluate import Evaluation, evaluate, evaluate_job, evaluate_session_job
from core.training.finetune import (
    AUGMENTATIONS,
    KEEP_CHOICES,
    ON_CANCEL_CHOICES,
    OPTIMIZERS,
    SCHEDULES,
    EpochRecord,
    FinetuneConfig,
    FinetuneConfigError,
    FinetuneResult,
    finetune_job,
)

__all__ = [
    "AUGMENTATIONS",
    "DATA_HELP",
    "KEEP_CHOICES",
    "ON_CANCEL_CHOICES",
    "OPTIMIZERS",
    "SCHEDULES",
    "DataError",
    "Dataset",
    "EpochRecord",
    "Evaluation",
    "FinetuneConfig",
    "FinetuneConfigError",
    "FinetuneResult",
    "check_data",
    "evaluate",
    "evaluate_job",
    "evaluate_session_job",
    "finetune_job",
    "load_data",
    "load_data_job",
]
