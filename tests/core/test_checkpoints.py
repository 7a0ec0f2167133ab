"""Saving in every format, reading PruneScope's own back, and never leaving a broken file.

Round trips must be bit-identical where the format is lossless (weights,
masks, permanent masks, originals, the record of operations); the plain
formats must load in the user's own code without PruneScope; every write is
atomic (a failure, a cancel or a SIGKILL leaves the previous file); a damaged
file always gives a PruningError naming it, never a wrong model.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from core.common.errors import DiskSpaceError, JobCancelled, PruningError
from core.common.jobs import CancelToken, Progress, run_job
from core.demos import load_demo
from core.io import checkpoints, expand, sparse_format, tensor_file
from core.io.atomic import atomic_write
from core.io.checkpoints import (
    FORMATS,
    SESSION_SUFFIX,
    SavedFiles,
    SavedSession,
    format_for_path,
    is_sparse_file,
    read_session,
    read_sparse,
    recipe_path_for,
    save,
    save_job,
)
from core.io.recipe import load_recipe
from core.pruning import scatter
from core.pruning.methods import L1Unstructured, LnStructured, RandomUnstructured
from core.pruning.operations import operation_from_dict
from core.pruning.session import PruningSession

ROOT = Path(__file__).resolve().parents[2]

#: A model the "user's own code" defines too: conv, batch norm, linear, a head tied to the
#: embedding. The tests and the subprocesses build it from this same source.
USER_MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    class UserNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 8)
            self.conv = nn.Conv1d(8, 8, 3, padding=1)
            self.norm = nn.BatchNorm1d(8)
            self.fc = nn.Linear(8, 8)
            self.head = nn.Linear(8, 10, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, tokens):
            x = self.emb(tokens).transpose(1, 2)
            x = torch.relu(self.norm(self.conv(x))).transpose(1, 2)
            return self.head(torch.relu(self.fc(x)))
    """
)
TOKENS = torch.arange(10).repeat(3, 1)


def user_model(seed: int = 0) -> nn.Module:
    """:data:`USER_MODEL` built under a fixed seed, with trained-looking batch norm stats."""
    namespace: dict[str, Any] = {}
    exec(USER_MODEL, namespace)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: nn.Module = namespace["UserNet"]()
        model.train()
        with torch.no_grad():
            model(TOKENS)  # running statistics move away from their defaults
    return model.eval()


@pytest.fixture
def user_session() -> Iterator[PruningSession]:
    """A session on :func:`user_model` with the tied embedding/head pruned too."""
    with PruningSession(user_model(), include_embeddings=True, example_input=TOKENS) as session:
        session.global_prune(0.5)
        session.prune(["fc.weight"], LnStructured(0.25, n=1, dim=0))
        yield session


def pruned_demo() -> PruningSession:
    """The cnn demo with a history of every kind that a session file must keep."""
    demo = load_demo("cnn")
    session = PruningSession(demo.model, example_input=demo.example_input)
    names = session.names
    session.global_prune(0.5)
    session.make_permanent([names[0]])
    session.prune(names[:3], L1Unstructured(0.3))  # further: the permanent part stays
    session.prune([names[3]], RandomUnstructured(0.4, seed=2))
    session.paint(names[1], [0, 1, 2, 5], keep=True)
    weights = session.effective(names[-1]) * 1.5
    session.update_weights({names[-1]: weights}, "Fine-tune the classifier")
    session.prune([names[-1]], L1Unstructured(0.2))
    return session


def bits(t: torch.Tensor) -> torch.Tensor:
    """A tensor's raw bits, so -0.0 and NaN compare exactly."""
    return (
        t.detach()
        .reshape(-1)
        .view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])
    )


def assert_same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype, key
        assert a[key].shape == b[key].shape, key
        assert torch.equal(bits(a[key]), bits(b[key])), key


def reopen(saved: SavedSession, model: nn.Module) -> PruningSession:
    """What the loader does with a saved session: weights in, a session, the state put back."""
    model.load_state_dict(saved.weights)
    session = PruningSession(model, **saved.metadata["target_options"])
    operations = [operation_from_dict(data, replay=False) for data in saved.operations]
    session.load_state(saved.masks, saved.originals, saved.floors, operations)
    return session


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ----------------------------------------------------------------------------- names


def test_format_names_and_suffixes() -> None:
    assert FORMATS == ("state_dict", "session", "torch_prune", "sparse", "slim", "export", "onnx")
    assert SESSION_SUFFIX == ".prunescope"
    assert format_for_path("a.prunescope") == "session"
    assert format_for_path(Path("dir/a.PT2")) == "export"
    assert format_for_path("a.onnx") == "onnx"
    for name in ("a.safetensors", "a.pt", "a.bin", "a"):
        assert format_for_path(name) == "state_dict"
    assert recipe_path_for("dir/a.safetensors") == Path("dir/a.safetensors.recipe.json")


def test_recipes_of_two_saves_do_not_overwrite_each_other(net_session, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    first = save(net_session, tmp_path / "a.safetensors")
    net_session.prune(["fc2.weight"], L1Unstructured(0.5))
    second = save(net_session, tmp_path / "a.pt")
    assert first.recipe == tmp_path / "a.safetensors.recipe.json"
    assert second.recipe == tmp_path / "a.pt.recipe.json"
    assert len(load_recipe(first.recipe).operations) == 1
    assert len(load_recipe(second.recipe).operations) == 2
    assert first == SavedFiles(first.path, first.recipe, "state_dict", first.path.stat().st_size)


def test_a_recipe_with_weight_updates_is_saved_but_refused_on_load(net_session, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    net_session.update_weights({"fc2.bias": torch.zeros(4)}, "Zero the bias")
    saved = save(net_session, tmp_path / "m.safetensors")
    assert saved.recipe is not None
    assert "Zero the bias" in saved.recipe.read_text()
    with pytest.raises(PruningError, match="cannot be replayed"):
        load_recipe(saved.recipe)


def test_the_name_picks_the_format(net_session, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    path = tmp_path / "m.prunescope"
    saved = save(net_session, path, format_for_path(path))
    assert saved.recipe == tmp_path / "m.prunescope.recipe.json" and saved.recipe.is_file()
    assert read_session(path).masks["fc1.weight"] == net_session.packed_mask("fc1.weight")


@pytest.mark.parametrize(
    ("name", "format", "options", "message"),
    [
        ("m.txt", "state_dict", {}, r"m\.txt: a state_dict file name ends in \.safetensors"),
        ("m.pt", "session", {}, r"ends in \.prunescope"),
        ("m.pt", "sparse", {}, r"ends in \.safetensors"),
        ("m.pt", "zip", {}, "unknown format 'zip'"),
        ("m.pt", "state_dict", {"half": True}, "sparse format only"),
        ("m.prunescope", "session", {"reference": {"x": object()}}, "reference cannot be saved"),
    ],
)
def test_bad_requests_are_refused_before_writing(
    net_session, tmp_path, name: str, format: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(PruningError, match=message):
        save(net_session, tmp_path / name, format, **options)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- state_dict


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_state_dict_holds_the_zeros_under_the_models_own_keys(
    user_session, tmp_path, suffix
) -> None:
    saved = save(user_session, tmp_path / f"m{suffix}")
    assert saved.format == "state_dict"
    if suffix == ".pt":
        state = torch.load(saved.path, weights_only=True)
        assert type(state) is dict
        assert state["emb.weight"].data_ptr() == state["head.weight"].data_ptr()  # shared once
    else:
        file_order = load_file(saved.path)  # in the file's (aligned) order
        state = {key: file_order[key] for key in user_session.model.state_dict()}
    assert_same_state(state, user_session.model.state_dict())
    fresh = user_model(seed=5)
    fresh.load_state_dict(state)
    assert torch.equal(fresh(TOKENS), user_session.model(TOKENS))


def test_plain_formats_load_in_the_users_own_code(user_session, tmp_path) -> None:
    """state_dict (.pt, .safetensors) and torch_prune (.pt) in a process without PruneScope."""
    files = {
        "state_pt": save(user_session, tmp_path / "m.pt").path,
        "state_st": save(user_session, tmp_path / "m.safetensors").path,
        "torch_prune": save(user_session, tmp_path / "tp.pt", "torch_prune").path,
    }
    script = USER_MODEL + textwrap.dedent(
        f"""
        import sys
        from safetensors.torch import load_file
        from torch.nn.utils import prune

        tokens = torch.arange(10).repeat(3, 1)
        outputs = {{}}
        for kind, path in {json.dumps({k: str(v) for k, v in files.items()})}.items():
            model = UserNet().eval()
            state = load_file(path) if path.endswith(".safetensors") else torch.load(
                path, weights_only=True)
            if kind == "torch_prune":
                for key in [k for k in state if k.endswith("_mask")]:
                    module_name, _, attr = key[: -len("_mask")].rpartition(".")
                    prune.identity(model.get_submodule(module_name), attr)
            model.load_state_dict(state)
            outputs[kind] = model(tokens)
        assert not any(m == "core" or m.startswith("core.") for m in sys.modules)
        torch.save(outputs, {str(tmp_path / "outputs.pt")!r})
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    outputs = torch.load(tmp_path / "outputs.pt", weights_only=True)
    expected = user_session.model(TOKENS)
    for kind in files:
        assert torch.allclose(outputs[kind], expected, atol=1e-6), kind


def test_torch_prune_format_has_torchs_keys(user_session, tmp_path) -> None:
    state = torch.load(save(user_session, tmp_path / "m.pt", "torch_prune").path, weights_only=True)
    assert {"fc.weight_orig", "fc.weight_mask", "emb.weight_orig", "head.weight_mask"} <= set(state)
    assert "fc.weight" not in state
    assert torch.equal(state["fc.weight_mask"].bool(), user_session.mask("fc.weight"))
    assert torch.equal(state["fc.weight_orig"], user_session.original("fc.weight"))


# ----------------------------------------------------------------------------- session


def test_session_reopens_bit_identically(tmp_path) -> None:
    session = pruned_demo()
    reference = {"kind": "demo", "name": "cnn"}
    saved_files = save(session, tmp_path / "m.prunescope", "session", reference=reference)
    assert saved_files.format == "session"
    saved = read_session(saved_files.path)
    assert saved.reference == reference
    assert saved.metadata["format"] == "prunescope-session"
    assert saved.metadata["labels"] == [op.label for op in session.operations]
    assert saved.example_input is not None
    assert torch.equal(saved.example_input, session.example_input)
    assert_same_state(saved.weights, session.model.state_dict())

    reopened = reopen(saved, load_demo("cnn").model)
    assert reopened.names == session.names
    for name in session.names:
        assert reopened.packed_mask(name) == session.packed_mask(name), name
        assert reopened.floor(name) == session.floor(name), name
        assert torch.equal(bits(reopened.original(name)), bits(session.original(name))), name
    assert_same_state(reopened.model.state_dict(), session.model.state_dict())
    assert [op.label for op in reopened.operations] == [op.label for op in session.operations]
    assert [op.to_dict() for op in reopened.operations] == [
        op.to_dict() for op in session.operations
    ]
    assert any(session.floor(n) is not None for n in session.names)  # the case is covered
    reopened.reset()  # originals came back: pruning undoes to the saved originals
    for name in session.names:
        assert torch.equal(reopened.effective(name), session.original(name))


def test_session_without_originals_reopens_with_pruning_permanent(net_session, tmp_path) -> None:
    net_session.prune(["conv.weight", "fc1.weight"], L1Unstructured(0.5))
    path = save(net_session, tmp_path / "m.prunescope", "session", originals=False).path
    saved = read_session(path)
    assert saved.originals == {} and saved.metadata["originals"] is False
    with_originals = save(net_session, tmp_path / "o.prunescope", "session").path
    assert path.stat().st_size < with_originals.stat().st_size
    model = type(net_session.model)()
    reopened = reopen(saved, model)
    for name in ("conv.weight", "fc1.weight"):
        assert reopened.packed_mask(name) == net_session.packed_mask(name)
        assert reopened.floor(name) == reopened.packed_mask(name)  # nothing to restore


def test_session_keeps_tied_weights_once(lm_session, make_lm, tmp_path) -> None:
    lm_session.prune(["emb.weight"], L1Unstructured(0.5))
    path = save(lm_session, tmp_path / "lm.prunescope", "session").path
    saved = read_session(path)
    assert saved.weights["emb.weight"] is saved.weights["head.weight"]
    reopened = reopen(saved, make_lm(3))
    assert reopened.model.head.weight is reopened.model.emb.weight
    assert reopened.packed_mask("head.weight") == lm_session.packed_mask("emb.weight")
    assert torch.equal(reopened.original("emb.weight"), lm_session.original("emb.weight"))


def test_save_adopts_weights_changed_behind_the_sessions_back(net_session, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    with torch.no_grad():
        net_session.model.fc1.weight.add_(1.0)  # an optimiser step, say: pruned entries too
    path = save(net_session, tmp_path / "m.safetensors", "sparse").path
    assert net_session.operations[-1].kind == "outside_change"
    state = read_sparse(path)
    assert_same_state(state, net_session.model.state_dict())
    assert not state["fc1.weight"][~net_session.mask("fc1.weight")].any()


# ----------------------------------------------------------------------------- sparse


def test_sparse_reads_back_the_exact_state_dict(user_session, tmp_path) -> None:
    saved = save(user_session, tmp_path / "m.safetensors", "sparse")
    assert is_sparse_file(saved.path)
    state = read_sparse(saved.path)
    assert_same_state(state, user_session.model.state_dict())
    assert state["emb.weight"] is state["head.weight"]


def test_sparse_is_small_and_plain_safetensors_underneath(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(256, 256), nn.Linear(256, 256))
    with PruningSession(model) as session:
        session.global_prune(0.9)
        sparse = save(session, tmp_path / "s.safetensors", "sparse")
        dense = save(session, tmp_path / "d.safetensors")
        assert sparse.bytes < 0.15 * dense.bytes
        with safe_open(str(sparse.path), framework="pt") as handle:  # safetensors' own reader
            document = json.loads(handle.metadata()["prunescope"])
            stored = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        assert document["format"] == "prunescope-sparse" and document["half"] is False
        entry = document["entries"][0]
        # The documented few-line loader, without PruneScope.
        dense_weight = torch.zeros(entry["shape"]).reshape(-1)
        keep = np.unpackbits(stored[entry["mask"]].numpy(), count=dense_weight.numel()).astype(bool)
        dense_weight[torch.from_numpy(keep)] = stored[entry["values"]]
        assert torch.equal(dense_weight.reshape(entry["shape"]), model[0].weight)


def test_sparse_half_is_lossy_as_said_and_keeps_dtypes(tmp_path) -> None:
    model = nn.Sequential(nn.Linear(256, 256), nn.Linear(256, 8))
    with torch.no_grad():
        model[1].bias.fill_(1e6)  # beyond float16: kept at full precision
    with PruningSession(model, include_bias=True) as session:
        session.global_prune(0.8)
        half = save(session, tmp_path / "h.safetensors", "sparse", half=True)
        full = save(session, tmp_path / "f.safetensors", "sparse")
        assert half.bytes < 0.6 * full.bytes
        document = tensor_file.peek_document(half.path)
        assert document is not None and document["half"] is True and "float16" in document["lossy"]
        state = read_sparse(half.path)
        for key, value in model.state_dict().items():
            assert state[key].dtype == value.dtype
            assert torch.allclose(state[key], value, rtol=1e-3, atol=1e-4), key
        assert torch.equal(state["1.bias"], model[1].bias)
        assert torch.equal(state["0.weight"] == 0, model[0].weight == 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float64, torch.float16])
def test_sparse_round_trips_other_dtypes(tmp_path, dtype) -> None:
    model = nn.Sequential(nn.Linear(37, 13), nn.Linear(13, 3)).to(dtype)
    model.register_buffer("steps", torch.tensor([3, 1], dtype=torch.int64))
    with PruningSession(model) as session:
        session.prune(["0.weight"], L1Unstructured(0.7))
        state = read_sparse(save(session, tmp_path / "m.safetensors", "sparse").path)
        assert_same_state(state, model.state_dict())


def test_is_sparse_file_tells_formats_apart(net_session, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    sparse = save(net_session, tmp_path / "s.safetensors", "sparse").path
    assert is_sparse_file(sparse)
    for name, format in [
        ("d.safetensors", "state_dict"),
        ("d.pt", "state_dict"),
        ("m.prunescope", "session"),
    ]:
        assert not is_sparse_file(save(net_session, tmp_path / name, format).path)
    assert not is_sparse_file(tmp_path / "missing.safetensors")
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(sparse.read_bytes()[:-10])
    assert is_sparse_file(truncated)  # so reading it says what is wrong
    with pytest.raises(PruningError, match="truncated"):
        read_sparse(truncated)


def test_readers_refuse_other_files(net_session, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    session_file = save(net_session, tmp_path / "m.prunescope", "session").path
    sparse_file = save(net_session, tmp_path / "s.safetensors", "sparse").path
    plain = save(net_session, tmp_path / "p.safetensors").path
    with pytest.raises(PruningError, match=r"m\.prunescope: not a PruneScope sparse file"):
        read_sparse(session_file)
    with pytest.raises(PruningError, match="not a PruneScope session file"):
        read_session(sparse_file)
    with pytest.raises(PruningError, match="plain safetensors file"):
        read_session(plain)
    with pytest.raises(PruningError, match="no such file"):
        read_session(tmp_path / "missing.prunescope")
    pickle_file = save(net_session, tmp_path / "p.pt").path
    with pytest.raises(PruningError, match=r"p\.pt: not a valid PruneScope sparse file"):
        read_sparse(pickle_file)


def test_a_newer_version_is_refused(tmp_path) -> None:
    path = tmp_path / "new.safetensors"
    document = {"format": sparse_format.SPARSE, "version": sparse_format.VERSION + 1, "entries": []}
    with open(path, "wb") as handle:
        run_job(tensor_file.write_job(handle, [], document))
    with pytest.raises(PruningError, match="newer than this PruneScope understands"):
        read_sparse(path)


# ----------------------------------------------------------------------------- export, onnx


@pytest.mark.slow
def test_export_writes_a_torch_export_program(net_session, net_input, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    saved = save(net_session, tmp_path / "m.pt2", format_for_path("m.pt2"))
    program = torch.export.load(saved.path)
    assert torch.equal(program.module()(net_input), net_session.model(net_input))


def test_export_needs_an_example_input(make_net, tmp_path) -> None:
    with PruningSession(make_net(0)) as session:
        for name, format in [("m.pt2", "export"), ("m.onnx", "onnx")]:
            with pytest.raises(PruningError, match="needs an example input"):
                save(session, tmp_path / name, format)


def test_onnx_without_its_packages_says_what_to_install(net_session, tmp_path) -> None:
    if not checkpoints.onnx_missing():
        pytest.skip("onnx is installed here")
    with pytest.raises(PruningError, match=r"install PruneScope's onnx extra.*prunescope\[onnx\]"):
        save(net_session, tmp_path / "m.onnx", "onnx")
    assert list(tmp_path.iterdir()) == []


def test_onnx_writes_the_exported_model_proto(net_session, tmp_path, monkeypatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def export(model: nn.Module, args: tuple[Any, ...], **kwargs: Any) -> Any:
        calls.append((model, args, kwargs))
        proto = SimpleNamespace(SerializeToString=lambda: b"onnx model bytes")
        return SimpleNamespace(model_proto=proto)

    monkeypatch.setattr(checkpoints, "onnx_missing", lambda: [])
    monkeypatch.setattr(torch.onnx, "export", export)
    saved = save(net_session, tmp_path / "m.onnx", "onnx")
    assert saved.path.read_bytes() == b"onnx model bytes"
    assert calls[0][0] is net_session.model and calls[0][2] == {"dynamo": True}
    assert saved.recipe is not None and saved.recipe.is_file()


# ----------------------------------------------------------------------------- atomic writes


def test_a_failing_write_leaves_the_previous_file(net_session, tmp_path, monkeypatch) -> None:
    path = tmp_path / "m.prunescope"
    save(net_session, path, "session")
    before = path.read_bytes()
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(DiskSpaceError, match=r"m\.prunescope: not written, the disk is full"):
        save(net_session, path, "session")
    assert path.read_bytes() == before
    assert temporaries(tmp_path) == []


def test_an_exception_midway_removes_the_temporary_file(tmp_path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="midway"), atomic_write(path) as handle:
        handle.write(b"x" * 1000)
        raise RuntimeError("midway")
    assert path.read_bytes() == b"previous"
    assert temporaries(tmp_path) == []
    with atomic_write(path) as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new" and temporaries(tmp_path) == []


def test_a_folder_that_cannot_be_written_gives_a_clear_error(net_session, tmp_path) -> None:
    with pytest.raises(PruningError, match="could not be written"):
        save(net_session, tmp_path / "no" / "such" / "m.safetensors")


@pytest.mark.parametrize("format", ["sparse", "session", "state_dict"])
def test_a_cancelled_save_leaves_the_previous_file(format, tmp_path) -> None:
    model = nn.Sequential(*(nn.Linear(64, 64) for _ in range(4)))
    suffix = SESSION_SUFFIX if format == "session" else ".safetensors"
    path = tmp_path / f"m{suffix}"
    with PruningSession(model) as session:
        save(session, path, format)
        before = path.read_bytes()
        session.global_prune(0.5)
        token = CancelToken()
        seen: list[Progress] = []

        def on_progress(progress: Progress) -> None:
            seen.append(progress)
            if len(seen) == 2:
                token.cancel()

        with pytest.raises(JobCancelled):
            run_job(save_job(session, path, format, token=token), on_progress)
        assert path.read_bytes() == before
        assert temporaries(tmp_path) == []
        fractions = [p.fraction for p in seen]
        assert fractions == sorted(fractions) and len(seen) == 2
        done: list[Progress] = []
        run_job(save_job(session, path, format), done.append)
        assert done[-1].fraction == 1.0 and path.read_bytes() != before


KILL_CHILD = textwrap.dedent(
    """
    import sys
    import torch
    from torch import nn
    from core.io.checkpoints import save
    from core.pruning.session import PruningSession

    path, format = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(1024, 1024) for _ in range(5)))  # 21 MB
    session = PruningSession(model)
    session.global_prune(0.5)
    save(session, path, format)  # the previous file: version A (pruned)
    print("ready", flush=True)
    while True:  # alternate between version B (unpruned) and A until killed
        session.undo()
        save(session, path, format)
        session.redo()
        save(session, path, format)
    """
)


def read_any(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == SESSION_SUFFIX:
        return read_session(path).weights
    if is_sparse_file(path):
        return read_sparse(path)
    if path.suffix == ".safetensors":
        return load_file(path)
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_saves_killed_at_random_points_never_damage_the_file(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(*(nn.Linear(1024, 1024) for _ in range(5)))
    with PruningSession(model) as session:
        unpruned = {k: v.clone() for k, v in model.state_dict().items()}
        session.global_prune(0.5)
        pruned = {k: v.clone() for k, v in model.state_dict().items()}
    targets = [
        ("m.prunescope", "session"),
        ("s.safetensors", "sparse"),
        ("d.pt", "state_dict"),
        ("d.safetensors", "state_dict"),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", KILL_CHILD, str(tmp_path / name), format],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name, format in targets
    ]
    rng = random.Random(1)
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            time.sleep(rng.uniform(0.05, 0.4))
            child.send_signal(signal.SIGKILL)
    finally:
        for child in children:
            child.kill()
            child.wait()
            assert child.stdout is not None
            child.stdout.close()
    for name, _ in targets:
        state = read_any(tmp_path / name)
        assert any(
            all(torch.equal(state[k], version[k]) for k in version)
            for version in (pruned, unpruned)
        ), name


# ----------------------------------------------------------------------------- damage


@pytest.fixture(scope="module")
def pristine() -> Iterator[dict[str, tuple[bytes, Any]]]:
    """Bytes of a small session file and sparse file, and what each reads back as."""
    with (
        tempfile.TemporaryDirectory() as folder,
        PruningSession(user_model(), include_embeddings=True, example_input=TOKENS) as session,
    ):
        session.global_prune(0.6)
        session.prune(["fc.weight"], L1Unstructured(0.3))
        files = {}
        for format, name in [("session", "m.prunescope"), ("sparse", "m.safetensors")]:
            path = save(session, Path(folder) / name, format, reference={"kind": "test"}).path
            files[format] = (path.read_bytes(), READERS[format](path))
        yield files


def read_session_all(path: Path) -> tuple[Any, ...]:
    saved = read_session(path)
    return (
        saved.reference,
        saved.weights,
        saved.masks,
        saved.floors,
        saved.originals,
        saved.operations,
        saved.metadata,
        saved.example_input,
    )


READERS: dict[str, Callable[[Path], Any]] = {"session": read_session_all, "sparse": read_sparse}


def same(a: Any, b: Any) -> bool:
    """Deep equality with tensors compared bit for bit."""
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and (torch.equal(bits(a), bits(b)))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return bool(a == b)


@settings(max_examples=40, deadline=None)
@given(
    format=st.sampled_from(["session", "sparse"]),
    cut=st.one_of(st.none(), st.floats(0.0, 1.0, exclude_max=True)),
    flips=st.lists(
        st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(1, 255)), max_size=3
    ),
)
def test_damaged_files_give_an_error_never_a_wrong_model(
    pristine: dict[str, tuple[bytes, Any]],
    format: str,
    cut: float | None,
    flips: list[tuple[float, int]],
) -> None:
    data, expected = pristine[format]
    damaged = bytearray(data)
    for where, xor in flips:
        damaged[int(where * len(damaged))] ^= xor
    if cut is not None:
        damaged = damaged[: int(cut * len(damaged))]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("m.prunescope" if format == "session" else "m.safetensors")
        path.write_bytes(bytes(damaged))
        try:
            result = READERS[format](path)
        except PruningError as exc:
            assert str(path) in str(exc)
            return
    assert bytes(damaged) == data or same(result, expected)


def test_damage_messages_say_what_is_wrong(net_session, tmp_path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    data = save(net_session, tmp_path / "m.prunescope", "session").path.read_bytes()
    path = tmp_path / "d.prunescope"
    flipped = bytearray(data)
    flipped[-3] ^= 0x40  # in the data
    path.write_bytes(bytes(flipped))
    with pytest.raises(
        PruningError, match=r"d\.prunescope: the file is damaged \(tensor .* checksum"
    ):
        read_session(path)
    header_end = 8 + int.from_bytes(data[:8], "little")
    inside = data.index(b"torch_version", 0, header_end)  # in the header's description
    flipped = bytearray(data)
    flipped[inside] = ord("X")
    path.write_bytes(bytes(flipped))
    with pytest.raises(PruningError, match="header checksum does not match"):
        read_session(path)
    path.write_bytes(data + b"junk")
    with pytest.raises(PruningError, match="4 unexpected bytes follow the data"):
        read_session(path)
    path.write_bytes(data[:5])
    with pytest.raises(PruningError, match="truncated or not a PruneScope session"):
        read_session(path)


# ----------------------------------------------------------------------------- the kernel


@pytest.mark.parametrize("numel", [0, 1, 7, 8, 9, 64, 1001])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.float16])
def test_expand_is_compress_inverted(numel: int, density: float, dtype: Any) -> None:
    rng = np.random.default_rng(numel)
    keep = rng.random(numel) < density
    values = rng.integers(1, 100, int(keep.sum())).astype(dtype)
    out = np.full(numel, 7, dtype=dtype)
    expand.expand_packed(out, np.packbits(keep), values)
    expected = np.zeros(numel, dtype=dtype)
    np.place(expected, keep, values)
    assert np.array_equal(out, expected)


def test_expand_in_parallel_bands_matches_numpy(monkeypatch) -> None:
    monkeypatch.setattr(scatter, "PARALLEL_BYTES", 64)
    monkeypatch.setattr(scatter.os, "cpu_count", lambda: 3)
    rng = np.random.default_rng(0)
    keep = rng.random(64 * 8 * 3 + 5) < 0.3
    values = rng.random(int(keep.sum())).astype(np.float32)
    out = np.empty(keep.size, dtype=np.float32)
    expand.expand_packed(out, np.packbits(keep), values)
    expected = np.zeros(keep.size, dtype=np.float32)
    np.place(expected, keep, values)
    assert np.array_equal(out, expected)


def test_expand_checks_its_inputs_before_writing() -> None:
    out = np.full(16, 5.0, dtype=np.float32)
    with pytest.raises(ValueError, match="do not match the mask"):
        expand.expand_packed(out, np.array([0xFF, 0x01], np.uint8), np.ones(8, np.float32))
    with pytest.raises(ValueError, match="do not fit"):
        expand.expand_packed(out, np.array([0xFF], np.uint8), np.ones(8, np.float32))
    with pytest.raises(ValueError, match="item size"):
        expand.expand_packed(out, np.array([0xFF, 0], np.uint8), np.ones(8, np.float64))
    assert (out == 5.0).all()


def test_a_mask_with_bits_past_its_end_is_refused(tmp_path) -> None:
    file = tensor_file.TensorFile(tmp_path / "m.safetensors", (), None, 8)
    stored = torch.tensor([0xFF, 0x80], dtype=torch.uint8)  # 9 entries: 7 bits past the end
    assert sparse_format.packed_mask(file, "w", stored, (3, 3)).kept == 9
    with pytest.raises(PruningError, match="'w' has bits set past its end"):
        sparse_format.packed_mask(file, "w", torch.tensor([0xFF, 0xC0], dtype=torch.uint8), (3, 3))
    with pytest.raises(PruningError, match="does not fit its shape"):
        sparse_format.packed_mask(file, "w", stored, (5, 4))


def test_a_description_that_is_not_json_is_refused(tmp_path) -> None:
    with (
        open(tmp_path / "m.safetensors", "wb") as handle,
        pytest.raises(PruningError, match="cannot be saved as JSON"),
    ):
        run_job(tensor_file.write_job(handle, [], {"format": "x", "amount": float("nan")}))


def test_what_safetensors_cannot_hold_is_refused(tmp_path, monkeypatch) -> None:
    tensor = torch.zeros(3, dtype=torch.complex128)
    with (
        open(tmp_path / "a.safetensors", "wb") as handle,
        pytest.raises(PruningError, match=r"w: tensors of type torch\.complex128 cannot be saved"),
    ):
        run_job(tensor_file.write_job(handle, [tensor_file.stored_tensor("w", tensor)]))
    monkeypatch.setattr(tensor_file, "MAX_HEADER", 64)
    with (
        open(tmp_path / "b.safetensors", "wb") as handle,
        pytest.raises(PruningError, match="more than safetensors allows"),
    ):
        run_job(tensor_file.write_job(handle, [], {"format": "x", "text": "y" * 100}))


@pytest.mark.parametrize("format", ["session", "slim"])
def test_measurements_of_the_saved_state_come_back(tmp_path, format) -> None:
    from core.io.loading import open_model_job, open_session
    from core.pruning.groups import GroupPrune
    from core.pruning.slim import slim_job, slim_operation

    demo = load_demo("cnn")
    session = PruningSession(demo.model, example_input=demo.example_input)
    session.prune(session.names[:2], L1Unstructured(0.5))
    if format == "slim":
        session.apply(GroupPrune(0.5))
        session.apply(slim_operation(run_job(slim_job(session, demo.example_input))))
    evaluation = {"split": "test", "count": 360, "top1": 0.93, "per_class": [1.0, None]}
    session.history.measurements()["evaluation:test"] = evaluation
    session.history.measurements()["not plain data"] = torch.zeros(2)
    path = tmp_path / ("m.prunescope" if format == "session" else "m.safetensors")
    save(session, path, format, reference={"kind": "demo", "target": "cnn"})
    with open_session(run_job(open_model_job(str(path)))) as reopened:
        assert reopened.history.measurements() == {"evaluation:test": evaluation}
