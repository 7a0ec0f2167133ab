"""Where a model comes from: a reference that can build it again, and the parser of model specs.

A :class:`ModelReference` is stored in saved sessions, so reopening one can
rebuild the model; :func:`parse_model_spec` turns what a user typed (a demo
name, a ``package.module:factory``, a folder or a file) into one. A plain file
comes back as a :class:`~pathlib.Path`: what it holds is only known once it is
opened (see :mod:`core.io.loading`).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from core.common.errors import PruningError
from core.demos import DEMO_NAMES

KINDS: tuple[str, ...] = ("demo", "factory", "folder", "torchscript", "pickle")
"""Every kind of :class:`ModelReference`."""

DEMO_PREFIX = "demo:"

FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
"""``package.module:factory`` (the factory may be a dotted attribute, e.g. ``Class.build``)."""


@dataclass(frozen=True)
class ModelReference:
    """Where a model comes from, so it can be built again (stored in saved sessions).

    ``kind`` is one of :data:`KINDS`; ``target`` is the demo name, the
    ``package.module:factory`` import path, or the folder or file path.
    ``weights`` is the state_dict file a factory's model loads (None: the
    factory's own initial weights). ``args`` are the factory's keyword
    arguments as sorted ``(name, JSON value)`` pairs. Equal references build
    equal models; a reference is hashable when its argument values are.
    """

    kind: str
    target: str
    weights: str | None = None
    args: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise PruningError(f"unknown model kind {self.kind!r}; known: {', '.join(KINDS)}")
        if not isinstance(self.target, str) or not self.target:
            raise PruningError(f"a {self.kind} reference needs a target")
        if self.kind == "demo" and self.target not in DEMO_NAMES:
            raise PruningError(_unknown_demo(self.target))
        if self.kind == "factory" and not FACTORY_PATTERN.match(self.target):
            raise PruningError(
                f"{self.target!r} is not a factory: write package.module:factory "
                "(for example core.demos:DigitsMLP)"
            )
        if self.kind != "factory" and (self.weights is not None or self.args):
            raise PruningError(f"only a factory takes weights and arguments, not a {self.kind}")
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights):
            raise PruningError("the weights of a factory reference must be a file path")
        object.__setattr__(self, "args", _normalised_args(self.args))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The factory's keyword arguments as a dict."""
        return dict(self.args)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (see :meth:`from_dict`)."""
        data: dict[str, Any] = {"kind": self.kind, "target": self.target}
        if self.weights is not None:
            data["weights"] = self.weights
        if self.args:
            data["args"] = self.kwargs
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelReference:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            PruningError: not a mapping, unknown fields or kind, or malformed values.
        """
        if not isinstance(data, Mapping):
            raise PruningError(f"malformed model reference {data!r}: not an object")
        unknown = set(data) - {"kind", "target", "weights", "args"}
        if unknown:
            raise PruningError(f"malformed model reference: unknown fields {sorted(unknown)}")
        args = data.get("args", {})
        if not isinstance(args, Mapping):
            raise PruningError(f"malformed model reference: args {args!r} is not an object")
        weights = data.get("weights")
        if weights is not None and not isinstance(weights, str):
            raise PruningError(f"malformed model reference: weights {weights!r} is not a path")
        return cls(
            kind=str(data.get("kind", "")),
            target=str(data.get("target", "")),
            weights=weights,
            args=tuple(args.items()),
        )

    def describe(self) -> str:
        """A short human-readable form for titles and messages."""
        if self.kind == "demo":
            return f"demo {self.target}"
        if self.kind == "factory":
            call = ", ".join(f"{key}={json.dumps(value)}" for key, value in self.args)
            built = f"{self.target}({call})"
            if self.weights is None:
                return f"{built}, initial weights"
            return f"{built} with {Path(self.weights).name}"
        return Path(self.target).name or self.target


def parse_model_spec(
    spec: str,
    *,
    weights: str | None = None,
    args: Mapping[str, Any] | None = None,
) -> ModelReference | Path:
    """Turn a model spec into a reference, or the Path of a file to open.

    * ``"demo:NAME"``: a built-in demo.
    * an existing folder: a Hugging Face-style model folder.
    * an existing file: its :class:`~pathlib.Path` (what it holds is found by opening it).
    * ``"package.module:factory"``: a factory, with ``weights`` (a state_dict
      file; None for the factory's own initial weights) and ``args`` (keyword
      arguments, JSON values).

    Paths are made absolute. Raises :class:`PruningError` with what to write
    instead when the spec is none of these, or when weights or arguments are
    given to something other than a factory.
    """
    spec = str(spec).strip()
    extras = weights is not None or bool(args)
    if spec.startswith(DEMO_PREFIX):
        _refuse_extras(spec, extras)
        name = spec[len(DEMO_PREFIX) :]
        if name not in DEMO_NAMES:
            raise PruningError(_unknown_demo(name))
        return ModelReference("demo", name)
    path = Path(spec).expanduser()
    if spec and path.exists():
        _refuse_extras(spec, extras)
        if path.is_dir():
            return ModelReference("folder", str(path.resolve()))
        return path.resolve()
    if FACTORY_PATTERN.match(spec):
        return ModelReference(
            "factory",
            spec,
            weights=None if weights is None else str(_existing_file(weights)),
            args=tuple((args or {}).items()),
        )
    raise PruningError(
        f"{spec or '(empty)'}: no such file or folder. A model is a file, a model folder, "
        f"a demo ({', '.join(DEMO_PREFIX + n for n in DEMO_NAMES)}) or "
        "package.module:factory with a weights file"
    )


def _refuse_extras(spec: str, extras: bool) -> None:
    """Weights and arguments go with a factory only."""
    if extras:
        raise PruningError(
            f"{spec}: weights and arguments are given with a factory "
            "(package.module:factory), not with a demo, file or folder"
        )


def _existing_file(path: str) -> Path:
    """``path`` made absolute, or a PruningError when it is not a file."""
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise PruningError(f"{path}: no such weights file")
    return resolved.resolve()


def _normalised_args(args: Any) -> tuple[tuple[str, Any], ...]:
    """Sorted ``(name, value)`` pairs, each name a string and each value JSON."""
    try:
        pairs = [(key, value) for key, value in args]
    except (TypeError, ValueError):
        raise PruningError(f"factory arguments {args!r} are not (name, value) pairs") from None
    names = [key for key, _ in pairs]
    if any(not isinstance(key, str) or not key.isidentifier() for key in names):
        raise PruningError(f"factory argument names must be identifiers, not {names}")
    if len(set(names)) != len(names):
        raise PruningError(f"factory arguments repeat a name: {names}")
    for key, value in pairs:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise PruningError(
                f"factory argument {key}={value!r} is not a JSON value "
                "(numbers, strings, true/false/null, lists and objects)"
            ) from None
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def _unknown_demo(name: str) -> str:
    valid = ", ".join(DEMO_PREFIX + n for n in DEMO_NAMES)
    return f"unknown demo {name!r}; the demos are {valid}"


def import_callable(spec: str, search: Sequence[Path] = ()) -> Callable[..., Any]:
    """The callable ``package.module:name`` names (``name`` may be dotted).

    The module is imported from the import path, or else from the folders in
    ``search`` (each on ``sys.path`` only while importing; a callable that
    imports more when called should be called inside :func:`on_sys_path`).

    Raises:
        PruningError: the module or the attribute cannot be had, or is not callable.
    """
    module_name, _, attribute = spec.partition(":")
    with on_sys_path(search):
        importlib.invalidate_caches()
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
                raise PruningError(
                    f"importing {module_name} failed: it needs {exc.name}, which is not installed"
                ) from exc
            where = " or beside the weights file" if search else ""
            beside = ", put it beside the weights file" if search else ""
            raise PruningError(
                f"no module named {module_name} on the import path{where}: install its "
                f"package{beside}, or add its folder to PYTHONPATH"
            ) from exc
        except Exception as exc:  # the user's module raises anything
            raise PruningError(
                f"importing {module_name} failed ({type(exc).__name__}: {exc})"
            ) from exc
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise PruningError(f"{spec}: {module_name} has no {attribute}") from None
    if not callable(found):
        raise PruningError(f"{spec}: not a class or function")
    return cast(Callable[..., Any], found)


@contextlib.contextmanager
def on_sys_path(folders: Sequence[Path]) -> Iterator[None]:
    """Put folders at the end of ``sys.path`` for the duration, then take them off again."""
    added = [str(f) for f in folders if str(f) not in sys.path]
    sys.path.extend(added)
    try:
        yield
    finally:
        for folder in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
