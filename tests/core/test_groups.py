"""Channel groups from torch-pruning's dependency graph, and GroupPrune: whole groups masked
(coupled biases and norm scales and shifts included, and held), local amounts, roots,
unsupported layers named, undo, preview and recipes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.common.errors import PruningError
from core.common.jobs import run_job
from core.demos import DigitsMLP, load_demo
from core.io.recipe import Recipe, replay_job
from core.pruning.groups import ChannelGroup, GroupPrune, Unsupported, channel_groups
from core.pruning.methods import L1Unstructured
from core.pruning.operations import operation_from_dict
from core.pruning.session import PruningSession
from tests.core.conftest import SmallNet, seeded


class ConcatNet(nn.Module):
    """Two conv branches concatenated, a batch norm over both, a conv, then a Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 2, 1)
        self.bn = nn.BatchNorm2d(6)
        self.c = nn.Conv2d(6, 5, 3)
        self.fc = nn.Linear(5 * 2 * 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(torch.cat([self.a(x), self.b(x)], 1)))
        out: torch.Tensor = self.fc(torch.relu(self.c(y)).flatten(1))
        return out


class NormNet(nn.Module):
    """A group norm after the first conv (cannot lose channels), a batch norm after the second."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.gn = nn.GroupNorm(2, 6)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.gn(self.conv1(x)))
        x = torch.relu(self.bn(self.conv2(x))).mean((2, 3))
        out: torch.Tensor = self.fc(x)
        return out


def images(*shape: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def cnn_session() -> PruningSession:
    demo = load_demo("cnn")
    return PruningSession(demo.model, example_input=demo.example_input)


def mlp_session(hidden: tuple[int, int] = (128, 64)) -> PruningSession:
    model = seeded(lambda: DigitsMLP(hidden), 0)
    return PruningSession(model, example_input=images(2, 1, 8, 8))


def pruned_rows(session: PruningSession, name: str) -> set[int]:
    """Output channels (rows) of ``name`` that are pruned entirely."""
    mask = session.mask(name)
    return set(torch.nonzero(~mask.reshape(mask.shape[0], -1).any(1)).flatten().tolist())


# --------------------------------------------------------------------- groups


def test_the_cnn_demo_couples_convs_norms_residual_partners_and_next_inputs() -> None:
    demo = load_demo("cnn")
    groups, unsupported = channel_groups(demo.model, demo.example_input)
    assert unsupported == []
    assert [(g.root, g.channels, g.kind) for g in groups] == [
        ("stem.conv", 16, "residual"),
        ("block1.conv1", 16, "conv"),
        ("expand.conv", 32, "conv"),
    ]
    stem = groups[0]
    for member in (
        "stem.conv.weight",
        "stem.bn.weight",
        "stem.bn.bias",
        "block1.conv1.weight",  # reads the stem's channels
        "block1.conv2.weight",  # residual partner: adds into the same tensor
        "block1.bn2.weight",
        "block1.bn2.bias",
        "expand.conv.weight",  # reads the sum
    ):
        assert member in stem.members
    assert "classifier.weight" in groups[2].members  # its input columns
    assert all(g.root != "classifier" for g in groups)  # the output is never a group


def test_tracing_leaves_the_model_alone() -> None:
    model = seeded(ConcatNet, 0).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    channel_groups(model, images(2, 3, 4, 4))
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_concatenation_maps_each_branch_to_its_own_slice() -> None:
    model = seeded(ConcatNet, 0)
    groups, _ = channel_groups(model, images(2, 3, 4, 4))
    by_root = {g.root: g for g in groups}
    assert by_root["a"] == ChannelGroup(
        "a", 4, ("a.weight", "a.bias", "bn.weight", "bn.bias", "c.weight"), "concat"
    )
    assert by_root["b"].channels == 2 and by_root["b"].kind == "concat"
    session = PruningSession(model, example_input=images(2, 3, 4, 4))
    session.apply(GroupPrune(0.5, roots=("b",)))
    (gone,) = pruned_rows(session, "b.weight")
    assert not session.mask("b.bias")[gone]
    assert not session.mask("bn.weight")[4 + gone] and not session.mask("bn.bias")[4 + gone]
    in_kept = session.mask("c.weight").any(0).reshape(6, -1).any(1)
    assert in_kept.tolist() == [i != 4 + gone for i in range(6)]
    assert pruned_rows(session, "a.weight") == set()


def test_linear_columns_after_flatten_follow_their_channel() -> None:
    session = PruningSession(seeded(SmallNet, 0), example_input=images(5, 2, 4, 4))
    session.apply(GroupPrune(0.5, roots=("conv",)))
    gone = pruned_rows(session, "conv.weight")
    assert len(gone) == 2
    columns = session.mask("fc1.weight").any(0)  # 16 columns: 4 channels x 2 x 2 positions
    for channel in range(4):
        assert columns[4 * channel : 4 * channel + 4].tolist() == [channel not in gone] * 4


# --------------------------------------------------------------------- group pruning


def test_group_pruning_masks_the_whole_group_and_its_coupled_parameters() -> None:
    session = cnn_session()
    session.apply(GroupPrune(0.5))
    gone = pruned_rows(session, "stem.conv.weight")
    assert len(gone) == 8
    assert pruned_rows(session, "block1.conv2.weight") == gone
    for name in ("stem.bn.weight", "stem.bn.bias", "block1.bn2.weight", "block1.bn2.bias"):
        assert set(torch.nonzero(~session.mask(name)).flatten().tolist()) == gone, name
        assert bool(session.effective(name)[sorted(gone)].eq(0).all()), name
    for reader in ("block1.conv1.weight", "expand.conv.weight"):
        columns = session.mask(reader).any(0).reshape(16, -1).any(1)
        assert set(torch.nonzero(~columns).flatten().tolist()) == gone, reader
    # The other groups lose half their channels too, each on its own.
    assert len(pruned_rows(session, "block1.conv1.weight")) == 8
    assert len(pruned_rows(session, "expand.conv.weight")) == 16


def test_biases_of_pruned_rows_are_masked_and_the_outputs_never() -> None:
    session = mlp_session()
    session.apply(GroupPrune(0.5))
    assert len(pruned_rows(session, "fc1.weight")) == 64
    assert len(pruned_rows(session, "fc2.weight")) == 32
    assert set(torch.nonzero(~session.mask("fc1.bias")).flatten().tolist()) == pruned_rows(
        session, "fc1.weight"
    )
    assert pruned_rows(session, "classifier.weight") == set()
    assert "classifier.bias" not in session.names


def test_coupled_parameters_are_held_at_zero_by_later_weight_updates() -> None:
    session = cnn_session()
    session.apply(GroupPrune(0.5))
    gone = sorted(pruned_rows(session, "stem.conv.weight"))
    session.update_weights({"stem.bn.weight": torch.ones(16), "stem.bn.bias": torch.ones(16)})
    assert bool(session.effective("stem.bn.weight")[gone].eq(0).all())
    assert bool(session.effective("stem.bn.bias")[gone].eq(0).all())


def test_undo_restores_every_value_and_mask_exactly() -> None:
    session = cnn_session()
    session.prune("expand.conv.weight", L1Unstructured(0.3))
    values = {k: v.clone() for k, v in session.model.state_dict().items()}
    masks = {n: session.mask(n) for n in session.names}
    session.apply(GroupPrune(0.5))
    assert "stem.bn.weight" in session.names and "stem.bn.weight" not in masks
    session.undo()
    for key, value in session.model.state_dict().items():
        assert torch.equal(value, values[key]), key
    for name in session.names:
        assert torch.equal(session.mask(name), masks.get(name, torch.ones_like(session.mask(name))))
    session.redo()
    assert len(pruned_rows(session, "stem.conv.weight")) == 8


def test_the_amount_is_of_the_remaining_channels_and_one_always_stays() -> None:
    session = mlp_session()
    session.apply(GroupPrune(0.5))
    session.apply(GroupPrune(0.5))
    assert len(pruned_rows(session, "fc1.weight")) == 96
    session.apply(GroupPrune(1.0))
    assert len(pruned_rows(session, "fc1.weight")) == 127
    assert len(pruned_rows(session, "fc2.weight")) == 63


def test_round_to_keeps_a_multiple_of_channels() -> None:
    session = mlp_session()
    session.apply(GroupPrune(0.3, round_to=8))
    assert 128 - len(pruned_rows(session, "fc1.weight")) == 88  # 90 rounded down
    assert 64 - len(pruned_rows(session, "fc2.weight")) == 40  # 45 rounded down


def tiny_mlp(next_columns: list[float]) -> nn.Module:
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, 0.1], [1.0, 0.0], [2.0, 0.0]]))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([next_columns]))
    return model


@pytest.mark.parametrize(
    ("columns", "norm", "gone"),
    [
        # Rows alone would drop channel 0; with the next layer's columns channel 0 has
        # sqrt(0.02 + 25) and channel 2 sqrt(4 + 0.01), so channel 1 (sqrt(2)) goes.
        ([5.0, 1.0, 0.1], 2, 1),
        ([5.0, 1.0, 0.1], 1, 1),  # L1: 5.2, 2.0, 2.1
        ([0.1, 1.0, 0.1], 2, 0),  # sqrt(0.03), sqrt(2), sqrt(4.01)
    ],
)
def test_importance_is_the_norm_over_the_whole_group(
    columns: list[float], norm: int, gone: int
) -> None:
    session = PruningSession(tiny_mlp(columns), example_input=torch.ones(1, 2))
    session.apply(GroupPrune(0.34, norm=norm))
    assert pruned_rows(session, "0.weight") == {gone}


def test_roots_choose_the_groups() -> None:
    session = mlp_session()
    session.apply(GroupPrune(0.5, roots=("fc2",)))
    assert pruned_rows(session, "fc1.weight") == set()
    assert len(pruned_rows(session, "fc2.weight")) == 32
    with pytest.raises(PruningError, match="not the root of a channel group"):
        session.apply(GroupPrune(0.5, roots=("classifier",)))


def test_unsupported_layers_are_named_and_the_other_groups_still_pruned() -> None:
    model = seeded(NormNet, 0)
    x = images(2, 3, 6, 6)
    groups, unsupported = channel_groups(model, x)
    assert [g.root for g in groups] == ["conv2"]
    assert unsupported == [
        Unsupported("gn", "it normalises across channels, so removing one changes the others")
    ]
    session = PruningSession(model, example_input=x)
    session.apply(GroupPrune(0.5))
    assert pruned_rows(session, "conv1.weight") == set()
    assert len(pruned_rows(session, "conv2.weight")) == 4
    with pytest.raises(PruningError, match="gn cannot be pruned as channels: it normalises"):
        session.apply(GroupPrune(0.5, roots=("gn",)))


def test_the_preview_changes_nothing() -> None:
    session = cnn_session()
    names = session.names
    masks = run_job(session.masks_job(GroupPrune(0.5)))
    assert session.names == names and not session.history.entries
    assert all(session.packed_mask(n) is None for n in names)
    assert set(masks) <= set(names)
    assert masks["stem.conv.weight"] is not None


def test_group_pruning_needs_an_example_input() -> None:
    session = PruningSession(seeded(SmallNet, 0))
    with pytest.raises(PruningError, match="no example input"):
        session.apply(GroupPrune(0.5))


@pytest.mark.parametrize(
    ("args", "match"),
    [((1.5,), "outside"), ((0.5, 0), "norm"), ((0.5, 2, (), 0), "round_to"), (("x",), "number")],
)
def test_bad_arguments_are_refused(args: tuple[object, ...], match: str) -> None:
    with pytest.raises(PruningError, match=match):
        GroupPrune(*args)  # type: ignore[arg-type]


def test_group_pruning_replays_from_its_recipe() -> None:
    op = GroupPrune(0.4, norm=1, roots=("fc1", "fc2"), round_to=2)
    assert operation_from_dict(op.to_dict()) == op
    session = mlp_session()
    session.prune("classifier.weight", L1Unstructured(0.2))
    session.apply(op)
    recipe = Recipe.from_dict(Recipe(tuple(session.operations)).to_dict())
    fresh = mlp_session()
    run_job(replay_job(fresh, recipe))
    assert fresh.names == session.names
    for name in session.names:
        assert torch.equal(fresh.mask(name), session.mask(name)), name


def test_the_parameters_a_group_prune_adds_stay_out_of_global_pruning() -> None:
    demo = load_demo("cnn")
    session = PruningSession(demo.model, example_input=demo.example_input)
    before = session.names
    session.apply(GroupPrune(0.25))
    added = [name for name in session.names if name not in before]
    assert added and all(name not in session.weight_names for name in added)
    assert session.weight_names == before
    session.global_prune(0.5)
    op = session.history.entries[-1].op
    assert set(op.targets) == set(before)
