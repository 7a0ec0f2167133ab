"""Opening models the way people have them (core.io.references, core.io.loading).

Every kind of source opens to a model that computes what the saved one did:
demos, factories with state_dict files (torch, safetensors, sparse, nested
checkpoints, torch's pruned format), Hugging Face folders, TorchScript, whole
pickled models (only with trust: a malicious pickle runs nothing without it),
models pruned with torch.nn.utils.prune, and PruneScope sessions. Files are
made by the tests at run time; factories live in modules the tests write to
temporary folders (imported from beside the weights file).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickle
import sys
import uuid
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn.utils import prune

from core.common.errors import JobCancelled, PruningError
from core.common.jobs import CancelToken, Progress, run_job
from core.demos import DEMO_NAMES, DigitsMLP, load_demo
from core.io import loading
from core.io.loading import (
    FactoryRequired,
    OpenedModel,
    StateMismatch,
    TrustRequired,
    open_model,
    open_model_job,
    open_session,
)
from core.io.references import ModelReference, parse_model_spec
from core.pruning.methods import L1Unstructured
from core.pruning.session import PruningSession

SOURCE = '''
"""Models for the loader's tests."""
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, width=8, classes=3):
        super().__init__()
        self.fc1 = nn.Linear(6, width)
        self.fc2 = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Tied(nn.Module):
    def __init__(self, vocab=10, width=4):
        super().__init__()
        self.emb = nn.Embedding(vocab, width)
        self.fc = nn.Linear(width, width)
        self.head = nn.Linear(width, vocab, bias=False)
        self.head.weight = self.emb.weight

    def forward(self, tokens):
        return self.head(torch.relu(self.fc(self.emb(tokens))))


def build(width=8, classes=3):
    return Net(width, classes)
'''

X = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
TOKENS = torch.arange(10).unsqueeze(0)


@dataclass
class Zoo:
    """A module of test models, written to ``folder`` under a unique ``name``."""

    folder: Path
    name: str

    def module(self) -> ModuleType:
        """The module, loaded from its file but not registered (so not importable)."""
        spec = importlib.util.spec_from_file_location(self.name, self.folder / f"{self.name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def new(self, cls: str = "Net", seed: int = 0, **kwargs: Any) -> nn.Module:
        """A seeded instance of one of the module's classes."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model: nn.Module = getattr(self.module(), cls)(**kwargs)
        return model.eval()

    @contextmanager
    def registered(self, module: ModuleType) -> Iterator[None]:
        """The module importable meanwhile (pickling a whole model needs that)."""
        sys.modules[self.name] = module
        try:
            yield
        finally:
            del sys.modules[self.name]

    def pickled(self, model_of: Callable[[ModuleType], nn.Module], path: Path) -> nn.Module:
        """``torch.save`` a whole model built from the module; returns the model."""
        module = self.module()
        with self.registered(module):
            model = model_of(module)
            torch.save(model, path)
        return model


@pytest.fixture
def zoo(tmp_path: Path) -> Iterator[Zoo]:
    folder = tmp_path / "models"
    folder.mkdir()
    name = f"pstest_{uuid.uuid4().hex[:12]}"
    (folder / f"{name}.py").write_text(SOURCE, encoding="utf-8")
    yield Zoo(folder, name)
    sys.modules.pop(name, None)


def same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor = X) -> bool:
    with torch.no_grad():
        return torch.equal(a(x), b(x))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------- references


def test_demo_specs_become_demo_references() -> None:
    for name in DEMO_NAMES:
        assert parse_model_spec(f"demo:{name}") == ModelReference("demo", name)
    with pytest.raises(PruningError, match=r"unknown demo 'vgg'.*demo:cnn"):
        parse_model_spec("demo:vgg")


def test_existing_files_and_folders_are_paths_and_folder_references(tmp_path: Path) -> None:
    file = tmp_path / "model.pt"
    file.write_bytes(b"x")
    assert parse_model_spec(str(file)) == file.resolve()
    assert parse_model_spec(str(tmp_path)) == ModelReference("folder", str(tmp_path.resolve()))


def test_factory_specs_carry_absolute_weights_and_sorted_json_args(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    ref = parse_model_spec(
        "pkg.mod:Builder.make", weights=str(weights), args={"width": 4, "act": "relu"}
    )
    assert ref == ModelReference(
        "factory", "pkg.mod:Builder.make", str(weights.resolve()), (("act", "relu"), ("width", 4))
    )
    assert isinstance(ref, ModelReference)
    assert ref.kwargs == {"act": "relu", "width": 4}
    assert parse_model_spec("pkg.mod:build") == ModelReference("factory", "pkg.mod:build")


@pytest.mark.parametrize(
    ("spec", "options", "message"),
    [
        ("nowhere/model.pt", {}, r"nowhere/model\.pt: no such file or folder.*factory"),
        ("", {}, "no such file"),
        ("pkg.mod:build", {"weights": "missing.pt"}, r"missing\.pt: no such weights file"),
        ("pkg.mod:build", {"args": {"f": object()}}, "not a JSON value"),
        ("pkg.mod:build", {"args": {"1x": 1}}, "identifiers"),
        ("demo:cnn", {"args": {"width": 4}}, "given with a factory"),
    ],
)
def test_bad_specs_say_what_to_write(spec: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(PruningError, match=message):
        parse_model_spec(spec, **options)


def test_weights_with_a_file_are_refused(tmp_path: Path) -> None:
    file = tmp_path / "model.pt"
    file.write_bytes(b"x")
    with pytest.raises(PruningError, match="given with a factory"):
        parse_model_spec(str(file), weights=str(file))


def test_references_round_trip_through_dicts_and_describe_themselves() -> None:
    refs = [
        ModelReference("demo", "mlp"),
        ModelReference("factory", "a.b:c", "/w/x.safetensors", (("hidden", [4, 2]), ("n", 1))),
        ModelReference("factory", "a.b:c"),
        ModelReference("folder", "/models/bert"),
        ModelReference("torchscript", "/m/s.pt"),
        ModelReference("pickle", "/m/p.pt"),
    ]
    for ref in refs:
        assert ModelReference.from_dict(ref.to_dict()) == ref
    assert refs[0].describe() == "demo mlp"
    assert refs[1].describe() == "a.b:c(hidden=[4, 2], n=1) with x.safetensors"
    assert refs[2].describe() == "a.b:c(), initial weights"
    assert refs[3].describe() == "bert"
    assert hash(refs[2]) == hash(ModelReference("factory", "a.b:c"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "not an object"),
        ({"kind": "demo", "target": "cnn", "extra": 1}, "unknown fields"),
        ({"kind": "onnx", "target": "m.onnx"}, "unknown model kind"),
        ({"kind": "demo", "target": "vgg"}, "unknown demo"),
        ({"kind": "factory", "target": "not a factory"}, "not a factory"),
        ({"kind": "factory", "target": "a:b", "args": [1]}, "not an object"),
        ({"kind": "factory", "target": "a:b", "weights": 3}, "not a path"),
        ({"kind": "folder", "target": "/m", "weights": "w.pt"}, "only a factory"),
        ({"kind": "folder"}, "needs a target"),
    ],
)
def test_malformed_reference_dicts_are_pruning_errors(data: Any, message: str) -> None:
    with pytest.raises(PruningError, match=message):
        ModelReference.from_dict(data)


# --------------------------------------------------------------------- demos


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_digits_demos_open_with_data_and_their_example_input(name: str) -> None:
    opened = open_model(f"demo:{name}")
    demo = load_demo(name)
    assert opened.name == f"demo {name}"
    assert opened.reference == ModelReference("demo", name)
    assert opened.has_data
    assert opened.example_input is not None
    assert torch.equal(opened.example_input, demo.example_input)
    assert same_outputs(opened.model, demo.model, demo.example_input)
    assert not opened.model.training


def test_resnet_demo_opens_without_data() -> None:
    opened = open_model(ModelReference("demo", "resnet18"))
    assert not opened.has_data
    assert opened.example_input is not None
    assert tuple(opened.example_input.shape) == (1, 3, 64, 64)


def test_progress_ends_at_one_and_cancel_stops_the_job() -> None:
    seen: list[Progress] = []
    run_job(open_model_job("demo:mlp"), seen.append)
    assert seen[0].fraction == 0.0
    assert seen[-1] == Progress(1.0, "Opened demo mlp")
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        open_model("demo:mlp", token=token)


def test_cancel_while_loading_weights(zoo: Zoo) -> None:
    weights = zoo.folder / "net.pt"
    torch.save(zoo.new().state_dict(), weights)
    token = CancelToken()
    job = open_model_job(f"{zoo.name}:Net", weights=str(weights), token=token)
    with pytest.raises(JobCancelled):
        for progress in job:
            if progress.message == "Loading weights":
                token.cancel()


def test_a_reference_with_separate_weights_is_refused() -> None:
    with pytest.raises(PruningError, match="carries its own"):
        open_model(ModelReference("factory", "core.demos:DigitsMLP"), weights="w.pt")


# --------------------------------------------------------------------- factories


def test_factory_module_is_imported_from_beside_the_weights(zoo: Zoo) -> None:
    model = zoo.new()
    weights = zoo.folder / "net.pt"
    torch.save(model.state_dict(), weights)
    path_before = list(sys.path)
    opened = open_model(f"{zoo.name}:Net", weights=str(weights))
    assert sys.path == path_before
    assert opened.model is not model
    assert same_outputs(opened.model, model)
    assert opened.reference == ModelReference("factory", f"{zoo.name}:Net", str(weights))
    assert opened.name == f"{zoo.name}:Net() with net.pt"
    assert not opened.torch_masks and opened.saved_state is None


def test_factory_arguments_and_safetensors_weights(zoo: Zoo) -> None:
    model = zoo.new(width=5, classes=2)
    weights = zoo.folder / "net.safetensors"
    save_file(model.state_dict(), str(weights))
    opened = open_model(f"{zoo.name}:build", weights=str(weights), args={"width": 5, "classes": 2})
    assert same_outputs(opened.model, model)
    assert opened.reference is not None and opened.reference.kwargs == {"width": 5, "classes": 2}


def test_safetensors_content_is_found_whatever_the_suffix(zoo: Zoo) -> None:
    model = zoo.new()
    weights = zoo.folder / "pytorch_model.bin"
    save_file(model.state_dict(), str(weights))
    opened = open_model(f"{zoo.name}:Net", weights=str(weights))
    assert same_outputs(opened.model, model)


def test_factory_on_the_import_path_with_json_list_arguments(tmp_path: Path) -> None:
    model = DigitsMLP(hidden=(12, 6))
    weights = tmp_path / "mlp.pth"
    torch.save(model.state_dict(), weights)
    opened = open_model("core.demos:DigitsMLP", weights=str(weights), args={"hidden": [12, 6]})
    x = torch.rand(3, 1, 8, 8)
    assert same_outputs(opened.model, model.eval(), x)


def test_factory_without_weights_gives_its_initial_weights_and_says_so() -> None:
    opened = open_model("core.demos:DigitsMLP")
    assert isinstance(opened.model, DigitsMLP)
    assert any("initial weights" in note for note in opened.notes)


def test_state_dict_nested_in_a_training_checkpoint(zoo: Zoo) -> None:
    model = zoo.new()
    weights = zoo.folder / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "lr": 0.1}, weights)
    opened = open_model(f"{zoo.name}:Net", weights=str(weights))
    assert same_outputs(opened.model, model)
    assert any("'state_dict' entry" in note for note in opened.notes)


def test_state_dict_that_does_not_fit_lists_missing_unexpected_and_misshaped_keys(
    zoo: Zoo,
) -> None:
    state = zoo.new(width=16).state_dict()
    del state["fc2.bias"]
    state["extra.weight"] = torch.zeros(2)
    weights = zoo.folder / "other.pt"
    torch.save(state, weights)
    with pytest.raises(StateMismatch) as caught:
        open_model(f"{zoo.name}:Net", weights=str(weights))
    message = str(caught.value)
    assert message.startswith(f"other.pt does not match {zoo.name}:Net()")
    assert "1 missing key (fc2.bias)" in message
    assert "1 unexpected key (extra.weight)" in message
    assert "3 keys of another shape (fc1.weight: file [16, 6], model [8, 6]" in message
    assert caught.value.missing == ("fc2.bias",)


def test_long_mismatch_lists_are_cut_with_a_count(zoo: Zoo) -> None:
    weights = zoo.folder / "junk.pt"
    torch.save({f"junk{i}": torch.zeros(1) for i in range(9)}, weights)
    with pytest.raises(StateMismatch, match=r"9 unexpected keys \(junk0, .*junk4 and 4 more\)"):
        open_model(f"{zoo.name}:Net", weights=str(weights))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("pstest_nowhere_at_all:Net", "no module named pstest_nowhere_at_all"),
        ("core.demos:NoSuchThing", "core.demos has no NoSuchThing"),
        ("core.demos:DEMO_NAMES", "not a class or function"),
        ("core.demos:load_digits", "not a torch.nn.Module"),
    ],
)
def test_factories_that_cannot_build_a_model(target: str, message: str) -> None:
    with pytest.raises(PruningError, match=message):
        open_model(target)


def test_factory_errors_name_the_call(zoo: Zoo) -> None:
    with pytest.raises(PruningError, match=r"building the model failed \(TypeError"):
        open_model("core.demos:DigitsMLP", args={"depth": 3})
    broken = zoo.folder / f"{zoo.name}_broken.py"
    broken.write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    weights = zoo.folder / "w.pt"
    torch.save({}, weights)
    with pytest.raises(PruningError, match=r"importing .*_broken failed \(RuntimeError: boom"):
        open_model(f"{zoo.name}_broken:Net", weights=str(weights))


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".safetensors"])
def test_a_state_dict_alone_asks_for_its_factory(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"weights{suffix}"
    state = DigitsMLP().state_dict()
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    with pytest.raises(FactoryRequired, match=r"package\.module:factory with --weights weights"):
        open_model(str(path))


def test_weights_files_are_memory_mapped(zoo: Zoo, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = zoo.folder / "net.pt"
    torch.save(zoo.new().state_dict(), weights)
    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    open_model(f"{zoo.name}:Net", weights=str(weights))
    assert calls == [{"map_location": "cpu", "weights_only": True, "mmap": True}]


@pytest.mark.parametrize("kind", ["truncated", "flipped", "text"])
def test_broken_weights_files_give_a_clear_error(zoo: Zoo, kind: str) -> None:
    weights = zoo.folder / "net.pt"
    torch.save(zoo.new().state_dict(), weights)
    data = weights.read_bytes()
    if kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "flipped":
        data = data[:40] + bytes(b ^ 0xFF for b in data[40:80]) + data[80:]
    else:
        data = b"not a model at all\n"
    weights.write_bytes(data)
    with pytest.raises(PruningError, match=r"^net\.pt: could not be read") as caught:
        open_model(f"{zoo.name}:Net", weights=str(weights))
    assert not isinstance(caught.value, TrustRequired)


def test_broken_safetensors_give_a_clear_error(zoo: Zoo) -> None:
    weights = zoo.folder / "net.safetensors"
    save_file(zoo.new().state_dict(), str(weights))
    weights.write_bytes(weights.read_bytes()[:-20])
    with pytest.raises(PruningError, match=r"net\.safetensors: could not be read as safetensors"):
        open_model(f"{zoo.name}:Net", weights=str(weights))


# --------------------------------------------------------------------- whole pickled models


def test_a_whole_model_needs_trust_and_then_opens_from_beside_its_file(zoo: Zoo) -> None:
    path = zoo.folder / "whole.pt"
    model = zoo.pickled(lambda m: m.Net(), path)
    with pytest.raises(TrustRequired) as caught:
        open_model(str(path))
    assert f"{zoo.name}.Net" in caught.value.classes
    assert caught.value.path == path.resolve()
    assert "--trust" in str(caught.value) and "can run any code" in str(caught.value)
    assert zoo.name not in sys.modules
    path_before = list(sys.path)
    opened = open_model(str(path), trust=True)
    assert sys.path == path_before
    assert same_outputs(opened.model, model)
    assert opened.reference == ModelReference("pickle", str(path.resolve()))


def test_pruning_a_trusted_memory_mapped_model_leaves_its_file_alone(zoo: Zoo) -> None:
    path = zoo.folder / "whole.pt"
    zoo.pickled(lambda m: m.Net(), path)
    before = digest(path)
    opened = open_model(str(path), trust=True)
    with open_session(opened) as session:
        session.prune(["fc1.weight"], L1Unstructured(0.5))
        assert session.sparsity("fc1.weight") == 0.5
    assert digest(path) == before


class Malicious:
    """Unpickling this runs code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("how", ["torch.save", "legacy torch.save", "pickle.dump"])
def test_a_malicious_pickle_runs_no_code_without_trust(tmp_path: Path, how: str) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    payload = {"weight": torch.zeros(2), "evil": Malicious(marker)}
    if how == "pickle.dump":
        with path.open("wb") as handle:
            pickle.dump(payload, handle)
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=how == "torch.save")
    for spec in (str(path),):
        with pytest.raises(TrustRequired, match=r"evil\.pt holds a pickled Python object"):
            open_model(spec)
    with pytest.raises(PruningError, match="not a state_dict"):
        open_model("core.demos:DigitsMLP", weights=str(path))
    assert not marker.exists()
    # The marker works: trusting the file does run its code (then refuses the dict).
    with pytest.raises(PruningError):
        open_model(str(path), trust=True)
    assert marker.exists()


def test_a_class_from_a_scripts_main_says_to_save_a_state_dict(tmp_path: Path) -> None:
    main = sys.modules["__main__"]
    cls = type("PstMainNet", (nn.Linear,), {"__module__": "__main__"})
    path = tmp_path / "script_model.pt"
    main.PstMainNet = cls  # type: ignore[attr-defined]
    try:
        torch.save(cls(2, 2), path)
    finally:
        del main.PstMainNet  # type: ignore[attr-defined]
    for trust in (False, True):
        with pytest.raises(PruningError, match=r"class PstMainNet was defined in a script") as e:
            open_model(str(path), trust=trust)
        assert not isinstance(e.value, TrustRequired)
        assert "torch.save(model.state_dict()" in str(e.value)
        assert "mymodel:PstMainNet" in str(e.value)


def test_a_trusted_pickle_of_a_missing_module_says_where_to_put_it(zoo: Zoo) -> None:
    path = zoo.folder / "whole.pt"
    zoo.pickled(lambda m: m.Net(), path)
    (zoo.folder / f"{zoo.name}.py").unlink()
    with pytest.raises(PruningError, match=rf"needs the module {zoo.name}.*beside the file"):
        open_model(str(path), trust=True)


# --------------------------------------------------------------------- TorchScript


def save_scripted(model: nn.Module, path: Path) -> None:
    """``torch.jit.script`` and ``torch.jit.save``; their deprecation warnings are expected."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", r"`torch\.jit\.(script|save)` is deprecated", DeprecationWarning
        )
        torch.jit.save(torch.jit.script(model), str(path))


def test_torchscript_opens_and_its_matrices_are_targets(zoo: Zoo) -> None:
    model = zoo.new()
    path = zoo.folder / "scripted.pt"  # a .pt suffix: found by its content
    save_scripted(model, path)
    opened = open_model(str(path))
    assert isinstance(opened.model, torch.jit.ScriptModule)
    assert opened.reference == ModelReference("torchscript", str(path.resolve()))
    assert same_outputs(opened.model, model)
    with open_session(opened) as session:
        assert session.names == ["fc1.weight", "fc2.weight"]
        session.prune(["fc1.weight"], L1Unstructured(0.5))
        assert not same_outputs(opened.model, model)


def test_a_broken_torchscript_file_gives_a_clear_error(zoo: Zoo) -> None:
    path = zoo.folder / "scripted.pt"
    save_scripted(zoo.new(), path)
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    for name in entries:  # the archive's code no longer parses
        if name.endswith(".py"):
            entries[name] = b"this is not TorchScript"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    with pytest.raises(PruningError, match=r"scripted\.pt: could not be read as TorchScript"):
        open_model(str(path))


# --------------------------------------------------------------------- torch.nn.utils.prune


def torch_pruned(model: nn.Module) -> dict[str, torch.Tensor]:
    """Prune fc1 with torch (L1, 40%); the expected masks."""
    prune.l1_unstructured(model.fc1, "weight", amount=0.4)  # type: ignore[no-untyped-call]
    return {"fc1.weight": model.fc1.weight_mask.bool().clone()}


def test_a_whole_model_pruned_with_torch_opens_plain_with_its_masks(zoo: Zoo) -> None:
    path = zoo.folder / "pruned.pt"
    expected: dict[str, torch.Tensor] = {}
    original = {}

    def build(module: ModuleType) -> nn.Module:
        model: nn.Module = module.Net()
        original.update(model.state_dict())
        expected.update(torch_pruned(model))
        return model

    pruned = zoo.pickled(build, path)
    opened = open_model(str(path), trust=True)
    assert not prune.is_pruned(opened.model)  # type: ignore[no-untyped-call]
    assert torch.equal(opened.model.fc1.weight, original["fc1.weight"])
    assert opened.torch_masks.keys() == expected.keys()
    assert torch.equal(opened.torch_masks["fc1.weight"], expected["fc1.weight"])
    assert any("torch.nn.utils.prune" in note for note in opened.notes)
    with open_session(opened) as session:
        assert torch.equal(session.mask("fc1.weight"), expected["fc1.weight"])
        assert same_outputs(opened.model, pruned)
        session.undo()
        assert torch.equal(opened.model.fc1.weight, original["fc1.weight"])


def test_a_state_dict_in_torchs_pruned_format_opens_with_a_factory(zoo: Zoo) -> None:
    model = zoo.new()
    original = model.fc1.weight.detach().clone()
    expected = torch_pruned(model)
    weights = zoo.folder / "pruned_state.pt"
    torch.save(model.state_dict(), weights)
    opened = open_model(f"{zoo.name}:Net", weights=str(weights))
    assert torch.equal(opened.model.fc1.weight, original)
    assert torch.equal(opened.torch_masks["fc1.weight"], expected["fc1.weight"])
    with open_session(opened) as session:
        assert session.sparsity("fc1.weight") == pytest.approx(0.4, abs=0.02)
        assert same_outputs(opened.model, model)


def test_tied_weights_pruned_with_torch_open_as_one_target(zoo: Zoo) -> None:
    model = zoo.new("Tied")
    mask = torch.rand(10, 4, generator=torch.Generator().manual_seed(2)) > 0.5
    prune.custom_from_mask(model.emb, "weight", mask)  # type: ignore[no-untyped-call]
    prune.custom_from_mask(model.head, "weight", mask)  # type: ignore[no-untyped-call]
    weights = zoo.folder / "tied.pt"
    torch.save(model.state_dict(), weights)
    opened = open_model(f"{zoo.name}:Tied", weights=str(weights))
    assert opened.model.head.weight is opened.model.emb.weight
    with open_session(opened) as session:
        assert torch.equal(session.mask("emb.weight"), mask)
        assert same_outputs(opened.model, model, TOKENS)


def test_tied_weights_pruned_in_one_module_only_are_refused(zoo: Zoo) -> None:
    model = zoo.new("Tied")
    prune.random_unstructured(model.head, "weight", amount=0.5)  # type: ignore[no-untyped-call]
    weights = zoo.folder / "half_tied.pt"
    torch.save(model.state_dict(), weights)
    opened = open_model(f"{zoo.name}:Tied", weights=str(weights))
    with pytest.raises(PruningError, match="prunes tied weights together"):
        open_session(opened)


def test_open_session_without_masks_is_a_plain_session() -> None:
    opened = open_model("demo:mlp")
    with open_session(opened, include_bias=True) as session:
        assert "fc1.bias" in session.names
        assert session.example_input is opened.example_input
        assert all(session.packed_mask(name) is None for name in session.names)


def test_masks_and_a_saved_state_together_are_refused() -> None:
    opened = open_model("demo:mlp")
    opened.torch_masks = {"fc1.weight": torch.ones(128, 64, dtype=torch.bool)}
    opened.saved_state = object()  # type: ignore[assignment]
    with pytest.raises(PruningError, match="both"):
        open_session(opened)


# --------------------------------------------------------------------- model folders


@pytest.fixture
def bert_folder(tmp_path: Path) -> tuple[Path, nn.Module]:
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = transformers.BertModel(config).eval()
    folder = tmp_path / "tiny-bert"
    transformers.utils.logging.disable_progress_bar()
    try:
        model.save_pretrained(folder)
    finally:
        transformers.utils.logging.enable_progress_bar()
    return folder, model


def hidden(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model(tokens).last_hidden_state
    return out


def test_a_model_folder_opens_offline(
    bert_folder: tuple[Path, nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    folder, model = bert_folder

    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the loader tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    opened = open_model(str(folder))
    assert type(opened.model).__name__ == "BertModel"
    assert opened.reference == ModelReference("folder", str(folder.resolve()))
    assert opened.name == "tiny-bert"
    tokens = opened.example_input
    assert tokens is not None and tuple(tokens.shape) == (1, 8)
    assert int(tokens.max()) < 40 and tokens.dtype == torch.int64
    assert torch.equal(hidden(opened.model, tokens), hidden(model, tokens))
    with open_session(opened) as session:
        assert "encoder.layer.0.attention.self.query.weight" in session.names


def test_from_pretrained_is_called_offline_and_quiet(
    bert_folder: tuple[Path, nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    transformers = pytest.importorskip("transformers")
    folder, _ = bert_folder
    seen: dict[str, Any] = {}
    real = transformers.BertModel.from_pretrained.__func__
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def spy(cls: type, *args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        seen["env"] = os.environ.get("HF_HUB_OFFLINE")
        seen["bars"] = transformers.utils.logging.is_progress_bar_enabled()
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(transformers.BertModel, "from_pretrained", classmethod(spy))
    open_model(str(folder))
    assert seen == {"local_files_only": True, "env": "1", "bars": False}
    assert "HF_HUB_OFFLINE" not in os.environ
    assert transformers.utils.logging.is_progress_bar_enabled()


def test_an_unknown_architecture_name_falls_back_to_auto_model(
    bert_folder: tuple[Path, nn.Module],
) -> None:
    folder, model = bert_folder
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["architectures"] = ["SomeoneElsesBert"]
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    opened = open_model(str(folder))
    assert type(opened.model).__name__ == "BertModel"
    assert torch.equal(hidden(opened.model, TOKENS), hidden(model, TOKENS))


def test_a_sharded_model_folder_opens(tmp_path: Path, bert_folder: tuple[Path, nn.Module]) -> None:
    _, model = bert_folder
    folder = tmp_path / "sharded"
    model.save_pretrained(folder, max_shard_size=4000)  # about 14 kB in all
    assert (folder / "model.safetensors.index.json").is_file()
    opened = open_model(str(folder))
    assert torch.equal(hidden(opened.model, TOKENS), hidden(model, TOKENS))


def test_a_model_folder_without_transformers_says_to_install_the_extra(
    bert_folder: tuple[Path, nn.Module], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = bert_folder
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(PruningError, match=r"needs the transformers package.*prunescope\[hf\]"):
        open_model(str(folder))


def test_folders_that_are_not_models(tmp_path: Path) -> None:
    with pytest.raises(PruningError, match=r"no config\.json"):
        open_model(str(tmp_path))
    (tmp_path / "config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PruningError, match="not a JSON object"):
        open_model(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    pytest.importorskip("transformers")
    with pytest.raises(PruningError, match="transformers could not open it"):
        open_model(str(tmp_path))


# --------------------------------------------------------------------- result type


def test_opened_model_defaults() -> None:
    opened = OpenedModel(nn.Linear(2, 2), "x", None)
    assert opened.torch_masks == {} and opened.notes == () and not opened.has_data
    assert loading.SESSION_SUFFIX == ".prunescope"


# --------------------------------------------------------------------- PruneScope files


@pytest.fixture
def checkpoints() -> ModuleType:
    """The saved-session and sparse formats (skipped until core.io.checkpoints exists)."""
    return pytest.importorskip(
        "core.io.checkpoints", reason="core.io.checkpoints (PruneScope's file formats) not yet"
    )


def pruned_session_state(session: PruningSession) -> tuple[dict[str, Any], ...]:
    """Masks, floors, live weights, originals and history labels of every target."""
    return (
        {n: session.mask(n) for n in session.names},
        {n: session.floor(n) for n in session.names},
        {n: p.detach().clone() for n, p in session.model.state_dict().items()},
        {n: session.original(n) for n in session.names},
        {"labels": [op.to_dict() for op in session.operations]},
    )


def assert_same_state(a: tuple[dict[str, Any], ...], b: tuple[dict[str, Any], ...]) -> None:
    for part_a, part_b in zip(a, b, strict=True):
        assert part_a.keys() == part_b.keys()
        for key in part_a:
            x, y = part_a[key], part_b[key]
            if isinstance(x, torch.Tensor):
                assert torch.equal(x, y), key
            elif x is None or y is None:
                assert x is y, key
            elif isinstance(x, list):
                assert x == y, key
            else:  # PackedMask
                assert torch.equal(x.to_bool(), y.to_bool()), key


def prune_some(session: PruningSession) -> None:
    """Pruning with something made permanent and something restorable."""
    first, second = session.names[:2]
    session.prune([first], L1Unstructured(0.5))
    session.make_permanent([first])
    session.prune([first, second], L1Unstructured(0.7))


def test_a_demo_session_reopens_where_it_was_saved(tmp_path: Path, checkpoints: Any) -> None:
    opened = open_model("demo:cnn")
    path = tmp_path / "cnn.prunescope"
    with open_session(opened, include_bias=True) as session:
        prune_some(session)
        before = pruned_session_state(session)
        assert opened.reference is not None
        checkpoints.save(session, path, "session", reference=opened.reference.to_dict())
    reopened = open_model(str(path))
    assert reopened.name == "cnn.prunescope"
    assert reopened.reference == ModelReference("demo", "cnn")
    assert reopened.has_data and reopened.saved_state is not None
    assert reopened.example_input is not None
    with open_session(reopened) as session:
        assert "stem.conv.weight" in session.names and "classifier.bias" in session.names
        assert_same_state(pruned_session_state(session), before)
        assert [e.label for e in session.history.entries] == []
        session.reset()  # restorable entries come back from the saved originals
        name = session.names[1]
        assert torch.equal(session.effective(name), before[3][name])


def test_a_factory_session_reopens_without_its_weights_file(zoo: Zoo, checkpoints: Any) -> None:
    weights = zoo.folder / "net.pt"
    torch.save(zoo.new().state_dict(), weights)
    opened = open_model(f"{zoo.name}:Net", weights=str(weights))
    path = zoo.folder / "net.prunescope"
    with open_session(opened) as session:
        prune_some(session)
        before = pruned_session_state(session)
        assert opened.reference is not None
        checkpoints.save(session, path, "session", reference=opened.reference.to_dict())
    weights.unlink()  # the session has the weights; the module is found beside it
    sys.modules.pop(zoo.name, None)
    reopened = open_model(str(path))
    assert reopened.reference == opened.reference
    with open_session(reopened) as session:
        assert_same_state(pruned_session_state(session), before)


def test_a_reopened_session_prunes_the_same_targets(zoo: Zoo, checkpoints: Any) -> None:
    weights = zoo.folder / "tied.pt"
    torch.save(zoo.new("Tied").state_dict(), weights)
    opened = open_model(f"{zoo.name}:Tied", weights=str(weights))
    path = zoo.folder / "tied.prunescope"
    with open_session(opened, include_bias=True) as session:
        names = session.names
        session.prune(["head.weight", "fc.bias"], L1Unstructured(0.5))
        assert opened.reference is not None
        checkpoints.save(session, path, "session", reference=opened.reference.to_dict())
    # Widening every option would name the tied tensor emb.weight and add nothing else.
    assert names == ["head.weight", "fc.weight", "fc.bias"]
    with open_session(open_model(str(path))) as session:
        assert session.names == names
        assert session.sparsity("head.weight") == 0.5


def test_a_session_without_a_reference_cannot_be_reopened(tmp_path: Path, checkpoints: Any) -> None:
    path = tmp_path / "anonymous.prunescope"
    with open_session(open_model("demo:mlp")) as session:
        checkpoints.save(session, path, "session")
    with pytest.raises(PruningError, match=r"anonymous\.prunescope: .*how to build its model"):
        open_model(str(path))


def test_a_session_on_a_pickled_model_needs_trust_again(zoo: Zoo, checkpoints: Any) -> None:
    whole = zoo.folder / "whole.pt"
    zoo.pickled(lambda m: m.Net(), whole)
    opened = open_model(str(whole), trust=True)
    path = zoo.folder / "whole.prunescope"
    with open_session(opened) as session:
        prune_some(session)
        before = pruned_session_state(session)
        assert opened.reference is not None
        checkpoints.save(session, path, "session", reference=opened.reference.to_dict())
    with pytest.raises(TrustRequired):
        open_model(str(path))
    with open_session(open_model(str(path), trust=True)) as session:
        assert_same_state(pruned_session_state(session), before)


def test_a_damaged_session_gives_a_clear_error(tmp_path: Path, checkpoints: Any) -> None:
    path = tmp_path / "cnn.prunescope"
    with open_session(open_model("demo:mlp")) as session:
        checkpoints.save(session, path, "session", reference={"kind": "demo", "target": "mlp"})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(PruningError, match=r"cnn\.prunescope"):
        open_model(str(path))


def test_a_session_file_is_not_a_weights_file(tmp_path: Path, checkpoints: Any) -> None:
    path = tmp_path / "mlp.prunescope"
    with open_session(open_model("demo:mlp")) as session:
        checkpoints.save(session, path, "session", reference={"kind": "demo", "target": "mlp"})
    with pytest.raises(PruningError, match="open it on its own"):
        open_model("core.demos:DigitsMLP", weights=str(path))


def test_sparse_files_open_with_their_factory(zoo: Zoo, checkpoints: Any) -> None:
    weights = zoo.folder / "net.pt"
    torch.save(zoo.new().state_dict(), weights)
    opened = open_model(f"{zoo.name}:Net", weights=str(weights))
    sparse = zoo.folder / "net.sparse.safetensors"
    with open_session(opened) as session:
        prune_some(session)
        checkpoints.save(session, sparse, "sparse")
        expected = {n: t.clone() for n, t in session.model.state_dict().items()}
    assert checkpoints.is_sparse_file(sparse)
    with pytest.raises(FactoryRequired):
        open_model(str(sparse))
    reopened = open_model(f"{zoo.name}:Net", weights=str(sparse))
    for name, tensor in reopened.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_torch_prune_files_saved_by_prunescope_open_with_their_masks(
    zoo: Zoo, checkpoints: Any
) -> None:
    weights = zoo.folder / "net.pt"
    torch.save(zoo.new().state_dict(), weights)
    opened = open_model(f"{zoo.name}:Net", weights=str(weights))
    saved = zoo.folder / "net.torch_prune.pt"
    with open_session(opened) as session:
        session.prune(["fc1.weight", "fc2.weight"], L1Unstructured(0.5))
        before = pruned_session_state(session)
        checkpoints.save(session, saved, "torch_prune")
    reopened = open_model(f"{zoo.name}:Net", weights=str(saved))
    assert set(reopened.torch_masks) == {"fc1.weight", "fc2.weight"}
    with open_session(reopened) as session:
        after = pruned_session_state(session)
        assert_same_state(after[:4], before[:4])
