"""Pruning-method options on the command line, generated from the methods' schemas.

Every method lists its parameters as :class:`~core.pruning.methods.spec.ParamSpec`
items with a command-line spelling (``--amount``, ``--norm``, ``--keep``...).
:func:`add_method_options` turns the union of those spellings into argparse
options, so a method added to :data:`~core.pruning.methods.METHODS` gets its
options without any change here; :func:`method_from_args` keeps the ones the
user gave and parses them through the chosen method's own schema
(:meth:`~core.pruning.methods.base.PruningMethod.from_options`), so a value
means on the command line exactly what it means in the window and in a recipe.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from core.common.errors import PruningError
from core.pruning.methods import METHODS, PruningMethod
from core.pruning.methods.spec import ParamSpec

#: Methods the command line can build: those whose schema describes them fully.
CLI_METHODS: dict[str, type[PruningMethod]] = {
    name: cls for name, cls in METHODS.items() if cls.from_schema
}
#: Methods ``--global`` ranks across layers (global ranking is by |w|).
GLOBAL_METHODS: tuple[str, ...] = ("l1_unstructured",)

_AMOUNT_FORMS = {
    "amount": "a fraction such as 0.3 or 30% or a count such as 120",
    "fraction": "a fraction such as 0.3 or 30%",
}
_METAVARS = {"amount": "A", "fraction": "Q", "int": "N", "dim": "DIM", "float": "X"}


class UsageError(Exception):
    """Options that do not fit together or do not parse: the command exits with status 2."""


@dataclass(frozen=True)
class MethodOption:
    """One generated option: its spelling and the parameter it sets in each method."""

    #: The spelling, e.g. ``"--norm"``.
    cli: str
    #: ``(method name, spec)`` for every method that has this option, in registry order.
    specs: tuple[tuple[str, ParamSpec], ...]

    @property
    def dest(self) -> str:
        """The argparse destination (prefixed so it never clashes with a command's own)."""
        return "method_" + self.cli.lstrip("-").replace("-", "_")

    @property
    def metavar(self) -> str:
        """What the value looks like: ``A``, ``N``, or the choices ``{1,2,inf,-inf,fro}``."""
        types = {spec.type for _name, spec in self.specs}
        if types == {"choice"}:
            values = dict.fromkeys(_text(v) for _n, spec in self.specs for _l, v in spec.choices)
            return "{" + ",".join(values) + "}"
        return _METAVARS.get(sorted(types)[0], "VALUE")

    @property
    def help(self) -> str:
        """One help paragraph: what the option sets in each method that has it."""
        by_help: dict[str, list[str]] = {}
        for name, spec in self.specs:
            by_help.setdefault(_spec_help(spec), []).append(name)
        parts = [f"{', '.join(names)}: {text}" for text, names in by_help.items()]
        return "; ".join(parts).replace("%", "%%")  # argparse formats help with %


def method_options(methods: Iterable[type[PruningMethod]] | None = None) -> list[MethodOption]:
    """The options of ``methods`` (default: :data:`CLI_METHODS`), one per spelling.

    Raises:
        ValueError: two parameters of one method share a spelling.
    """
    grouped: dict[str, list[tuple[str, ParamSpec]]] = {}
    for cls in CLI_METHODS.values() if methods is None else methods:
        spellings = [spec.cli for spec in cls.param_specs]
        if len(set(spellings)) != len(spellings):
            raise ValueError(f"{cls.name}: two parameters share a command-line spelling")
        for spec in cls.param_specs:
            grouped.setdefault(spec.cli, []).append((cls.name, spec))
    return [MethodOption(cli, tuple(specs)) for cli, specs in grouped.items()]


#: Shorthands for two options at once: ``--nm 2:4`` is ``--keep 2 --group 4``,
#: ``--block 4x4`` is ``--block-rows 4 --block-cols 4``.
PAIRED_OPTIONS: dict[str, tuple[str, str, str]] = {
    "--nm": ("--keep", "--group", ":"),
    "--block": ("--block-rows", "--block-cols", "x"),
}


def add_method_options(parser: argparse.ArgumentParser) -> list[MethodOption]:
    """Add ``--method`` and every method's options to ``parser``; returns the options.

    Raises:
        ValueError: a method's spelling clashes with one of the command's own options.
    """
    width = max(len(name) for name in CLI_METHODS) + 2
    methods = "\n".join(
        f"  {name:<{width}}{cls.summary}" for name, cls in CLI_METHODS.items()
    ).replace("%", "%%")
    group = parser.add_argument_group(
        "method",
        f"METHOD is one of:\n{methods}\n"
        "Its parameters are the options below, each with the methods that take it;\n"
        "an option the method does not take is an error.",
    )
    group.add_argument(
        "--method",
        required=True,
        choices=list(CLI_METHODS),
        metavar="METHOD",
        help="the pruning method (see the list above)",
    )
    options = method_options()
    for option in options:
        try:
            group.add_argument(
                option.cli, dest=option.dest, metavar=option.metavar, help=option.help
            )
        except argparse.ArgumentError as exc:
            raise ValueError(f"method option {option.cli} clashes with a command option") from exc
    for short, (first, second, sep) in PAIRED_OPTIONS.items():
        group.add_argument(
            short,
            dest=_paired_dest(short),
            metavar=f"A{sep}B",
            help=f"shorthand for {first} A {second} B",
        )
    return options


def _paired_dest(short: str) -> str:
    return "paired_" + short.lstrip("-")


def _expand_paired(args: argparse.Namespace, given: dict[str, str]) -> None:
    """Put ``--nm 2:4`` / ``--block 4x4`` into ``given`` as their two options."""
    for short, (first, second, sep) in PAIRED_OPTIONS.items():
        text = getattr(args, _paired_dest(short), None)
        if text is None:
            continue
        parts = str(text).lower().split(sep)
        if len(parts) != 2 or not all(part.strip() for part in parts):
            raise UsageError(f"{short} takes A{sep}B, got {text!r}")
        for cli, part in zip((first, second), parts, strict=True):
            if cli in given:
                raise UsageError(f"{short} and {cli} both give {cli}")
            given[cli] = part.strip()


def method_from_args(name: str, args: argparse.Namespace) -> PruningMethod:
    """Build method ``name`` from the generated options the user gave.

    The amount (the parameter named ``amount``: ``--amount``, ``--quantile``) is
    required; other parameters take their schema defaults.

    Raises:
        UsageError: an option the method does not take, a missing amount, a bad value.
    """
    cls = CLI_METHODS[name]
    own = {spec.cli: spec for spec in cls.param_specs}
    given = {
        option.cli: value
        for option in method_options()
        if (value := getattr(args, option.dest, None)) is not None
    }
    _expand_paired(args, given)
    for cli in given:
        if cli not in own:
            takes = ", ".join(own) or "no options"
            raise UsageError(f"{name} takes no {cli} (it takes: {takes})")
    for spec in cls.param_specs:
        if spec.name == "amount" and spec.cli not in given:
            forms = _AMOUNT_FORMS.get(spec.type, "a value")
            raise UsageError(f"{name} needs {spec.cli}, {forms}")
    for cli, text in given.items():
        try:
            own[cli].parse(text)
        except PruningError as exc:
            raise UsageError(f"{cli} {text}: {exc}") from None
    try:
        return cls.from_options(given)
    except PruningError as exc:  # a combination the schema refuses (N > M)
        raise UsageError(f"{name}: {exc}") from None


def parse_fraction(text: str, what: str) -> float:
    """``"0.25"`` or ``"25%"`` as a fraction in [0, 1].

    Raises:
        UsageError: not a number, or outside [0, 1].
    """
    spec = ParamSpec("fraction", "fraction", 0.0, what, "", what, low=0.0, high=1.0)
    try:
        return float(spec.parse(text))
    except PruningError as exc:
        raise UsageError(f"{what}: {exc}") from None


def parse_caps(items: Sequence[str]) -> list[tuple[str, float]]:
    """``["fc1.weight=0.5", "conv*=80%"]`` as ``(pattern, fraction)`` pairs.

    Raises:
        UsageError: an item without ``=``, an empty name, or a bad fraction.
    """
    caps = []
    for item in items:
        name, sep, text = item.rpartition("=")
        if not sep or not name.strip():
            raise UsageError(f"--cap expects NAME=FRACTION, got {item!r}")
        caps.append((name.strip(), parse_fraction(text, f"--cap {name.strip()}")))
    return caps


def parse_key_values(items: Sequence[str]) -> dict[str, Any]:
    """``["width=64", "act=\\"relu\\""]`` as keyword arguments, values read as JSON.

    A value that is not JSON is taken as a plain string (``act=relu``).

    Raises:
        UsageError: an item without ``=`` or with an empty key, or a key given twice.
    """
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--arg expects KEY=VALUE, got {item!r}")
        if key in values:
            raise UsageError(f"--arg {key} is given twice")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1,3,224,224"`` (or ``1x3x224x224``) as a shape of positive sizes.

    Raises:
        argparse.ArgumentTypeError: not a list of positive integers (argparse reports it).
    """
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if not shape or any(size <= 0 for size in shape):
        raise argparse.ArgumentTypeError(
            f"expected positive sizes separated by commas, such as 1,3,224,224; got {text!r}"
        )
    return shape


def _spec_help(spec: ParamSpec) -> str:
    """A spec's help sentence with its values: choices, bounds or the amount's forms."""
    text = spec.help.rstrip(".")
    if spec.type == "amount":
        return f"{text} (0.3 or 30% is a fraction, 120 a count)"
    if spec.type == "choice":
        values = ", ".join(_text(value) for _label, value in spec.choices)
        return f"{text} (one of {values}; default {_text(spec.default)})"
    if spec.type == "fraction":
        return f"{text} (0.3 or 30%; default {_text(spec.default)})"
    bounds = ""
    if spec.low is not None and spec.high is not None:
        bounds = f"{_text(spec.low)}..{_text(spec.high)}; "
    elif spec.low is not None:
        bounds = f">= {_text(spec.low)}; "
    return f"{text} ({bounds}default {_text(spec.default)})"


def _text(value: Any) -> str:
    """A value as typed on the command line (2.0 as 2, inf as inf)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
