"""Demo models and the 8x8 handwritten-digits data they were trained on.

Three demos, named in :data:`DEMO_NAMES`:

* ``"cnn"``: a small conv-bn-relu network with one residual block, trained on
  the digits (weights in ``resources/digits_cnn.safetensors``).
* ``"mlp"``: a 64-128-64-10 multilayer perceptron, trained on the digits
  (weights in ``resources/digits_mlp.safetensors``).
* ``"resnet18"``: a ResNet-18-like CNN (about 11.2M parameters, 3x64x64 input,
  10 classes), randomly initialised with a fixed seed; no weights are shipped.

Both digits models take ``(N, 1, 8, 8)`` float inputs scaled to ``[0, 1]``
(pixel values / 16), as returned by :func:`load_digits`. The architectures are
built here in code; only the weights come from ``resources/``. The accuracies
recorded by ``scripts/train_demo_models.py`` are in ``resources/demo_models.json``
(see :func:`recorded_accuracy`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import as_file, files
from importlib.resources.abc import Traversable
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

__all__ = [
    "DEMO_NAMES",
    "DemoModel",
    "DigitsCNN",
    "DigitsData",
    "DigitsMLP",
    "ResNet18",
    "build_demo_architecture",
    "demo_manifest",
    "evaluate_accuracy",
    "load_demo",
    "load_digits",
    "recorded_accuracy",
]

DEMO_NAMES: tuple[str, ...] = ("cnn", "mlp", "resnet18")
"""Valid names for :func:`load_demo`; the first is the default."""

RESOURCE_PACKAGE = "resources"
DIGITS_FILE = "digits.npz"
MANIFEST_FILE = "demo_models.json"
WEIGHT_FILES: dict[str, str] = {
    "cnn": "digits_cnn.safetensors",
    "mlp": "digits_mlp.safetensors",
}
"""Weight file (inside ``resources/``) of each trained demo."""

DESCRIPTIONS: dict[str, str] = {
    "cnn": (
        "Small CNN for 8x8 handwritten digits: conv-bn-relu stem (16 ch), one residual "
        "block, conv to 32 ch, global average pool, linear classifier."
    ),
    "mlp": "MLP for 8x8 handwritten digits: flatten, 64-128-64-10 with ReLU.",
    "resnet18": (
        "ResNet-18-like CNN (BasicBlocks [2, 2, 2, 2], widths 64-128-256-512, "
        "3x64x64 input, 10 classes), randomly initialised with seed 0; no data."
    ),
}
"""One-line description of each demo, shown to the user and written to the manifest."""

INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "cnn": (1, 1, 8, 8),
    "mlp": (1, 1, 8, 8),
    "resnet18": (1, 3, 64, 64),
}
"""Shape of each demo's ``example_input`` (batch of one)."""

RESNET_SEED = 0
"""Seed for the ResNet-18 weights and its example input."""

PIXEL_MAX = 16.0
"""Digits pixels are integers 0..16; inputs are divided by this."""


# --------------------------------------------------------------------- building blocks


class ConvBNReLU(nn.Module):
    """``conv -> bn -> relu`` (bias-free conv, as BN supplies the shift)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, batch norm and ReLU."""
        out: torch.Tensor = self.relu(self.bn(self.conv(x)))
        return out


class ConvBN(nn.Module):
    """``conv -> bn`` without activation (used for ResNet shortcut projections)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 1, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv and batch norm."""
        out: torch.Tensor = self.bn(self.conv(x))
        return out


class BasicBlock(nn.Module):
    """Residual block: ``relu(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``.

    ``downsample`` is a 1x1 :class:`ConvBN` projection when the stride or the
    channel count changes, else ``None`` (identity shortcut). Each ReLU is its
    own module so hooks see every activation.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: ConvBN | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = ConvBN(in_ch, out_ch, kernel_size=1, stride=stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual forward pass."""
        identity = x if self.downsample is None else self.downsample(x)
        out: torch.Tensor = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.relu2(out + identity)
        return out


# --------------------------------------------------------------------- architectures


class DigitsMLP(nn.Module):
    """MLP for 8x8 digits: ``flatten -> fc1(64→128) -> relu1 -> fc2(128→64) -> relu2
    -> classifier(64→10)``. Takes ``(N, 1, 8, 8)`` (or ``(N, 64)``) inputs."""

    def __init__(self, hidden: tuple[int, int] = (128, 64), num_classes: int = 10) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, hidden[0])
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.relu2 = nn.ReLU()
        self.classifier = nn.Linear(hidden[1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, num_classes)``."""
        x = self.relu1(self.fc1(self.flatten(x)))
        x = self.relu2(self.fc2(x))
        out: torch.Tensor = self.classifier(x)
        return out


class DigitsCNN(nn.Module):
    """Small CNN for 8x8 digits.

    ``stem`` (conv3x3 1→16, bn, relu) -> ``block1`` (residual :class:`BasicBlock`,
    16→16) -> ``expand`` (conv3x3 16→32, bn, relu) -> ``pool`` (global average)
    -> ``flatten`` -> ``classifier`` (Linear 32→10). Input ``(N, 1, 8, 8)``.
    """

    def __init__(self, width: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = ConvBNReLU(1, width)
        self.block1 = BasicBlock(width, width)
        self.expand = ConvBNReLU(width, 2 * width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, num_classes)``."""
        x = self.expand(self.block1(self.stem(x)))
        out: torch.Tensor = self.classifier(self.flatten(self.pool(x)))
        return out


class ResNet18(nn.Module):
    """ResNet-18-like CNN: BasicBlocks ``[2, 2, 2, 2]``, widths 64-128-256-512.

    ``stem`` (conv7x7 stride 2, bn, relu) -> ``maxpool`` (3x3 stride 2) ->
    ``layer1``..``layer4`` -> ``pool`` (global average) -> ``flatten`` ->
    ``classifier`` (Linear 512→num_classes). For a 3x64x64 input the feature maps
    are 16x16, 8x8, 4x4 and 2x2. About 11.18M parameters with 10 classes.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        depths: tuple[int, int, int, int] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        self.stem = ConvBNReLU(in_channels, widths[0], kernel_size=7, stride=2)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        in_ch = widths[0]
        stages: list[nn.Sequential] = []
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            blocks = []
            for j in range(depth):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(in_ch, width, stride))
                in_ch = width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(in_ch, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Kaiming-normal (fan-out) conv weights and unit/zero BN affine, as torchvision."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits ``(N, num_classes)``."""
        x = self.maxpool(self.stem(x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        out: torch.Tensor = self.classifier(self.flatten(self.pool(x)))
        return out


# --------------------------------------------------------------------- data


@dataclass(frozen=True, eq=False)
class DigitsData:
    """The fixed train/test split of the 8x8 digits.

    Images are float32 ``(N, 1, 8, 8)`` in ``[0, 1]`` (pixels / 16); labels are
    int64 ``(N,)`` in 0..9. The split has 1,437 train and 360 test images.
    Equality is identity (``eq=False``): comparing tensors field by field is ambiguous.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def _resource(name: str) -> Traversable:
    """Return a file inside the ``resources`` package."""
    return files(RESOURCE_PACKAGE).joinpath(name)


def load_digits() -> DigitsData:
    """Load ``resources/digits.npz`` and return its fixed train/test split.

    Each call returns fresh tensors, so callers may modify them.
    """
    with _resource(DIGITS_FILE).open("rb") as handle, np.load(handle) as archive:
        images = archive["images"]
        labels = archive["labels"]
        train_idx = archive["train_idx"]
        test_idx = archive["test_idx"]
    x = torch.from_numpy(images.astype(np.float32) / np.float32(PIXEL_MAX)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    train = torch.from_numpy(train_idx.astype(np.int64))
    test = torch.from_numpy(test_idx.astype(np.int64))
    return DigitsData(train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test])


# --------------------------------------------------------------------- demos


@dataclass(frozen=True, eq=False)
class DemoModel:
    """A ready-to-use demo: the model (in eval mode) and an input it accepts.

    ``has_data`` is True when :func:`load_digits` holds data the model was
    trained on (so accuracy can be measured), False for random-weight demos.
    Equality is identity (``eq=False``), as for :class:`DigitsData`.
    """

    name: str
    model: nn.Module
    example_input: torch.Tensor
    description: str
    has_data: bool


def _check_name(name: str) -> None:
    if name not in DEMO_NAMES:
        valid = ", ".join(repr(n) for n in DEMO_NAMES)
        raise ValueError(f"unknown demo model {name!r}; valid names: {valid}")


def build_demo_architecture(name: str) -> nn.Module:
    """Build a demo's architecture with freshly initialised weights (train mode).

    ``"resnet18"`` is built under a fork of the global RNG seeded with
    :data:`RESNET_SEED`, so its weights are the same on every call and the
    caller's RNG state is untouched. The digits models use the current global
    RNG (the training script seeds it).

    Raises:
        ValueError: ``name`` is not in :data:`DEMO_NAMES`.
    """
    _check_name(name)
    if name == "cnn":
        return DigitsCNN()
    if name == "mlp":
        return DigitsMLP()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RESNET_SEED)
        return ResNet18()


def load_demo(name: str = "cnn") -> DemoModel:
    """Build a demo model, load its weights (if it has any) and put it in eval mode.

    The digits demos (``"cnn"``, ``"mlp"``) load their trained weights from
    ``resources/`` with :func:`safetensors.torch.load_file`; their
    ``example_input`` is the first test image, shape ``(1, 1, 8, 8)``.
    ``"resnet18"`` has seeded random weights and a seeded random
    ``(1, 3, 64, 64)`` example input.

    Raises:
        ValueError: ``name`` is not in :data:`DEMO_NAMES`.
    """
    _check_name(name)
    model = build_demo_architecture(name)
    if name in WEIGHT_FILES:
        with as_file(_resource(WEIGHT_FILES[name])) as path:
            state = load_file(path)
        model.load_state_dict(state, strict=True)
        example_input = load_digits().test_x[:1].clone()
        has_data = True
    else:
        generator = torch.Generator().manual_seed(RESNET_SEED)
        example_input = torch.randn(INPUT_SHAPES[name], generator=generator)
        has_data = False
    model.eval()
    return DemoModel(
        name=name,
        model=model,
        example_input=example_input,
        description=DESCRIPTIONS[name],
        has_data=has_data,
    )


def evaluate_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` on ``(x, y)``, in ``[0, 1]``.

    Runs in eval mode under :func:`torch.no_grad` in batches of ``batch_size``;
    afterwards each submodule's train/eval flag is restored to what it was.

    Raises:
        ValueError: ``x`` and ``y`` differ in length, are empty, or
            ``batch_size`` is not positive.
    """
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} items but y has {len(y)}")
    if len(x) == 0:
        raise ValueError("cannot measure accuracy on an empty set")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits = model(x[start : start + batch_size])
                predicted = logits.argmax(dim=1)
                correct += int((predicted == y[start : start + batch_size]).sum().item())
    finally:
        for module, training in modes:
            module.training = training
    return correct / len(x)


def demo_manifest() -> dict[str, Any]:
    """Return ``resources/demo_models.json`` (written by the training script)."""
    with _resource(MANIFEST_FILE).open("r", encoding="utf-8") as handle:
        manifest: dict[str, Any] = json.load(handle)
    return manifest


def recorded_accuracy(name: str) -> float | None:
    """Test accuracy recorded for demo ``name`` at training time; None if untrained.

    Raises:
        ValueError: ``name`` is not in :data:`DEMO_NAMES`.
    """
    _check_name(name)
    for entry in demo_manifest()["models"]:
        if entry["name"] == name:
            value = entry.get("test_accuracy")
            return None if value is None else float(value)
    return None
