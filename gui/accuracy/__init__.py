"""The window's Accuracy panel: choose data, evaluate, fine-tune with the masks held.

:class:`~gui.accuracy.panel.AccuracyPanel` is the tab; the modules beside it are its
parts (data source, evaluation view, fine-tune form, live curves) and the
helpers that read accuracy measurements out of the history
(:mod:`gui.accuracy.measurements`, used by the controller and the history list
too, so this package's ``__init__`` imports nothing eagerly).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gui.accuracy.panel import AccuracyPanel

__all__ = ["AccuracyPanel"]


def __getattr__(name: str) -> Any:
    if name == "AccuracyPanel":  # imported on first use: the panel imports the controller
        from gui.accuracy.panel import AccuracyPanel

        return AccuracyPanel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
