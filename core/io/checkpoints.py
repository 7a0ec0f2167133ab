"""Saving pruned models in every format people use, and reading PruneScope's own back.

Formats (:data:`FORMATS`; :func:`format_for_path` picks one from a file name):

* ``state_dict`` (default): the model's own state_dict with the zeros baked in,
  as safetensors (``.safetensors``) or ``torch.save`` of a plain dict of
  tensors (``.pt``, ``.pth``, ``.bin``); loads with
  ``model.load_state_dict(torch.load(f, weights_only=True))`` or
  ``safetensors.torch.load_file``, nothing from PruneScope needed. Tied
  weights are stored under each of their names.
* ``session`` (``.prunescope``): PruneScope's checkpoint, pickle-free: weights,
  bit-packed masks and permanent masks, original values of pruned entries
  (optional), the model reference, the record of operations and their labels,
  the layer shapes (so a slimmed model reopens), with checksums
  (:mod:`core.io.sparse_format`). :func:`read_session` reads it.
* ``torch_prune``: torch.nn.utils.prune's own format (``weight_orig`` and
  ``weight_mask`` keys), for people who continue with torch's API.
* ``sparse`` (``.safetensors``): kept values plus a bit-packed mask per pruned
  layer, everything else dense, with checksums; float16 values optionally
  (``half``, lossy). :func:`read_sparse` turns it back into a plain state_dict.
* ``slim`` (``.safetensors``): a physically slimmed model (:mod:`core.pruning.slim`):
  everything a ``session`` file holds plus each layer's shapes in the JSON
  header, rebuilt on reading from the model reference (a demo or a factory,
  never a pickled model) with :func:`~core.pruning.slim.rebuild_slim`.
  :func:`read_slim` reads it; opening it as a model gives the small model.
* ``export`` (``.pt2``): a ``torch.export`` program; needs the session's example input.
* ``onnx`` (``.onnx``): through ``torch.onnx.export``, when the ``onnx`` and
  ``onnxscript`` packages are installed (the ``onnx`` extra).

Every file is written atomically (:mod:`core.io.atomic`): a failure, a cancel
or a kill leaves the previous file as it was. The recipe goes beside it under
the file's full name (``a.safetensors.recipe.json``), so saving ``a.pt`` and
``a.safetensors`` never overwrite each other's recipe. Before saving, weights
changed behind the session's back are adopted (as before any operation), so
what is saved is what the session shows.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from core.common.errors import PruningError, first_line
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, run_job, scaled
from core.io import sparse_format
from core.io.atomic import atomic_write
from core.io.recipe import recipe_of
from core.io.tensor_file import (
    open_tensor_file,
    peek_document,
    read_job,
    stored_tensor,
    write_job,
)
from core.io.torch_interop import to_torch_pruned
from core.pruning.masks import PackedMask
from core.pruning.session import PruningSession
from core.pruning.slim import layer_shapes

SESSION_SUFFIX = ".prunescope"
FORMATS: tuple[str, ...] = (
    "state_dict",
    "session",
    "torch_prune",
    "sparse",
    "slim",
    "export",
    "onnx",
)
#: The file name suffixes each format accepts (the first is the usual one).
SUFFIXES: dict[str, tuple[str, ...]] = {
    "state_dict": (".safetensors", ".pt", ".pth", ".bin"),
    "session": (SESSION_SUFFIX,),
    "torch_prune": (".pt", ".pth", ".bin", ".safetensors"),
    "sparse": (".safetensors",),
    "slim": (".safetensors",),
    "export": (".pt2",),
    "onnx": (".onnx",),
}
RECIPE_SUFFIX = ".recipe.json"
SLIM = "prunescope-slim"
#: Kinds of model reference a slim file can be rebuilt from (built in code, not unpickled).
SLIM_REFERENCES: tuple[str, ...] = ("demo", "factory")
ONNX_PACKAGES = ("onnx", "onnxscript")


@dataclass(frozen=True)
class SavedFiles:
    """What a save wrote: the file, the recipe beside it, the format, the file's size."""

    path: Path
    recipe: Path | None
    format: str
    bytes: int


@dataclass(eq=False)
class SavedSession:
    """A ``session`` file's contents, ready to put on a fresh session.

    Reopening: build the model from ``reference``, load ``weights`` into it,
    make a :class:`PruningSession` covering the names of ``masks`` (with
    ``metadata["target_options"]``) and call
    ``session.load_state(masks, originals, floors, [operation_from_dict(d, replay=False) for d
    in operations])``.
    """

    reference: dict[str, Any] | None
    #: The model's state_dict as saved (effective weights: pruned entries are zero).
    weights: dict[str, torch.Tensor]
    #: Per prunable layer: its mask, or None when nothing is pruned.
    masks: dict[str, PackedMask | None]
    #: Per prunable layer: what was pruned for good, or None.
    floors: dict[str, PackedMask | None]
    #: Whole original tensors of the layers whose pruned entries can be restored.
    originals: dict[str, torch.Tensor]
    #: ``Operation.to_dict()`` of every operation behind the state, oldest first.
    operations: list[dict[str, Any]]
    #: The rest of the file's description: format, version, torch_version,
    #: target_options, labels (of the operations), originals (whether saved).
    metadata: dict[str, Any]
    #: The session's example input, when it had one.
    example_input: torch.Tensor | None = None
    #: The layer shapes (:func:`~core.pruning.slim.layer_shapes`) of a ``slim`` file and of
    #: newer ``session`` files (a slimmed model is rebuilt to them); None in older files.
    layer_shapes: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Options:
    reference: dict[str, Any] | None
    originals: bool
    half: bool
    suffix: str


_Writer = Callable[[PruningSession, BinaryIO, _Options, CancelToken], Job[None]]


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The default format for a file name: ``.prunescope`` session, ``.pt2`` export,
    ``.onnx`` onnx, anything else state_dict."""
    suffix = Path(path).suffix.lower()
    return {SESSION_SUFFIX: "session", ".pt2": "export", ".onnx": "onnx"}.get(suffix, "state_dict")


def recipe_path_for(path: str | os.PathLike[str]) -> Path:
    """The recipe beside a saved file, under its full name: ``a.pt`` → ``a.pt.recipe.json``."""
    path = Path(path)
    return path.with_name(path.name + RECIPE_SUFFIX)


def save(
    session: PruningSession,
    path: str | os.PathLike[str],
    format: str = "state_dict",
    **options: Any,
) -> SavedFiles:
    """Run :func:`save_job` to the end (no progress, no cancel)."""
    return run_job(save_job(session, path, format, **options))


def save_job(
    session: PruningSession,
    path: str | os.PathLike[str],
    format: str = "state_dict",
    *,
    reference: dict[str, Any] | None = None,
    originals: bool = True,
    half: bool = False,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[SavedFiles]:
    """A job saving the session's model to ``path`` in ``format``, and its recipe beside it.

    Args:
        reference: how to rebuild the model (``ModelReference.to_dict()``),
            kept in ``session`` and ``slim`` files (and ``sparse`` ones, for
            information); ``slim`` needs it.
        originals: ``session`` and ``slim`` formats: keep the original values of
            pruned entries (so pruning can be undone after reopening).
        half: ``sparse`` format: store float values as float16 (lossy).

    Raises:
        PruningError: an unknown format, a suffix the format does not write, an
            option the format does not take, no example input for export or
            ONNX, ONNX packages missing, or a failure to write (the previous
            file is then intact). DiskSpaceError when the disk is full.
        JobCancelled: cancelled; the previous file is intact.
    """
    path = Path(path)
    options = _Options(_checked_reference(reference), originals, half, path.suffix.lower())
    _check_request(session, path, format, options)
    session.check_outside_changes()
    with atomic_write(path) as handle:
        yield from scaled(_WRITERS[format](session, handle, options, token), 0.0, 0.98)
    recipe = recipe_path_for(path)
    _write_recipe(session, recipe)
    yield Progress(1.0, f"saved {path.name} and {recipe.name}")
    return SavedFiles(path, recipe, format, path.stat().st_size)


def _checked_reference(reference: dict[str, Any] | None) -> dict[str, Any] | None:
    """``reference`` checked to be JSON data (a copy)."""
    if reference is None:
        return None
    try:
        result: dict[str, Any] = json.loads(json.dumps(reference, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise PruningError(f"the model reference cannot be saved as JSON ({exc})") from None
    return result


def _check_request(session: PruningSession, path: Path, format: str, options: _Options) -> None:
    """Refuse what cannot be saved before anything is written."""
    if format not in FORMATS:
        raise PruningError(f"unknown format {format!r}; the formats are {', '.join(FORMATS)}")
    if options.suffix not in SUFFIXES[format]:
        raise PruningError(
            f"{path.name}: a {format} file name ends in {' or '.join(SUFFIXES[format])}"
        )
    if options.half and format != "sparse":
        raise PruningError("float16 values (half) are an option of the sparse format only")
    if format == "slim":
        kind = None if options.reference is None else options.reference.get("kind")
        if kind not in SLIM_REFERENCES:
            raise PruningError(
                "a slim file is rebuilt from the model's architecture, so it needs the "
                "reference of a demo or a factory (package.module:factory); "
                + ("this model has none" if kind is None else f"this model is a {kind}")
            )
    if format in ("export", "onnx") and session.example_input is None:
        raise PruningError(
            f"{format} needs an example input to trace the model; this session has none "
            "(give PruningSession an example_input)"
        )
    if format == "onnx":
        missing = onnx_missing()
        if missing:
            raise PruningError(
                f"ONNX export needs the {' and '.join(missing)} package"
                f"{'s' if len(missing) > 1 else ''}, not installed here: install PruneScope's "
                "onnx extra (pip install 'prunescope[onnx]', or pip install onnx onnxscript)"
            )


def onnx_missing() -> list[str]:
    """The packages ONNX export needs that are not installed."""
    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


def _write_recipe(session: PruningSession, path: Path) -> None:
    """The session's recipe as JSON, written atomically."""
    text = json.dumps(recipe_of(session).to_dict(), indent=2) + "\n"
    with atomic_write(path) as handle:
        handle.write(text.encode())


# --------------------------------------------------------------------- the formats


def _plain_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A model's state_dict as a plain dict of CPU tensors (shared tensors stay shared)."""
    return {key: value.detach().to("cpu") for key, value in model.state_dict().items()}


def _write_state(
    state: dict[str, torch.Tensor], handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    """A state_dict as safetensors (each name its own copy) or with ``torch.save``."""
    if options.suffix == ".safetensors":
        tensors = [stored_tensor(key, value) for key, value in state.items()]
        yield from write_job(handle, tensors, None, token)
    else:
        token.check()
        torch.save(state, handle)
        yield Progress(1.0, "wrote the state_dict")


def _write_state_dict(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    yield from _write_state(_plain_state(session.model), handle, options, token)


def _write_torch_prune(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    token.check()
    yield from _write_state(_plain_state(to_torch_pruned(session)), handle, options, token)


def _write_sparse(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    encoded = sparse_format.encode_sparse(session, options.half)
    encoded.document["reference"] = options.reference
    yield from write_job(handle, encoded.tensors, encoded.document, token)


def _write_session(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    yield from _write_saved(session, handle, options, token, sparse_format.SESSION)


def _write_slim(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    yield from _write_saved(session, handle, options, token, SLIM)


def _write_saved(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken, kind: str
) -> Job[None]:
    """A ``session`` or ``slim`` file: the session's state, its reference, layer shapes (a
    slimmed model's layers differ from what its reference builds) and measurements."""
    encoded = sparse_format.encode_session(session, options.originals)
    encoded.document["format"] = kind
    encoded.document["reference"] = options.reference
    encoded.document["layer_shapes"] = layer_shapes(session.model)
    encoded.document["measurements"] = saved_measurements(session)
    yield from write_job(handle, encoded.tensors, encoded.document, token)


def saved_measurements(session: PruningSession) -> dict[str, Any]:
    """What was measured in the state being saved (evaluations...), JSON-safe entries only.

    A reopened session shows them at its start (``SavedSession.metadata["measurements"]``).
    """
    kept: dict[str, Any] = {}
    for key, value in session.history.measurements().items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue  # not plain data: left out rather than failing the save
        kept[str(key)] = value
    return kept


def _write_export(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    token.check()
    yield Progress(0.1, "tracing the model with torch.export")
    try:
        program = torch.export.export(session.model, (session.example_input,))
    except Exception as exc:  # tracing fails in many ways, all about the model's code
        raise PruningError(f"torch.export could not trace the model: {first_line(exc)}") from exc
    token.check()
    torch.export.save(program, handle)
    yield Progress(1.0, "wrote the exported program")


def _write_onnx(
    session: PruningSession, handle: BinaryIO, options: _Options, token: CancelToken
) -> Job[None]:
    token.check()
    yield Progress(0.1, "exporting the model to ONNX")
    try:
        program = torch.onnx.export(session.model, (session.example_input,), dynamo=True)
        if program is None:  # pragma: no cover - dynamo export always returns a program
            raise RuntimeError("no ONNX program was produced")
        data = program.model_proto.SerializeToString()
    except Exception as exc:  # exporter and protobuf errors (e.g. over 2 GB) alike
        raise PruningError(f"ONNX export failed: {first_line(exc)}") from exc
    token.check()
    handle.write(data)
    yield Progress(1.0, "wrote the ONNX model")


_WRITERS: dict[str, _Writer] = {
    "state_dict": _write_state_dict,
    "session": _write_session,
    "torch_prune": _write_torch_prune,
    "sparse": _write_sparse,
    "slim": _write_slim,
    "export": _write_export,
    "onnx": _write_onnx,
}


# --------------------------------------------------------------------- reading


def is_sparse_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is PruneScope's ``sparse`` format (its header says so; not verified).

    A damaged sparse file whose header still says so counts, so reading it with
    :func:`read_sparse` reports what is wrong.
    """
    document = peek_document(path)
    return document is not None and document.get("format") == sparse_format.SPARSE


def read_sparse(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """A ``sparse`` file as a plain dense state_dict (see :func:`read_sparse_job`)."""
    return run_job(read_sparse_job(path))


def read_sparse_job(
    path: str | os.PathLike[str], token: CancelToken = NEVER_CANCELLED
) -> Job[dict[str, torch.Tensor]]:
    """A job reading a ``sparse`` file into a plain dense state_dict (tied names share a tensor).

    Raises:
        PruningError: missing, not a sparse file, a newer version, truncated or
            damaged (checksums are verified); the message names the file.
    """
    file = open_tensor_file(path, "PruneScope sparse file")
    document = sparse_format.check_document(file, sparse_format.SPARSE, "sparse")
    tensors = yield from scaled(read_job(file, token=token), 0.0, 0.8)
    state = sparse_format.decode_weights(file, tensors, document)
    yield Progress(1.0, f"read {file.path.name}")
    return state


def is_slim_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is PruneScope's ``slim`` format (its header says so; not verified)."""
    document = peek_document(path)
    return document is not None and document.get("format") == SLIM


def read_slim(path: str | os.PathLike[str]) -> SavedSession:
    """A ``slim`` file's contents (see :func:`read_slim_job`)."""
    return run_job(read_slim_job(path))


def read_slim_job(
    path: str | os.PathLike[str], token: CancelToken = NEVER_CANCELLED
) -> Job[SavedSession]:
    """A job reading a ``slim`` file: a session's contents plus ``layer_shapes``.

    Raises:
        PruningError: missing, not a slim file, a newer version, truncated or
            damaged, or without layer shapes; the message names the file.
    """
    return (yield from _read_saved(path, SLIM, "slim", token))


def read_session(path: str | os.PathLike[str]) -> SavedSession:
    """A ``session`` file's contents (see :func:`read_session_job`)."""
    return run_job(read_session_job(path))


def read_session_job(
    path: str | os.PathLike[str], token: CancelToken = NEVER_CANCELLED
) -> Job[SavedSession]:
    """A job reading a ``session`` file, every checksum verified.

    Raises:
        PruningError: missing, not a session file, a newer version, truncated
            or damaged; the message names the file and the problem.
    """
    return (yield from _read_saved(path, sparse_format.SESSION, "session", token))


def _read_saved(
    path: str | os.PathLike[str], format: str, what: str, token: CancelToken
) -> Job[SavedSession]:
    """A ``session`` or ``slim`` file, every checksum verified."""
    file = open_tensor_file(path, f"PruneScope {what}")
    document = sparse_format.check_document(file, format, what)
    shapes = document.get("layer_shapes")
    if format == SLIM and not isinstance(shapes, dict):
        raise file.fail("it does not list its layer shapes")
    tensors = yield from scaled(read_job(file, token=token), 0.0, 0.7)
    weights = sparse_format.decode_weights(file, tensors, document)
    parts = sparse_format.decode_session(file, tensors, document, weights)
    operations = document.get("operations")
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise file.fail("its record of operations is malformed")
    reference = document.get("reference")
    if reference is not None and not isinstance(reference, dict):
        raise file.fail("its model reference is malformed")
    skipped = {
        "entries",
        "layers",
        "operations",
        "reference",
        "checksums",
        "example_input",
        "layer_shapes",
    }
    metadata = {key: value for key, value in document.items() if key not in skipped}
    yield Progress(1.0, f"read {file.path.name}")
    return SavedSession(
        reference=reference,
        weights=weights,
        masks=parts.masks,
        floors=parts.floors,
        originals=parts.originals,
        operations=operations,
        metadata=metadata,
        example_input=parts.example_input,
        layer_shapes=shapes if isinstance(shapes, dict) else None,
    )
