"""The headless ``eval`` and ``finetune`` commands (``core.cli.training``), in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.cli import main
from core.demos import evaluate_accuracy, load_demo, load_digits
from core.io.checkpoints import read_session


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_json_matches_the_engine(capsys) -> None:
    code, out, err = cli(capsys, "eval", "demo:cnn", "--data", "digits", "--json", "-q")
    assert code == 0, err
    document = json.loads(out)
    data = load_digits()
    expected = evaluate_accuracy(load_demo("cnn").model, data.test_x, data.test_y)
    assert document["top1"] == pytest.approx(expected)
    assert document["count"] == len(data.test_y)
    assert sum(map(sum, document["confusion"])) == len(data.test_y)
    assert document["fidelity"] == 1.0  # nothing is pruned


def test_eval_table_and_bad_split(capsys) -> None:
    code, out, _ = cli(capsys, "eval", "demo:mlp", "--data", "digits", "-q")
    assert code == 0
    assert "top-1 accuracy" in out and "class 9" in out
    code, _, err = cli(capsys, "eval", "demo:mlp", "--data", "digits", "--split", "nope", "-q")
    assert code == 2 and "--split nope" in err


def test_data_that_does_not_fit_the_model_fails_before_any_work(capsys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((20, 3, 5, 5), np.float32), y=np.zeros(20, np.int64))
    code, _, err = cli(capsys, "eval", "demo:cnn", "--data", str(bad), "-q")
    assert code == 1
    assert "bad.npz" in err and "error" in err


def test_bad_training_settings_are_usage_errors(capsys, tmp_path: Path) -> None:
    out = str(tmp_path / "x.safetensors")
    code, _, err = cli(
        capsys, "finetune", "demo:cnn", "--data", "digits", "--lr", "-1", "--out", out, "-q"
    )
    assert code == 2 and "lr" in err
    assert not Path(out).exists()


def test_finetune_holds_a_sessions_masks_and_saves(capsys, tmp_path: Path) -> None:
    pruned = tmp_path / "p.prunescope"
    code, _, err = cli(
        capsys,
        "prune",
        "demo:cnn",
        "--method",
        "l1_unstructured",
        "--global",
        "--amount",
        "0.8",
        "--out",
        str(pruned),
        "-q",
    )
    assert code == 0, err
    tuned = tmp_path / "t.prunescope"
    code, out, err = cli(
        capsys,
        "finetune",
        str(pruned),
        "--data",
        "digits",
        "--epochs",
        "2",
        "--keep",
        "last",
        "--out",
        str(tuned),
        "-q",
    )
    assert code == 0, err
    assert "fine-tuned 2 epochs, kept epoch 2" in out
    assert "val top-1" in out
    before, after = read_session(pruned), read_session(tuned)
    for name, mask in before.masks.items():
        assert mask is not None and after.masks[name] is not None
        assert torch.equal(after.masks[name].to_bool(), mask.to_bool()), name
        assert bool((after.weights[name][~mask.to_bool()] == 0).all()), name
    assert any(not torch.equal(after.weights[k], before.weights[k]) for k in before.masks)


def test_finetune_holds_the_zeros_of_a_plain_pruned_file(capsys, tmp_path: Path) -> None:
    pruned = tmp_path / "p.safetensors"
    code, _, err = cli(
        capsys,
        "prune",
        "demo:mlp",
        "--method",
        "l1_unstructured",
        "--amount",
        "0.7",
        "--out",
        str(pruned),
        "-q",
    )
    assert code == 0, err
    tuned = tmp_path / "t.safetensors"
    code, _, err = cli(
        capsys,
        "finetune",
        "core.demos:DigitsMLP",
        "--weights",
        str(pruned),
        "--data",
        "digits",
        "--epochs",
        "1",
        "--keep",
        "last",
        "--out",
        str(tuned),
    )
    assert code == 0, err
    assert "holding the exact zeros of 3 layer(s)" in err
    before, after = load_file(pruned), load_file(tuned)
    for key in ("fc1.weight", "fc2.weight", "classifier.weight"):
        zeros = before[key] == 0
        assert zeros.float().mean() > 0.6
        assert bool((after[key][zeros] == 0).all()), key
        assert not torch.equal(after[key], before[key])
