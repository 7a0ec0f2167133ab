"""The headless ``eval`` and ``finetune`` commands: accuracy on real data, masked fine-tuning.

Both open MODEL and the data (:data:`~core.training.data.DATA_HELP`) through
the engine, check that they fit each other before any work, and run the same
jobs as the window's Accuracy tab with a progress bar. ``finetune`` holds the
model's masks (a ``.prunescope`` session's, or by default the exact zeros of a
pruned file; ``--no-hold-zeros`` turns that off), prints an epoch table and saves.
"""

from __future__ import annotations

import argparse
import json
import math
import textwrap
from collections.abc import Callable

from rich.table import Table

from core.cli.commands import open_model, output_format, save
from core.cli.options import UsageError
from core.cli.progress import Terminal, run_with_progress
from core.common.errors import PruningError
from core.common.jobs import CancelToken
from core.io.loading import open_session
from core.pruning.methods import CustomMask
from core.pruning.operations import LayerPrune
from core.pruning.session import PruningSession
from core.training.data import DATA_HELP, Dataset, check_data, load_data_job
from core.training.evaluate import Evaluation, evaluate_session_job
from core.training.finetune import (
    OPTIMIZERS,
    SCHEDULES,
    EpochRecord,
    FinetuneConfig,
    FinetuneResult,
    finetune_job,
)

_DATA_TEXT = textwrap.fill(DATA_HELP, 88)

EVAL_EPILOG = """\
examples:
  %(prog)s demo:cnn --data digits
  %(prog)s pruned.prunescope --data digits --json > eval.json
  %(prog)s mypkg.nets:make_net --weights net.safetensors --data val.npz --split test
  %(prog)s mypkg.nets:make_net --weights net.safetensors --data images/ \\
      --input-shape 1,3,64,64"""

FINETUNE_EPILOG = """\
Pruned weights stay exactly zero through every step: the masks of a .prunescope session or,
by default, the exact zeros of a pruned file (--no-hold-zeros turns that off). Choices (which
epoch to keep, early stopping) use the validation split only; the test split is only reported.

examples:
  %(prog)s demo:cnn --data digits --epochs 2 --out tuned.prunescope
  %(prog)s pruned.prunescope --data digits --epochs 10 --out tuned.prunescope
  %(prog)s mypkg.nets:make_net --weights pruned.safetensors --data train.npz \\
      --optimizer adamw --lr 5e-3 --schedule onecycle --distill --epochs 30 \\
      --out tuned.safetensors"""


def add_training_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    add_output: Callable[[argparse.ArgumentParser], None],
    add_input_shape: Callable[[argparse.ArgumentParser | argparse._ArgumentGroup, str], None],
) -> list[argparse.ArgumentParser]:
    """Add ``eval`` and ``finetune`` to the sub-command parsers; return them."""
    evaluate = commands.add_parser(
        "eval",
        parents=[common],
        help="loss, top-1/top-5, per-class accuracy and fidelity on data",
        description="Evaluate a model on data: loss, top-1 and top-5 accuracy, per-class\n"
        "accuracy, the confusion matrix (with --json) and fidelity (agreement with the\n"
        "unpruned model's predictions, which needs no labels).\n\n" + _DATA_TEXT,
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _data_options(evaluate)
    add_input_shape(
        evaluate,
        "the model's input shape with a batch dimension, e.g. 1,3,64,64: image folders are "
        "resized to it (default: the model's example input)",
    )
    evaluate.add_argument(
        "--split", default="test", help="which split to evaluate: train, val or test (default)"
    )
    evaluate.add_argument("--json", action="store_true", help="print the evaluation as JSON")

    tune = commands.add_parser(
        "finetune",
        parents=[common],
        help="fine-tune with the masks held (optionally distilled from the unpruned model)",
        description="Fine-tune a pruned model with its masks held, optionally distilling from\n"
        "the unpruned model, then save it.\n\n" + _DATA_TEXT,
        epilog=FINETUNE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _data_options(tune)  # --input-shape comes with the saving options
    defaults = FinetuneConfig()
    group = tune.add_argument_group("training")
    group.add_argument("--epochs", type=int, default=defaults.epochs, help="epochs (default 10)")
    group.add_argument("--batch-size", type=int, default=defaults.batch_size, help="default 64")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    group.add_argument("--lr", type=float, default=defaults.lr, help="learning rate (1e-3)")
    group.add_argument("--schedule", choices=SCHEDULES, default=defaults.schedule)
    group.add_argument("--momentum", type=float, default=defaults.momentum, help="SGD only")
    group.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    group.add_argument("--seed", type=int, default=defaults.seed, help="training seed (0)")
    group.add_argument(
        "--distill",
        action="store_true",
        help="distil from the unpruned model (teacher) as well as the labels",
    )
    group.add_argument("--temperature", type=float, default=defaults.temperature)
    group.add_argument(
        "--alpha", type=float, default=defaults.alpha, help="weight of the teacher's loss"
    )
    group.add_argument(
        "--keep",
        choices=("best", "last"),
        default=defaults.keep,
        help="best: the epoch with the best validation accuracy (default); last: the last one",
    )
    group.add_argument(
        "--patience", type=int, help="stop after N epochs without validation improvement"
    )
    group.add_argument(
        "--augment",
        choices=("none", "shift"),
        default=defaults.augment,
        help="shift: random 1-pixel shifts of image inputs",
    )
    group.add_argument(
        "--no-hold-zeros",
        dest="hold_zeros",
        action="store_false",
        help="do not treat exact zeros of a model without masks as pruned (they may regrow)",
    )
    add_output(tune)
    for command in (evaluate, tune):
        command.set_defaults(command_parser=command)
    return [evaluate, tune]


def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        required=True,
        metavar="DATA",
        help="digits, a .npz/.pt/.safetensors file, an image folder, or package.module:function",
    )
    group.add_argument(
        "--val-fraction", type=float, default=0.1, help="validation share of train (0.1)"
    )
    group.add_argument(
        "--test-fraction", type=float, default=0.2, help="test share of a single set (0.2)"
    )
    group.add_argument("--data-seed", type=int, default=0, help="seed of the splits (0)")
    group.add_argument(
        "--eval-batch-size", type=int, default=256, help="batch size of evaluations (256)"
    )


# -- running ------------------------------------------------------------------------------
def run_eval(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``eval``: one evaluation, as a table or as JSON."""
    opened = open_model(args, token, terminal)
    with open_session(opened) as session:
        data = open_data(args, session, token, terminal)
        if args.split not in data.splits():
            raise UsageError(f"--split {args.split}: {data.name} has {', '.join(data.splits())}")
        job = evaluate_session_job(
            session, data, args.split, batch_size=args.eval_batch_size, token=token
        )
        result = run_with_progress(job, f"evaluating on {args.split}", terminal)
    if args.json:
        document = {"model": args.model, "data": data.name, **result.to_dict()}
        terminal.result(json.dumps(document, indent=2))
        return 0
    terminal.result(f"{opened.name} on {data.description}")
    terminal.out.print(evaluation_table(result))
    return 0


def run_finetune(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``finetune``: hold the masks, fine-tune, print the epochs, save."""
    config = config_from_args(args)
    out_format = output_format(args)
    opened = open_model(args, token, terminal)
    with open_session(opened) as session:
        data = open_data(args, session, token, terminal)
        if args.hold_zeros:
            held = hold_zeros(session)
            if held:
                terminal.note(f"holding the exact zeros of {held} layer(s) as pruned")
        result = run_with_progress(
            finetune_job(session, data, config, token), "fine-tuning", terminal
        )
        for note in result.notes:
            terminal.note(f"note: {note}")
        terminal.out.print(epoch_table(result))
        terminal.result(finetune_summary(result))
        if result.entry is None:
            if result.cancelled:
                terminal.result("cancelled before an epoch was kept; nothing is saved")
                return 1
            terminal.result("no epoch beat the model before training: saving it unchanged")
        save(session, opened, args.out, out_format, token, terminal)
    return 0


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    """The fine-tuning settings, checked before anything is opened.

    Raises:
        UsageError: a setting out of range (the message says which).
    """
    config = FinetuneConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        schedule=args.schedule,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        seed=args.seed,
        distill=args.distill,
        temperature=args.temperature,
        alpha=args.alpha,
        keep=args.keep,
        patience=args.patience,
        on_cancel="keep",
        augment=args.augment,
    )
    try:
        config.check()
    except PruningError as exc:
        raise UsageError(str(exc)) from exc
    return config


def open_data(
    args: argparse.Namespace, session: PruningSession, token: CancelToken, terminal: Terminal
) -> Dataset:
    """Load ``--data`` for the session's model and check they fit before any work."""
    shape = _sample_shape(args, session)
    job = load_data_job(
        args.data,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.data_seed,
        input_shape=shape,
        token=token,
    )
    data = run_with_progress(job, f"loading {args.data}", terminal)
    check_data(session.model, data)
    return data


def _sample_shape(args: argparse.Namespace, session: PruningSession) -> tuple[int, ...] | None:
    if args.input_shape is not None:
        return tuple(args.input_shape)[1:]
    example = session.example_input
    return None if example is None else tuple(example.shape)[1:]


def hold_zeros(session: PruningSession) -> int:
    """Mask the exact zeros of layers that have no mask yet; returns how many layers.

    A pruned model saved as plain weights (zeros baked in) has no masks; without
    this, fine-tuning would let its pruned weights grow back.
    """
    held = 0
    for name in session.names:
        if session.packed_mask(name) is not None:
            continue
        kept = session.effective(name) != 0
        if bool(kept.all()):
            continue
        session.apply(LayerPrune((name,), CustomMask(kept.cpu()), "set"))
        held += 1
    return held


# -- presenting -----------------------------------------------------------------------------
def _percent(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.2%}"


def evaluation_table(result: Evaluation) -> Table:
    """The evaluation as a table: the scores, then per-class accuracy."""
    table = Table(title=f"{result.count:,} {result.split} samples", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("top-1 accuracy", _percent(result.top1))
    if result.top5 is not None:
        table.add_row("top-5 accuracy", _percent(result.top5))
    table.add_row("loss", "—" if result.loss is None else f"{result.loss:.4f}")
    table.add_row("fidelity to the unpruned model", _percent(result.fidelity))
    for label, accuracy in enumerate(result.per_class):
        count = sum(result.confusion[label]) if result.confusion else 0
        table.add_row(f"class {label} ({count} samples)", _percent(accuracy))
    return table


def epoch_table(result: FinetuneResult) -> Table:
    """One row per epoch (epoch 0: before training); the kept epoch is marked."""
    table = Table(title="fine-tuning", title_justify="left")
    for name in ("epoch", "train loss", "val loss", "val top-1", "lr", "seconds", "kept"):
        table.add_column(name, justify="right")
    records: list[EpochRecord] = [] if result.baseline is None else [result.baseline]
    records.extend(result.records)
    for record in records:
        table.add_row(
            str(record.epoch),
            "—"
            if record.epoch == 0 or math.isnan(record.train_loss)
            else f"{record.train_loss:.4f}",
            "—" if record.val_loss is None else f"{record.val_loss:.4f}",
            _percent(record.val_top1),
            f"{record.lr:.3g}",
            f"{record.seconds:.2f}",
            "✓" if record.epoch == result.chosen_epoch else "",
        )
    return table


def finetune_summary(result: FinetuneResult) -> str:
    """One line: how many epochs ran, which one was kept, whether it was cancelled."""
    ran = len(result.records)
    parts = [f"fine-tuned {ran} epoch{'s' if ran != 1 else ''}"]
    if result.stopped_early:
        parts.append("stopped early (no validation improvement)")
    if result.cancelled:
        parts.append("cancelled")
    parts.append(f"kept epoch {result.chosen_epoch}" if result.chosen_epoch else "kept nothing")
    return ", ".join(parts)
