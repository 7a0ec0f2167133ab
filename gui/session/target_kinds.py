"""Which kinds of parameters are prunable, chosen per model and remembered.

By default a session prunes the weights of Linear and Conv layers. The
:class:`~gui.panels.target_kinds_menu.TargetKindsMenu` (the Model menu and the
tree's context menu) lets the user add biases, embeddings and other parameters
of two or more dimensions (a Transformer's ``in_proj_weight``, an LSTM's
``weight_ih_l0``). The choice is
stored with :class:`~PySide6.QtCore.QSettings` under the model's identity
(:func:`model_key`: the demo name or the file's absolute path) and used again
whenever that model is opened (:func:`remembered_options`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings
from torch import nn

from core.io.loading import TARGET_OPTIONS
from core.io.references import ModelReference
from core.pruning.targets import find_targets

#: The QSettings entry holding every model's choice, as JSON ``{key: {option: bool}}``.
SETTINGS_KEY = "prunable_kinds"


@dataclass(frozen=True)
class TargetKind:
    """One kind of parameter the user can make prunable."""

    option: str  # a PruningSession keyword, one of TARGET_OPTIONS
    text: str
    tip: str


KINDS = (
    TargetKind(
        "include_bias",
        "&Biases",
        "Make the biases of every layer prunable (bias entries are pruned like weights)",
    ),
    TargetKind(
        "include_embeddings",
        "&Embeddings",
        "Make embedding tables prunable (nn.Embedding, nn.EmbeddingBag)",
    ),
    TargetKind(
        "include_other",
        "&Other parameters (2+ dimensions)",
        "Make every other parameter of two or more dimensions prunable: a Transformer's "
        "in_proj_weight, an LSTM's weight_ih_l0 / weight_hh_l0, custom layers' matrices",
    ),
)
assert tuple(kind.option for kind in KINDS) == TARGET_OPTIONS
_TEXT = {kind.option: kind.text.replace("&", "") for kind in KINDS}


def model_key(
    source: str, reference: ModelReference | None, model: nn.Module | None = None
) -> str:
    """The identity a model's choice is remembered under ("" when it has none).

    A built-in demo is ``demo:<name>``; a file or folder is ``file:<absolute path>``;
    another spec (a ``package.module:factory``) is ``spec:<spec>``; a model built
    in memory (by a script or a test) is ``memory:<class>:<digest of its parameter
    names and shapes>``, so the same architecture finds its choice again.
    """
    if source:
        path = Path(source)
        return f"file:{path.resolve()}" if path.exists() else f"spec:{source}"
    if reference is not None and reference.kind == "demo":
        return f"demo:{reference.target}"
    if model is not None:
        kind = type(model)
        layout = ";".join(
            f"{name}:{tuple(param.shape)}"
            for name, param in model.named_parameters(remove_duplicate=False)
        )
        digest = hashlib.sha1(layout.encode(), usedforsecurity=False).hexdigest()[:16]
        return f"memory:{kind.__module__}.{kind.__qualname__}:{digest}"
    return ""


def _stored(settings: QSettings) -> dict[str, dict[str, bool]]:
    try:
        value = json.loads(str(settings.value(SETTINGS_KEY, "{}")))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def remembered_options(key: str) -> dict[str, bool]:
    """The session options chosen for the model ``key`` ({} when never chosen)."""
    if not key:
        return {}
    chosen = _stored(QSettings()).get(key)
    if not isinstance(chosen, dict):
        return {}
    return {option: bool(chosen[option]) for option in TARGET_OPTIONS if option in chosen}


def remember_options(key: str, options: Mapping[str, bool]) -> None:
    """Store the session options chosen for the model ``key`` (nothing for "")."""
    if not key:
        return
    settings = QSettings()
    stored = _stored(settings)
    stored[key] = {option: bool(options.get(option, False)) for option in TARGET_OPTIONS}
    settings.setValue(SETTINGS_KEY, json.dumps(stored, sort_keys=True))


def offering_kinds(model: nn.Module) -> dict[str, str]:
    """For each parameter only an option makes prunable, that option (by session name).

    Linear/Conv weights (always prunable) and parameters no option covers (1-D
    norm scales, integer tensors) are left out.
    """
    default = {info.name for info in find_targets(model)}
    kinds: dict[str, str] = {}
    for option in TARGET_OPTIONS:
        for info in find_targets(model, **{option: True}):
            if info.name not in default:
                kinds.setdefault(info.name, option)
                for alias in info.aliases:
                    kinds.setdefault(alias, option)
    return kinds


def kind_text(option: str) -> str:
    """The menu text of an option, without its shortcut marker ("Biases")."""
    return _TEXT.get(option, option)


def loses_work(current: Mapping[str, bool], wanted: Mapping[str, bool], steps: int) -> bool:
    """Whether going from ``current`` to ``wanted`` options discards ``steps`` pruning steps.

    Widening keeps the work (the new targets are added, unpruned); narrowing
    rebuilds the session, which only loses something when there are steps.
    """
    narrowing = any(current.get(o, False) and not wanted.get(o, False) for o in TARGET_OPTIONS)
    return narrowing and steps > 0
