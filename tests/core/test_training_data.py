"""Evaluation data: the digits, tensor files, image folders, user loaders, and the
check that data fits a model before anything runs."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from core.common.errors import JobCancelled, PruningError
from core.common.jobs import CancelToken, run_job
from core.demos import DigitsMLP, load_demo, load_digits
from core.training.data import DATA_HELP, DataError, Dataset, check_data, load_data, load_data_job


def _all_x(data: Dataset, split: str) -> torch.Tensor:
    return torch.cat([x for x, _ in data.batches(split, 1000)])


def _all_y(data: Dataset, split: str) -> torch.Tensor:
    labels = [y for _, y in data.batches(split, 1000)]
    assert all(y is not None for y in labels)
    return torch.cat([y for y in labels if y is not None])


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.reshape(len(x), -1)}


# --------------------------------------------------------------------- digits


def test_digits_keep_the_fixed_test_split_and_carve_a_seeded_val_from_train() -> None:
    data = load_data("digits")
    digits = load_digits()
    assert data.splits() == ("train", "val", "test")
    assert (data.size("train"), data.size("val"), data.size("test")) == (1293, 144, 360)
    assert data.num_classes == 10 and data.input_shape == (1, 8, 8)
    assert torch.equal(_all_x(data, "test"), digits.test_x)
    assert torch.equal(_all_y(data, "test"), digits.test_y)
    train, val = _all_x(data, "train"), _all_x(data, "val")
    # val and train partition the fixed train split
    assert torch.equal(
        torch.cat([train, val]).reshape(1437, -1).sort(dim=0).values,
        digits.train_x.reshape(1437, -1).sort(dim=0).values,
    )
    assert data.description == "digits: 1,293 train · 144 val · 360 test · 10 classes · 1×8×8"
    again = load_data("digits")
    assert torch.equal(_all_x(again, "val"), val)
    other = load_data("digits", seed=1)
    assert not torch.equal(_all_x(other, "val"), val)


def test_digits_without_validation() -> None:
    data = load_data("digits", val_fraction=0.0)
    assert data.splits() == ("train", "test")
    assert data.size("train") == 1437


# --------------------------------------------------------------------- tensor files


def test_one_set_is_split_by_seeded_fractions(tmp_path: Path) -> None:
    x = np.arange(100 * 6, dtype=np.float64).reshape(100, 6)
    y = np.arange(100) % 4
    path = tmp_path / "set.npz"
    np.savez(path, x=x, y=y)
    data = load_data(str(path), val_fraction=0.25, test_fraction=0.2, seed=3)
    assert (data.size("train"), data.size("val"), data.size("test")) == (60, 20, 20)
    assert data.name == "set.npz" and data.num_classes == 4 and data.input_shape == (6,)
    parts = [_all_x(data, s) for s in data.splits()]
    assert all(p.dtype == torch.float32 for p in parts)  # float64 made float32
    everything = torch.cat(parts)
    assert sorted(everything[:, 0].tolist()) == sorted(x[:, 0].tolist())  # a partition
    for split in data.splits():  # labels travel with their samples
        xs, ys = _all_x(data, split), _all_y(data, split)
        assert torch.equal((xs[:, 0] / 6).long() % 4, ys)
    same = load_data(str(path), val_fraction=0.25, test_fraction=0.2, seed=3)
    assert torch.equal(_all_x(same, "test"), _all_x(data, "test"))
    other = load_data(str(path), val_fraction=0.25, test_fraction=0.2, seed=4)
    assert not torch.equal(_all_x(other, "test"), _all_x(data, "test"))


def test_ready_splits_from_a_pt_file_with_val_carved_from_train(tmp_path: Path) -> None:
    path = tmp_path / "ready.pt"
    torch.save(
        {
            "train_x": torch.randn(50, 1, 8, 8),
            "train_y": torch.arange(50) % 10,
            "test_x": torch.randn(30, 1, 8, 8),
            "test_y": torch.arange(30) % 10,
        },
        path,
    )
    data = load_data(str(path), val_fraction=0.2)
    assert (data.size("train"), data.size("val"), data.size("test")) == (40, 10, 30)
    assert any("carved" in note for note in data.notes)


def test_given_val_split_is_used_as_is(tmp_path: Path) -> None:
    path = tmp_path / "ready.safetensors"
    tensors = {
        "train_x": torch.randn(20, 3),
        "train_y": torch.arange(20) % 3,
        "val_x": torch.randn(7, 3),
        "val_y": torch.arange(7) % 3,
        "test_x": torch.randn(5, 3),
        "test_y": torch.arange(5) % 3,
    }
    save_file(tensors, str(path))
    data = load_data(str(path))
    assert (data.size("train"), data.size("val"), data.size("test")) == (20, 7, 5)
    assert torch.equal(_all_x(data, "val"), tensors["val_x"])


def test_uint8_inputs_come_out_as_floats_in_unit_range(tmp_path: Path) -> None:
    path = tmp_path / "bytes.npz"
    x = np.array([[0, 255], [51, 102]] * 10, dtype=np.uint8)
    np.savez(path, x=x, y=np.zeros(20, dtype=np.int64))
    data = load_data(str(path), val_fraction=0.0, test_fraction=0.0)
    batch, _ = next(data.batches("train", 20))
    assert batch.dtype == torch.float32
    assert sorted(set(batch.reshape(-1).tolist())) == pytest.approx([0.0, 0.2, 0.4, 1.0])


def test_unlabeled_data_is_allowed(tmp_path: Path) -> None:
    path = tmp_path / "x_only.npz"
    np.savez(path, x=np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32))
    data = load_data(str(path))
    assert data.num_classes is None
    assert not any(data.has_labels(s) for s in data.splits())
    assert next(data.batches("test", 4))[1] is None
    assert "unlabeled" in data.description


def test_samples_are_reshaped_to_the_models_input(tmp_path: Path) -> None:
    path = tmp_path / "flat.npz"
    np.savez(path, x=np.zeros((30, 64), dtype=np.float32), y=np.zeros(30, dtype=np.int64))
    data = load_data(str(path), input_shape=(1, 8, 8))
    assert data.input_shape == (1, 8, 8)
    assert next(data.batches("train", 5))[0].shape == (5, 1, 8, 8)
    with pytest.raises(DataError, match=r"64 values.*3×64×64"):
        load_data(str(path), input_shape=(3, 64, 64))


@pytest.mark.parametrize(
    ("tensors", "message"),
    [
        ({"x": torch.zeros(5, 2), "y": torch.zeros(4, dtype=torch.long)}, "5 inputs but 4 labels"),
        ({"x": torch.zeros(5, 2), "y": torch.zeros(5)}, "integer class indices"),
        ({"x": torch.zeros(5, 2), "y": torch.zeros(5, 3, dtype=torch.long)}, "one-hot"),
        ({"x": torch.zeros(5, 2), "y": -torch.ones(5, dtype=torch.long)}, ">= 0"),
        ({"x": torch.zeros(5, 2), "train_x": torch.zeros(5, 2)}, "either x, y or train_x"),
        ({"weights": torch.zeros(5, 2)}, "expected tensors x and y"),
        ({"y": torch.zeros(5, dtype=torch.long)}, "has y but no x"),
        ({"train_x": torch.zeros(5, 2), "test_x": torch.zeros(5, 3)}, "different shapes"),
    ],
)
def test_malformed_tensor_files_give_clear_errors(
    tmp_path: Path, tensors: dict[str, torch.Tensor], message: str
) -> None:
    path = tmp_path / "bad.pt"
    torch.save(tensors, path)
    with pytest.raises(DataError, match=message):
        load_data(str(path), val_fraction=0.5, test_fraction=0.5)


def test_pickled_objects_are_refused_in_pt_files(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"x": torch.zeros(3), "model": nn.Linear(2, 2)}, path)
    with pytest.raises(DataError, match="more than tensors"):
        load_data(str(path))


def test_bad_specs_and_fractions(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_data(str(tmp_path / "missing.npz"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a data file"):
        load_data(str(tmp_path / "notes.txt"))
    with pytest.raises(DataError, match="fraction"):
        load_data("digits", val_fraction=1.0)
    np.savez(tmp_path / "tiny.npz", x=np.zeros((4, 2)))
    with pytest.raises(DataError, match="4 samples leave none to train on"):
        load_data(str(tmp_path / "tiny.npz"), val_fraction=0.9, test_fraction=0.9)
    assert isinstance(DataError("x"), PruningError)
    assert "digits" in DATA_HELP and "prunescope[images]" in DATA_HELP


def test_shuffled_batches_are_a_seeded_permutation() -> None:
    data = load_data("digits")
    plain = _all_y(data, "test")
    first = [y for _, y in data.batches("test", 50, shuffle=True, generator=_gen(0))]
    again = [y for _, y in data.batches("test", 50, shuffle=True, generator=_gen(0))]
    other = [y for _, y in data.batches("test", 50, shuffle=True, generator=_gen(1))]
    assert [len(y) for y in first if y is not None] == [50] * 7 + [10]
    shuffled = torch.cat([y for y in first if y is not None])
    assert torch.equal(shuffled, torch.cat([y for y in again if y is not None]))
    assert not torch.equal(shuffled, torch.cat([y for y in other if y is not None]))
    assert not torch.equal(shuffled, plain)
    assert torch.equal(shuffled.sort().values, plain.sort().values)
    with pytest.raises(DataError, match="no 'unknown' split"):
        data.size("unknown")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------- image folders


def _write_images(root: Path, classes: dict[str, int], size: tuple[int, int] = (6, 5)) -> None:
    from PIL import Image

    for index, (name, count) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(count):
            value = 40 * index + i
            Image.new("RGB", size, (value, value, value)).save(folder / f"{i}.png")


def test_image_folders_are_resized_with_sorted_class_order(tmp_path: Path) -> None:
    _write_images(tmp_path / "shapes", {"b_square": 5, "a_circle": 5, "c_line": 5})
    data = load_data(
        str(tmp_path / "shapes"), input_shape=(1, 4, 4), val_fraction=0.0, test_fraction=0.0
    )
    assert data.name == "shapes" and data.num_classes == 3 and data.input_shape == (1, 4, 4)
    x, y = next(data.batches("train", 100))
    assert x.shape == (15, 1, 4, 4) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # sorted names: a_circle = 0 (written second, grey 40..44), b_square = 1 (grey 0..4)
    assert y is not None
    first_pixel = (x[:, 0, 0, 0] * 255).round()
    assert set(first_pixel[y == 0].tolist()) == {40.0, 41.0, 42.0, 43.0, 44.0}
    assert set(first_pixel[y == 1].tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}
    rgb = load_data(str(tmp_path / "shapes"), input_shape=(3, 8, 8))
    assert next(rgb.batches("train", 2))[0].shape == (2, 3, 8, 8)
    with pytest.raises(DataError, match="1 or 3 channels"):
        load_data(str(tmp_path / "shapes"), input_shape=(2, 8, 8))


def test_image_folders_with_ready_splits(tmp_path: Path) -> None:
    _write_images(tmp_path / "ds" / "train", {"cat": 6, "dog": 4})
    _write_images(tmp_path / "ds" / "test", {"cat": 2, "dog": 3})
    data = load_data(str(tmp_path / "ds"), input_shape=(3, 5, 6), val_fraction=0.2)
    assert (data.size("train"), data.size("val"), data.size("test")) == (8, 2, 5)
    assert _all_y(data, "test").tolist() == [0, 0, 1, 1, 1]


def test_image_folders_without_pillow_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_images(tmp_path / "imgs", {"a": 1})
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(DataError, match=r"pip install prunescope\[images\].*pillow"):
        load_data(str(tmp_path / "imgs"))


def test_image_folder_errors_and_cancel(tmp_path: Path) -> None:
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        load_data(str(tmp_path / "empty"))
    (tmp_path / "flat").mkdir()
    with pytest.raises(DataError, match="class sub-folders"):
        load_data(str(tmp_path / "flat"))
    _write_images(tmp_path / "broken", {"a": 2})
    (tmp_path / "broken" / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"bad\.png"):
        load_data(str(tmp_path / "broken"))
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        run_job(load_data_job(str(tmp_path / "broken"), token=token))


# --------------------------------------------------------------------- user loaders

LOADERS = """
import torch
from torch.utils.data import DataLoader, TensorDataset

def _set(n, seed):
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, 1, 8, 8, generator=g), torch.arange(n) % 10)

def pair():
    return DataLoader(_set(40, 0), batch_size=16), DataLoader(_set(20, 1), batch_size=8)

def triple():
    return (DataLoader(_set(40, 0), batch_size=16), DataLoader(_set(20, 1), batch_size=8),
            DataLoader(_set(12, 2), batch_size=5))

def as_dict():
    return {"train": DataLoader(_set(40, 0), batch_size=16), "val": None,
            "test": [torch.zeros(4, 1, 8, 8)]}

def iterator():
    return iter([]), iter([])

def wrong():
    return 3

def raises():
    raise RuntimeError("no data here")
"""


@pytest.fixture
def loaders_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_loaders.py").write_text(textwrap.dedent(LOADERS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_loaders"
    sys.modules.pop("my_loaders", None)


def test_a_function_returning_dataloaders(loaders_module: str) -> None:
    data = load_data(f"{loaders_module}:pair")
    assert data.splits() == ("train", "test")
    assert (data.size("train"), data.size("test")) == (40, 20)
    assert data.input_shape == (1, 8, 8) and data.has_labels("train")
    assert [len(x) for x, _ in data.batches("train", 999)] == [16, 16, 8]  # the loader's batches
    assert data.batch_count("test", 999) == 3
    triple = load_data(f"{loaders_module}:triple")
    assert triple.splits() == ("train", "val", "test") and triple.size("val") == 12
    mixed = load_data(f"{loaders_module}:as_dict")
    assert mixed.splits() == ("train", "test")
    assert not mixed.has_labels("test") and mixed.size("test") is None
    check_data(load_demo("cnn").model, data)


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("iterator", "iterator, which runs out"),
        ("wrong", "return \\(train, test\\)"),
        ("raises", "no data here"),
        ("missing", "has no missing"),
    ],
)
def test_bad_data_functions(loaders_module: str, function: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_data(f"{loaders_module}:{function}")


def test_a_missing_data_module() -> None:
    with pytest.raises(DataError, match="no module named nowhere_to_be_found"):
        load_data("nowhere_to_be_found.data:loaders")


# --------------------------------------------------------------------- fit with the model


def test_check_data_passes_and_restores_train_mode() -> None:
    model = load_demo("cnn").model
    model.train()
    model.stem.bn.eval()
    running = model.stem.bn.running_mean.clone()
    check_data(model, load_data("digits"))
    assert model.training and not model.stem.bn.training
    assert torch.equal(model.stem.bn.running_mean, running)  # ran in eval mode


def test_check_data_rejects_a_wrong_input_shape() -> None:
    data = load_data("digits")
    wide = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 10))
    with pytest.raises(DataError, match=r"does not take samples of shape 1×8×8 \(float32\)"):
        check_data(wide, data)


def test_check_data_rejects_a_dtype_mismatch() -> None:
    with pytest.raises(DataError, match="inputs are float32 but the model's weights are float64"):
        check_data(DigitsMLP().double(), load_data("digits"))


def test_check_data_rejects_too_few_outputs_and_labels_out_of_range() -> None:
    with pytest.raises(DataError, match="10 classes but the model outputs 4"):
        check_data(DigitsMLP(num_classes=4), load_data("digits"))
    data = Dataset.from_tensors(
        "t", {"test": (torch.zeros(3, 1, 8, 8), torch.tensor([0, 1, 12]))}, num_classes=None
    )
    assert data.num_classes == 13
    with pytest.raises(DataError, match="13 classes but the model outputs 10"):
        check_data(DigitsMLP(), data)


def test_check_data_rejects_outputs_that_are_not_logits() -> None:
    class Pooled(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(1, 2, 3))

    with pytest.raises(DataError, match=r"shape \(2,\); evaluation needs logits"):
        check_data(Pooled(), load_data("digits"))
