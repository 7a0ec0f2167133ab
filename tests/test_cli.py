"""The headless command line (``main.py stats|prune|apply``, ``core.cli``).

In-process tests cover the pieces (method options generated from the schemas,
amounts, layer patterns, caps, progress and Ctrl+C, tables and JSON) through
:func:`core.cli.main`, the function ``main.py`` calls; end-to-end tests run
``main.py`` in subprocesses (exit statuses, messages, files, no Qt imported).
Models are the demos and tiny ones written to ``tmp_path``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.utils.prune as torch_prune
from rich.console import Console
from safetensors.torch import load_file, save_file
from torch import nn

import core.cli.commands as commands
from core.cli import COMMANDS, main
from core.cli.layers import resolve_caps, select_layers
from core.cli.options import (
    CLI_METHODS,
    UsageError,
    add_method_options,
    method_from_args,
    method_options,
    parse_caps,
    parse_fraction,
    parse_key_values,
    parse_shape,
)
from core.cli.parser import build_parser
from core.cli.progress import Terminal, interrupt_cancels, run_with_progress
from core.cli.tables import STATS_FORMAT, human_bytes, layers_table, stats_document, totals_table
from core.common.errors import JobCancelled, PruningError
from core.common.jobs import CancelToken, Job, Progress, run_job
from core.demos import load_demo
from core.pruning.methods import L1Unstructured, LnStructured, PruningMethod
from core.pruning.methods.spec import ParamSpec
from core.pruning.session import PruningSession

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "main.py"
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph", "superqt", "gui")


# --------------------------------------------------------------------- helpers
def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``core.cli.main`` in-process: (exit status, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_main(
    *args: str, cwd: Path, python_flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run ``python main.py ARGS`` in a subprocess, as a user would."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, *python_flags, str(MAIN), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def prune_args(*args: str) -> argparse.Namespace:
    """``prune`` arguments parsed by the real parser (MODEL and --out filled in)."""
    return build_parser().parse_args(["prune", "demo:cnn", "--out", "x.pt", *args])


def demo_session(name: str = "cnn") -> PruningSession:
    demo = load_demo(name)
    return PruningSession(demo.model, example_input=demo.example_input)


def zero_masks(path: Path) -> dict[str, torch.Tensor]:
    """Which weights of a saved state_dict are zero (safetensors or torch.save)."""
    state = (
        load_file(path) if path.suffix == ".safetensors" else torch.load(path, weights_only=True)
    )
    return {key: value == 0 for key, value in state.items() if key.endswith("weight")}


# --------------------------------------------------------------------- main.py routing
def test_main_py_sends_the_headless_commands_to_core_cli() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        import main as entry
    finally:
        sys.path.remove(str(ROOT))
    assert entry.HEADLESS_COMMANDS == COMMANDS


# --------------------------------------------------------------------- help
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself_with_examples(capsys, command: str) -> None:
    code, out, _ = cli(capsys, command, "--help")
    assert code == 0
    assert "examples:" in out
    if command == "costlab":  # measures layers it builds: no MODEL
        assert "prunescope costlab --" in out
        return
    assert f"prunescope {command} demo:" in out  # the examples name the program
    for option in ("--weights", "--arg", "--trust", "--quiet", "--debug"):
        assert option in out


def help_examples(capsys: pytest.CaptureFixture[str], command: str) -> list[list[str]]:
    """The examples at the end of ``command --help``, as argument lists (redirections dropped)."""
    _, out, _ = cli(capsys, command, "--help")
    text = out[out.index("examples:") :].replace("\\\n", " ")
    examples = []
    for line in text.splitlines()[1:]:
        words = shlex.split(line.split(" > ")[0])
        assert words[:2] == ["prunescope", command], line
        examples.append(words[2:])
    return examples


def test_the_help_examples_with_demos_run(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = 0
    for command in ("prune", "stats", "apply"):  # apply replays a recipe prune wrote
        for example in help_examples(capsys, command):
            if example[0].startswith("demo:"):
                code, _, err = cli(capsys, command, *example)
                assert code == 0, (example, err)
                ran += 1
    assert ran == 8


def test_prune_help_lists_every_method_and_every_schema_option(capsys) -> None:
    _, out, _ = cli(capsys, "prune", "--help")
    for name, cls in CLI_METHODS.items():
        assert name in out
        for spec in cls.param_specs:
            assert spec.cli in out, f"{name}: {spec.cli} missing from --help"
    for option in ("--layers", "--global", "--cap", "--mode", "--out", "--format"):
        assert option in out


def test_top_level_help_and_bad_command(capsys) -> None:
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and all(command in out for command in COMMANDS)
    code, _, err = cli(capsys, "bogus")
    assert code == 2 and "invalid choice" in err


# --------------------------------------------------------------------- method options
@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.3", 0.3), ("30%", 0.3), ("120", 120), ("1", 1), ("1.0", 1.0), ("0", 0), ("100%", 1.0)],
)
def test_amount_is_a_fraction_with_a_point_or_percent_and_a_count_without(
    text: str, expected: float | int
) -> None:
    method = method_from_args(
        "l1_unstructured", prune_args("--method", "l1_unstructured", "--amount", text)
    )
    assert method == L1Unstructured(expected)
    assert type(method.amount) is type(expected)  # type: ignore[attr-defined]


def test_method_options_parse_through_the_schema() -> None:
    args = prune_args("--method", "ln_structured", "--amount", "2", "--norm", "inf", "--dim", "1")
    assert method_from_args("ln_structured", args) == LnStructured(2, float("inf"), 1)
    args = prune_args("--method", "n_m", "--keep", "1", "--group", "4")
    assert method_from_args("n_m", args).params() == {"n": 1, "m": 4}
    args = prune_args(
        "--method", "block", "--amount", "25%", "--block-rows", "2", "--block-cols", "8"
    )
    assert method_from_args("block", args).params() == {
        "amount": 0.25,
        "block_rows": 2,
        "block_cols": 8,
        "n": 2,
    }
    args = prune_args("--method", "threshold", "--threshold", "0.01")
    assert method_from_args("threshold", args).params() == {"value": 0.01}
    args = prune_args("--method", "quantile", "--quantile", "40%")
    assert method_from_args("quantile", args).params() == {"amount": 0.4}
    args = prune_args("--method", "random_structured", "--amount", "1", "--seed", "7")
    assert method_from_args("random_structured", args).params() == {
        "amount": 1,
        "dim": 0,
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--method", "n_m", "--amount", "0.3"],
            "n_m takes no --amount (it takes: --keep, --group)",
        ),
        (["--method", "threshold", "--amount", "5"], "threshold takes no --amount"),
        (["--method", "l1_unstructured", "--amount", "0.3", "--seed", "1"], "takes no --seed"),
        (["--method", "l1_unstructured"], "l1_unstructured needs --amount"),
        (["--method", "quantile"], "quantile needs --quantile"),
        (["--method", "l1_unstructured", "--amount", "1.5"], "--amount 1.5: amount 1.5 is outside"),
        (["--method", "l1_unstructured", "--amount", "-3"], "--amount -3"),
        (["--method", "l1_unstructured", "--amount", "lots"], "--amount lots"),
        (
            ["--method", "block", "--amount", "0.5", "--norm", "3"],
            "--norm 3: n must be one of 1, 2",
        ),
        (["--method", "n_m", "--keep", "5", "--group", "4"], "n_m: n must be at most m"),
        (["--method", "random_unstructured", "--amount", "3", "--seed", "-1"], "--seed -1"),
    ],
)
def test_wrong_method_options_are_usage_errors(argv: list[str], message: str) -> None:
    args = prune_args(*argv)
    with pytest.raises(UsageError) as caught:
        method_from_args(args.method, args)
    assert message in str(caught.value)


def test_a_clash_between_a_method_option_and_a_command_option_is_caught() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed")
    with pytest.raises(ValueError, match="--seed clashes"):
        add_method_options(parser)

    @dataclass(frozen=True)
    class Twice(L1Unstructured):
        name: ClassVar[str] = "twice"
        param_specs: ClassVar[tuple[ParamSpec, ...]] = (
            L1Unstructured.param_specs[0],
            ParamSpec("other", "int", 0, "Other", "x", "--amount"),
        )

    with pytest.raises(ValueError, match="share a command-line spelling"):
        method_options([Twice])


def test_a_new_method_gets_its_options_from_its_schema() -> None:
    @dataclass(frozen=True)
    class Shrink(PruningMethod):
        factor: int = 2
        name: ClassVar[str] = "shrink"
        label: ClassVar[str] = "Shrink"
        summary: ClassVar[str] = "x"
        kind: ClassVar[str] = "unstructured"
        uses_amount: ClassVar[bool] = False
        param_specs: ClassVar[tuple[ParamSpec, ...]] = (
            ParamSpec("factor", "int", 2, "Factor", "How much.", "--factor", low=1),
        )

        def compute_mask(
            self, t: torch.Tensor, current: torch.Tensor | None = None
        ) -> torch.Tensor:
            return torch.ones_like(t, dtype=torch.bool)

    (option,) = method_options([Shrink])
    assert (option.cli, option.metavar, option.dest) == ("--factor", "N", "method_factor")
    assert "shrink: How much (>= 1; default 2)" in option.help


def test_parse_helpers() -> None:
    assert parse_caps(["fc1.weight=0.5", "layer*=80%", "a=b=1"]) == [
        ("fc1.weight", 0.5),
        ("layer*", 0.8),
        ("a=b", 1.0),
    ]
    for bad in ("fc1.weight", "=0.5", "x=1.5", "x=lots"):
        with pytest.raises(UsageError):
            parse_caps([bad])
    assert parse_fraction("25%", "--x") == 0.25
    assert parse_key_values(["width=64", "sizes=[8, 4]", "act=relu", 'name="x"', "on=true"]) == {
        "width": 64,
        "sizes": [8, 4],
        "act": "relu",
        "name": "x",
        "on": True,
    }
    for bad in (["width"], ["=3"], ["a=1", "a=2"]):
        with pytest.raises(UsageError):
            parse_key_values(bad)
    assert parse_shape("1,3,224,224") == (1, 3, 224, 224)
    assert parse_shape("1x8") == (1, 8)
    for bad in ("", "1,,2", "1,0", "a,b", "-1,2"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_shape(bad)


def test_option_errors_exit_2_before_the_model_is_opened(capsys, monkeypatch) -> None:
    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model was opened")

    monkeypatch.setattr(commands, "open_model_job", never)
    cases = [
        ["--method", "n_m", "--amount", "0.3"],
        ["--method", "ln_structured", "--amount", "0.3", "--global"],
        ["--method", "l1_unstructured", "--amount", "0.3", "--global", "--mode", "set"],
        ["--method", "l1_unstructured", "--amount", "0.3", "--cap", "fc=0.5"],
        ["--method", "l1_unstructured", "--amount", "0.3", "--global", "--cap", "fc"],
        ["--method", "l1_unstructured", "--amount", "0.3", "--out", "x.txt"],
        ["--method", "l1_unstructured", "--amount", "0.3", "--format", "sparse"],
        ["--method", "l1_unstructured", "--amount", "0.3", "--arg", "width"],
    ]
    for argv in cases:
        code, _, err = cli(capsys, "prune", "demo:cnn", "--out", "x.pt", *argv)
        assert code == 2, argv
        assert err.startswith("usage: prunescope prune"), err
        assert "prunescope prune: error:" in err
    code, _, err = cli(capsys, "prune", "demo:cnn", "--method", "nope", "--out", "x.pt")
    assert code == 2 and "invalid choice" in err
    code, _, err = cli(
        capsys, "apply", "demo:cnn", "--recipe", "r.json", "--out", "x.pt", "--input-shape", "1,a"
    )
    assert code == 2 and "--input-shape: expected positive sizes" in err
    code, _, err = cli(
        capsys,
        "prune",
        "demo:cnn",
        "--method",
        "l1_unstructured",
        "--amount",
        "0.3",
        "--out",
        "no/such/folder/x.pt",
    )
    assert code == 1 and "no such folder" in err


# --------------------------------------------------------------------- layers and caps
def test_layers_by_name_module_or_glob_in_model_order() -> None:
    session = demo_session("resnet18")
    assert select_layers(session, None) == tuple(session.names)
    chosen = select_layers(session, "classifier, layer1.*")
    assert chosen == (
        "layer1.0.conv1.weight",
        "layer1.0.conv2.weight",
        "layer1.1.conv1.weight",
        "layer1.1.conv2.weight",
        "classifier.weight",
    )
    assert select_layers(session, "stem.conv.weight") == ("stem.conv.weight",)
    assert select_layers(session, "layer?.0.downsample.conv") == (
        "layer2.0.downsample.conv.weight",
        "layer3.0.downsample.conv.weight",
        "layer4.0.downsample.conv.weight",
    )
    with pytest.raises(PruningError, match=r"'layer9\.\*' matches no prunable layer"):
        select_layers(session, "layer1.*,layer9.*")
    with pytest.raises(PruningError, match="empty"):
        select_layers(session, " , ")


def test_caps_resolve_against_the_targets() -> None:
    session = demo_session("resnet18")
    targets = select_layers(session, "layer1.*,classifier")
    caps = resolve_caps(
        session, [("layer1.0.*", 0.5), ("classifier", 0.2), ("layer1.0.conv2", 0.1)], targets
    )
    assert dict(caps) == {
        "layer1.0.conv1.weight": 0.5,
        "layer1.0.conv2.weight": 0.1,
        "classifier.weight": 0.2,
    }
    with pytest.raises(PruningError, match="matches none of the layers being pruned"):
        resolve_caps(session, [("stem.conv", 0.5)], targets)


# --------------------------------------------------------------------- masks equal torch's
@pytest.mark.parametrize(
    "argv",
    [
        ["--method", "l1_unstructured", "--amount", "30%"],
        ["--method", "l1_unstructured", "--amount", "40"],
        ["--method", "ln_structured", "--amount", "0.5", "--norm", "1", "--dim", "0"],
        ["--method", "random_unstructured", "--amount", "0.25", "--seed", "7"],
        ["--method", "random_structured", "--amount", "1", "--dim", "0", "--seed", "3"],
    ],
)
def test_masks_equal_torch_prune_through_the_cli_path(argv: list[str]) -> None:
    """Parsed and built the way ``prune`` does, applied twice ('further'), as torch would."""
    args = prune_args(*argv, "--layers", "stem.conv,block1.*,classifier")
    build = commands.operation_from_args(args)
    session = demo_session("cnn")
    reference = load_demo("cnn").model
    op = build(session)
    method = op.method  # type: ignore[attr-defined]
    for _step in range(2):
        run_job(session.apply_job(op))
        for name in op.targets:
            module = reference.get_submodule(name.rpartition(".")[0])
            with torch.random.fork_rng():
                params = method.params()
                if "seed" in params:
                    torch.manual_seed(params["seed"])
                kind = method.name
                if kind == "l1_unstructured":
                    torch_prune.l1_unstructured(module, "weight", amount=params["amount"])
                elif kind == "random_unstructured":
                    torch_prune.random_unstructured(module, "weight", amount=params["amount"])
                elif kind == "ln_structured":
                    torch_prune.ln_structured(
                        module, "weight", params["amount"], params["n"], params["dim"]
                    )
                else:
                    torch_prune.random_structured(module, "weight", params["amount"], params["dim"])
    for name in op.targets:
        module = reference.get_submodule(name.rpartition(".")[0])
        assert torch.equal(session.mask(name), module.weight_mask.bool()), name


def test_global_with_caps_through_the_cli_path() -> None:
    args = prune_args(
        "--method", "l1_unstructured", "--amount", "0.8", "--global", "--cap", "stem.conv=0.5"
    )
    session = demo_session("cnn")
    op = commands.operation_from_args(args)(session)
    assert op.to_dict()["op"] == "global_prune" and op.targets == tuple(session.names)
    run_job(session.apply_job(op))
    assert session.sparsity("stem.conv.weight") <= 0.5
    pruned = sum(session.info(n).numel * session.sparsity(n) for n in session.names)
    total = sum(session.info(n).numel for n in session.names)
    assert round(pruned) == round(0.8 * total)


# --------------------------------------------------------------------- progress and Ctrl+C
def _steps(count: int, token: CancelToken, on_step: Any = None) -> Job[int]:
    for i in range(count):
        token.check()
        if on_step is not None:
            on_step(i)
        yield Progress((i + 1) / count, f"step {i + 1}")
    return count


def test_progress_bars_show_on_a_terminal_only_and_not_with_quiet() -> None:
    buffer = io.StringIO()
    terminal = Terminal(err=Console(file=buffer, force_terminal=True, width=100))
    assert terminal.show_progress
    assert run_with_progress(_steps(3, CancelToken()), "counting", terminal) == 3
    assert "counting" in buffer.getvalue()
    for quiet, forced in ((True, True), (False, False)):
        buffer = io.StringIO()
        terminal = Terminal(quiet=quiet, err=Console(file=buffer, force_terminal=forced))
        assert not terminal.show_progress
        assert run_with_progress(_steps(3, CancelToken()), "counting", terminal) == 3
        assert buffer.getvalue() == ""


def test_first_ctrl_c_cancels_the_job_and_a_second_interrupts() -> None:
    token = CancelToken()
    previous = signal.getsignal(signal.SIGINT)
    with interrupt_cancels(token), pytest.raises(JobCancelled):
        run_job(_steps(5, token, lambda i: i == 1 and os.kill(os.getpid(), signal.SIGINT)))
    assert token.cancelled
    assert signal.getsignal(signal.SIGINT) is previous
    with interrupt_cancels(token), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_during_a_command_exits_1_with_cancelled(capsys, monkeypatch) -> None:
    def interrupted(session: PruningSession, token: CancelToken) -> Job[Any]:
        yield from _steps(5, token, lambda i: i == 1 and os.kill(os.getpid(), signal.SIGINT))
        raise AssertionError("not cancelled")

    def stuck(session: PruningSession, token: CancelToken) -> Job[Any]:
        """A step that never checks its token: the second Ctrl+C stops it."""
        yield Progress(0.0, "stuck")
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("not interrupted")

    for job in (interrupted, stuck):
        monkeypatch.setattr(commands, "stats_job", job)
        code, out, err = cli(capsys, "stats", "demo:cnn")
        assert code == 1
        assert err.splitlines()[-1] == "prunescope: cancelled"
        assert out == ""


# --------------------------------------------------------------------- tables and JSON
def test_stats_document_and_tables_show_the_engine_numbers() -> None:
    from core.analysis.stats import stats_job

    session = demo_session("cnn")
    session.prune(["classifier.weight"], L1Unstructured(0.5))
    stats = run_job(stats_job(session))
    document = json.loads(
        json.dumps(stats_document(stats, model="demo:cnn", input_shape=(1, 1, 8, 8)))
    )
    assert document["format"] == STATS_FORMAT and document["input_shape"] == [1, 1, 8, 8]
    assert [layer["name"] for layer in document["layers"]] == session.names
    classifier = document["layers"][-1]
    assert classifier["sparsity"] == pytest.approx(0.5)
    assert classifier["pruned"] + classifier["kept"] == classifier["params"]
    assert document["totals"]["pruned"] == stats.pruned
    assert document["totals"]["flops_effective"] < document["totals"]["flops_dense"]
    console = Console(file=io.StringIO(), width=200)
    console.print(layers_table(stats))
    console.print(totals_table(stats))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for name in session.names:
        assert name in text
    assert "50.0%" in text and f"{stats.total_params:,}" in text
    assert human_bytes(1536) == "1.5 KiB" and human_bytes(12) == "12 B"


# --------------------------------------------------------------------- in-process commands
def test_stats_json_and_input_shape(capsys) -> None:
    code, out, err = cli(capsys, "stats", "demo:mlp", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["model"] == "demo:mlp"
    assert [layer["name"] for layer in document["layers"]] == [
        "fc1.weight",
        "fc2.weight",
        "classifier.weight",
    ]
    assert document["totals"]["sparsity"] == 0.0
    code, out, _ = cli(capsys, "stats", "demo:mlp", "--json", "--input-shape", "4,64")
    assert json.loads(out)["input_shape"] == [4, 64]
    assert json.loads(out)["totals"]["flops_dense"] == 4 * document["totals"]["flops_dense"]
    code, _, err = cli(capsys, "stats", "demo:cnn", "--input-shape", "1,3,8,8")
    assert code == 1 and err.count("\n") == 1 and "RuntimeError" in err


def test_prune_layers_mode_and_format(capsys, tmp_path: Path) -> None:
    out_file = tmp_path / "cnn.pt"
    code, out, err = cli(
        capsys,
        "prune",
        "demo:cnn",
        "--method",
        "ln_structured",
        "--amount",
        "0.5",
        "--layers",
        "block1.*",
        "--mode",
        "set",
        "--out",
        str(out_file),
        "--format",
        "state_dict",
    )
    assert code == 0, err
    assert "Set 2 layers: ln_structured 50.0%" in out
    assert f"saved {out_file}" in out and "recipe " in out
    zeros = zero_masks(out_file)
    assert zeros["block1.conv1.weight"].float().mean() == pytest.approx(0.5)
    assert not zeros["stem.conv.weight"].any() and not zeros["classifier.weight"].any()
    code, _, err = cli(
        capsys,
        "prune",
        "demo:cnn",
        "--method",
        "l1_unstructured",
        "--amount",
        "0.5",
        "--layers",
        "nothing*",
        "--out",
        str(tmp_path / "x.pt"),
    )
    assert code == 1 and "'nothing*' matches no prunable layer" in err
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize(
    ("out", "options", "saved_format"),
    [
        ("m.safetensors", (), "state_dict"),
        ("m.pt", (), "state_dict"),
        ("m.prunescope", (), "session"),
        ("m.pt", ("--format", "torch_prune"), "torch_prune"),
        ("m.safetensors", ("--format", "sparse"), "sparse"),
        ("m.pt2", (), "export"),
    ],
)
def test_every_format_through_prune(
    capsys, tmp_path: Path, out: str, options: tuple[str, ...], saved_format: str
) -> None:
    path = tmp_path / out
    code, stdout, err = cli(
        capsys,
        "prune",
        "demo:cnn",
        "--method",
        "l1_unstructured",
        "--amount",
        "0.5",
        "--out",
        str(path),
        *options,
    )
    assert code == 0, err
    assert f"saved {path} ({saved_format}, " in stdout
    assert path.is_file() and Path(f"{path}.recipe.json").is_file()


def test_a_saved_session_reopens_with_its_masks_and_reference(capsys, tmp_path: Path) -> None:
    path = tmp_path / "cnn.prunescope"
    code, _, err = cli(
        capsys,
        "prune",
        "demo:cnn",
        "--method",
        "ln_structured",
        "--amount",
        "0.25",
        "--layers",
        "classifier",
        "--out",
        str(path),
    )
    assert code == 0, err
    code, stdout, err = cli(capsys, "stats", str(path), "--json")
    assert code == 0, err
    layers = {layer["name"]: layer for layer in json.loads(stdout)["layers"]}
    assert layers["classifier.weight"]["zero_rows"] == round(0.25 * 10)
    assert layers["stem.conv.weight"]["sparsity"] == 0.0


def test_onnx_needs_its_packages_or_saves(capsys, tmp_path: Path) -> None:
    from core.io.checkpoints import onnx_missing

    path = tmp_path / "cnn.onnx"
    code, stdout, err = cli(
        capsys,
        "prune",
        "demo:cnn",
        "--method",
        "l1_unstructured",
        "--amount",
        "0.5",
        "--out",
        str(path),
    )
    if onnx_missing():
        assert code == 1 and "pip install 'prunescope[onnx]'" in err and stdout == ""
    else:
        assert code == 0, err
        assert path.is_file()


def test_export_without_an_example_input_asks_for_an_input_shape(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cli_export_nets.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Linear(6, 4))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cli_export_nets", raising=False)
    path = tmp_path / "net.pt2"
    argv = ("prune", "cli_export_nets:make", "--method", "l1_unstructured", "--amount", "3")
    code, _, err = cli(capsys, *argv, "--out", str(path))
    assert code == 1 and "pass --input-shape" in err and not path.exists()
    code, stdout, err = cli(capsys, *argv, "--out", str(path), "--input-shape", "2,6")
    assert code == 0, err
    assert f"saved {path} (export, " in stdout
    sys.modules.pop("cli_export_nets", None)


# --------------------------------------------------------------------- the README's session
def readme_session() -> list[tuple[list[str], str]]:
    """The README's command-line session: (command, what it prints) pairs."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Command line")
    section = text[start : text.index("\n## ", start)]
    match = re.search(r"```console\n(.*?)```", section, re.S)
    assert match, "the command-line section has no session"
    steps: list[tuple[list[str], list[str]]] = []
    for line in match.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((shlex.split(line[2:]), []))
        else:
            steps[-1][1].append(line)
    return [(command, "\n".join(lines)) for command, lines in steps]


def file_sizes_out(text: str) -> str:
    """Output with saved files' sizes blanked (they belong to the formats, not to the CLI)."""
    return re.sub(r"^(saved .* \(\w+), [\d.]+ [KMG]?i?B\)$", r"\1, SIZE)", text, flags=re.M)


def test_the_readme_session_prints_what_the_readme_shows(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command as ``.venv/bin/python main.py ...`` runs it: through main.py's ``main``."""
    sys.path.insert(0, str(ROOT))
    try:
        import main as entry
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)
    session = readme_session()
    assert [command[2] for command, _ in session] == ["prune", "prune", "stats", "apply"]
    for command, expected in session:
        assert command[:2] == [".venv/bin/python", "main.py"]
        code = entry.main(command[2:])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert file_sizes_out(err + out).rstrip("\n") == file_sizes_out(expected), command
    # As the README says: the state_dict loads into the unmodified class with torch alone.
    from core.demos import build_demo_architecture

    model = build_demo_architecture("cnn")
    model.load_state_dict(load_file(tmp_path / "cnn.safetensors"))
    assert (model.classifier.weight == 0).float().mean() > 0


# --------------------------------------------------------------------- end to end, subprocesses
def imported_modules(stderr: str) -> set[str]:
    """Top-level packages in ``python -X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_stats_end_to_end_without_qt(tmp_path: Path) -> None:
    result = run_main("stats", "demo:cnn", cwd=tmp_path, python_flags=("-X", "importtime"))
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("stem.conv.weight", "classifier.weight", "Whole model", "Sparsity"):
        assert name in result.stdout
    imported = imported_modules(result.stderr)
    assert "torch" in imported and "rich" in imported  # the check sees real imports
    assert not imported & set(QT_MODULES)


def test_prune_then_apply_end_to_end(tmp_path: Path) -> None:
    first = tmp_path / "cnn.safetensors"
    result = run_main(
        "prune",
        "demo:cnn",
        "--method",
        "random_unstructured",
        "--amount",
        "30%",
        "--seed",
        "5",
        "--out",
        str(first),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # not a terminal: no progress bars
    recipe = Path(first.with_name(first.name + ".recipe.json"))
    assert f"saved {first} (state_dict," in result.stdout
    assert f"recipe {recipe}" in result.stdout
    zeros = zero_masks(first)
    for name in demo_session("cnn").names:
        assert zeros[name].float().mean() == pytest.approx(0.3, abs=0.01), name

    again = tmp_path / "again.pt"
    result = run_main(
        "apply", "demo:cnn", "--recipe", str(recipe), "--out", str(again), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 1 operation" in result.stdout
    replayed = zero_masks(again)
    assert replayed.keys() == zeros.keys()
    assert all(torch.equal(replayed[key], zeros[key]) for key in zeros)


def test_exit_statuses_and_one_line_errors(tmp_path: Path) -> None:
    usage = run_main(
        "prune", "demo:cnn", "--method", "n_m", "--amount", "0.3", "--out", "x.pt", cwd=tmp_path
    )
    assert usage.returncode == 2
    assert "n_m takes no --amount" in usage.stderr and "usage: python main.py prune" in usage.stderr

    missing = run_main("stats", "no_such_model.pt", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    assert (
        missing.stderr.startswith("python main.py: error: ")
        and "no_such_model.pt" in missing.stderr
    )

    debug = run_main("stats", "no_such_model.pt", "--debug", cwd=tmp_path)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert debug.stderr.splitlines()[-1] == missing.stderr.strip()


def test_whole_pickles_need_trust(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), path)
    refused = run_main("stats", str(path), "--json", cwd=tmp_path)
    assert refused.returncode == 1 and "--trust" in refused.stderr
    trusted = run_main("stats", str(path), "--json", "--trust", cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stderr
    assert [layer["name"] for layer in json.loads(trusted.stdout)["layers"]] == [
        "0.weight",
        "2.weight",
    ]


def test_factory_with_weights_and_json_arguments(tmp_path: Path) -> None:
    (tmp_path / "tiny_nets.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def make(width=4, depth=1):
                layers = [nn.Linear(3, width)] + [nn.Linear(width, width) for _ in range(depth)]
                return nn.Sequential(*layers)
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import tiny_nets  # type: ignore[import-not-found]

        model = tiny_nets.make(width=8, depth=2)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("tiny_nets", None)
    weights = tmp_path / "tiny.safetensors"  # the factory's module sits beside its weights
    save_file(model.state_dict(), weights)
    out = tmp_path / "tiny.pt"
    result = run_main(
        "prune",
        "tiny_nets:make",
        "--weights",
        str(weights),
        "--arg",
        "width=8",
        "--arg",
        "depth=2",
        "--method",
        "l1_unstructured",
        "--amount",
        "10",
        "--layers",
        "2",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    state = torch.load(out, weights_only=True)
    assert int((state["2.weight"] == 0).sum()) == 10
    assert torch.equal(state["0.weight"], model.state_dict()["0.weight"])
    saved_recipe = json.loads(Path(str(out) + ".recipe.json").read_text())
    assert saved_recipe["operations"][0]["targets"] == ["2.weight"]


@pytest.fixture(autouse=True)
def _no_stray_sigint_handler() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGINT)
    yield
    assert signal.getsignal(signal.SIGINT) is previous


def test_open_goes_to_the_window(tmp_path: Path) -> None:
    """``open`` (and a bare MODEL) are the window's: its options still work through main.py."""
    shot = tmp_path / "shot.png"
    result = run_main("open", "--demo", "mlp", "--screenshot", str(shot), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_every_entry_point_routes_the_same_headless_commands() -> None:
    import main as entry
    from core.cli import COMMANDS
    from gui import app

    assert entry.HEADLESS_COMMANDS == app.HEADLESS_COMMANDS == COMMANDS


def test_the_installed_script_runs_headless_commands(capsys) -> None:
    from gui import app

    assert app.main(["stats", "demo:mlp", "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 17226


def test_nm_and_block_shorthands_give_both_options(capsys, tmp_path) -> None:
    from core.io.checkpoints import read_session

    out = tmp_path / "nm.prunescope"
    code, _o, err = cli(
        capsys, "prune", "demo:cnn", "--method", "n_m", "--nm", "1:4", "--layers",
        "expand.conv", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert read_session(out).masks["expand.conv.weight"].sparsity == 0.75
    code, _o, err = cli(
        capsys, "prune", "demo:cnn", "--method", "block", "--block", "2x8", "--amount",
        "0.5", "--out", str(tmp_path / "b.prunescope"), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    code, _o, err = cli(
        capsys, "prune", "demo:cnn", "--method", "n_m", "--nm", "2:4", "--keep", "1",
        "--out", str(out),
    )  # fmt: skip
    assert code == 2 and "--keep" in err
    code, _o, err = cli(
        capsys, "prune", "demo:cnn", "--method", "block", "--block", "4", "--amount", "0.5",
        "--out", str(out),
    )  # fmt: skip
    assert code == 2 and "AxB" in err
