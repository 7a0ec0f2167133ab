"""The headless ``bench`` and ``slim`` commands (``core.cli.speed``), in-process."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from core.cli import main
from core.common.jobs import run_job
from core.demos import load_demo
from core.io.loading import open_model_job
from core.pruning.groups import GroupPrune
from core.pruning.session import PruningSession


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_slim_saves_a_smaller_model_that_matches_the_masked_one(capsys, tmp_path: Path) -> None:
    out = tmp_path / "cnn_slim.safetensors"
    code, stdout, err = cli(capsys, "slim", "demo:cnn", "--amount", "50%", "--out", str(out), "-q")
    assert code == 0, err
    assert "slim: removed" in stdout and "(slim," in stdout
    reopened = run_job(open_model_job(str(out))).model.eval()
    demo = load_demo("cnn")
    session = PruningSession(demo.model, example_input=demo.example_input)
    session.apply(GroupPrune(0.5))
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        masked, small = session.model(x), reopened(x)
    assert sum(p.numel() for p in reopened.parameters()) < 0.5 * sum(
        p.numel() for p in session.model.parameters()
    )
    assert (small - masked).abs().max() <= 1e-5 * masked.abs().max()


def test_slim_with_nothing_pruned_whole_says_so(capsys, tmp_path: Path) -> None:
    out = tmp_path / "x.safetensors"
    code, _, err = cli(capsys, "slim", "demo:cnn", "--out", str(out), "-q")
    assert code == 1 and "nothing to slim" in err
    assert not out.exists()
    code, _, err = cli(capsys, "slim", "demo:cnn", "--amount", "1.5", "--out", str(out), "-q")
    assert code == 2 and "--amount" in err


def test_bench_prints_every_form_and_exports(capsys, tmp_path: Path) -> None:
    report, table = tmp_path / "r.json", tmp_path / "r.csv"
    code, out, err = cli(
        capsys,
        "bench",
        "demo:mlp",
        "--batch-sizes",
        "1,4",
        "--min-run-time",
        "0.01",
        "--forms",
        "sparse",
        "--json",
        str(report),
        "--csv",
        str(table),
        "-q",
    )
    assert code == 0, err
    assert "torch.utils.benchmark" in out and "inference benchmark" in out
    rows = json.loads(report.read_text())["rows"]
    assert [(r["form"], r["batch_size"]) for r in rows] == [
        (form, batch) for batch in (1, 4) for form in ("dense", "masked", "sparse")
    ]
    for row in rows:
        assert row["available"] and row["median_ms"] > 0
        assert row["max_abs_diff"] <= 1e-4
    with table.open() as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)


def test_bench_rejects_unknown_forms_and_missing_inputs(capsys, tmp_path: Path) -> None:
    code, _, err = cli(capsys, "bench", "demo:mlp", "--forms", "turbo", "-q")
    assert code == 2 and "turbo" in err
    code, _, err = cli(capsys, "bench", "demo:mlp", "--json", str(tmp_path / "no" / "r.json"), "-q")
    assert code == 1 and "no such folder" in err


def test_costlab_measures_every_size_ratio_and_kind(capsys) -> None:
    code, out, err = cli(
        capsys,
        "costlab",
        "--sizes",
        "16,32",
        "--ratios",
        "0,0.5",
        "--min-run-time",
        "0.002",
        "--threads",
        "1",
        "-q",
    )
    assert code == 0, err
    body = [line for line in out.splitlines() if line.startswith("│")]
    assert len(body) == 8  # 2 sizes x 2 ratios x unstructured/structured
    assert sum("structured" in line and "unstructured" not in line for line in body) == 4
    code, _, err = cli(capsys, "costlab", "--ratios", "0,1.5", "-q")
    assert code == 2 and "ratios" in err


def test_costlab_speed_test_explains_the_measured_speed_ups(capsys) -> None:
    code, out, err = cli(capsys, "costlab", "--speed-test", "--min-run-time", "0.002", "-q")
    assert code == 0, err
    assert "physically smaller" in out and "Zeros cost the same" in out


def test_after_a_group_prune_plain_pruning_leaves_the_held_norm_parameters_alone(
    capsys, tmp_path: Path
) -> None:
    grouped = tmp_path / "g.prunescope"
    code, _, err = cli(capsys, "slim", "demo:cnn", "--amount", "0.25", "--out", str(grouped), "-q")
    assert code == 0, err
    again = tmp_path / "g2.prunescope"
    code, out, err = cli(
        capsys,
        "prune",
        str(grouped),
        "--method",
        "l1_unstructured",
        "--amount",
        "0.5",
        "--out",
        str(again),
        "-q",
    )
    assert code == 0, err
    assert "Prune 5 layers" in out  # the Linear/Conv weights, not the BN scales and shifts


def test_slim_refuses_a_model_it_cannot_rebuild_before_any_work(capsys, tmp_path: Path) -> None:
    whole = tmp_path / "whole.pt"
    torch.save(load_demo("mlp").model, whole)
    code, _, err = cli(
        capsys,
        "slim",
        str(whole),
        "--trust",
        "--amount",
        "0.5",
        "--input-shape",
        "1,64",
        "--out",
        str(tmp_path / "s.safetensors"),
        "-q",
    )
    assert code == 1 and "slim format rebuilds the model from its code" in err
    assert "slimming" not in err
