"""Hugging Face-style model folders (``config.json`` plus weights), opened offline.

``transformers`` (PruneScope's ``hf`` extra) builds the model; nothing is ever
downloaded, and its progress bars stay off while the loader shows its own.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.common.errors import PruningError, first_line
from core.io.opened_model import OpenedModel
from core.io.references import ModelReference

EXAMPLE_TOKENS = 8
"""Length of the token-id example input made for a Hugging Face model."""


def open_folder(folder: Path, trust: bool) -> OpenedModel:
    """A Hugging Face-style model folder through ``transformers``, offline."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise PruningError(f"{folder.name}: not a model folder (it has no config.json)")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PruningError(f"{folder.name}/config.json: not readable JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise PruningError(f"{folder.name}/config.json: not a JSON object")
    with _offline():
        try:
            import transformers
        except ImportError as exc:
            raise PruningError(
                f"{folder.name}: opening model folders needs the transformers package; install "
                "PruneScope's hf extra (pip install 'prunescope[hf]')"
            ) from exc
        model = _from_pretrained(transformers, folder, config, trust)
    if not isinstance(model, nn.Module):
        raise PruningError(f"{folder.name}: transformers gave a {type(model).__name__}")
    return OpenedModel(
        model=model,
        name=folder.name,
        reference=ModelReference("folder", str(folder)),
        example_input=_token_input(config),
    )


def _from_pretrained(transformers: Any, folder: Path, config: dict[str, Any], trust: bool) -> Any:
    """The folder's model class (``config.architectures``, else AutoModel), loaded locally."""
    architectures = config.get("architectures") or []
    name = architectures[0] if isinstance(architectures, list) and architectures else None
    model_class = getattr(transformers, str(name), None) if name else None
    extra: dict[str, Any] = {}
    if model_class is None:
        model_class = transformers.AutoModel
        extra["trust_remote_code"] = trust
    try:
        return model_class.from_pretrained(str(folder), local_files_only=True, **extra)
    except Exception as exc:  # transformers raises OSError, ValueError and more
        raise PruningError(
            f"{folder.name}: transformers could not open it ({first_line(exc)})"
        ) from exc


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Hugging Face libraries offline and quiet (no progress bars) for the duration."""
    saved = {key: os.environ.get(key) for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update(dict.fromkeys(saved, "1"))
    try:
        with _no_progress_bars():
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off for the duration (the caller shows progress)."""
    try:
        hf_logging: Any = importlib.import_module("transformers.utils.logging")
    except ImportError:
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _token_input(config: Mapping[str, Any]) -> torch.Tensor | None:
    """Token ids ``(1, 8)`` within the vocabulary, for models that take tokens."""
    vocab = config.get("vocab_size")
    if not isinstance(vocab, int) or vocab <= 0:
        return None
    length = EXAMPLE_TOKENS
    positions = config.get("max_position_embeddings")
    if isinstance(positions, int) and positions > 0:
        length = min(length, positions)
    return (torch.arange(length) % vocab).unsqueeze(0)
