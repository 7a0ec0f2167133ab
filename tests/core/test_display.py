"""core.viz.display: layouts, tilings, and block reductions against naive references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from core.viz import display
from core.viz.display import (
    ALL,
    Tiling,
    block_of,
    cells_to_flat_index,
    display_matrix,
    display_shape,
    display_to_flat,
    display_to_index,
    preview_signed,
    reduce_fraction,
    reduce_signed,
    signed_pixels,
    tiling,
)


# --------------------------------------------------------------------- references
def naive_signed(values: np.ndarray, block_rows: int, block_cols: int) -> np.ndarray:
    """Per block, the element of largest |x|; +a beats -a (max >= -min)."""
    rows, cols = values.shape
    out = np.empty((math.ceil(rows / block_rows), math.ceil(cols / block_cols)), np.float32)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = values[
                i * block_rows : (i + 1) * block_rows, j * block_cols : (j + 1) * block_cols
            ]
            high, low = block.max(), block.min()
            out[i, j] = high if high >= -low else low
    return out


def naive_fraction(mask: np.ndarray, block_rows: int, block_cols: int) -> np.ndarray:
    rows, cols = mask.shape
    out = np.empty((math.ceil(rows / block_rows), math.ceil(cols / block_cols)), np.float32)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = mask[
                i * block_rows : (i + 1) * block_rows, j * block_cols : (j + 1) * block_cols
            ]
            out[i, j] = block.mean()
    return out


@st.composite
def matrices_and_plans(draw: st.DrawFn) -> tuple[torch.Tensor, int, int, tuple[int, int, int, int]]:
    rows = draw(st.integers(1, 40))
    cols = draw(st.integers(1, 40))
    r0 = draw(st.integers(0, rows - 1))
    r1 = draw(st.integers(r0 + 1, rows))
    c0 = draw(st.integers(0, cols - 1))
    c1 = draw(st.integers(c0 + 1, cols))
    out_rows = draw(st.integers(1, 12))
    out_cols = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    if draw(st.booleans()):  # small integers: plenty of +a / -a ties and zeros
        matrix = torch.randint(-2, 3, (rows, cols), generator=generator).float()
    else:
        matrix = torch.randn(rows, cols, generator=generator)
    return matrix, out_rows, out_cols, (r0, r1, c0, c1)


@pytest.fixture
def many_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even small matrices are cut into parallel bands."""
    monkeypatch.setattr(display, "PARALLEL_MIN_ELEMENTS", 0)


# --------------------------------------------------------------------- reduce_signed
@settings(max_examples=150, deadline=None)
@given(matrices_and_plans())
def test_reduce_signed_matches_naive_reference(case):
    matrix, out_rows, out_cols, region = case
    r0, r1, c0, c1 = region
    plan = tiling(tuple(matrix.shape), out_rows, out_cols, region)
    got = reduce_signed(matrix, out_rows, out_cols, region)
    expected = naive_signed(matrix[r0:r1, c0:c1].numpy(), plan.block_rows, plan.block_cols)
    assert got.shape == (plan.rows, plan.cols)
    assert got.shape[0] <= out_rows and got.shape[1] <= out_cols
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=60, deadline=None)
@given(matrices_and_plans())
def test_reduce_signed_in_parallel_bands(case):
    matrix, out_rows, out_cols, region = case
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(display, "PARALLEL_MIN_ELEMENTS", 0)
        got = reduce_signed(matrix, out_rows, out_cols, region)
    r0, r1, c0, c1 = region
    plan = tiling(tuple(matrix.shape), out_rows, out_cols, region)
    expected = naive_signed(matrix[r0:r1, c0:c1].numpy(), plan.block_rows, plan.block_cols)
    np.testing.assert_array_equal(got, expected)


def test_ties_prefer_the_positive_value():
    matrix = torch.tensor([[-3.0, 3.0, 1.0, -5.0], [0.0, -1.0, 2.0, 4.0]])
    np.testing.assert_array_equal(reduce_signed(matrix, 1, 2), [[3.0, -5.0]])


def test_region_equals_reducing_the_slice():
    matrix = torch.randn(300, 200)
    region = (17, 251, 33, 190)
    got = reduce_signed(matrix, 20, 30, region)
    np.testing.assert_array_equal(got, reduce_signed(matrix[17:251, 33:190].contiguous(), 20, 30))


def test_region_that_fits_is_returned_as_a_float32_copy():
    matrix = torch.randn(50, 60)
    got = reduce_signed(matrix, 100, 100, (5, 25, 10, 40))
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, matrix[5:25, 10:40].numpy())
    got[0, 0] = 123.0
    assert matrix[5, 10] != 123.0  # never a view of the weights


def test_kernels_are_ready_after_warm_up():
    display.warm_up()
    assert display.kernels_ready()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_reduce_like_their_float32_values(dtype):
    matrix = torch.randn(70, 90).to(dtype)
    got = reduce_signed(matrix, 9, 11)
    np.testing.assert_array_equal(got, reduce_signed(matrix.float(), 9, 11))
    assert got.dtype == np.float32


def test_mask_zeroes_pruned_weights():
    matrix = torch.randn(64, 80)
    mask = torch.rand(64, 80) > 0.6
    got = reduce_signed(matrix, 8, 8, mask=mask)
    np.testing.assert_array_equal(got, reduce_signed(matrix * mask, 8, 8))


@settings(max_examples=60, deadline=None)
@given(matrices_and_plans(), st.floats(0.0, 1.0), st.booleans())
def test_masked_reduction_matches_naive_reference(case, density, copied):
    matrix, out_rows, out_cols, region = case
    mask = torch.rand(matrix.shape, generator=torch.Generator().manual_seed(3)) < density
    if copied:  # a transposed mask is not contiguous: both inputs get copied
        mask = mask.t().contiguous().t()
    r0, r1, c0, c1 = region
    plan = tiling(tuple(matrix.shape), out_rows, out_cols, region)
    got = signed_pixels(matrix, plan, mask=mask)
    masked = (matrix * mask)[r0:r1, c0:c1].numpy()
    np.testing.assert_array_equal(got, naive_signed(masked, plan.block_rows, plan.block_cols))


def test_big_matrix_uses_bands_and_matches_reference(many_bands):
    matrix = torch.randn(515, 333)
    plan = tiling((515, 333), 40, 30)
    np.testing.assert_array_equal(
        signed_pixels(matrix, plan), naive_signed(matrix.numpy(), plan.block_rows, plan.block_cols)
    )


def test_non_contiguous_input():
    base = torch.randn(90, 120)
    matrix = base.t()  # (120, 90), column-major
    np.testing.assert_array_equal(
        reduce_signed(matrix, 13, 7), naive_signed(matrix.numpy(), *_blocks(matrix, 13, 7))
    )


def _blocks(matrix: torch.Tensor, out_rows: int, out_cols: int) -> tuple[int, int]:
    plan = tiling(tuple(matrix.shape), out_rows, out_cols)
    return plan.block_rows, plan.block_cols


def test_bad_regions_are_refused():
    matrix = torch.zeros(10, 10)
    for region in [(0, 0, 0, 5), (0, 11, 0, 5), (-1, 5, 0, 5), (3, 2, 0, 5)]:
        with pytest.raises(ValueError):
            reduce_signed(matrix, 4, 4, region)
    with pytest.raises(ValueError):
        reduce_signed(torch.zeros(3, 3, 3), 2, 2)
    with pytest.raises(ValueError):
        reduce_signed(matrix, 0, 4)


# --------------------------------------------------------------------- reduce_fraction
@settings(max_examples=80, deadline=None)
@given(matrices_and_plans(), st.floats(0.0, 1.0))
def test_reduce_fraction_is_the_exact_kept_fraction(case, density):
    matrix, out_rows, out_cols, region = case
    mask = torch.rand(matrix.shape, generator=torch.Generator().manual_seed(7)) < density
    r0, r1, c0, c1 = region
    plan = tiling(tuple(mask.shape), out_rows, out_cols, region)
    got = reduce_fraction(mask, out_rows, out_cols, region)
    expected = naive_fraction(mask[r0:r1, c0:c1].numpy(), plan.block_rows, plan.block_cols)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_reduce_fraction_at_full_resolution_is_zero_one():
    mask = torch.tensor([[True, False], [False, True]])
    got = reduce_fraction(mask, 10, 10)
    np.testing.assert_array_equal(got, [[1.0, 0.0], [0.0, 1.0]])
    assert got.dtype == np.float32


def test_reduce_fraction_of_a_float_mask_counts_non_zeros():
    mask = torch.tensor([[0.0, 2.0, 0.0, -1.0], [1.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(reduce_fraction(mask, 1, 2), [[0.75, 0.25]])


def test_reduce_fraction_bands(many_bands):
    mask = torch.rand(400, 301) > 0.3
    plan = tiling((400, 301), 33, 21)
    got = reduce_fraction(mask, 33, 21)
    expected = naive_fraction(mask.numpy(), plan.block_rows, plan.block_cols)
    np.testing.assert_allclose(got, expected, atol=1e-6)


# --------------------------------------------------------------------- preview
@pytest.mark.parametrize(("shape", "out"), [((1000, 700), (64, 50)), ((30, 40), (64, 64))])
def test_preview_is_a_strided_subsample_within_bounds(shape, out):
    matrix = torch.randn(*shape)
    got = preview_signed(matrix, *out)
    plan = tiling(shape, *out)
    assert got.shape == (plan.rows, plan.cols)
    assert got.shape[0] <= out[0] and got.shape[1] <= out[1]
    np.testing.assert_array_equal(got, matrix[:: plan.block_rows, :: plan.block_cols].numpy())
    assert got.dtype == np.float32 and got.flags.c_contiguous


def test_preview_of_a_mask_is_zero_one():
    mask = torch.rand(100, 100) > 0.5
    got = preview_signed(mask, 10, 10)
    assert set(np.unique(got)) <= {0.0, 1.0}


# --------------------------------------------------------------------- tiling
def test_tiling_maps_pixels_to_weight_blocks_and_back():
    plan = tiling((100, 50), 7, 4, (10, 95, 3, 50))
    assert (plan.block_rows, plan.block_cols) == (13, 12)
    assert (plan.rows, plan.cols) == (7, 4)
    assert plan.block_of(0, 0) == (10, 23, 3, 15)
    assert plan.block_of(6, 3) == (88, 95, 39, 50)  # ragged last blocks are clipped
    assert plan.pixel_of(88, 39) == (6, 3)
    assert plan.rect() == (3.0, 10.0, 48.0, 91.0)
    assert block_of(6, 3, (100, 50), 7, 4, (10, 95, 3, 50)) == (88, 95, 39, 50)


def test_aligned_tiling_starts_on_block_multiples():
    plan = tiling((1000, 1000), 10, 10, (123, 456, 789, 999), align=True)
    assert plan.row_start % plan.block_rows == 0 and plan.row_start <= 123
    assert plan.col_start % plan.block_cols == 0 and plan.col_start <= 789
    assert (plan.row_stop, plan.col_stop) == (456, 999)


def test_identity_tiling():
    plan = tiling((5, 6), 10, 10)
    assert plan.is_identity and plan == Tiling(0, 5, 0, 6, 1, 1)


# --------------------------------------------------------------------- layouts
CONV_SHAPES = [(6, 4), (5,), (4, 3, 5), (4, 3, 2, 5), (3, 2, 4, 3, 2)]


@pytest.mark.parametrize("shape", CONV_SHAPES)
@pytest.mark.parametrize("layout", ["matrix", "kernels"])
def test_display_to_flat_inverts_display_matrix(shape, layout):
    numel = math.prod(shape)
    index = torch.arange(numel).reshape(shape)
    shown = display_matrix(index, layout)
    assert tuple(shown.shape) == display_shape(shape, layout)
    rows, cols = torch.meshgrid(
        torch.arange(shown.shape[0]), torch.arange(shown.shape[1]), indexing="ij"
    )
    flat = display_to_flat(rows.reshape(-1), cols.reshape(-1), shape, layout)
    assert torch.equal(flat, shown.reshape(-1))
    assert sorted(flat.tolist()) == list(range(numel))


def test_linear_and_vector_layouts():
    weight = torch.randn(6, 4)
    assert torch.equal(display_matrix(weight), weight)
    assert torch.equal(display_matrix(weight, "kernels"), weight)
    assert display_matrix(torch.arange(5)).shape == (1, 5)
    assert display_matrix(torch.tensor(3.0)).shape == (1, 1)


def test_conv1d_layouts_flatten_input_times_kernel():
    weight = torch.randn(4, 3, 5)
    assert torch.equal(display_matrix(weight), weight.reshape(4, 15))
    assert torch.equal(display_matrix(weight, "kernels"), weight.reshape(4, 15))


def test_conv2d_kernel_grid_puts_kernel_o_i_at_block_o_i():
    weight = torch.randn(4, 3, 2, 5)
    grid = display_matrix(weight, "kernels")
    assert grid.shape == (4 * 2, 3 * 5)
    for o in range(4):
        for i in range(3):
            assert torch.equal(grid[o * 2 : (o + 1) * 2, i * 5 : (i + 1) * 5], weight[o, i])
    assert torch.equal(display_matrix(weight), weight.reshape(4, 30))


def test_conv3d_kernel_grid_puts_depth_slices_side_by_side():
    weight = torch.randn(3, 2, 4, 3, 2)  # (out, in, kd, kh, kw)
    grid = display_matrix(weight, "kernels")
    assert grid.shape == (3 * 3, 2 * 4 * 2)
    block = grid[1 * 3 : 2 * 3, 1 * 8 : 2 * 8]  # kernel (1, 1)
    expected = torch.cat([weight[1, 1, d] for d in range(4)], dim=1)
    assert torch.equal(block, expected)


def test_masks_use_the_same_layouts():
    mask = torch.rand(4, 3, 2, 5) > 0.5
    grid = display_matrix(mask, "kernels")
    assert grid.dtype == torch.bool
    assert torch.equal(grid[2:4, 5:10], mask[1, 1])


def test_unknown_layout():
    with pytest.raises(ValueError):
        display_matrix(torch.zeros(2, 2), "spiral")


def test_display_to_index_names_the_weight():
    shape = (4, 3, 2, 5)
    weight = torch.randn(shape)
    grid = display_matrix(weight, "kernels")
    index = display_to_index(3, 7, shape, "kernels")
    assert index == (1, 1, 1, 2)
    assert weight[index] == grid[3, 7]


def test_cells_to_flat_index_expands_rows_and_columns():
    shape = (4, 3, 2, 2)  # display (8, 6) in the kernel grid
    cells = [(0, 0), (1, ALL), (ALL, 5), (0, 0)]
    flat = cells_to_flat_index(cells, shape, "kernels")
    mask = torch.ones(shape, dtype=torch.bool)
    mask.view(-1)[flat] = False
    shown = display_matrix(mask, "kernels")
    expected = torch.ones(8, 6, dtype=torch.bool)
    expected[0, 0] = expected[1, :] = expected[:, 5] = False
    assert torch.equal(shown, expected)
    assert flat.tolist() == sorted(set(flat.tolist()))
    assert cells_to_flat_index([], shape).numel() == 0
