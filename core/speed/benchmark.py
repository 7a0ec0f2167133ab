"""The benchmark job: one model in several forms, timed side by side in one run.

Forms (:data:`FORMS`):

* ``dense``: the unpruned original (``session.unpruned_copy()``), the baseline;
* ``masked``: the session's model, pruned weights as zeros in dense tensors;
* ``sparse``: the masked model with each Linear / 1x1 convolution run by a
  sparse kernel where that layer measured faster (:func:`sparsify_job`, at
  each batch size);
* ``slim``: a physically slimmed model the caller passes (structured pruning,
  then Slim);
* ``semi_structured``: 2:4-sparse Linear weights as semi-structured tensors, on
  NVIDIA GPUs from Ampere on (else unavailable, with the reason).

For every batch size the masked model's outputs are computed first; every other
form's outputs are compared with them (max abs difference) BEFORE it is timed,
and a form off by more than the tolerance is reported as failed, not timed (the
dense original differs by design and is only reported). Then each form is timed
(:func:`~core.speed.timing.time_call`), its FLOPs counted and its parameters
(total and non-zero) listed, so a FLOPs cut can be compared with the latency
cut. Every copy runs in eval mode under ``torch.inference_mode()``; the
session's model is never modified.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from core.common.errors import PruningError, first_line
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress, scaled
from core.pruning.session import PruningSession
from core.speed.advice import Advice, measure_breakeven_job, speed_advice
from core.speed.model_costs import count_flops, count_params, max_abs_diff, max_magnitude
from core.speed.semi_structured import semi_structured_unavailable, to_semi_structured
from core.speed.sparse_linear import sparsify_job
from core.speed.timing import METHOD_TEXT, default_threads, time_call

FORMS = ("dense", "masked", "sparse", "slim", "semi_structured")
NO_SLIM = "no slim model: prune channels structurally, then Slim"


class BenchmarkError(PruningError):
    """A benchmark configuration that cannot run (unknown form, missing device, bad size)."""


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to measure. ``threads`` None: all cores; ``input_shape``: one sample without
    the batch dimension (None: the example input's); ``tolerance``: largest output
    difference from the masked model, relative to its largest output magnitude plus the
    same absolute amount, for a form to be timed; ``channels_last``: every form's 4-D
    weights and inputs in channels-last memory format (faster convolutions on many
    CPUs; the same for every form, like the thread count)."""

    batch_sizes: tuple[int, ...] = (1, 16, 64)
    threads: int | None = None
    device: str = "cpu"
    input_shape: tuple[int, ...] | None = None
    min_run_time: float = 0.2
    forms: tuple[str, ...] = FORMS
    tolerance: float = 1e-4
    channels_last: bool = False


@dataclass(frozen=True)
class FormResult:
    """One form at one batch size. ``reason`` says why it is unavailable or failed;
    ``note`` what was done (e.g. which layers run sparse). Times in ms, throughput in
    samples/s, speedup = dense median / this median at the same batch."""

    form: str
    batch_size: int
    available: bool
    reason: str
    median_ms: float | None
    iqr_ms: float | None
    throughput: float | None
    speedup: float | None
    max_abs_diff: float | None
    flops: int | None
    params: int
    nonzero_params: int
    note: str = ""


@dataclass(frozen=True, eq=False)
class BenchmarkReport:
    """The whole run: how it was measured, every form's result, the advice given."""

    config: BenchmarkConfig
    device_name: str
    threads: int
    method: str
    rows: tuple[FormResult, ...]
    advice: tuple[Advice, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready; tuples become lists)."""
        return {
            "config": dataclasses.asdict(self.config),
            "device_name": self.device_name,
            "threads": self.threads,
            "method": self.method,
            "rows": [dataclasses.asdict(row) for row in self.rows],
            "advice": [dataclasses.asdict(item) for item in self.advice],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkReport:
        """The report :meth:`as_dict` (or a JSON file of it) describes."""
        config = dict(data["config"])
        for key in ("batch_sizes", "forms", "input_shape"):
            if config.get(key) is not None:
                config[key] = tuple(config[key])
        advice = [{**a, "layers": tuple(a.get("layers", ()))} for a in data.get("advice", ())]
        return cls(
            config=BenchmarkConfig(**config),
            device_name=data["device_name"],
            threads=int(data["threads"]),
            method=data["method"],
            rows=tuple(FormResult(**row) for row in data["rows"]),
            advice=tuple(Advice(**a) for a in advice),
        )

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`as_dict` as JSON."""
        Path(path).write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read_json(cls, path: str | os.PathLike[str]) -> BenchmarkReport:
        """A report written by :meth:`to_json`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """One line per form and batch size (device and threads repeated on each); empty
        cells where a value does not apply."""
        names = [f.name for f in dataclasses.fields(FormResult)]
        with Path(path).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["device", "threads", *names])
            for row in self.rows:
                values = [getattr(row, name) for name in names]
                writer.writerow(
                    [self.device_name, self.threads, *("" if v is None else v for v in values)]
                )


def benchmark_job(
    session: PruningSession,
    example_input: Tensor,
    config: BenchmarkConfig = BenchmarkConfig(),
    *,
    slim_model: nn.Module | None = None,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[BenchmarkReport]:
    """Time the session's model in every form of ``config.forms`` at every batch size (see
    module docstring). ``Progress.detail`` carries each :class:`FormResult` as soon as it
    is measured; cancel with ``token``."""
    _validate(config)
    threads = default_threads() if config.threads is None else config.threads
    device = torch.device(config.device)
    shape = tuple(example_input.shape[1:]) if config.input_shape is None else config.input_shape
    first_batch = config.batch_sizes[0]
    breakeven = None
    if any(session.sparsity(name) > 0 for name in session.names):
        yield Progress(0.0, "Measuring the sparse break-even")
        job = measure_breakeven_job(first_batch, threads=threads, device=config.device, token=token)
        breakeven = yield from scaled(job, 0.0, 0.05)
    advice = tuple(
        speed_advice(session, device=config.device, batch_size=first_batch, breakeven=breakeven)
    )
    token.check()
    yield Progress(0.05, "Copying the model")
    masked = _prepared(session.model, device, config.channels_last)
    fixed = _fixed_forms(config, session, masked, slim_model, device)
    rows: list[FormResult] = []
    steps = len(config.batch_sizes) * len(config.forms)
    step = 0
    for batch in config.batch_sizes:
        x = batch_input(example_input, batch, shape, device)
        if config.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            expected = masked(x)
        tolerance = config.tolerance * (1.0 + max_magnitude(expected))
        dense_ms: float | None = None
        for form in (f for f in FORMS if f in config.forms):
            token.check()
            start = 0.05 + 0.95 * step / steps
            yield Progress(start, f"Batch {batch}: {form}")
            if form == "sparse":
                candidate = yield from _sparse_form(
                    masked, x, threads, config, token, start, 0.95 / steps
                )
            else:
                candidate = fixed[form]
            row = _measure(
                form, batch, candidate, x, expected, tolerance, threads, config, dense_ms
            )
            if form == "dense" and row.median_ms is not None:
                dense_ms = row.median_ms
            rows.append(row)
            step += 1
            yield Progress(0.05 + 0.95 * step / steps, _summary(row), detail=row)
    return BenchmarkReport(
        config=config,
        device_name=device_description(config.device),
        threads=threads,
        method=METHOD_TEXT,
        rows=tuple(rows),
        advice=advice,
    )


def _validate(config: BenchmarkConfig) -> None:
    unknown = [f for f in config.forms if f not in FORMS]
    if unknown:
        raise BenchmarkError(f"unknown form(s) {', '.join(unknown)}; known: {', '.join(FORMS)}")
    if not config.batch_sizes or any(b < 1 for b in config.batch_sizes):
        raise BenchmarkError(f"batch sizes must be 1 or more, got {config.batch_sizes}")
    if config.threads is not None and config.threads < 1:
        raise BenchmarkError(f"threads must be 1 or more, got {config.threads}")
    if config.min_run_time <= 0:
        raise BenchmarkError("the minimum run time must be positive")
    try:
        device = torch.device(config.device)
    except RuntimeError as exc:
        raise BenchmarkError(f"unknown device {config.device!r}: {first_line(exc)}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BenchmarkError("device 'cuda' asked for, but this PyTorch sees no CUDA GPU")
    if device.type not in ("cpu", "cuda"):
        raise BenchmarkError(f"benchmarks run on 'cpu' or 'cuda', not {config.device!r}")


def _prepared(model: nn.Module, device: torch.device, channels_last: bool = False) -> nn.Module:
    """A deep copy of ``model`` in eval mode on ``device`` (4-D weights channels-last)."""
    prepared = copy.deepcopy(model).eval().to(device)
    if channels_last:
        # Module.to takes memory_format at run time; torch's stubs do not list it.
        prepared.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return prepared


@dataclass(frozen=True, eq=False)
class _Form:
    """A form ready to measure: its model (None when unavailable), why not, and a note."""

    model: nn.Module | None
    reason: str = ""
    note: str = ""


def _fixed_forms(
    config: BenchmarkConfig,
    session: PruningSession,
    masked: nn.Module,
    slim_model: nn.Module | None,
    device: torch.device,
) -> dict[str, _Form]:
    """The forms that do not depend on the batch size."""
    forms = {"masked": _Form(masked)}
    if "dense" in config.forms:
        forms["dense"] = _Form(_prepared(session.unpruned_copy(), device, config.channels_last))
    if "slim" in config.forms:
        forms["slim"] = (
            _Form(None, NO_SLIM)
            if slim_model is None
            else _Form(_prepared(slim_model, device, config.channels_last))
        )
    if "semi_structured" in config.forms:
        forms["semi_structured"] = _semi_structured_form(masked, config.device)
    return forms


def _semi_structured_form(masked: nn.Module, device: str) -> _Form:
    reason = semi_structured_unavailable(device)
    if reason is not None:
        return _Form(None, reason)
    try:
        model, converted = to_semi_structured(masked)
    except Exception as exc:
        return _Form(None, f"2:4 conversion failed: {first_line(exc)}")
    if not converted:
        return _Form(
            None,
            "no Linear layer has a 2:4 pattern (2 kept of every 4 inputs) in a shape the "
            "kernels take (sides multiples of 32): prune with N:M 2:4 first",
        )
    return _Form(model, note=f"2:4 tensors (CUTLASS, float32) in {_names(converted)}")


def _names(names: list[str] | tuple[str, ...], limit: int = 6) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _sparse_form(
    masked: nn.Module,
    x: Tensor,
    threads: int,
    config: BenchmarkConfig,
    token: CancelToken,
    start: float,
    span: float,
) -> Job[_Form]:
    """The masked model with layers chosen at this batch size replaced by sparse ones."""
    job = sparsify_job(
        masked, x, threads=threads, token=token, min_run_time=max(0.02, config.min_run_time / 4)
    )
    report = yield from scaled(job, start, start + span / 2)
    chosen = [c for c in report.layers if c.chosen]
    if not chosen:
        return _Form(report.model, note="no layer measured faster sparse: runs as masked")
    listed = _names([f"{c.name} ({c.gain:.1f}x)" for c in chosen])
    note = f"{len(chosen)} of {len(report.layers)} layers sparse: {listed}"
    return _Form(report.model, note=note)


def _measure(
    form: str,
    batch: int,
    candidate: _Form,
    x: Tensor,
    expected: object,
    tolerance: float,
    threads: int,
    config: BenchmarkConfig,
    dense_ms: float | None,
) -> FormResult:
    """Check one form's outputs, then time it (or say why not)."""
    target, note = candidate.model, candidate.note
    if target is None:
        return _unavailable(form, batch, candidate.reason)
    params, nonzero = count_params(target)
    try:
        with torch.inference_mode():
            diff = max_abs_diff(target(x), expected)
    except Exception as exc:
        return _unavailable(form, batch, f"failed to run: {first_line(exc)}", params, nonzero)
    if form != "dense" and not diff <= tolerance:
        reason = (
            f"failed: outputs differ from the masked model's by {diff:.3g} "
            f"(tolerance {tolerance:.3g}); not timed"
        )
        return FormResult(
            form, batch, False, reason, None, None, None, None, diff, None, params, nonzero, note
        )
    run: Callable[[], object] = _inference(target, x)
    timing = time_call(run, threads=threads, min_run_time=config.min_run_time)
    median = timing.median_ms
    speedup = dense_ms / median if dense_ms is not None and median > 0 else None
    if form == "dense":
        speedup = 1.0
    return FormResult(
        form=form,
        batch_size=batch,
        available=True,
        reason="",
        median_ms=median,
        iqr_ms=timing.iqr_ms,
        throughput=batch / (median / 1e3) if median > 0 else None,
        speedup=speedup,
        max_abs_diff=diff,
        flops=count_flops(target, x),
        params=params,
        nonzero_params=nonzero,
        note=note,
    )


def _inference(model: nn.Module, x: Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def _unavailable(
    form: str, batch: int, reason: str, params: int = 0, nonzero: int = 0
) -> FormResult:
    return FormResult(
        form, batch, False, reason, None, None, None, None, None, None, params, nonzero
    )


def _summary(row: FormResult) -> str:
    if row.median_ms is None:
        return f"Batch {row.batch_size}: {row.form} unavailable ({row.reason})"
    gain = f", {row.speedup:.2f}x dense" if row.speedup is not None else ""
    return f"Batch {row.batch_size}: {row.form} {row.median_ms:.3f} ms{gain}"


def batch_input(
    example: Tensor, batch: int, shape: tuple[int, ...], device: torch.device
) -> Tensor:
    """A batch of ``batch`` samples of ``shape``: the example's own samples repeated when
    the shape is the example's, else seeded random values (integers below the example's
    largest + 1 for integer inputs)."""
    if tuple(example.shape[1:]) == tuple(shape) and example.shape[0] > 0:
        index = torch.arange(batch) % example.shape[0]
        return example.detach()[index.to(example.device)].to(device).contiguous()
    gen = torch.Generator().manual_seed(0)
    if example.dtype.is_floating_point:
        return torch.randn((batch, *shape), generator=gen, dtype=example.dtype).to(device)
    high = int(example.max()) + 1 if example.numel() else 2
    return torch.randint(0, max(1, high), (batch, *shape), generator=gen).to(device, example.dtype)


def device_description(device: str) -> str:
    """The device in words: the GPU's name, or the CPU's model and core count."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count() or 1} logical cores)"
