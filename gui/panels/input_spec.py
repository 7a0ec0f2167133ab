"""The example input FLOPs are counted on: asked of the user, checked, remembered per model.

A model opened from a file has no example input, so its FLOPs read "n/a".
An :class:`InputSpec` says what one forward pass takes: the shape including
the batch, the dtype, and for token ids (int64) the integer range they are
drawn from. :func:`prefill_spec` guesses one from the first layer (a Linear's
``in_features``, a Conv's ``in_channels``, an Embedding's vocabulary);
:class:`InputSpecDialog` lets the user edit it and explains a bad one;
:func:`check_input_job` runs one forward pass with it in a worker (so a shape
the model refuses is reported, not found later); :func:`remember_spec` and
:func:`recall_spec` keep it in :class:`~PySide6.QtCore.QSettings` under the
model's identity (:func:`gui.session.target_kinds.model_key`), so it is used again
whenever that model is opened.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import torch
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from torch import nn
from torch.nn.modules.conv import _ConvNd

from core.common.errors import PruningError
from core.common.jobs import CancelToken, Job, Progress
from core.pruning.session import PruningSession
from gui.widgets.colormaps import ALARM_RGB, MUTED, hex_color

#: The dtypes offered, by the name shown.
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
}
TOKEN_DTYPE = "int64"
#: The QSettings entry holding every model's spec, as JSON ``{model key: spec dict}``.
SETTINGS_KEY = "input_specs"
#: Spatial size / sequence length guessed where the first layer does not tell.
GUESSED_SIZE = 32
GUESSED_LENGTH = 16
MAX_ELEMENTS = 2**31
"""Largest input accepted (elements): a typo like 1,3,2240,2240 should not exhaust memory."""
INT_LIMIT = 2**31 - 1


class InputSpecError(PruningError):
    """An input spec that cannot be used, with what to write instead."""


@dataclass(frozen=True)
class InputSpec:
    """One forward pass's input: ``shape`` (batch first), ``dtype`` (a key of :data:`DTYPES`).

    For ``int64`` (token ids) the values are drawn from ``low..high`` inclusive
    (seeded, so the same spec gives the same tensor); float inputs are zeros:
    FLOPs depend on shapes, not values.
    """

    shape: tuple[int, ...]
    dtype: str = "float32"
    low: int = 0
    high: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise InputSpecError(f"unknown dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}")
        if not self.shape:
            raise InputSpecError("the shape is empty: write at least the batch, e.g. 1,784")
        if any(n < 1 for n in self.shape):
            raise InputSpecError(
                f"every dimension must be at least 1 (got {shape_text(self.shape)})"
            )
        if math.prod(self.shape) > MAX_ELEMENTS:
            raise InputSpecError(
                f"{shape_text(self.shape)} is {math.prod(self.shape):,} values, more than "
                f"{MAX_ELEMENTS:,}: use a batch of 1 and the model's real sizes"
            )
        if self.is_tokens and self.low > self.high:
            raise InputSpecError(
                f"the token id range {self.low}..{self.high} is empty: low must be <= high"
            )

    @property
    def is_tokens(self) -> bool:
        """Whether the input is integer token ids."""
        return self.dtype == TOKEN_DTYPE

    def describe(self) -> str:
        """``1×3×32×32 float32`` or ``1×16 int64 in 0..999``."""
        text = f"{shape_text(self.shape, '×')} {self.dtype}"
        return f"{text} in {self.low}..{self.high}" if self.is_tokens else text

    def make_tensor(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The input tensor: seeded token ids in ``low..high``, or zeros."""
        if self.is_tokens:
            generator = torch.Generator().manual_seed(0)
            ids = torch.randint(self.low, self.high + 1, self.shape, generator=generator)
            return ids.to(device)
        return torch.zeros(self.shape, dtype=DTYPES[self.dtype], device=device)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (see :meth:`from_dict`)."""
        return {"shape": list(self.shape), "dtype": self.dtype, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        """The spec :meth:`to_dict` wrote.

        Raises:
            InputSpecError: the data is not a valid spec.
        """
        try:
            shape = tuple(int(n) for n in data["shape"])
            return cls(shape, str(data["dtype"]), int(data.get("low", 0)), int(data.get("high", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputSpecError(f"not an input spec: {data!r}") from exc

    @classmethod
    def of_tensor(cls, tensor: torch.Tensor) -> InputSpec | None:
        """The spec of an existing example input (None for a dtype not offered)."""
        names = {dtype: name for name, dtype in DTYPES.items()}
        if tensor.dtype not in names or tensor.dim() == 0:
            return None
        name = names[tensor.dtype]
        low = high = 0
        if name == TOKEN_DTYPE and tensor.numel():
            low, high = int(tensor.min()), int(tensor.max())
        return cls(tuple(tensor.shape), name, low, high)


def shape_text(shape: tuple[int, ...], sep: str = ",") -> str:
    """``1,3,32,32`` (or with another separator)."""
    return sep.join(str(n) for n in shape)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1, 3, 32, 32"`` (commas, spaces, x or × between) as a tuple of ints.

    Raises:
        InputSpecError: not a list of positive integers.
    """
    cleaned = text.strip().strip("()[]")
    for sep in ("×", "x", "X", " "):
        cleaned = cleaned.replace(sep, ",")
    parts = [part for part in cleaned.split(",") if part]
    if not parts:
        raise InputSpecError("write the input's shape with the batch first, e.g. 1,3,224,224")
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        raise InputSpecError(
            f"{text.strip()!r} is not a shape: write whole numbers separated by commas, "
            "batch first, e.g. 1,3,224,224"
        ) from None
    if any(n < 1 for n in shape):
        raise InputSpecError(f"every dimension must be at least 1 (got {text.strip()})")
    return shape


def model_dtype(model: nn.Module) -> str:
    """The name in :data:`DTYPES` of the model's first float parameter (float32 if none)."""
    names = {dtype: name for name, dtype in DTYPES.items()}
    for param in model.parameters():
        if param.is_floating_point():
            return names.get(param.dtype, "float32")
    return "float32"


def prefill_spec(model: nn.Module) -> tuple[InputSpec, str]:
    """A spec guessed from the model's first layer, and a sentence saying what was guessed.

    A Linear gives ``(1, in_features)``; a ConvNd ``(1, in_channels, 32, ...)``
    (the spatial size is a guess); an Embedding token ids ``(1, 16)`` in
    ``0..num_embeddings-1``; a recurrent layer ``(1, 16, input_size)``.
    Only module attributes are read, no tensor: cheap on the GUI thread.
    """
    dtype = model_dtype(model)
    for name, module in model.named_modules():
        where = f"the first layer ({name or 'the model'}, {type(module).__name__})"
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            spec = InputSpec((1, GUESSED_LENGTH), TOKEN_DTYPE, 0, module.num_embeddings - 1)
            return spec, (
                f"{where} takes token ids 0..{module.num_embeddings - 1}; "
                f"the sequence length {GUESSED_LENGTH} is a guess"
            )
        if isinstance(module, nn.Linear):
            return InputSpec((1, module.in_features), dtype), (
                f"{where} takes {module.in_features} features"
            )
        if isinstance(module, _ConvNd):
            dims = len(module.kernel_size)
            shape = (1, module.in_channels, *([GUESSED_SIZE] * dims))
            return InputSpec(shape, dtype), (
                f"{where} takes {module.in_channels} channels; "
                f"the size {GUESSED_SIZE} of each of its {dims} spatial dimensions is a guess"
            )
        if isinstance(module, nn.RNNBase):
            first = module.batch_first
            shape = (1, GUESSED_LENGTH) if first else (GUESSED_LENGTH, 1)
            return InputSpec((*shape, module.input_size), dtype), (
                f"{where} takes {module.input_size} features per step "
                f"({'batch' if first else 'sequence'} first); the length "
                f"{GUESSED_LENGTH} is a guess"
            )
    return InputSpec((1, 1), dtype), "no Linear, Conv or Embedding tells the size: a guess"


# -- remembering ----------------------------------------------------------------------
def _stored(settings: QSettings) -> dict[str, Any]:
    raw = settings.value(SETTINGS_KEY, "{}")
    try:
        data = json.loads(str(raw))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def remember_spec(key: str, spec: InputSpec, settings: QSettings | None = None) -> None:
    """Store ``spec`` for the model with identity ``key`` (nothing for ``""``)."""
    if not key:
        return
    settings = settings if settings is not None else QSettings()
    data = _stored(settings)
    data[key] = spec.to_dict()
    settings.setValue(SETTINGS_KEY, json.dumps(data))


def recall_spec(key: str, settings: QSettings | None = None) -> InputSpec | None:
    """The spec stored for ``key``, or None (none stored, or unreadable)."""
    if not key:
        return None
    entry = _stored(settings if settings is not None else QSettings()).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        return InputSpec.from_dict(entry)
    except InputSpecError:
        return None


# -- checking -------------------------------------------------------------------------
def check_input_job(
    session: PruningSession, spec: InputSpec, token: CancelToken
) -> Job[torch.Tensor]:
    """Build ``spec``'s tensor and run one forward pass with it (eval mode, no grad).

    Returns the tensor; the model's training flags are restored. Run it as a
    worker job (the forward pass takes as long as the model does).

    Raises:
        InputSpecError: the model refuses the input; the message says why.
    """
    yield Progress(0.0, f"trying {spec.describe()}")
    model = session.model
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    tensor = spec.make_tensor(device)
    modes = [(module, module.training) for module in model.modules()]
    token.check()
    try:
        model.eval()
        with torch.no_grad():
            model(tensor)
    except Exception as exc:  # any failure of the user's model is the input's to explain
        raise InputSpecError(
            f"the model does not accept {spec.describe()}: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        for module, mode in modes:
            module.training = mode
    token.check()
    yield Progress(1.0, "input accepted")
    return tensor


# -- the dialog -----------------------------------------------------------------------
class InputSpecDialog(QDialog):
    """Asks for an :class:`InputSpec`; explains a bad one in the dialog.

    Clicking OK parses the fields: a bad spec shows its error and the dialog
    stays; a good one is emitted with ``submitted(spec)``. Whoever listens
    checks it against the model and then calls :meth:`accept` or
    :meth:`show_error` (the dialog waits meanwhile: :meth:`set_checking`).
    Cancel closes the dialog and emits ``cancel_requested`` so a running
    check can be stopped.
    """

    submitted = Signal(object)
    cancel_requested = Signal()

    def __init__(self, spec: InputSpec, hint: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Example input for counting FLOPs")
        intro = QLabel(
            "FLOPs are counted on one forward pass of an example input. Give its shape "
            "<b>including the batch</b> (a batch of 1 gives the FLOPs per sample) and its "
            "dtype. It is remembered for this model."
        )
        intro.setWordWrap(True)
        self.shape_edit = QLineEdit()
        self.shape_edit.setPlaceholderText("e.g. 1,3,224,224")
        self.shape_edit.setToolTip(
            "Sizes separated by commas, batch first: 1,784 for a flat MLP input, "
            "1,3,224,224 for an RGB image, 1,128 for 128 token ids"
        )
        self.dtype_box = QComboBox()
        self.dtype_box.addItems(list(DTYPES))
        self.dtype_box.setToolTip(
            "The input's dtype: the model's own float dtype for images and features; "
            "int64 for token ids (an Embedding first)"
        )
        self.low_box = QSpinBox()
        self.high_box = QSpinBox()
        for box in (self.low_box, self.high_box):
            box.setRange(-INT_LIMIT, INT_LIMIT)
            box.setToolTip("Token ids are drawn from low..high inclusive: 0..vocabulary size - 1")
        range_row = QHBoxLayout()
        range_row.addWidget(self.low_box)
        range_row.addWidget(QLabel(".."))
        range_row.addWidget(self.high_box)
        form = QFormLayout()
        form.addRow("Shape", self.shape_edit)
        form.addRow("Dtype", self.dtype_box)
        form.addRow("Token ids", range_row)
        self.hint_label = QLabel(hint)
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet(f"color: {MUTED}")
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet(f"color: {hex_color(ALARM_RGB)}")
        self.error_label.setObjectName("input_spec_error")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.hint_label)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.dtype_box.currentTextChanged.connect(self._dtype_changed)
        self.shape_edit.textEdited.connect(lambda _text: self.show_error(""))
        self.set_spec(spec)
        self.setMinimumWidth(460)

    # -- public API ---------------------------------------------------------------
    def set_spec(self, spec: InputSpec) -> None:
        """Fill the fields from ``spec``."""
        self.shape_edit.setText(shape_text(spec.shape))
        self.dtype_box.setCurrentText(spec.dtype)
        self.low_box.setValue(spec.low)
        self.high_box.setValue(spec.high)
        self._dtype_changed(spec.dtype)

    def spec(self) -> InputSpec:
        """The spec the fields describe.

        Raises:
            InputSpecError: the fields do not make a valid spec.
        """
        shape = parse_shape(self.shape_edit.text())
        dtype = self.dtype_box.currentText()
        if dtype == TOKEN_DTYPE:
            return InputSpec(shape, dtype, self.low_box.value(), self.high_box.value())
        return InputSpec(shape, dtype)

    def submit(self) -> InputSpec | None:
        """What OK does: parse, then emit ``submitted`` or show why not (returns the spec)."""
        try:
            spec = self.spec()
        except InputSpecError as exc:
            self.show_error(str(exc))
            return None
        self.show_error("")
        self.submitted.emit(spec)
        return spec

    def show_error(self, text: str) -> None:
        """Explain what is wrong (``""`` clears it); ends a check."""
        self.error_label.setText(text)
        self.set_checking(False)

    def error_text(self) -> str:
        """The explanation shown ("" when none)."""
        return self.error_label.text()

    def set_checking(self, checking: bool) -> None:
        """While the model tries the input, OK is disabled and says so."""
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not checking)
        ok.setText("Trying…" if checking else "OK")

    def reject(self) -> None:
        """Close without changing the input (and stop a running check)."""
        self.cancel_requested.emit()
        super().reject()

    def _dtype_changed(self, dtype: str) -> None:
        tokens = dtype == TOKEN_DTYPE
        self.low_box.setEnabled(tokens)
        self.high_box.setEnabled(tokens)
