"""The headless commands: ``stats``, ``prune`` and ``apply``, each from parsed arguments.

Each command checks what it can before opening the model (method options,
the output format, the recipe), so a typo fails in a moment; then it opens
the model through the engine's one loader (:mod:`core.io.loading`), works on
a :class:`~core.pruning.session.PruningSession` exactly as the window does,
and saves through :func:`~core.io.checkpoints.save_job`. Every long step is a
job run with a progress bar and the command's cancel token.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from core.analysis.stats import stats_job
from core.cli.layers import resolve_caps, select_layers
from core.cli.options import (
    GLOBAL_METHODS,
    UsageError,
    method_from_args,
    parse_caps,
    parse_key_values,
)
from core.cli.progress import Terminal, run_with_progress
from core.cli.tables import human_bytes, layers_table, stats_document, totals_table
from core.common.errors import PruningError
from core.common.jobs import CancelToken
from core.io.checkpoints import SUFFIXES, format_for_path, onnx_missing, save_job
from core.io.loading import OpenedModel, open_model_job, open_session
from core.io.recipe import load_recipe, replay_job
from core.pruning.amounts import Amount
from core.pruning.operations import GlobalPrune, LayerPrune, MaskOperation
from core.pruning.session import PruningSession

#: Formats that trace the model, so they need an example input.
TRACED_FORMATS = ("export", "onnx")
#: A command: parsed arguments, the cancel token and the terminal in; the exit status out.
Command = Callable[[argparse.Namespace, CancelToken, Terminal], int]


def run_stats(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``stats``: the statistics as tables, or as JSON with ``--json``."""
    opened = open_model(args, token, terminal)
    with open_session(opened) as session:
        use_input_shape(session, args.input_shape)
        stats = run_with_progress(stats_job(session, token), "measuring", terminal)
        shape = None if session.example_input is None else tuple(session.example_input.shape)
    if args.json:
        document = stats_document(stats, model=args.model, input_shape=shape)
        terminal.result(json.dumps(document, indent=2))
    else:
        terminal.result(f"Prunable layers of {opened.name}")
        terminal.out.print(layers_table(stats))
        terminal.result("Whole model")
        terminal.out.print(totals_table(stats))
        if shape is None:
            terminal.result("FLOPs need an input: pass --input-shape, e.g. 1,3,224,224")
    return 0


def run_prune(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``prune``: one operation on the chosen layers, then save."""
    operation = operation_from_args(args)
    out_format = output_format(args)
    opened = open_model(args, token, terminal)
    with open_session(opened) as session:
        use_input_shape(session, args.input_shape, needed_by=out_format)
        op = operation(session)
        run_with_progress(session.apply_job(op, token), "pruning", terminal)
        terminal.result(f"{op.label} ({sparsity_line(session, op.targets)})")
        save(session, opened, args.out, out_format, token, terminal)
    return 0


def run_apply(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``apply``: replay a recipe on the model, then save."""
    recipe = load_recipe(args.recipe)
    out_format = output_format(args)
    opened = open_model(args, token, terminal)
    with open_session(opened, **recipe.target_options) as session:
        use_input_shape(session, args.input_shape, needed_by=out_format)
        run_with_progress(replay_job(session, recipe, token), "replaying", terminal)
        steps = len(recipe.operations)
        terminal.result(
            f"replayed {steps} operation{'s' if steps != 1 else ''} from {args.recipe}: "
            f"{sparsity_line(session, session.names)}"
        )
        save(session, opened, args.out, out_format, token, terminal)
    return 0


COMMAND_RUNNERS: dict[str, Command] = {"stats": run_stats, "prune": run_prune, "apply": run_apply}


# -- the pieces -----------------------------------------------------------------------------
def open_model(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> OpenedModel:
    """Open MODEL as ``--weights``, ``--arg`` and ``--trust`` say (with a progress bar)."""
    job = open_model_job(
        args.model,
        weights=args.weights,
        args=parse_key_values(args.arg) or None,
        trust=args.trust,
        token=token,
    )
    opened = run_with_progress(job, f"opening {args.model}", terminal)
    for note in opened.notes:
        terminal.note(f"note: {note}")
    return opened


def use_input_shape(
    session: PruningSession, shape: Sequence[int] | None, needed_by: str | None = None
) -> None:
    """Give the session an example input of ``shape`` (None: keep the model's own, if any).

    The input is zeros in the dtype and on the device of the model's first
    float parameter: FLOPs and tracing depend on shapes, not values.

    Raises:
        PruningError: ``needed_by`` is a format that traces the model and there is no input.
    """
    if shape is None:
        if needed_by in TRACED_FORMATS and session.example_input is None:
            raise PruningError(
                f"the {needed_by} format traces the model with an example input and this model "
                "has none: pass --input-shape, e.g. 1,3,224,224"
            )
        return
    dtype, device = torch.float32, torch.device("cpu")
    for param in session.model.parameters():
        if param.is_floating_point():
            dtype, device = param.dtype, param.device
            break
    session.example_input = torch.zeros(tuple(shape), dtype=dtype, device=device)


def operation_from_args(args: argparse.Namespace) -> Callable[[PruningSession], MaskOperation]:
    """Check the method and layer options; return how to build the operation on a session.

    Raises:
        UsageError: options that do not fit together or do not parse.
    """
    method = method_from_args(args.method, args)
    caps = parse_caps(args.cap)
    if not args.global_:
        if caps:
            raise UsageError("--cap works with --global only")
        return lambda session: LayerPrune(select_layers(session, args.layers), method, args.mode)
    if args.method not in GLOBAL_METHODS:
        raise UsageError(
            f"--global ranks weights by |w| across layers: use --method "
            f"{' or '.join(GLOBAL_METHODS)}, not {args.method}"
        )
    if args.mode != "further":
        raise UsageError(
            "--global prunes a further amount of what remains; --mode set is per layer"
        )
    amount: Amount = getattr(method, "amount")  # noqa: B009 (methods differ in their fields)

    def build(session: PruningSession) -> MaskOperation:
        targets = select_layers(session, args.layers)
        return GlobalPrune(targets, amount, resolve_caps(session, caps, targets))

    return build


def output_format(args: argparse.Namespace) -> str:
    """``--format`` (or the one ``--out``'s suffix implies), checked before any work is done.

    Raises:
        UsageError: a file name the format does not write.
        PruningError: no folder to write into, or packages the format needs are missing.
    """
    out = Path(args.out)
    out_format = str(args.format) if args.format is not None else format_for_path(out)
    suffixes = SUFFIXES[out_format]
    if out.suffix.lower() not in suffixes:
        raise UsageError(
            f"--out {out.name}: a {out_format} file name ends in {' or '.join(suffixes)}"
        )
    if not out.parent.is_dir():
        raise PruningError(f"{out.parent}: no such folder to save {out.name} in")
    if out_format == "onnx" and (missing := onnx_missing()):
        raise PruningError(
            f"the onnx format needs {' and '.join(missing)}: pip install 'prunescope[onnx]'"
        )
    return out_format


def save(
    session: PruningSession,
    opened: OpenedModel,
    out: str,
    out_format: str,
    token: CancelToken,
    terminal: Terminal,
) -> None:
    """Save through :func:`save_job` (the model's reference included) and say where."""
    reference = None if opened.reference is None else opened.reference.to_dict()
    job = save_job(session, Path(out), out_format, reference=reference, token=token)
    saved = run_with_progress(job, f"saving {out}", terminal)
    terminal.result(f"saved {saved.path} ({saved.format}, {human_bytes(saved.bytes)})")
    if saved.recipe is not None:
        terminal.result(f"recipe {saved.recipe}")


def sparsity_line(session: PruningSession, names: Sequence[str]) -> str:
    """``"sparsity 30.0% of 1,234 weights in 4 layers"`` for ``names``."""
    total = sum(session.info(name).numel for name in names)
    masks = [session.packed_mask(name) for name in names]
    pruned = sum(mask.pruned for mask in masks if mask is not None)
    fraction = pruned / total if total else 0.0
    layers = f"{len(names)} layer{'s' if len(names) != 1 else ''}"
    return f"sparsity {fraction:.1%} of {total:,} weights in {layers}"
