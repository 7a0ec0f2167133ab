"""The window's real-speed tabs.

* :class:`~gui.speed.speed_panel.SpeedPanel` ("Speed"): speed advice, the
  benchmark of the session's model in several forms, slim and harvest.
* :class:`~gui.speed.cost_lab.CostLabPanel` ("Cost lab"): what pruning costs
  and saves, measured on single Linear layers, and the one-click speed test.
"""

from gui.speed.cost_lab import CostLabPanel
from gui.speed.speed_panel import SpeedPanel

__all__ = ["CostLabPanel", "SpeedPanel"]
