"""Operations as commands: paint strokes as cell lists, weight updates, model replacement,
weights changed outside the session, and the history's memory budget."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import core.common.chunks as chunks
import core.pruning.vault as vault_module
from core.common.errors import PruningError, UnknownParameterError
from core.pruning.changes import CellChange
from core.pruning.methods import L1Unstructured, LnStructured
from core.pruning.operations import (
    LayerPrune,
    OutsideChange,
    PaintStroke,
    WeightUpdate,
    operation_from_dict,
)
from core.pruning.session import PruningSession


def snapshot(session: PruningSession) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    values = {k: v.clone() for k, v in session.model.state_dict().items()}
    return values, {n: session.mask(n) for n in session.names}


def assert_same(a, b) -> None:
    assert a[0].keys() == b[0].keys()
    for key in a[0]:
        assert torch.equal(a[0][key], b[0][key]), key
    for name in a[1]:
        assert torch.equal(a[1][name], b[1][name]), name


# --------------------------------------------------------------------- paint strokes
def test_a_stroke_records_only_the_cells_it_changed_and_undoes_exactly(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("fc1.weight", L1Unstructured(0.5))
    before = snapshot(session)
    already = int(torch.nonzero(~session.mask("fc1.weight").view(-1))[0])
    entry = session.paint("fc1.weight", [already, 0, 1, 2, 1], keep=False)
    assert entry is not None and isinstance(entry.change, CellChange)
    mask = session.mask("fc1.weight").view(-1)
    assert not mask[[0, 1, 2, already]].any()
    changed = (
        {0, 1, 2}
        - {already}
        - set(torch.nonzero(~before[1]["fc1.weight"].view(-1)).view(-1).tolist())
    )
    assert set(entry.change.positions.tolist()) == changed
    assert session.effective("fc1.weight").view(-1)[[0, 1, 2]].eq(0).all()
    after = snapshot(session)
    session.undo()
    assert_same(snapshot(session), before)
    session.redo()
    assert_same(snapshot(session), after)
    session.paint("fc1.weight", [0, 1], keep=True)
    original = session.original("fc1.weight").view(-1)
    assert torch.equal(session.effective("fc1.weight").view(-1)[:2], original[:2])


def test_a_stroke_that_changes_nothing_is_not_recorded(make_net) -> None:
    session = PruningSession(make_net())
    assert session.paint("fc1.weight", [3, 4], keep=True) is None
    assert not session.history.entries


def test_a_stroke_outside_the_layer_is_refused(make_net) -> None:
    session = PruningSession(make_net())
    with pytest.raises(PruningError, match=r"\[0, 128\)"):
        session.paint("fc1.weight", [128], keep=False)
    with pytest.raises(PruningError):
        session.paint("fc1.weight", [-1], keep=False)
    assert not session.history.entries


def test_painting_cannot_restore_what_was_made_permanent(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("fc1.weight", L1Unstructured(0.25))
    session.make_permanent(["fc1.weight"])
    pruned = torch.nonzero(~session.mask("fc1.weight").view(-1)).view(-1)[:3].tolist()
    assert session.paint("fc1.weight", pruned, keep=True) is None
    assert not session.mask("fc1.weight").view(-1)[pruned].any()


def test_strokes_replay_from_a_recipe() -> None:
    stroke = PaintStroke("fc1.weight", np.array([5, 2, 9]), keep=False)
    again = operation_from_dict(stroke.to_dict())
    assert again == stroke and again.label == stroke.label


def test_stroke_history_costs_bytes_per_cell_on_a_big_layer() -> None:
    session = PruningSession(nn.Sequential(nn.Linear(2048, 2048, bias=False)))
    session.paint("0.weight", np.arange(0, 5000, 100), keep=False)  # the layer's mask is made
    history0, vault0 = session.history.nbytes, session.vault.stored_bytes()
    rng = np.random.default_rng(0)
    for _ in range(20):
        session.paint("0.weight", rng.integers(0, 2048 * 2048, 50), keep=False)
    per_stroke = (session.history.nbytes - history0 + session.vault.stored_bytes() - vault0) / 20
    # Positions in history, offsets and values in the vault, object overheads: not the layer size.
    assert per_stroke <= 4096 < (2048 * 2048) // 8
    for _ in range(21):
        session.undo()
    assert session.packed_mask("0.weight") is None


# --------------------------------------------------------------------- weight updates
def test_a_weight_update_is_undone_exactly_and_keeps_pruned_weights_zero(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("fc1.weight", L1Unstructured(0.5))
    before = snapshot(session)
    original_before = session.original("fc1.weight")
    new = {name: torch.randn_like(t) for name, t in session.model.state_dict().items()}
    session.update_weights(new, "Fine-tune 1 epoch")
    mask = session.mask("fc1.weight")
    weight = session.model.fc1.weight.detach()
    assert torch.equal(weight[mask], new["fc1.weight"][mask])
    assert weight[~mask].eq(0).all()
    assert torch.equal(session.model.fc1.bias.detach(), new["fc1.bias"])
    # The originals of pruned weights are untouched; kept ones are the new values.
    original = session.original("fc1.weight")
    assert torch.equal(original[~mask], original_before[~mask])
    assert torch.equal(original[mask], new["fc1.weight"][mask])
    session.undo()
    assert_same(snapshot(session), before)
    session.redo()
    assert torch.equal(session.model.fc2.weight.detach(), new["fc2.weight"])


def test_a_weight_update_re_bases_the_stored_originals(make_net) -> None:
    # prune, undo, fine-tune, then set-to-X and back to 0: the fine-tuned values stay.
    session = PruningSession(make_net())
    session.prune("fc1.weight", L1Unstructured(0.5))
    session.undo()
    tuned = session.model.fc1.weight.detach() + 1.0
    session.update_weights({"fc1.weight": tuned})
    assert torch.equal(session.original("fc1.weight"), tuned)
    session.prune("fc1.weight", L1Unstructured(0.3), mode="set")
    session.prune("fc1.weight", L1Unstructured(0.0), mode="set")
    assert torch.equal(session.model.fc1.weight.detach(), tuned)


def test_a_weight_update_on_a_pruned_layer_re_bases_only_the_kept_originals(make_net) -> None:
    session = PruningSession(make_net())
    original = session.model.fc1.weight.detach().clone()
    session.prune("fc1.weight", L1Unstructured(0.6))
    session.undo()  # the vault still holds the 60%, now kept again
    session.prune("fc1.weight", L1Unstructured(0.2))
    kept = session.mask("fc1.weight")
    session.update_weights({"fc1.weight": original - 1.0})
    expected = torch.where(kept, original - 1.0, original)
    assert torch.equal(session.original("fc1.weight"), expected)
    session.prune("fc1.weight", L1Unstructured(0.9), mode="set")
    session.prune("fc1.weight", L1Unstructured(0.0), mode="set")
    assert torch.equal(session.model.fc1.weight.detach(), expected)


def test_a_weight_update_with_a_wrong_shape_or_name_changes_nothing(make_net) -> None:
    session = PruningSession(make_net())
    before = snapshot(session)
    with pytest.raises(PruningError, match="shape"):
        session.update_weights({"fc1.bias": torch.zeros(8), "fc2.weight": torch.zeros(2, 2)})
    with pytest.raises(UnknownParameterError):
        session.update_weights({"nope": torch.zeros(1)})
    assert_same(snapshot(session), before)
    assert not session.history.entries


def test_weight_updates_cannot_be_replayed_from_a_recipe() -> None:
    data = WeightUpdate({"fc1.bias": torch.zeros(8)}, "Fine-tune").to_dict()
    assert "values" not in data
    with pytest.raises(PruningError, match="cannot be replayed"):
        operation_from_dict(data)


# --------------------------------------------------------------------- model replacement
def test_replacing_the_model_is_undone_with_its_masks_and_originals(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("fc1.weight", LnStructured(0.5, n=2, dim=0))
    old_model = session.model
    before = snapshot(session)
    slim = nn.Sequential(nn.Linear(16, 4), nn.ReLU(), nn.Linear(4, 3))
    seen: list[tuple[str, ...]] = []
    session.subscribe(seen.append)
    session.replace_model(slim, "Slim fc1")
    assert session.model is slim and session.names == ["0.weight", "2.weight"]
    assert session.packed_mask("0.weight") is None
    session.prune("0.weight", L1Unstructured(0.5))
    session.undo()
    session.undo()
    assert session.model is old_model
    assert_same(snapshot(session), before)
    assert torch.equal(session.original("fc1.weight"), make_net().fc1.weight.detach())
    assert "fc1.weight" in seen[0] and "0.weight" in seen[0]
    session.redo()
    assert session.model is slim


def test_dropping_a_replacement_from_history_closes_the_old_vault(make_net, tmp_path) -> None:
    session = PruningSession(make_net(), spill=True, spill_dir=str(tmp_path))
    session.prune("fc1.weight", L1Unstructured(0.5))
    old_folder = session.vault.folder
    assert old_folder is not None and old_folder.exists()
    session.replace_model(make_net(1))
    session.history.set_budget(0)
    assert not session.history.entries
    assert not old_folder.exists()
    assert session.vault.folder is not None and session.vault.folder.exists()
    session.close()


# --------------------------------------------------------------------- outside changes
def test_an_optimiser_step_outside_is_adopted_and_never_undone_with_stale_values(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("fc1.weight", L1Unstructured(0.5))
    session.undo()
    optimiser = torch.optim.SGD(session.model.parameters(), lr=0.1)
    session.model(torch.randn(4, 2, 4, 4)).sum().backward()
    optimiser.step()
    stepped = session.model.fc1.weight.detach().clone()
    # Reading is exact at once: nothing is pruned, so the original is the live weight.
    assert torch.equal(session.original("fc1.weight"), stepped)
    session.prune("fc1.weight", L1Unstructured(0.3), mode="set")
    assert [op.to_dict()["op"] for op in session.operations] == [OutsideChange.kind, "layer_prune"]
    session.prune("fc1.weight", L1Unstructured(0.0), mode="set")
    assert torch.equal(session.model.fc1.weight.detach(), stepped)
    session.undo()
    session.undo()
    with pytest.raises(PruningError, match="nothing to undo"):
        session.undo()
    assert torch.equal(session.model.fc1.weight.detach(), stepped)


def test_a_data_write_is_noticed_by_the_fingerprint(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("fc2.weight", L1Unstructured(0.5))
    session.model.fc1.weight.data.mul_(2.0)  # .data: the version counter does not move
    assert session.check_outside_changes() == ("fc1.weight",)
    assert not session.history.can_undo()
    assert session.operations[-1].kind == "outside_change"
    assert session.check_outside_changes() == ()


def test_pruned_weights_written_outside_are_zeroed_again(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("fc1.weight", L1Unstructured(0.5))
    mask = session.mask("fc1.weight")
    with torch.no_grad():
        session.model.fc1.weight.add_(1.0)
    session.check_outside_changes()
    weight = session.model.fc1.weight.detach()
    assert weight[~mask].eq(0).all() and session.packed_mask("fc1.weight") is not None


# --------------------------------------------------------------------- history budget
def test_the_history_stays_within_its_budget_and_the_recipe_keeps_every_step(make_net) -> None:
    session = PruningSession(make_net(), history_budget=4000)
    for i in range(12):
        session.prune(["fc1.weight", "fc2.weight"], L1Unstructured(0.05 * (i + 1)), mode="set")
        assert session.history.nbytes <= 4000
    assert session.history.dropped > 0 and session.history.cursor >= 1
    assert len(session.operations) == 12
    assert "can no longer be undone" in session.history.reach()
    while session.history.can_undo():
        session.undo()
    assert session.history.cursor == 0 and session.sparsity("fc1.weight") > 0
    for _ in range(len(session.history.entries)):
        session.redo()
    fresh = PruningSession(make_net())
    for op in session.operations:
        fresh.apply(op)
    for name in session.names:
        assert session.packed_mask(name) == fresh.packed_mask(name)


def test_a_budget_of_zero_keeps_no_undo_data(make_net) -> None:
    session = PruningSession(make_net(), history_budget=0)
    session.prune("fc1.weight", L1Unstructured(0.5))
    assert not session.history.can_undo() and session.history.nbytes == 0
    with pytest.raises(PruningError, match="1 older step"):
        session.undo()
    with pytest.raises(ValueError):
        session.history.set_budget(-1)


# --------------------------------------------------------------------- vault bookkeeping
@pytest.mark.parametrize("spill", [False, True])
def test_many_small_stashes_are_merged_and_stay_exact(monkeypatch, tmp_path, spill) -> None:
    monkeypatch.setattr(chunks, "CHUNK", 64)
    monkeypatch.setattr(vault_module, "MAX_SEGMENTS", 4)
    model = nn.Sequential(nn.Linear(40, 10, bias=False))
    original = model[0].weight.detach().clone()
    session = PruningSession(model, spill=spill, spill_dir=str(tmp_path))
    rng = np.random.default_rng(1)
    for _ in range(15):
        session.paint("0.weight", rng.integers(0, 400, 7), keep=False)
    assert len(session.vault._records["0.weight"].segments) <= 5
    assert torch.equal(session.original("0.weight"), original)
    session.reset()
    assert torch.equal(model[0].weight.detach(), original)
    session.close()


def test_a_layer_prune_keeps_torchs_mask_after_commands(make_net) -> None:
    # The command path computes exactly what the method computes.
    model = make_net()
    reference = copy.deepcopy(model)
    session = PruningSession(model)
    session.apply(LayerPrune(("fc1.weight",), L1Unstructured(0.4)))
    prune.l1_unstructured(reference.fc1, "weight", 0.4)
    assert torch.equal(session.mask("fc1.weight"), reference.fc1.weight_mask.bool())


def test_sessions_watch_parameters_beyond_float32_integer_precision() -> None:
    # 4097² > 2**24: sampled positions must be computed in integers.
    model = nn.Linear(4097, 4097, bias=False)
    session = PruningSession(model)
    with torch.no_grad():
        model.weight.data[-1, -1] += 1.0  # the last entry is always sampled
    assert session.check_outside_changes() == ("weight",)


# --------------------------------------------------------------------- saved states
def test_a_saved_state_loads_back_exactly(make_net) -> None:
    session = PruningSession(make_net())
    session.prune("conv.weight", L1Unstructured(0.3))
    session.make_permanent(["conv.weight"])
    session.prune(["conv.weight", "fc1.weight"], L1Unstructured(0.4))
    session.update_weights({"fc2.bias": torch.ones(4)}, "nudge")
    names = session.names
    saved = {
        "weights": {k: v.clone() for k, v in session.model.state_dict().items()},
        "masks": {n: session.packed_mask(n) for n in names},
        "originals": {n: session.original(n) for n in names if n != "fc1.weight"},
        "floors": {n: session.floor(n) for n in names},
        "operations": [op.to_dict() for op in session.operations],
    }
    model = make_net(5)
    model.load_state_dict(saved["weights"])
    again = PruningSession(model)
    again.load_state(
        saved["masks"],
        saved["originals"],
        saved["floors"],
        [operation_from_dict(op, replay=False) for op in saved["operations"]],
    )
    for name in names:
        assert again.packed_mask(name) == session.packed_mask(name)
        assert torch.equal(again.effective(name), session.effective(name))
    assert torch.equal(again.original("conv.weight"), session.original("conv.weight"))
    assert again.is_permanent("conv.weight") and again.is_permanent("fc1.weight")  # no originals
    assert not again.is_permanent("fc2.weight")
    assert [op.to_dict() for op in again.operations] == saved["operations"]
    assert not again.history.entries and "saved session" in again.history.start_label
    again.reset(["conv.weight"])
    assert again.packed_mask("conv.weight") == session.floor("conv.weight")
    with pytest.raises(PruningError, match="fresh session"):
        again.load_state(saved["masks"])


# --------------------------------------------------------------------- found by review
def bits(t: torch.Tensor) -> torch.Tensor:
    """The raw bits of a tensor, so -0.0 and +0.0 (and NaN payloads) compare as different."""
    return t.detach().reshape(-1).view(torch.uint8).clone()


def test_dropping_one_of_two_replacements_keeps_the_state_the_next_one_needs(
    make_net, tmp_path
) -> None:
    session = PruningSession(make_net(), spill=True, spill_dir=str(tmp_path))
    second = nn.Sequential(nn.Linear(16, 8), nn.Linear(8, 4))
    session.replace_model(second)  # A -> B
    session.prune("0.weight", L1Unstructured(0.5))  # on B
    original_b = session.original("0.weight")
    session.replace_model(nn.Sequential(nn.Linear(16, 4)))  # B -> C
    session.history.set_budget(session.history.nbytes - session.history.entries[0].nbytes)
    assert session.history.dropped == 1  # A -> B: only A's state may go
    session.undo()
    assert session.model is second
    assert torch.equal(session.original("0.weight"), original_b)
    session.undo()
    assert torch.equal(session.model[0].weight.detach(), original_b)
    # The other way: the far end of the redo part (B -> C) goes; B, live, must stay usable.
    session.history.set_budget(session.history.entries[0].nbytes + 1)
    assert len(session.history.entries) == 1
    session.redo()
    assert session.model is second and session.sparsity("0.weight") == 0.5
    session.undo()
    assert torch.equal(session.model[0].weight.detach(), original_b)
    session.close()


def test_a_parameter_replaced_outside_is_followed(make_net) -> None:
    model = make_net()
    session = PruningSession(model)
    session.prune("fc1.weight", L1Unstructured(0.5))
    model.fc1.weight = nn.Parameter(torch.randn(8, 16))
    session.prune("fc1.weight", L1Unstructured(0.5), mode="set")
    weight = model.fc1.weight.detach()
    assert session.effective("fc1.weight") is not None
    assert torch.equal(session.effective("fc1.weight"), weight)
    assert int((weight == 0).sum()) == 64 == round(session.sparsity("fc1.weight") * 128)


def test_a_dtype_change_outside_never_brings_back_values_of_the_old_dtype(make_net) -> None:
    model = make_net()
    session = PruningSession(model)
    session.prune("fc1.weight", L1Unstructured(0.5))
    mask = session.mask("fc1.weight")
    model.double()
    session.check_outside_changes()
    assert session.info("fc1.weight").dtype == torch.float64
    assert session.is_permanent("fc1.weight")  # its float32 originals are gone
    session.reset()
    weight = model.fc1.weight.detach()
    assert weight.dtype == torch.float64 and weight[~mask].eq(0).all()
    session.prune("fc1.weight", L1Unstructured(0.5))  # and it keeps working
    session.undo()


def test_history_bytes_are_the_sum_of_its_entries_whatever_happens_later(make_net) -> None:
    session = PruningSession(make_net())
    session.replace_model(make_net(1))
    session.prune("fc1.weight", L1Unstructured(0.5))
    session.prune("conv.weight", L1Unstructured(0.5))
    assert session.history.nbytes == sum(e.nbytes for e in session.history.entries)
    session.history.set_budget(session.history.nbytes - 1)
    assert session.history.nbytes == sum(e.nbytes for e in session.history.entries)
    assert session.history.nbytes <= session.history.budget


def test_pruned_entries_are_plus_zero_whatever_they_held(make_net) -> None:
    session = PruningSession(make_net())
    with torch.no_grad():
        session.model.fc1.weight[0, :3] = torch.tensor([-1.0, float("inf"), float("nan")])
    session.check_outside_changes()
    session.paint("fc1.weight", [0, 1, 2], keep=False)
    assert torch.equal(
        bits(session.effective("fc1.weight"))[:12], torch.zeros(12, dtype=torch.uint8)
    )
    new = torch.full((8, 16), float("inf"))
    session.update_weights({"fc1.weight": new})
    pruned = ~session.mask("fc1.weight")
    assert bits(session.effective("fc1.weight")[pruned]).eq(0).all()
    session.undo()
    session.prune("fc2.weight", L1Unstructured(0.5))  # no NaN left behind to refuse


def test_undo_is_bit_exact_for_signed_zeros(make_net) -> None:
    session = PruningSession(make_net())
    with torch.no_grad():
        session.model.fc1.weight[0, 0] = -1.0
    session.check_outside_changes()
    session.paint("fc1.weight", [0], keep=False)  # -1.0 is pruned
    session.update_weights({"fc1.weight": torch.full((8, 16), 5.0)})
    before = bits(session.effective("fc1.weight"))
    session.reset()  # -1.0 is back
    session.undo()  # and pruned again: the same bits as before the reset
    assert torch.equal(bits(session.effective("fc1.weight")), before)


def test_buffers_a_weight_update_wrote_are_watched() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    session = PruningSession(model)
    session.update_weights({"1.running_mean": torch.ones(2)}, "set statistics")
    model.train()
    model(torch.randn(4, 1, 5, 5))  # a training forward moves the running statistics
    assert session.check_outside_changes() == ("1.running_mean",)
    assert not session.history.can_undo()


def test_statistics_do_not_move_batch_norm_buffers(make_net) -> None:
    from core.analysis.stats import stats_job
    from core.common.jobs import run_job

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)).train()
    session = PruningSession(model, example_input=torch.randn(2, 1, 5, 5))
    session.update_weights({"1.running_mean": torch.ones(2)})
    run_job(stats_job(session))
    assert model.training and session.check_outside_changes() == ()


def test_the_spill_file_is_rewritten_once_most_of_it_is_dead(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(vault_module, "_RECLAIM_SLACK", 0)
    model = nn.Sequential(nn.Linear(256, 256, bias=False))
    session = PruningSession(model, spill=True, spill_dir=str(tmp_path))
    session.prune("0.weight", L1Unstructured(0.5))
    original = session.original("0.weight")
    for i in range(10):
        session.paint("0.weight", [int(torch.nonzero(~session.mask("0.weight").view(-1))[0])], True)
        weight = session.effective("0.weight")
        session.update_weights({"0.weight": weight * (1 + i / 100)})
    file = session.vault._file
    assert file is not None and file.size <= 2 * session.vault.stored_bytes()
    assert len(list(session.vault.folder.iterdir())) == 1
    pruned = ~session.mask("0.weight")
    assert torch.equal(session.original("0.weight")[pruned], original[pruned])
    session.close()


def test_custom_masks_are_held_packed_and_counted(make_net) -> None:
    from core.pruning.methods import CustomMask

    keep = torch.rand(8, 16, generator=torch.Generator().manual_seed(0)) > 0.5
    method = CustomMask(keep)
    assert method.nbytes == 16 and torch.equal(method.compute_mask(torch.ones(8, 16)), keep)
    session = PruningSession(make_net())
    entry = session.apply(LayerPrune(("fc1.weight",), method, "set"))
    assert entry is not None and entry.nbytes >= entry.change.nbytes + 16
