"""The headless ``bench``, ``slim`` and ``costlab`` commands: measured speed, smaller models.

``bench`` runs the same benchmark job as the window's Speed tab (the dense
original, the masked model, sparse kernels, the slim model, 2:4 where a GPU
can) and prints the method, the advice, and a table; ``--csv``/``--json``
export it. ``slim`` optionally prunes whole channel groups first (``--amount``),
removes them physically (``--harvest`` also removes structure unstructured
pruning left all zero) and saves the small model (``slim`` format by default:
safetensors plus the new layer shapes, rebuilt from the architecture).
``costlab`` is the Cost lab tab on the terminal.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import torch
from rich.table import Table

from core.cli.commands import open_model, output_format, save, use_input_shape
from core.cli.options import UsageError, parse_shape
from core.cli.progress import Terminal, run_with_progress
from core.common.errors import PruningError
from core.common.jobs import CancelToken
from core.io.checkpoints import SLIM_REFERENCES
from core.io.loading import open_session
from core.pruning.groups import GroupPrune
from core.pruning.session import PruningSession
from core.pruning.slim import SlimResult, slim_job, slim_operation
from core.speed.advice import speed_advice
from core.speed.benchmark import FORMS, BenchmarkConfig, BenchmarkReport, benchmark_job
from core.speed.cost_lab import cost_lab_job, speed_test_job

BENCH_EPILOG = """\
Every form runs at the same thread count; outputs are checked against the masked model
before any time is reported. Zeros in dense tensors make nothing faster: compare the
masked row with the dense one.

examples:
  %(prog)s demo:mlp --batch-sizes 1,16 --min-run-time 0.05
  %(prog)s demo:resnet18 --slim --batch-sizes 16 --threads 1 --csv r18.csv
  %(prog)s pruned.prunescope --forms dense,masked,sparse --json report.json"""

COSTLAB_EPILOG = """\
examples:
  %(prog)s --speed-test
  %(prog)s --sizes 100,500,1000 --ratios 0,0.5,0.9 --min-run-time 0.02
  %(prog)s --sizes 2048 --batch-size 1 --threads 1"""

SLIM_EPILOG = """\
examples:
  %(prog)s demo:cnn --amount 0.5 --out cnn_slim.safetensors
  %(prog)s demo:resnet18 --amount 50%% --round-to 8 --out r18_slim.safetensors
  %(prog)s pruned.prunescope --harvest --out small.prunescope"""


def add_speed_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    add_output: Callable[[argparse.ArgumentParser], None],
    add_input_shape: Callable[[argparse.ArgumentParser | argparse._ArgumentGroup, str], None],
) -> list[argparse.ArgumentParser]:
    """Add ``bench`` and ``slim`` to the sub-command parsers; return them."""
    bench = commands.add_parser(
        "bench",
        parents=[common],
        help="measured latency and throughput: dense, masked, sparse kernels, slim, 2:4",
        description="Measure the model's inference latency and throughput in several forms,\n"
        "side by side in one run (torch.utils.benchmark: warm-up, adaptive repeats, median\n"
        "and IQR), with FLOPs and parameters beside the times.",
        epilog=BENCH_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = BenchmarkConfig()
    group = bench.add_argument_group("benchmark")
    group.add_argument(
        "--batch-sizes",
        type=parse_shape,
        default=defaults.batch_sizes,
        metavar="N,N",
        help="batch sizes to sweep (default 1,16,64)",
    )
    group.add_argument("--threads", type=int, help="threads for every form (default: all cores)")
    group.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    group.add_argument(
        "--min-run-time",
        type=float,
        default=defaults.min_run_time,
        metavar="S",
        help="seconds of timing per measurement (default 0.2)",
    )
    group.add_argument(
        "--forms",
        default=",".join(FORMS),
        metavar="LIST",
        help=f"which forms, comma-separated, from {','.join(FORMS)} (dense and masked always run)",
    )
    group.add_argument(
        "--slim",
        action="store_true",
        help="also slim the model (channel groups pruned whole) and time the slim model",
    )
    group.add_argument(
        "--channels-last",
        action="store_true",
        help="run every form's convolutions in channels-last memory format (often faster "
        "on CPUs; the same for every form)",
    )
    add_input_shape(
        group,
        "input shape with a batch dimension, e.g. 1,3,224,224 (default: the model's own "
        "example input); the batch sizes replace its first dimension",
    )
    exports = bench.add_argument_group("export")
    exports.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    exports.add_argument("--json", metavar="FILE", help="also write the report as JSON")

    slim = commands.add_parser(
        "slim",
        parents=[common],
        help="remove pruned channels physically and save the smaller model",
        description="Remove channels physically, as dependency groups (torch-pruning's graph:\n"
        "a conv's output channels with its batch norm, the next layers' inputs, residual\n"
        "partners, concatenations). The slim model's output is checked against the masked\n"
        "model's. Layers the graph cannot handle are named and left intact.",
        epilog=SLIM_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prune = slim.add_argument_group("group pruning first (optional)")
    prune.add_argument(
        "--amount",
        metavar="A",
        help="prune this fraction (0.5 or 50%%) of every channel group's channels by norm first",
    )
    prune.add_argument("--norm", type=int, default=2, choices=(1, 2), help="1 or 2 (default)")
    prune.add_argument(
        "--round-to", type=int, default=1, metavar="N", help="keep a multiple of N channels"
    )
    slim.add_argument(
        "--harvest",
        action="store_true",
        help="also remove channels unstructured pruning left entirely zero",
    )
    add_output(slim)

    lab = commands.add_parser(
        "costlab",
        help="the cost lab: layer sizes x pruning ratios, measured; the one-click speed test",
        description="The brief's cost analysis, measured on this machine: square Linear layers\n"
        "of a few sizes, pruned unstructured and structured at a few ratios; non-zeros,\n"
        "FLOPs and the latency of the dense, masked, sparse-kernel and physically smaller\n"
        "layer. --speed-test runs the one-click demo (batch 100, 1000x1000, 80%%) instead.",
        epilog=COSTLAB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lab.add_argument(
        "--sizes",
        type=parse_shape,
        default=(100, 500, 1000),
        metavar="N,N",
        help="layer sizes (default 100,500,1000)",
    )
    lab.add_argument(
        "--ratios",
        type=_ratios,
        default=(0.0, 0.2, 0.5, 0.8, 0.9),
        metavar="R,R",
        help="pruning ratios (default 0,0.2,0.5,0.8,0.9)",
    )
    lab.add_argument("--batch-size", type=int, default=100, help="inputs per call (default 100)")
    lab.add_argument("--threads", type=int, help="threads (default: all cores)")
    lab.add_argument(
        "--min-run-time", type=float, default=0.05, metavar="S", help="seconds per timing (0.05)"
    )
    lab.add_argument(
        "--speed-test", action="store_true", help="the one-click speed test, explained"
    )
    lab.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    lab.add_argument("--debug", action="store_true", help="full traceback on failure")
    for command in (bench, slim, lab):
        command.set_defaults(command_parser=command)
    return [bench, slim, lab]


# -- running ------------------------------------------------------------------------------
def run_bench(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``bench``: measure every form, print method, advice and table, export."""
    forms = _forms(args.forms)
    for path in (args.csv, args.json):
        if path is not None and not Path(path).parent.is_dir():
            raise PruningError(f"{path}: no such folder to write the report in")
    opened = open_model(args, token, terminal)
    with open_session(opened) as session:
        use_input_shape(session, args.input_shape)
        example = _example_input(session)
        config = BenchmarkConfig(
            batch_sizes=tuple(args.batch_sizes),
            threads=args.threads,
            device=args.device,
            input_shape=tuple(example.shape[1:]),
            min_run_time=args.min_run_time,
            forms=forms,
            channels_last=args.channels_last,
        )
        slim_model = None
        if args.slim:
            result = run_with_progress(
                slim_job(session, example, token=token), "slimming", terminal
            )
            terminal.result(slim_summary(result))
            slim_model = result.model if result.removed else None
        job = benchmark_job(session, example, config, slim_model=slim_model, token=token)
        report = run_with_progress(job, "benchmarking", terminal)
    terminal.result(f"{report.method} Device: {report.device_name}; {report.threads} thread(s).")
    for advice in report.advice:
        terminal.note(f"{advice.level}: {advice.title}. {advice.text}")
    terminal.out.print(benchmark_table(report))
    if args.csv is not None:
        report.to_csv(args.csv)
        terminal.result(f"wrote {args.csv}")
    if args.json is not None:
        report.to_json(args.json)
        terminal.result(f"wrote {args.json}")
    return 0


def run_slim(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``slim``: group-prune (with ``--amount``), slim, report and save."""
    if args.format is None and Path(args.out).suffix.lower() == ".safetensors":
        args.format = "slim"  # a plain state_dict would not fit the original architecture
    out_format = output_format(args)
    amount = _amount(args.amount) if args.amount is not None else None
    opened = open_model(args, token, terminal)
    kind = None if opened.reference is None else opened.reference.kind
    if out_format == "slim" and kind not in SLIM_REFERENCES:
        raise PruningError(  # say so before any work: the save would refuse it at the end
            f"{args.out}: the slim format rebuilds the model from its code, so it needs a demo "
            f"or package.module:factory model (this one is {kind or 'a whole saved model'}); "
            "save with --format session or state_dict instead"
        )
    with open_session(opened) as session:
        use_input_shape(session, args.input_shape)
        example = _example_input(session)
        if amount is not None:
            op = GroupPrune(amount, norm=args.norm, round_to=args.round_to)
            run_with_progress(session.apply_job(op, token), "pruning channel groups", terminal)
            terminal.result(op.label)
        for advice in speed_advice(session, batch_size=example.shape[0]):
            if advice.level == "warning":
                terminal.note(f"warning: {advice.title}. {advice.text}")
        result = run_with_progress(
            slim_job(session, example, harvest=args.harvest, token=token), "slimming", terminal
        )
        terminal.result(slim_summary(result))
        for skipped in result.skipped:
            terminal.note(f"left intact: {skipped.layer}: {skipped.reason}")
        for note in result.notes:
            terminal.note(f"note: {note}")
        session.apply(slim_operation(result))  # raises "nothing to slim" when nothing went
        save(session, opened, args.out, out_format, token, terminal)
    return 0


def run_costlab(args: argparse.Namespace, token: CancelToken, terminal: Terminal) -> int:
    """``costlab``: the table of sizes x ratios, or the speed test with its explanation."""
    if args.batch_size < 1 or (args.threads is not None and args.threads < 1):
        raise UsageError("--batch-size and --threads must be 1 or more")
    if args.speed_test:
        test = run_with_progress(
            speed_test_job(threads=args.threads, token=token, min_run_time=args.min_run_time),
            "speed test",
            terminal,
        )
        table = Table(
            title=f"speed test: batch {test.batch_size}, {test.size}x{test.size} Linear, "
            f"{test.ratio:.0%} pruned",
            title_justify="left",
        )
        for name in ("form", "median ms", "speed-up vs dense"):
            table.add_column(name, justify="left" if name == "form" else "right")
        for form, ms in (
            ("dense", test.dense_ms),
            ("masked (zeros in a dense tensor)", test.masked_ms),
            ("sparse kernel (ours)", test.sparse_ms),
            ("torch CSR", test.torch_csr_ms),
            ("physically smaller (structured)", test.small_ms),
        ):
            table.add_row(form, _ms(ms), f"{test.dense_ms / ms:.2f}x")
        terminal.out.print(table)
        terminal.result(test.explanation)
        return 0
    job = cost_lab_job(
        tuple(args.sizes),
        tuple(args.ratios),
        batch_size=args.batch_size,
        threads=args.threads,
        min_run_time=args.min_run_time,
        token=token,
    )
    rows = run_with_progress(job, "measuring", terminal)
    table = Table(title=f"cost lab: batch {args.batch_size}", title_justify="left")
    for name in (
        "size",
        "ratio",
        "kind",
        "non-zeros",
        "FLOPs",
        "dense ms",
        "masked ms",
        "sparse kernel ms",
        "smaller ms",
    ):
        table.add_column(name, justify="left" if name == "kind" else "right")
    for row in rows:
        table.add_row(
            f"{row.size}x{row.size}",
            f"{row.ratio:.0%}",
            row.kind,
            f"{row.nonzeros:,}",
            f"{row.flops:,}",
            _ms(row.dense_ms),
            _ms(row.masked_ms),
            _ms(row.sparse_ms),
            _ms(row.small_ms),
        )
    terminal.out.print(table)
    return 0


def _ratios(text: str) -> tuple[float, ...]:
    try:
        ratios = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: ratios such as 0,0.5,0.9") from None
    if not ratios or any(not 0.0 <= r < 1.0 for r in ratios):
        raise argparse.ArgumentTypeError(f"{text!r}: ratios from 0 up to (not including) 1")
    return ratios


def _forms(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in FORMS]
    if unknown:
        raise UsageError(f"--forms: unknown {', '.join(unknown)}; choose from {', '.join(FORMS)}")
    return tuple(dict.fromkeys(("dense", "masked", *names)))


def _amount(text: str) -> float:
    value = text.strip()
    try:
        amount = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise UsageError(f"--amount {text}: give a fraction such as 0.5 or 50%") from None
    if not 0.0 < amount < 1.0:
        raise UsageError(f"--amount {text}: a fraction of the channels, above 0 and below 1")
    return amount


def _example_input(session: PruningSession) -> torch.Tensor:
    example = session.example_input
    if example is None:
        raise PruningError(
            "measuring and slimming run the model, and this model has no example input: "
            "pass --input-shape, e.g. 1,3,224,224"
        )
    return example


# -- presenting -----------------------------------------------------------------------------
def slim_summary(result: SlimResult) -> str:
    """``slim: removed 96 channels in 8 groups · 1.2M → 0.31M parameters · max |diff| 2e-07``."""
    channels = sum(result.removed.values())
    groups = len(result.removed)
    return (
        f"slim: removed {channels:,} channels in {groups} group{'s' if groups != 1 else ''} · "
        f"{result.params_before:,} → {result.params_after:,} parameters · "
        f"max |diff| {result.max_abs_diff:.1e}"
    )


def _ms(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"


def benchmark_table(report: BenchmarkReport) -> Table:
    """One row per form and batch size; unavailable or failed forms say why."""
    table = Table(title="inference benchmark", title_justify="left")
    for name in (
        "form",
        "batch",
        "median ms",
        "IQR ms",
        "samples/s",
        "speed-up",
        "max |diff|",
        "FLOPs",
        "params (non-zero)",
        "note",
    ):
        table.add_column(name, justify="left" if name in ("form", "note") else "right")
    for row in report.rows:
        timed = row.available and row.median_ms is not None
        table.add_row(
            row.form,
            str(row.batch_size),
            _ms(row.median_ms),
            _ms(row.iqr_ms),
            "—" if row.throughput is None else f"{row.throughput:,.0f}",
            "—" if row.speedup is None else f"{row.speedup:.2f}x",
            "—" if row.max_abs_diff is None else f"{row.max_abs_diff:.1e}",
            "—" if row.flops is None else f"{row.flops:,}",
            f"{row.params:,} ({row.nonzero_params:,})" if timed else "—",
            (row.note or "") if timed else row.reason,
        )
    return table
