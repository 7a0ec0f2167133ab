"""PruneScope's compact files: the ``sparse`` format and the ``session`` format built on it.

Both are safetensors files (:mod:`core.io.tensor_file`) whose header
document lists the model's state_dict entries in order. Each entry is one of:

* dense: ``{"key", "dtype", "shape", "tensor"}``, the tensor stored as it is;
* sparse (a pruned layer): ``{"key", "dtype", "shape", "values", "mask"}``:
  ``values`` holds the kept entries in flat (C) order, ``mask`` the layer's
  mask as ``numpy.packbits`` bytes (uint8, 1 = kept, first entry in the
  highest bit; the unused low bits of the last byte are zero);
* alias: ``{"key", "alias"}``, the same tensor as an earlier key (tied weights).

``dtype`` is the entry's own dtype (safetensors' name, e.g. ``"F32"``); with
``"half": true`` in the document, float32/float64 data is stored as float16
(lossy) and converted back on reading. A ``session`` file also lists the
prunable layers (``"layers"``: name, shape, and the tensors holding its mask,
its permanent mask and the original values of its restorable pruned entries
in flat order) and carries the model reference, the target options, the
record of operations and their labels, and the example input.

Reading a ``sparse`` file without PruneScope takes a few lines (the tensors
with ``safetensors.safe_open``, the document with ``json.loads`` of
``metadata()["prunescope"]``)::

    dense = torch.zeros(shape, dtype=dtype).reshape(-1)
    keep = numpy.unpackbits(mask.numpy(), count=dense.numel()).astype(bool)
    dense[torch.from_numpy(keep)] = values.to(dtype)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.common.chunks import chunk_ranges
from core.common.errors import PruningError
from core.io.expand import expand_packed
from core.io.tensor_file import DTYPE_NAMES, Stored, TensorFile, check_dtype, tensor_bytes
from core.pruning.masks import PackedMask
from core.pruning.scatter import scatter_packed
from core.pruning.session import PruningSession

SPARSE = "prunescope-sparse"
SESSION = "prunescope-session"
VERSION = 1
#: Separates a state_dict key from the part of it a stored tensor holds.
SEPARATOR = "::"
#: The largest finite float16.
HALF_MAX = 65504.0
_RAW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
_DTYPES = {name: dtype for dtype, name in DTYPE_NAMES.items()}
_HALVED = (torch.float32, torch.float64)
EXAMPLE_INPUT = "__example_input__"


def raw(tensor: torch.Tensor) -> np.ndarray:
    """A flat numpy view of a CPU contiguous tensor's bits, as integers of its item size."""
    return tensor.reshape(-1).view(_RAW[tensor.element_size()]).numpy()


# --------------------------------------------------------------------- encoding


@dataclass
class Encoded:
    """Tensors to write and the document describing them."""

    tensors: list[Stored] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)
    _names: set[str] = field(default_factory=set)

    def add(self, stored: Stored) -> str:
        """Add a tensor to write; its name, which must be new."""
        if stored.name in self._names:
            raise PruningError(f"{stored.name}: two tensors would be saved under this name")
        self._names.add(stored.name)
        self.tensors.append(stored)
        return stored.name


def encode_sparse(session: PruningSession, half: bool = False) -> Encoded:
    """The model's state_dict with each pruned layer as kept values plus packed mask."""
    encoded = Encoded()
    masks: dict[str, str] = {}
    encoded.document = {
        "format": SPARSE,
        "version": VERSION,
        "torch_version": torch.__version__,
        "half": half,
        "entries": _entries(session, encoded, masks, half),
    }
    if half:
        encoded.document["lossy"] = "float32/float64 values are stored as float16"
    return encoded


def encode_session(session: PruningSession, originals: bool = True) -> Encoded:
    """Everything :func:`encode_sparse` stores, plus what reopens the session exactly."""
    encoded = Encoded()
    masks: dict[str, str] = {}
    entries = _entries(session, encoded, masks, half=False)
    layers = [_layer(session, name, encoded, masks, originals) for name in session.names]
    encoded.document = {
        "format": SESSION,
        "version": VERSION,
        "torch_version": torch.__version__,
        "entries": entries,
        "layers": layers,
        "originals": originals,
        "target_options": dict(session.target_options),
        "operations": [op.to_dict() for op in session.operations],
        "labels": [op.label for op in session.operations],
        "example_input": None,
    }
    if session.example_input is not None:
        example = session.example_input.detach()
        check_dtype(EXAMPLE_INPUT, example.dtype)
        encoded.add(
            Stored(
                EXAMPLE_INPUT, example.dtype, tuple(example.shape), lambda: tensor_bytes(example)
            )
        )
        encoded.document["example_input"] = EXAMPLE_INPUT
    return encoded


def _entries(
    session: PruningSession, encoded: Encoded, masks: dict[str, str], half: bool
) -> list[dict[str, Any]]:
    """One document entry per state_dict key; the tensors they need added to ``encoded``."""
    layer_of = {n: name for name in session.names for n in (name, *session.info(name).aliases)}
    first_key: dict[tuple[Any, ...], str] = {}
    entries: list[dict[str, Any]] = []
    for key, tensor in session.model.state_dict().items():
        identity = _identity(tensor)
        if identity in first_key:
            entries.append({"key": key, "alias": first_key[identity]})
            continue
        if identity is not None:
            first_key[identity] = key
        dtype = check_dtype(key, tensor.dtype)
        entry: dict[str, Any] = {"key": key, "dtype": dtype, "shape": list(tensor.shape)}
        stored_dtype = torch.float16 if half and _fits_half(tensor) else tensor.dtype
        mask = session.packed_mask(layer_of[key]) if key in layer_of else None
        if mask is None:
            entry["tensor"] = encoded.add(_converted(key, tensor, stored_dtype))
        else:
            entry["mask"] = _add_mask(encoded, masks, layer_of[key], "mask", mask)
            values = _values(key + SEPARATOR + "values", tensor, mask, stored_dtype)
            entry["values"] = encoded.add(values)
        entries.append(entry)
    return entries


def _identity(tensor: torch.Tensor) -> tuple[Any, ...] | None:
    """What makes two state_dict tensors the same tensor (None for empty ones)."""
    if not tensor.numel():
        return None
    return (
        tensor.device,
        tensor.untyped_storage().data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tuple(tensor.stride()),
        tensor.dtype,
    )


def _fits_half(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is float32/float64 and every value is within float16's range."""
    if tensor.dtype not in _HALVED or not tensor.numel():
        return tensor.dtype in _HALVED
    low, high = torch.aminmax(tensor.detach())
    return float(low) >= -HALF_MAX and float(high) <= HALF_MAX


def _converted(name: str, tensor: torch.Tensor, dtype: torch.dtype) -> Stored:
    """``tensor`` stored as ``dtype``, converted chunk by chunk."""
    if dtype == tensor.dtype:
        return Stored(name, dtype, tuple(tensor.shape), lambda: tensor_bytes(tensor))

    def chunks() -> Iterator[np.ndarray]:
        flat = tensor.detach().reshape(-1)
        for start, stop in chunk_ranges(flat.numel()):
            yield raw(flat[start:stop].to("cpu", dtype).contiguous())

    return Stored(name, dtype, tuple(tensor.shape), chunks)


def _values(name: str, tensor: torch.Tensor, keep: PackedMask, dtype: torch.dtype) -> Stored:
    """The entries of ``tensor`` that ``keep`` marks, in flat order, stored as ``dtype``."""
    return Stored(name, dtype, (keep.kept,), lambda: kept_chunks(tensor, keep, dtype))


def kept_chunks(tensor: torch.Tensor, keep: PackedMask, dtype: torch.dtype) -> Iterator[np.ndarray]:
    """The entries of ``tensor`` that ``keep`` marks, chunk by chunk, converted to ``dtype``."""
    flat = raw(tensor.detach().to("cpu").contiguous())
    for start, stop in chunk_ranges(flat.size):
        kept = np.compress(keep.chunk(start, stop), flat[start:stop])
        if dtype != tensor.dtype:
            kept = raw(torch.from_numpy(kept).view(tensor.dtype).to(dtype))
        yield kept


def _add_mask(
    encoded: Encoded, masks: dict[str, str], layer: str, part: str, mask: PackedMask
) -> str:
    """Store a layer's packed mask once; its tensor name."""
    name = layer + SEPARATOR + part
    if name not in masks:
        bits = mask.bits
        masks[name] = encoded.add(Stored(name, torch.uint8, (bits.size,), lambda: [bits]))
    return masks[name]


def _layer(
    session: PruningSession, name: str, encoded: Encoded, masks: dict[str, str], originals: bool
) -> dict[str, Any]:
    """A session layer's document entry: its masks and the originals of its pruned entries."""
    mask, floor = session.packed_mask(name), session.floor(name)
    layer: dict[str, Any] = {
        "name": name,
        "shape": list(session.info(name).shape),
        "mask": None if mask is None else _add_mask(encoded, masks, name, "mask", mask),
        "floor": None if floor is None else _add_mask(encoded, masks, name, "floor", floor),
        "originals": None,
    }
    if mask is not None and originals:
        restorable = restorable_entries(mask, floor)
        if restorable.kept:
            dtype = session.info(name).dtype
            stored = Stored(
                name + SEPARATOR + "originals",
                dtype,
                (restorable.kept,),
                lambda: kept_chunks(session.original(name), restorable, dtype),  # at write time
            )
            layer["originals"] = encoded.add(stored)
    return layer


def restorable_entries(mask: PackedMask, floor: PackedMask | None) -> PackedMask:
    """Pruned entries whose original values are kept: pruned, and not pruned for good."""
    pruned = ~mask
    return pruned if floor is None else pruned & floor


# --------------------------------------------------------------------- decoding


def check_document(file: TensorFile, expected: str, what: str) -> dict[str, Any]:
    """The file's document, checked to be of format ``expected`` in a version we read."""
    document = file.document
    if document is None or document.get("format") != expected:
        found = "a plain safetensors file" if document is None else str(document.get("format"))
        raise file.fail(f"not a PruneScope {what} file ({found})")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise file.fail(f"{what} version {version!r} is not a version number")
    if version > VERSION:
        raise file.fail(
            f"{what} version {version} is newer than this PruneScope understands ({VERSION})"
        )
    return document


def decode_weights(
    file: TensorFile, tensors: Mapping[str, torch.Tensor], document: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """The state_dict the document's entries describe, pruned layers made dense."""
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise file.fail("the file lists no entries")
    state: dict[str, torch.Tensor] = {}
    for entry in entries:
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str) or key in state:
            raise file.fail(f"entry {entry!r} is malformed")
        if "alias" in entry:
            if entry["alias"] not in state:
                raise file.fail(f"entry {key!r} refers to an unknown entry")
            state[key] = state[entry["alias"]]
            continue
        dtype, shape = _dtype(file, key, entry.get("dtype")), _shape(file, key, entry.get("shape"))
        if "values" in entry:
            state[key] = _dense(file, key, tensors, entry, dtype, shape)
        else:
            stored = _tensor(file, key, tensors, entry.get("tensor"))
            if tuple(stored.shape) != shape:
                raise file.fail(f"entry {key!r} has shape {tuple(stored.shape)}, not {shape}")
            state[key] = _as_dtype(file, key, stored, dtype)
    return state


def _dtype(file: TensorFile, key: str, name: Any) -> torch.dtype:
    dtype = _DTYPES.get(name) if isinstance(name, str) else None
    if dtype is None:
        raise file.fail(f"entry {key!r} has an unknown dtype {name!r}")
    return dtype


def _shape(file: TensorFile, key: str, shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
    ):
        raise file.fail(f"entry {key!r} has a malformed shape {shape!r}")
    return tuple(shape)


def _tensor(
    file: TensorFile, key: str, tensors: Mapping[str, torch.Tensor], name: Any
) -> torch.Tensor:
    tensor = tensors.get(name) if isinstance(name, str) else None
    if tensor is None:
        raise file.fail(f"entry {key!r} refers to a tensor the file lacks ({name!r})")
    return tensor


def _as_dtype(file: TensorFile, key: str, tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``tensor`` in its entry's dtype: as stored, or widened back from float16."""
    if tensor.dtype == dtype:
        return tensor
    if tensor.dtype == torch.float16 and dtype in _HALVED:
        return tensor.to(dtype)
    raise file.fail(f"entry {key!r} is stored as {tensor.dtype}, not {dtype}")


def _dense(
    file: TensorFile,
    key: str,
    tensors: Mapping[str, torch.Tensor],
    entry: Mapping[str, Any],
    dtype: torch.dtype,
    shape: tuple[int, ...],
) -> torch.Tensor:
    """A pruned layer made dense from its kept values and packed mask."""
    bits = packed_mask(file, key, _tensor(file, key, tensors, entry.get("mask")), shape)
    values = _as_dtype(file, key, _tensor(file, key, tensors, entry.get("values")), dtype)
    if values.dim() != 1 or values.numel() != bits.kept:
        raise file.fail(f"entry {key!r} has {values.numel()} values for {bits.kept} kept entries")
    dense = torch.empty(shape, dtype=dtype)
    expand_packed(raw(dense), bits.bits, raw(values))
    return dense


def packed_mask(
    file: TensorFile, key: str, bits: torch.Tensor, shape: tuple[int, ...]
) -> PackedMask:
    """A stored packed mask for ``shape``, checked (size, unused bits zero)."""
    numel = math.prod(shape)
    if bits.dtype != torch.uint8 or bits.dim() != 1 or bits.numel() != (numel + 7) // 8:
        raise file.fail(f"the mask of {key!r} does not fit its shape {shape}")
    array = bits.numpy()
    if numel % 8 and int(array[-1]) & (0xFF >> (numel % 8)):
        raise file.fail(f"the mask of {key!r} has bits set past its end")
    return PackedMask(array, shape)


@dataclass(eq=False)
class SessionParts:
    """What a session file holds beyond its weights (see ``checkpoints.SavedSession``)."""

    masks: dict[str, PackedMask | None]
    floors: dict[str, PackedMask | None]
    originals: dict[str, torch.Tensor]
    example_input: torch.Tensor | None


def decode_session(
    file: TensorFile,
    tensors: Mapping[str, torch.Tensor],
    document: Mapping[str, Any],
    weights: Mapping[str, torch.Tensor],
) -> SessionParts:
    """Masks, permanent masks, whole original tensors and example input of a session file."""
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise file.fail("the file lists no layers")
    parts = SessionParts({}, {}, {}, None)
    for layer in layers:
        name = layer.get("name") if isinstance(layer, dict) else None
        if not isinstance(name, str) or name in parts.masks:
            raise file.fail(f"layer {layer!r} is malformed")
        shape = _shape(file, name, layer.get("shape"))
        parts.masks[name] = _optional_mask(file, name, tensors, layer.get("mask"), shape)
        parts.floors[name] = _optional_mask(file, name, tensors, layer.get("floor"), shape)
        if layer.get("originals") is not None:
            parts.originals[name] = _originals(file, name, tensors, layer, parts, weights)
    if document.get("example_input") is not None:
        parts.example_input = _tensor(file, EXAMPLE_INPUT, tensors, document["example_input"])
    return parts


def _optional_mask(
    file: TensorFile,
    name: str,
    tensors: Mapping[str, torch.Tensor],
    tensor: Any,
    shape: tuple[int, ...],
) -> PackedMask | None:
    if tensor is None:
        return None
    return packed_mask(file, name, _tensor(file, name, tensors, tensor), shape)


def _originals(
    file: TensorFile,
    name: str,
    tensors: Mapping[str, torch.Tensor],
    layer: Mapping[str, Any],
    parts: SessionParts,
    weights: Mapping[str, torch.Tensor],
) -> torch.Tensor:
    """A layer's whole original tensor: its weights with the stored pruned values put back."""
    mask, weight = parts.masks[name], weights.get(name)
    if mask is None or weight is None or tuple(weight.shape) != mask.shape:
        raise file.fail(f"layer {name!r} has originals but no mask or weights to go with them")
    restorable = restorable_entries(mask, parts.floors[name])
    values = _tensor(file, name, tensors, layer["originals"])
    if values.dtype != weight.dtype or values.dim() != 1 or values.numel() != restorable.kept:
        raise file.fail(
            f"layer {name!r} has {values.numel()} original values, not {restorable.kept}"
        )
    original = weight.clone()
    scatter_packed(raw(original), restorable.bits, raw(values))
    return original
