"""The undo kernel writes stashed values back exactly where np.place would."""

from __future__ import annotations

import numpy as np
import pytest

import core.pruning.scatter as scatter


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int16])
@pytest.mark.parametrize("size", [1, 7, 8, 13, 1000, 70_001])
@pytest.mark.parametrize("density", [0.0, 0.03, 0.5, 1.0])
def test_scatter_equals_np_place(monkeypatch, dtype, size, density) -> None:
    monkeypatch.setattr(scatter, "PARALLEL_BYTES", 64)  # several bands on larger inputs
    rng = np.random.default_rng(size)
    held = rng.random(size) < density
    values = rng.standard_normal(int(held.sum())).astype(dtype)
    start = rng.standard_normal(size).astype(dtype)
    expected = start.copy()
    np.place(expected, held, values)
    target = start.copy()
    scatter.scatter_packed(target, np.packbits(held), values)
    assert np.array_equal(target.view(np.uint8), expected.view(np.uint8))
