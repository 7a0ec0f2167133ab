"""Demo models and the digits data: shapes, shipped accuracies, the random ResNet-18."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import torch

from core import demos


@pytest.fixture(scope="module")
def digits() -> demos.DigitsData:
    return demos.load_digits()


def test_digits_split_shapes_dtypes_and_counts(digits: demos.DigitsData) -> None:
    assert digits.train_x.shape == (1437, 1, 8, 8)
    assert digits.test_x.shape == (360, 1, 8, 8)
    assert digits.train_y.shape == (1437,)
    assert digits.test_y.shape == (360,)
    assert len(digits.train_x) + len(digits.test_x) == 1797
    for x in (digits.train_x, digits.test_x):
        assert x.dtype == torch.float32
        assert float(x.min()) == 0.0
        assert float(x.max()) == 1.0
        # Pixels were integers 0..16 divided by 16.
        assert torch.equal(x * 16, torch.round(x * 16))
    for y in (digits.train_y, digits.test_y):
        assert y.dtype == torch.int64
        assert set(y.tolist()) == set(range(10))


def test_digits_file_holds_a_disjoint_stratified_split(digits: demos.DigitsData) -> None:
    with files("resources").joinpath("digits.npz").open("rb") as handle, np.load(handle) as npz:
        images, labels = npz["images"], npz["labels"]
        train_idx, test_idx = npz["train_idx"], npz["test_idx"]
    assert images.dtype == np.uint8 and images.shape == (1797, 8, 8)
    assert int(images.max()) == 16
    assert labels.dtype == np.int64 and labels.shape == (1797,)
    assert test_idx.size == 360
    assert np.intersect1d(train_idx, test_idx).size == 0
    assert np.array_equal(np.sort(np.concatenate([train_idx, test_idx])), np.arange(1797))
    counts = np.bincount(labels[test_idx], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    assert torch.equal(digits.test_y, torch.from_numpy(labels[test_idx]))


def test_load_digits_returns_fresh_tensors(digits: demos.DigitsData) -> None:
    again = demos.load_digits()
    again.test_x.zero_()
    assert float(digits.test_x.max()) == 1.0


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_digits_demo_reaches_recorded_accuracy(name: str, digits: demos.DigitsData) -> None:
    demo = demos.load_demo(name)
    assert demo.name == name
    assert demo.has_data
    assert demo.description
    assert not demo.model.training
    assert demo.example_input.shape == (1, 1, 8, 8)
    assert demo.model(demo.example_input).shape == (1, 10)

    recorded = demos.recorded_accuracy(name)
    assert recorded is not None
    accuracy = demos.evaluate_accuracy(demo.model, digits.test_x, digits.test_y)
    assert accuracy == pytest.approx(recorded, abs=1e-9)
    assert accuracy >= (0.95 if name == "cnn" else 0.94)


def test_manifest_lists_every_demo() -> None:
    manifest = demos.demo_manifest()
    names = [entry["name"] for entry in manifest["models"]]
    assert tuple(names) == demos.DEMO_NAMES
    for entry in manifest["models"]:
        assert entry["input_shape"] == list(demos.INPUT_SHAPES[entry["name"]])
        assert entry["description"] == demos.DESCRIPTIONS[entry["name"]]
    assert demos.recorded_accuracy("resnet18") is None


def test_evaluate_accuracy_restores_each_module_mode(digits: demos.DigitsData) -> None:
    model = demos.load_demo("cnn").model
    model.train()
    model.block1.eval()  # a mixed state must come back as it was
    before = {name: m.training for name, m in model.named_modules()}
    bn_mean = model.stem.bn.running_mean.clone()
    demos.evaluate_accuracy(model, digits.test_x, digits.test_y, batch_size=100)
    assert {name: m.training for name, m in model.named_modules()} == before
    assert torch.equal(model.stem.bn.running_mean, bn_mean)  # ran in eval mode


def test_evaluate_accuracy_is_independent_of_batch_size(digits: demos.DigitsData) -> None:
    model = demos.load_demo("mlp").model
    full = demos.evaluate_accuracy(model, digits.test_x, digits.test_y)
    assert demos.evaluate_accuracy(model, digits.test_x, digits.test_y, batch_size=50) == full


def test_evaluate_accuracy_rejects_bad_input(digits: demos.DigitsData) -> None:
    model = demos.load_demo("mlp").model
    with pytest.raises(ValueError):
        demos.evaluate_accuracy(model, digits.test_x, digits.test_y[:-1])
    with pytest.raises(ValueError):
        demos.evaluate_accuracy(model, digits.test_x[:0], digits.test_y[:0])
    with pytest.raises(ValueError):
        demos.evaluate_accuracy(model, digits.test_x, digits.test_y, batch_size=0)


def test_resnet18_is_seeded_and_the_right_size() -> None:
    state = torch.random.get_rng_state()
    demo = demos.load_demo("resnet18")
    assert torch.equal(torch.random.get_rng_state(), state)  # caller's RNG untouched
    assert not demo.has_data
    assert not demo.model.training
    n_params = sum(p.numel() for p in demo.model.parameters())
    assert 10_000_000 <= n_params <= 12_000_000
    assert demo.example_input.shape == (1, 3, 64, 64)
    with torch.no_grad():
        out = demo.model(demo.example_input)
    assert out.shape == (1, 10)
    assert torch.isfinite(out).all()

    again = demos.load_demo("resnet18")
    assert torch.equal(again.model.stem.conv.weight, demo.model.stem.conv.weight)
    assert torch.equal(again.model.classifier.weight, demo.model.classifier.weight)
    assert torch.equal(again.example_input, demo.example_input)


def test_readable_module_names() -> None:
    cnn = dict(demos.load_demo("cnn").model.named_modules())
    for name in ("stem.conv", "stem.bn", "block1.conv1", "block1.conv2", "expand.conv"):
        assert name in cnn
    assert "classifier" in cnn
    mlp = dict(demos.load_demo("mlp").model.named_modules())
    assert isinstance(mlp["flatten"], torch.nn.Flatten)
    assert {"fc1", "fc2", "classifier"} <= set(mlp)


def test_default_demo_is_cnn() -> None:
    assert demos.DEMO_NAMES == ("cnn", "mlp", "resnet18")
    assert demos.load_demo().name == "cnn"


def test_unknown_demo_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"cnn.*mlp.*resnet18"):
        demos.load_demo("vgg")
    with pytest.raises(ValueError):
        demos.build_demo_architecture("vgg")
    with pytest.raises(ValueError):
        demos.recorded_accuracy("vgg")
