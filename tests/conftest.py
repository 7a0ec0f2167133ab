"""Suite-wide setup: Qt renders offscreen unless the caller chose a platform; kernels loaded."""

import os

import pytest

from core.pruning import scatter
from core.viz import display

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session", autouse=True)
def _heatmap_kernels_loaded() -> None:
    """Load the compiled kernels once, as the app does at startup."""
    display.warm_up()
    scatter.warm_up()
