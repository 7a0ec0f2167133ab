"""torch.nn.utils.prune interop: export to weight_orig/weight_mask and adopt back.

The exported copy must compute exactly what the session's model computes,
``prune.remove`` must leave the effective weights, and adopting it must give
the same masks with the originals still recoverable, tied weights included.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from core.common.errors import PruningError
from core.io.torch_interop import session_from_torch_pruned, to_torch_pruned
from core.pruning.methods import L1Unstructured, LnStructured, RandomUnstructured
from core.pruning.session import PruningSession


def prune_net(session: PruningSession) -> None:
    """Unstructured, structured and random pruning on the first two layers, fc2 left dense."""
    session.prune(["conv.weight"], L1Unstructured(0.5))
    session.prune(["fc1.weight"], LnStructured(0.25, n=2, dim=0))
    session.prune(["fc1.weight"], RandomUnstructured(0.3, seed=3))


def module_of(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    module_name, _, attr = name.rpartition(".")
    return model.get_submodule(module_name), attr


def snapshot(session: PruningSession) -> tuple[dict[str, torch.Tensor], ...]:
    """Masks, live values and originals of every target."""
    return (
        {n: session.mask(n) for n in session.names},
        {n: session.effective(n).clone() for n in session.names},
        {n: session.original(n) for n in session.names},
    )


def assert_same_snapshot(a: tuple[dict[str, torch.Tensor], ...], b: tuple) -> None:
    for part_a, part_b in zip(a, b, strict=True):
        assert part_a.keys() == part_b.keys()
        for name in part_a:
            assert torch.equal(part_a[name], part_b[name]), name


# --------------------------------------------------------------------- export
def test_export_is_in_torch_format_and_computes_what_the_session_does(
    net_session: PruningSession, net_input: torch.Tensor
) -> None:
    prune_net(net_session)
    before = snapshot(net_session)
    exported = to_torch_pruned(net_session)
    assert exported is not net_session.model
    assert prune.is_pruned(exported)
    for name in ("conv.weight", "fc1.weight"):
        module, attr = module_of(exported, name)
        assert isinstance(getattr(module, attr + "_orig"), nn.Parameter)
        assert torch.equal(getattr(module, attr + "_orig"), net_session.original(name))
        assert torch.equal(getattr(module, attr + "_mask"), net_session.mask(name).float())
        assert attr not in module._parameters
    assert "weight_orig" not in dict(exported.fc2.named_parameters())  # never pruned: plain
    with torch.no_grad():
        assert torch.equal(exported(net_input), net_session.model(net_input))
    assert_same_snapshot(snapshot(net_session), before)  # the session is untouched


def test_prune_remove_leaves_the_effective_weights(net_session: PruningSession) -> None:
    prune_net(net_session)
    exported = to_torch_pruned(net_session)
    for name in ("conv.weight", "fc1.weight"):
        module, attr = module_of(exported, name)
        prune.remove(module, attr)
        assert torch.equal(getattr(module, attr), net_session.effective(name))
    assert not prune.is_pruned(exported)
    for name, _ in exported.named_parameters():
        assert not name.endswith("_orig"), name


def test_export_of_a_permanent_layer_has_no_originals_left(net_session: PruningSession) -> None:
    net_session.prune(["fc2.weight"], L1Unstructured(0.5))
    net_session.make_permanent(["fc2.weight"])
    exported = to_torch_pruned(net_session)
    assert torch.equal(exported.fc2.weight_orig, net_session.effective("fc2.weight"))
    assert torch.equal(exported.fc2.weight_mask, net_session.mask("fc2.weight").float())


# --------------------------------------------------------------------- round trip
def test_round_trip_gives_equal_masks_and_recoverable_originals(
    net_session: PruningSession, net_input: torch.Tensor
) -> None:
    prune_net(net_session)
    exported = to_torch_pruned(net_session)
    with torch.no_grad():
        expected = exported(net_input)
    adopted = session_from_torch_pruned(exported)
    assert adopted.model is exported
    assert not prune.is_pruned(exported)
    assert adopted.names == net_session.names
    for name in adopted.names:
        assert adopted.packed_mask(name) == net_session.packed_mask(name), name
        assert torch.equal(adopted.effective(name), net_session.effective(name)), name
        assert torch.equal(adopted.original(name), net_session.original(name)), name
    with torch.no_grad():
        assert torch.equal(exported(net_input), expected)
    assert len(adopted.history.entries) == 2  # one custom-mask operation per pruned layer
    adopted.reset()
    for name in adopted.names:
        assert torch.equal(adopted.effective(name), net_session.original(name)), name
    adopted.undo()  # the reset
    adopted.undo()
    adopted.undo()
    for name in adopted.names:
        assert adopted.packed_mask(name) is None
        assert torch.equal(adopted.effective(name), net_session.original(name)), name


def test_adopting_a_model_pruned_by_torch_itself(make_net: Callable[[int], nn.Module]) -> None:
    model = make_net(0)
    originals = {n: p.detach().clone() for n, p in model.named_parameters()}
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)
    prune.l1_unstructured(model.fc1, "weight", amount=0.5)  # a PruningContainer
    prune.random_unstructured(model.fc2, "bias", amount=0.5)
    masks = {"fc1.weight": model.fc1.weight_mask != 0, "fc2.bias": model.fc2.bias_mask != 0}
    effective = {"fc1.weight": model.fc1.weight.detach(), "fc2.bias": model.fc2.bias.detach()}
    session = session_from_torch_pruned(model)
    assert "fc2.bias" in session.names  # torch pruned a bias: biases become targets
    for name, mask in masks.items():
        assert torch.equal(session.mask(name), mask), name
        assert torch.equal(session.effective(name), effective[name]), name
        assert torch.equal(session.original(name), originals[name]), name
    assert session.sparsity("fc1.weight") == 0.75


def test_a_model_without_torch_pruning_gives_an_empty_session(
    make_net: Callable[[int], nn.Module],
) -> None:
    session = session_from_torch_pruned(make_net(0))
    assert session.names == ["conv.weight", "fc1.weight", "fc2.weight"]
    assert len(session.history.entries) == 0


# --------------------------------------------------------------------- tied weights
def prune_lm(session: PruningSession) -> None:
    session.prune(["emb.weight"], L1Unstructured(0.5))
    session.prune(["fc.weight"], LnStructured(0.25, n=1, dim=1))


def test_tied_weights_export_masks_every_module_that_uses_them(
    lm_session: PruningSession, lm_tokens: torch.Tensor
) -> None:
    prune_lm(lm_session)
    exported = to_torch_pruned(lm_session)
    # Each module is reparametrised, sharing one original parameter, each with the mask.
    assert exported.emb.weight_orig is exported.head.weight_orig
    for module in (exported.emb, exported.head):
        assert torch.equal(module.weight_orig, lm_session.original("emb.weight"))
        assert torch.equal(module.weight_mask, lm_session.mask("emb.weight").float())
    with torch.no_grad():
        assert torch.equal(exported(lm_tokens), lm_session.model(lm_tokens))
        assert torch.equal(exported.head.weight, lm_session.effective("head.weight"))


def test_tied_weights_round_trip(lm_session: PruningSession, lm_tokens: torch.Tensor) -> None:
    prune_lm(lm_session)
    exported = to_torch_pruned(lm_session)
    with torch.no_grad():
        expected = exported(lm_tokens)
    adopted = session_from_torch_pruned(exported, include_embeddings=True)
    assert exported.emb.weight is exported.head.weight  # still tied, and plain again
    assert adopted.names == lm_session.names == ["emb.weight", "fc.weight"]
    assert adopted.info("emb.weight").aliases == ("head.weight",)
    assert len(adopted.history.entries) == 2  # the tied tensor is one operation
    for name in adopted.names:
        assert adopted.packed_mask(name) == lm_session.packed_mask(name), name
        assert torch.equal(adopted.original(name), lm_session.original(name)), name
    with torch.no_grad():
        assert torch.equal(exported(lm_tokens), expected)
    adopted.undo()
    adopted.undo()
    assert torch.equal(exported.head.weight, lm_session.original("emb.weight"))


def assert_still_torch_pruned(model: nn.Module, tokens: torch.Tensor, expected: torch.Tensor):
    assert prune.is_pruned(model)
    with torch.no_grad():
        assert torch.equal(model(tokens), expected)


def test_tied_weights_pruned_in_one_module_only_are_refused(
    make_lm: Callable[[int], nn.Module], lm_tokens: torch.Tensor
) -> None:
    model = make_lm(0)
    prune.l1_unstructured(model.head, "weight", amount=0.5)  # the embedding still sees all
    with torch.no_grad():
        expected = model(lm_tokens)
    with pytest.raises(PruningError, match=r"head\.weight.*emb\.weight.*together"):
        session_from_torch_pruned(model)
    assert_still_torch_pruned(model, lm_tokens, expected)


def test_tied_weights_with_different_masks_are_refused(
    make_lm: Callable[[int], nn.Module], lm_tokens: torch.Tensor
) -> None:
    model = make_lm(0)
    prune.l1_unstructured(model.emb, "weight", amount=0.5)
    prune.random_unstructured(model.head, "weight", amount=0.5)
    with torch.no_grad():
        expected = model(lm_tokens)
    with pytest.raises(PruningError, match="different masks"):
        session_from_torch_pruned(model)
    assert_still_torch_pruned(model, lm_tokens, expected)


class WithNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.norm = nn.LayerNorm(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.norm(self.fc(x))
        return out


def test_a_pruned_parameter_the_session_cannot_target_leaves_the_model_as_torch_had_it() -> None:
    torch.manual_seed(0)
    model = WithNorm()
    with torch.no_grad():
        model.norm.weight.normal_()
    prune.l1_unstructured(model.fc, "weight", amount=0.5)
    prune.l1_unstructured(model.norm, "weight", amount=0.5)  # 1-D and not a bias
    x = torch.randn(3, 6)
    with torch.no_grad():
        expected = model(x)
    originals = (model.fc.weight_orig.detach().clone(), model.norm.weight_orig.detach().clone())
    with pytest.raises(PruningError, match=r"norm\.weight.*not among the session's targets"):
        session_from_torch_pruned(model)
    assert_still_torch_pruned(model, x, expected)
    assert torch.equal(model.fc.weight_orig, originals[0])
    assert torch.equal(model.norm.weight_orig, originals[1])


def test_tied_weights_need_no_wider_targets_when_one_name_is_a_default_target(
    lm_session: PruningSession,
) -> None:
    prune_lm(lm_session)
    adopted = session_from_torch_pruned(to_torch_pruned(lm_session))
    # head.weight (a Linear weight) is a default target, so embeddings and
    # biases are not added: the tied tensor is named by its Linear.
    assert adopted.names == ["head.weight", "fc.weight"]
    assert adopted.target_options == {
        "include_bias": False,
        "include_embeddings": False,
        "include_other": False,
    }
    assert adopted.packed_mask("emb.weight") == lm_session.packed_mask("emb.weight")
