"""Physical slimming: the slim model computes what the masked model computes, harvest of
hidden all-zero structure, unsupported layers left intact, the one undoable ReplaceModel
step with the masks carried over, and the pickle-free ``slim`` file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from torch import nn

from core.common.errors import PruningError
from core.common.jobs import run_job
from core.demos import DigitsMLP, ResNet18, load_demo
from core.io.checkpoints import read_slim, save
from core.io.loading import open_model, open_session
from core.io.references import ModelReference
from core.pruning.groups import GroupPrune, channel_groups
from core.pruning.methods import L1Unstructured, LnStructured
from core.pruning.session import PruningSession
from core.pruning.slim import (
    CONSUMERS_ZERO,
    KEEPS_ZEROS,
    MIXES_CHANNELS,
    PRODUCERS_ZERO,
    HarvestCandidate,
    SlimResult,
    harvest_candidates,
    layer_shapes,
    rebuild_slim,
    slim_job,
    slim_operation,
)
from tests.core.conftest import seeded
from tests.core.test_groups import ConcatNet, NormNet


def images(*shape: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def demo(name: str) -> Callable[[], tuple[nn.Module, torch.Tensor]]:
    def build() -> tuple[nn.Module, torch.Tensor]:
        loaded = load_demo(name)
        return loaded.model, loaded.example_input

    return build


def tiny_resnet() -> tuple[nn.Module, torch.Tensor]:
    model = seeded(lambda: ResNet18(widths=(4, 8, 8, 16), depths=(2, 1, 1, 1)), 0).eval()
    with torch.no_grad():  # running statistics that are not the identity
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.bias.uniform_(-0.5, 0.5)
    return model, images(2, 3, 32, 32)


def mlp() -> tuple[nn.Module, torch.Tensor]:
    return seeded(lambda: DigitsMLP((32, 16)), 0), images(4, 1, 8, 8)


def concat() -> tuple[nn.Module, torch.Tensor]:
    return seeded(ConcatNet, 0).eval(), images(2, 3, 4, 4)


MODELS = {
    "cnn": demo("cnn"),
    "mlp": demo("mlp"),
    "resnet18": demo("resnet18"),
    "tiny_resnet": tiny_resnet,
    "small_mlp": mlp,
    "concat": concat,
}


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model.eval()(x)
    return out


def assert_close(slim: torch.Tensor, masked: torch.Tensor) -> None:
    assert slim.shape == masked.shape
    assert float((slim - masked).abs().max()) <= 1e-5 * float(masked.abs().max())


def group_pruned(name: str, amount: float = 0.5) -> tuple[PruningSession, torch.Tensor]:
    model, x = MODELS[name]()
    session = PruningSession(model, example_input=x)
    session.apply(GroupPrune(amount))
    return session, x


# --------------------------------------------------------------------- equivalence


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n == "resnet18" else n for n in MODELS],
)
def test_the_slim_model_computes_what_the_masked_model_computes(name: str) -> None:
    session, x = group_pruned(name)
    result = run_job(slim_job(session, x))
    assert result.removed and result.params_after < result.params_before
    assert result.params_after == sum(p.numel() for p in result.model.parameters())
    assert result.max_abs_diff <= 1e-5 * float(outputs(session.model, x).abs().max())
    fresh = images(3, *x.shape[1:], seed=11)  # inputs the slimming never saw
    assert_close(outputs(result.model, fresh), outputs(session.model, fresh))
    groups, _ = channel_groups(session.model, x)
    modules = dict(result.model.named_modules())
    for group in groups:
        root = modules[group.root]
        now = root.out_channels if isinstance(root, nn.Conv2d) else root.out_features
        assert now == group.channels - result.removed[group.root], group.root


def test_slimming_leaves_the_session_alone() -> None:
    session, x = group_pruned("cnn")
    model = session.model
    values = {k: v.clone() for k, v in model.state_dict().items()}
    entries = len(session.history.entries)
    result = run_job(slim_job(session, x))
    assert session.model is model and result.model is not model
    assert len(session.history.entries) == entries
    for key, value in model.state_dict().items():
        assert torch.equal(value, values[key]), key


def test_the_slim_model_keeps_the_layer_modes_and_frozen_parameters() -> None:
    model, x = mlp()
    model.train()
    model.fc1.weight.requires_grad_(False)
    session = PruningSession(model, example_input=x)
    session.apply(GroupPrune(0.5))
    result = run_job(slim_job(session, x))
    assert result.model.training and model.training
    assert not result.model.fc1.weight.requires_grad and result.model.fc2.weight.requires_grad


def test_unstructured_pruning_alone_slims_nothing() -> None:
    model, x = mlp()
    session = PruningSession(model, example_input=x)
    session.prune(["fc1.weight", "fc2.weight"], L1Unstructured(0.6))
    result = run_job(slim_job(session, x))
    assert result.removed == {} and result.params_after == result.params_before
    with pytest.raises(PruningError, match="nothing to slim"):
        slim_operation(result)


def test_unsupported_layers_are_left_intact_and_the_rest_slimmed() -> None:
    model, x = seeded(NormNet, 0).eval(), images(2, 3, 6, 6)
    session = PruningSession(model, example_input=x)
    session.apply(GroupPrune(0.5))
    session.prune("conv1.weight", LnStructured(0.5, n=2, dim=0))  # rows only: not a group
    result = run_job(slim_job(session, x, harvest=True))
    assert result.removed == {"conv2": 4}
    assert [u.layer for u in result.skipped] == ["gn"]
    assert result.model.conv1.out_channels == 6 and result.model.conv2.out_channels == 4
    assert_close(outputs(result.model, x), outputs(session.model, x))


# --------------------------------------------------------------------- harvest


def test_harvest_removes_channels_nobody_reads() -> None:
    model, x = mlp()
    session = PruningSession(model, example_input=x)
    session.prune("fc2.weight", LnStructured(0.25, n=1, dim=1))  # 8 of fc1's 32 channels unread
    unread = torch.nonzero(~session.mask("fc2.weight").any(0)).flatten().tolist()
    assert len(unread) == 8
    assert harvest_candidates(session, x) == [
        HarvestCandidate("fc1", tuple(unread), CONSUMERS_ZERO)
    ]
    assert run_job(slim_job(session, x)).removed == {}
    result = run_job(slim_job(session, x, harvest=True))
    assert result.removed == {"fc1": 8} and result.skipped == ()
    assert_close(outputs(result.model, x), outputs(session.model, x))
    assert_close(
        outputs(result.model, images(5, 1, 8, 8)), outputs(session.model, images(5, 1, 8, 8))
    )


def test_harvest_removes_channels_that_are_zero() -> None:
    model, x = mlp()
    session = PruningSession(model, example_input=x, include_bias=True)
    session.prune("fc2.weight", LnStructured(0.25, n=1, dim=0))
    zero = torch.nonzero(~session.mask("fc2.weight").any(1)).flatten()
    session.paint("fc2.bias", zero.numpy(), keep=False)
    assert harvest_candidates(session, x) == [
        HarvestCandidate("fc2", tuple(zero.tolist()), PRODUCERS_ZERO)
    ]
    result = run_job(slim_job(session, x, harvest=True))
    assert result.removed == {"fc2": 4}
    assert_close(outputs(result.model, x), outputs(session.model, x))


class SigmoidMLP(nn.Module):
    """fc1 -> sigmoid -> fc2: a zero channel of fc1 is 0.5 after the sigmoid."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(torch.sigmoid(self.fc1(x)))
        return out


def test_zero_channels_that_are_not_zero_downstream_are_kept_and_reported() -> None:
    x = images(4, 6)
    session = PruningSession(seeded(SigmoidMLP, 0), example_input=x, include_bias=True)
    session.prune("fc1.weight", LnStructured(0.25, n=1, dim=0))
    zero = torch.nonzero(~session.mask("fc1.weight").any(1)).flatten()
    session.paint("fc1.bias", zero.numpy(), keep=False)
    assert [c.root for c in harvest_candidates(session, x)] == ["fc1"]  # offered, checked later
    result = run_job(slim_job(session, x, harvest=True))
    assert result.removed == {}
    assert [(u.layer, u.reason) for u in result.skipped] == [("fc1", KEEPS_ZEROS)]


class SoftmaxNet(nn.Module):
    """A softmax over the first conv's channels: removing one changes the others."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.softmax(torch.relu(self.c1(x)), 1)
        out: torch.Tensor = self.fc(self.c2(y).mean((2, 3)))
        return out


def test_groups_whose_channels_are_mixed_are_kept_and_reported() -> None:
    x = images(2, 3, 6, 6)
    session = PruningSession(seeded(SoftmaxNet, 0).eval(), example_input=x)
    session.apply(GroupPrune(0.5))
    result = run_job(slim_job(session, x))
    assert result.removed == {"c2": 4}
    assert [(u.layer, u.reason) for u in result.skipped] == [("c1", MIXES_CHANNELS)]
    assert result.model.c1.out_channels == 8
    assert_close(outputs(result.model, x), outputs(session.model, x))


def test_every_group_keeps_one_channel() -> None:
    model, x = mlp()
    session = PruningSession(model, example_input=x)
    session.prune("fc2.weight", LnStructured(1.0, n=1, dim=1))  # nobody reads any of fc1
    (candidate,) = harvest_candidates(session, x)
    assert len(candidate.channels) == 31
    result = run_job(slim_job(session, x, harvest=True))
    assert result.model.fc1.out_features == 1
    assert_close(outputs(result.model, x), outputs(session.model, x))


# --------------------------------------------------------------------- the ReplaceModel step


def test_slimming_is_one_undoable_step_that_carries_the_remaining_masks() -> None:
    model, x = mlp()
    session = PruningSession(model, example_input=x)
    session.prune(["fc2.weight", "classifier.weight"], L1Unstructured(0.3))
    session.apply(GroupPrune(0.5))
    masked_model = session.model
    values = {k: v.clone() for k, v in masked_model.state_dict().items()}
    masks = {n: session.mask(n) for n in session.names}
    original = session.original("fc2.weight")
    rows = torch.nonzero(session.mask("fc2.bias")).flatten()  # fc2's kept channels
    columns = torch.nonzero(session.mask("fc1.bias")).flatten()  # fc1's kept channels
    result = run_job(slim_job(session, x))
    entries = len(session.history.entries)
    entry = session.apply(slim_operation(result))
    assert entry is not None and len(session.history.entries) == entries + 1
    assert entry.op.label == "Slim: 2.8k → 1.3k parameters"
    assert session.model is result.model
    assert session.names == list(masks)
    expected = masks["fc2.weight"][rows][:, columns]
    assert torch.equal(session.mask("fc2.weight"), expected)
    assert 0 < session.sparsity("fc2.weight") < 1
    assert torch.equal(session.original("fc2.weight"), original[rows][:, columns])
    assert session.packed_mask("fc1.weight") is None  # group pruning left nothing else there
    session.reset(["fc2.weight"])
    assert torch.equal(session.effective("fc2.weight"), original[rows][:, columns])
    session.undo()
    session.undo()
    assert session.model is masked_model
    for key, value in masked_model.state_dict().items():
        assert torch.equal(value, values[key]), key
    for name, mask in masks.items():
        assert torch.equal(session.mask(name), mask), name
    session.redo()
    assert session.model is result.model
    assert torch.equal(session.mask("fc2.weight"), expected)


# --------------------------------------------------------------------- the slim file


def slimmed(reference: ModelReference, x: torch.Tensor | None = None) -> PruningSession:
    opened = open_model(reference)
    session = open_session(opened, example_input=x if x is not None else opened.example_input)
    session.prune("classifier.weight", L1Unstructured(0.3))
    session.apply(GroupPrune(0.5))
    assert session.example_input is not None
    session.apply(slim_operation(run_job(slim_job(session, session.example_input))))
    return session


@pytest.mark.parametrize(
    ("reference", "x"),
    [
        (ModelReference("demo", "cnn"), None),
        (
            ModelReference("factory", "core.demos:DigitsMLP", args=(("hidden", [32, 16]),)),
            images(2, 1, 8, 8),
        ),
    ],
)
def test_a_slim_file_reopens_as_the_small_model_without_pickles(
    reference: ModelReference, x: torch.Tensor | None, tmp_path: Path
) -> None:
    session = slimmed(reference, x)
    path = tmp_path / "small.safetensors"
    saved = save(session, path, "slim", reference=reference.to_dict())
    assert saved.format == "slim"
    with safe_open(str(path), framework="pt") as handle:  # plain safetensors: no pickle inside
        assert handle.metadata() is not None
    assert read_slim(path).layer_shapes == layer_shapes(session.model)
    opened = open_model(path)
    assert opened.reference == reference
    assert layer_shapes(opened.model) == layer_shapes(session.model)
    assert opened.example_input is not None
    assert torch.equal(
        outputs(opened.model, opened.example_input), outputs(session.model, opened.example_input)
    )
    with open_session(opened) as reopened:
        assert reopened.names == session.names
        for name in session.names:
            assert torch.equal(reopened.mask(name), session.mask(name)), name
            assert torch.equal(reopened.original(name), session.original(name)), name


def test_a_slimmed_session_file_reopens_as_the_small_model(tmp_path: Path) -> None:
    reference = ModelReference("demo", "cnn")
    session = slimmed(reference)
    path = tmp_path / "small.prunescope"
    save(session, path, reference=reference.to_dict(), format="session")
    opened = open_model(path)
    assert layer_shapes(opened.model) == layer_shapes(session.model)
    with open_session(opened) as reopened:
        assert reopened.names == session.names
        assert torch.equal(reopened.mask("classifier.weight"), session.mask("classifier.weight"))


def test_a_slim_file_needs_a_demo_or_factory_reference(tmp_path: Path) -> None:
    session = slimmed(ModelReference("demo", "mlp"))
    with pytest.raises(PruningError, match="demo or a factory"):
        save(session, tmp_path / "a.safetensors", "slim")
    with pytest.raises(PruningError, match="this model is a pickle"):
        save(
            session,
            tmp_path / "a.safetensors",
            "slim",
            reference={"kind": "pickle", "target": "m.pt"},
        )
    assert not (tmp_path / "a.safetensors").exists()


def test_a_slim_file_is_not_weights_for_a_factory(tmp_path: Path) -> None:
    session = slimmed(ModelReference("demo", "mlp"))
    path = tmp_path / "a.safetensors"
    save(session, path, "slim", reference={"kind": "demo", "target": "mlp"})
    with pytest.raises(PruningError, match="slim model: open it on its own"):
        open_model("core.demos:DigitsMLP", weights=str(path))


def test_shapes_of_another_architecture_are_refused() -> None:
    shapes = layer_shapes(load_demo("cnn").model)
    with pytest.raises(PruningError, match=r"no layer 'stem\.conv'"):
        rebuild_slim(DigitsMLP(), shapes)
    with pytest.raises(PruningError, match="malformed shape"):
        rebuild_slim(DigitsMLP(), {"fc1": {"type": "Linear", "tensors": {"weight": [2, "x"]}}})
    with pytest.raises(PruningError, match="is a Linear in the model but a Conv2d"):
        rebuild_slim(DigitsMLP(), {"fc1": {"type": "Conv2d"}})


def test_rebuilt_shapes_take_a_slim_state_dict() -> None:
    session, x = group_pruned("cnn")
    result: SlimResult = run_job(slim_job(session, x))
    fresh = load_demo("cnn").model
    rebuild_slim(fresh, result.layer_shapes)
    fresh.load_state_dict(result.model.state_dict(), strict=True)
    assert torch.equal(outputs(fresh, x), outputs(result.model, x))


class _GrowingBuffer(nn.Module):
    """A layer with a non-persistent buffer the model makes itself (not in its state_dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.register_buffer("table", torch.arange(2.0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.table.sum()


def test_layer_shapes_leave_out_non_persistent_buffers() -> None:
    shapes = layer_shapes(_GrowingBuffer())
    assert shapes["fc"]["tensors"] == {"weight": [3, 4], "bias": [3]}
    assert all("table" not in entry["tensors"] for entry in shapes.values())


def test_nothing_to_slim_says_when_the_pruned_groups_had_to_be_kept() -> None:
    x = images(2, 3, 6, 6)
    session = PruningSession(seeded(SoftmaxNet, 0).eval(), example_input=x)
    session.apply(GroupPrune(0.5, roots=("c1",)))
    result = run_job(slim_job(session, x))
    assert not result.removed
    with pytest.raises(PruningError, match=r"could not be removed without changing.*c1"):
        slim_operation(result)


def test_slimming_keeps_permanent_parts_permanent_and_the_rest_restorable() -> None:
    demo = load_demo("cnn")
    session = PruningSession(demo.model, example_input=demo.example_input)
    name = "expand.conv.weight"
    session.apply(GroupPrune(0.25))
    session.prune(name, L1Unstructured(0.2))
    session.make_permanent([name])
    permanent = session.sparsity(name)
    session.prune(name, L1Unstructured(0.2))
    assert session.sparsity(name) > permanent
    session.apply(slim_operation(run_job(slim_job(session, demo.example_input))))
    assert session.is_permanent(name)
    before_reset = session.sparsity(name)
    session.reset([name])  # back to what was made permanent, within the slim shape
    floor = session.floor(name)
    assert floor is not None
    assert session.sparsity(name) == pytest.approx(floor.sparsity)
    assert 0.0 < session.sparsity(name) < before_reset  # the later pruning came undone
