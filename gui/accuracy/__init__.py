"""The window's Accuracy panel: choose data, evaluate, fine-tune with the masks held.

:class:`~gui.accuracy.panel.AccuracyPanel` is the tab; the modules beside it are its
parts (data source, evaluation view, fine-tune form, live curves). The helpers that
read accuracy measurements out of the history live in :mod:`gui.session.measurements`
(the controller and the history list use them too).
"""

from gui.accuracy.panel import AccuracyPanel

__all__ = ["AccuracyPanel"]
