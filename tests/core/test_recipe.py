"""Recipes: saved, loaded and replayed on a fresh copy of the model, bit for bit.

Every operation kind (layer pruning with every method in both modes, global
pruning with caps, reset, make-permanent) must replay to identical masks; a
cancelled or failed replay must leave the session as it was; bad files must
give a PruningError.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from core.common.errors import JobCancelled, PruningError
from core.common.jobs import CancelToken, Progress, run_job
from core.io.recipe import VERSION, Recipe, load_recipe, recipe_of, replay_job, save_recipe
from core.pruning.methods import (
    METHODS,
    BlockSparsity,
    CustomMask,
    L1Unstructured,
    LnStructured,
    MagnitudeThreshold,
    NMSparsity,
    PruningMethod,
    QuantileRule,
    RandomStructured,
    RandomUnstructured,
)
from core.pruning.operations import OPERATIONS, LayerPrune, Operation, PaintStroke
from core.pruning.session import PruningSession

ALL = ("conv.weight", "fc1.weight", "fc2.weight")
MATRICES = ("fc1.weight", "fc2.weight")  # widths divisible by 4, for N:M


def _custom(session: PruningSession) -> PruningMethod:
    mask = torch.rand((8, 16), generator=torch.Generator().manual_seed(4)) > 0.4
    return CustomMask(mask)


#: For every registered method: the layers it prunes here and how to build it.
METHOD_CASES: dict[str, tuple[tuple[str, ...], Callable[[PruningSession], PruningMethod]]] = {
    "l1_unstructured": (ALL, lambda s: L1Unstructured(0.4)),
    "random_unstructured": (ALL, lambda s: RandomUnstructured(0.4, seed=7)),
    "ln_structured": (ALL, lambda s: LnStructured(0.5, n=1, dim=0)),
    "random_structured": (ALL, lambda s: RandomStructured(0.5, dim=1, seed=5)),
    "n_m": (MATRICES, lambda s: NMSparsity(2, 4)),
    "block": (ALL, lambda s: BlockSparsity(0.5, block_rows=2, block_cols=2)),
    "threshold": (ALL, lambda s: MagnitudeThreshold(0.15)),
    "quantile": (ALL, lambda s: QuantileRule(0.3)),
    "custom_mask": (("fc1.weight",), _custom),
}


def test_every_registered_method_has_a_replay_case() -> None:
    assert set(METHOD_CASES) == set(METHODS)


# --------------------------------------------------------------------- helpers
State = tuple[Any, ...]


def state(session: PruningSession) -> State:
    """What a replay changes: masks, values, originals, permanence, undo position, recipe."""
    return (
        {n: session.packed_mask(n) for n in session.names},
        {n: session.effective(n).clone() for n in session.names},
        {n: session.original(n) for n in session.names},
        {n: session.is_permanent(n) for n in session.names},
        session.history.cursor,
        recipe_of(session).to_dict(),
    )


def assert_same_state(a: State, b: State) -> None:
    masks_a, values_a, originals_a, *rest_a = a
    masks_b, values_b, originals_b, *rest_b = b
    assert masks_a == masks_b
    for name in values_a:
        assert torch.equal(values_a[name], values_b[name]), name
        assert torch.equal(originals_a[name], originals_b[name]), name
    assert rest_a == rest_b


def replayed(
    session: PruningSession, tmp_path: Path, make_model: Callable[[int], nn.Module]
) -> PruningSession:
    """Save the session's recipe, load it, replay it on a fresh copy of the model."""
    path = tmp_path / "recipe.json"
    save_recipe(session, path)
    recipe = load_recipe(path)
    fresh = PruningSession(make_model(0), **recipe.target_options)
    run_job(replay_job(fresh, recipe))
    return fresh


def assert_identical(a: PruningSession, b: PruningSession) -> None:
    """Bit-identical masks and values, and the same permanence."""
    assert a.names == b.names
    for name in a.names:
        assert a.packed_mask(name) == b.packed_mask(name), name
        assert torch.equal(a.effective(name), b.effective(name)), name
        assert a.is_permanent(name) == b.is_permanent(name), name


# --------------------------------------------------------------------- replay
@pytest.mark.parametrize("mode", ["further", "set"])
@pytest.mark.parametrize("method_name", sorted(METHOD_CASES))
def test_layer_pruning_replays_to_identical_masks(
    method_name: str,
    mode: str,
    net_session: PruningSession,
    make_net: Callable[[int], nn.Module],
    tmp_path: Path,
) -> None:
    targets, build = METHOD_CASES[method_name]
    net_session.prune(ALL, L1Unstructured(0.3))  # something for "further" to build on
    net_session.prune(targets, build(net_session), mode=mode)  # type: ignore[arg-type]
    assert any(net_session.packed_mask(n) is not None for n in targets)
    assert_identical(replayed(net_session, tmp_path, make_net), net_session)


def test_global_pruning_with_caps_replays_to_identical_masks(
    net_session: PruningSession, make_net: Callable[[int], nn.Module], tmp_path: Path
) -> None:
    net_session.global_prune(0.5, max_sparsity={"fc1.weight": 0.2})
    assert net_session.sparsity("fc1.weight") == pytest.approx(0.2, abs=1 / 128)
    net_session.global_prune(10, targets=["conv.weight", "fc2.weight"])  # a count
    assert_identical(replayed(net_session, tmp_path, make_net), net_session)


def test_global_pruning_with_tied_magnitudes_replays_to_identical_masks(
    make_net: Callable[[int], nn.Module], tmp_path: Path
) -> None:
    def coarse(seed: int) -> nn.Module:  # few distinct |w|: many ties to break
        model = make_net(seed)
        with torch.no_grad():
            for param in model.parameters():
                param.copy_((param * 10).round() / 10)
        return model

    session = PruningSession(coarse(0))
    session.global_prune(0.45)
    session.global_prune(0.2, max_sparsity={"conv.weight": 0.5})
    assert_identical(replayed(session, tmp_path, coarse), session)


def test_reset_replays(
    net_session: PruningSession, make_net: Callable[[int], nn.Module], tmp_path: Path
) -> None:
    net_session.prune(ALL, L1Unstructured(0.5))
    net_session.reset(["fc1.weight"])
    net_session.prune(["fc1.weight", "fc2.weight"], RandomUnstructured(0.25, seed=2))
    assert_identical(replayed(net_session, tmp_path, make_net), net_session)


def test_make_permanent_replays(
    net_session: PruningSession, make_net: Callable[[int], nn.Module], tmp_path: Path
) -> None:
    net_session.prune(ALL, L1Unstructured(0.3))
    net_session.make_permanent(["conv.weight", "fc1.weight"])
    net_session.prune(["conv.weight"], L1Unstructured(0.1), mode="set")  # kept by the floor
    net_session.reset()
    assert net_session.is_permanent("conv.weight")
    assert net_session.packed_mask("conv.weight") is not None
    fresh = replayed(net_session, tmp_path, make_net)
    assert_identical(fresh, net_session)
    assert fresh.operations == net_session.operations


def test_tied_weights_replay(
    lm_session: PruningSession, make_lm: Callable[[int], nn.Module], tmp_path: Path
) -> None:
    lm_session.prune(["head.weight"], L1Unstructured(0.5))  # an alias of emb.weight
    lm_session.global_prune(0.3)
    fresh = replayed(lm_session, tmp_path, make_lm)
    assert fresh.target_options["include_embeddings"]
    assert_identical(fresh, lm_session)


def test_paint_strokes_replay(
    net_session: PruningSession, make_net: Callable[[int], nn.Module], tmp_path: Path
) -> None:
    net_session.paint("fc1.weight", range(0, 128, 3), keep=False)
    net_session.prune(["fc1.weight"], L1Unstructured(0.2))
    net_session.paint("fc1.weight", [0, 3, 6, 7], keep=True)
    assert_identical(replayed(net_session, tmp_path, make_net), net_session)


def test_every_replayable_operation_kind_is_replayed_here() -> None:
    replayable = {kind for kind, cls in OPERATIONS.items() if cls.replayable}
    tested = {"layer_prune", "global_prune", "reset", "paint", "make_permanent"}
    tested.add("group_prune")  # replayed in tests/core/test_groups.py
    assert replayable == tested


def test_a_weight_update_is_saved_but_cannot_be_replayed(
    net_session: PruningSession, tmp_path: Path
) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    net_session.update_weights({"fc2.bias": torch.zeros(4)}, "fine-tune the head")
    save_recipe(net_session, tmp_path / "r.json")
    with pytest.raises(PruningError, match=r"fine-tune the head.*cannot be replayed"):
        load_recipe(tmp_path / "r.json")


def test_recipe_file_is_versioned_json(net_session: PruningSession, tmp_path: Path) -> None:
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    save_recipe(net_session, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert data["format"] == "prunescope-recipe"
    assert data["version"] == VERSION
    assert data["torch_version"] == torch.__version__
    assert [op["op"] for op in data["operations"]] == ["layer_prune"]


# --------------------------------------------------------------------- cancel, failure
def a_recipe(make_net: Callable[[int], nn.Module]) -> Recipe:
    """Three operations recorded on a scratch session."""
    with PruningSession(make_net(0)) as scratch:
        scratch.prune(ALL, L1Unstructured(0.3))
        scratch.global_prune(0.4)
        scratch.reset(["fc2.weight"])
        return recipe_of(scratch)


def progress_count(make_net: Callable[[int], nn.Module], recipe: Recipe) -> int:
    events: list[Progress] = []
    with PruningSession(make_net(0)) as session:
        session.prune(["fc2.weight"], QuantileRule(0.5))
        run_job(replay_job(session, recipe), events.append)
    return len(events)


def test_a_replay_cancelled_at_any_point_leaves_the_session_as_before(
    make_net: Callable[[int], nn.Module],
) -> None:
    recipe = a_recipe(make_net)
    count = progress_count(make_net, recipe)
    assert count >= 6
    for cancel_at in range(count):
        session = PruningSession(make_net(0))
        session.prune(["fc2.weight"], QuantileRule(0.5))  # the state before the replay
        before = state(session)
        token = CancelToken()
        seen = 0

        def on_progress(_: Progress, token: CancelToken = token, at: int = cancel_at) -> None:
            nonlocal seen
            if seen == at:
                token.cancel()
            seen += 1

        try:
            run_job(replay_job(session, recipe, token), on_progress)
        except JobCancelled:
            assert_same_state(state(session), before)
        else:  # cancelled after the last check: the replay is complete
            assert cancel_at >= count - 2
            assert len(session.operations) == 1 + len(recipe.operations)


def permanent_recipe(make_net: Callable[[int], nn.Module], *extra: Operation) -> Recipe:
    """prune, make permanent, global prune (then ``extra``), recorded on a scratch session."""
    with PruningSession(make_net(0)) as scratch:
        scratch.prune(ALL, L1Unstructured(0.3))
        scratch.make_permanent(["fc1.weight"])
        scratch.global_prune(0.3)
        return Recipe((*recipe_of(scratch).operations, *extra), recipe_of(scratch).target_options)


def started(make_net: Callable[[int], nn.Module], recipe: Recipe | None = None) -> PruningSession:
    """A session with one operation applied, then ``recipe`` replayed if given."""
    session = PruningSession(make_net(0))
    session.prune(["fc2.weight"], QuantileRule(0.5))
    if recipe is not None:
        run_job(replay_job(session, recipe))
    return session


def test_a_replay_cannot_be_cancelled_once_it_made_pruning_permanent(
    make_net: Callable[[int], nn.Module],
) -> None:
    recipe = permanent_recipe(make_net)
    complete = state(started(make_net, recipe))
    events: list[Progress] = []
    run_job(replay_job(started(make_net), recipe), events.append)
    up_to_permanent: list[Progress] = []
    run_job(replay_job(started(make_net), Recipe(recipe.operations[:2])), up_to_permanent.append)
    permanent_at = len(up_to_permanent) - 2  # the last event is the job's "replayed 2"
    for cancel_at in range(len(events)):
        session = started(make_net)
        before = state(session)
        token = CancelToken()
        seen = 0

        def on_progress(_: Progress, token: CancelToken = token, at: int = cancel_at) -> None:
            nonlocal seen
            if seen == at:
                token.cancel()
            seen += 1

        try:
            run_job(replay_job(session, recipe, token), on_progress)
        except JobCancelled:
            assert cancel_at < permanent_at
            assert_same_state(state(session), before)
        else:
            assert cancel_at >= permanent_at - 1
            assert_same_state(state(session), complete)


def test_a_replay_failing_after_make_permanent_stops_at_it(
    make_net: Callable[[int], nn.Module],
) -> None:
    bad = LayerPrune(("fc2.weight",), CustomMask(torch.ones(3, 3, dtype=torch.bool)))
    recipe = permanent_recipe(make_net, bad)
    up_to_permanent = Recipe(recipe.operations[:2], recipe.target_options)
    expected = state(started(make_net, up_to_permanent))
    session = started(make_net)
    with pytest.raises(PruningError, match=r"fc2\.weight"):
        run_job(replay_job(session, recipe))
    assert_same_state(state(session), expected)
    assert session.is_permanent("fc1.weight")


def test_a_cancelled_replay_leaves_nothing_to_redo(make_net: Callable[[int], nn.Module]) -> None:
    session = PruningSession(make_net(0))
    session.prune(["fc2.weight"], QuantileRule(0.5))
    token = CancelToken()

    def cancel_in_the_second_operation(progress: Progress) -> None:
        if progress.fraction > 0.5:
            token.cancel()

    with pytest.raises(JobCancelled):
        run_job(replay_job(session, a_recipe(make_net), token), cancel_in_the_second_operation)
    assert not session.history.can_redo()


def test_a_failing_replay_leaves_the_session_as_before(
    net_session: PruningSession, make_net: Callable[[int], nn.Module]
) -> None:
    recipe = a_recipe(make_net)
    wrong_shape = CustomMask(torch.ones(3, 3, dtype=torch.bool))
    bad = Recipe(
        (*recipe.operations, LayerPrune(("fc2.weight",), wrong_shape)), recipe.target_options
    )
    net_session.prune(["conv.weight"], L1Unstructured(0.5))
    before = state(net_session)
    with pytest.raises(PruningError, match=r"fc2\.weight"):
        run_job(replay_job(net_session, bad))
    assert_same_state(state(net_session), before)


def test_a_failing_replay_after_a_step_that_changed_nothing_keeps_earlier_work(
    net_session: PruningSession,
) -> None:
    net_session.prune(["fc2.weight"], L1Unstructured(0.5))  # the user's work
    before = state(net_session)
    nothing = PaintStroke("fc1.weight", [1, 2, 3], keep=True)  # already kept: not recorded
    failing = LayerPrune(("fc1.weight",), CustomMask(torch.ones(2, 2, dtype=torch.bool)))
    with pytest.raises(PruningError, match=r"fc1\.weight"):
        run_job(replay_job(net_session, Recipe((nothing, failing))))
    assert_same_state(state(net_session), before)


def test_a_replay_for_another_model_fails_before_changing_anything(
    net_session: PruningSession, lm_session: PruningSession
) -> None:
    lm_session.prune(["fc.weight"], L1Unstructured(0.5))
    net_session.prune(["fc1.weight"], L1Unstructured(0.5))
    net_session.prune(["fc2.weight"], L1Unstructured(0.5))
    mixed = Recipe((*recipe_of(net_session).operations, *recipe_of(lm_session).operations))
    net_session.reset()
    before = state(net_session)
    events: list[Progress] = []
    with pytest.raises(PruningError, match=r"'fc\.weight'"):
        run_job(replay_job(net_session, mixed), events.append)
    assert events == []  # refused up front, not undone afterwards
    assert_same_state(state(net_session), before)


# --------------------------------------------------------------------- bad files
def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "bad.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def recipe_text(**changes: Any) -> str:
    data: dict[str, Any] = {
        "format": "prunescope-recipe",
        "version": VERSION,
        "torch_version": torch.__version__,
        "target_options": {},
        "operations": [
            {
                "op": "layer_prune",
                "targets": ["fc1.weight"],
                "method": "l1_unstructured",
                "params": {"amount": 0.5},
                "mode": "further",
            }
        ],
    }
    data.update(changes)
    return json.dumps(data)


def test_a_well_formed_recipe_loads(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, recipe_text()))
    assert len(recipe.operations) == 1
    assert recipe.operations[0].targets == ("fc1.weight",)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe\x00binary", "not valid JSON|not a text file|could not be read"),
        ("[1, 2]", "not a PruneScope recipe"),
        ('{"format": "something-else", "version": 1}', "not a PruneScope recipe"),
        (recipe_text(version=VERSION + 1), "newer"),
        (recipe_text(version="1"), "version"),
        (recipe_text(operations=[{"op": "fold_in_half", "targets": []}]), "unknown operation"),
        (recipe_text(operations=[{"targets": ["fc1.weight"]}]), "malformed|unknown operation"),
        (recipe_text(operations=["layer_prune"]), "malformed"),
        (recipe_text(operations=5), "operations"),
        (recipe_text(operations={"op": "reset"}), "operations"),
        (recipe_text(target_options=["include_bias"]), "target options"),
        (recipe_text(target_options={"include_bias": "yes"}), "target options"),
        (recipe_text(target_options={"include_everything": True}), "target options"),
        (
            recipe_text(
                operations=[{"op": "layer_prune", "targets": ["a"], "method": "nope", "params": {}}]
            ),
            "unknown pruning method",
        ),
        (
            recipe_text(
                operations=[
                    {
                        "op": "layer_prune",
                        "targets": ["a"],
                        "method": "custom_mask",
                        "params": {"mask_bits": "%%%", "mask_shape": [2, 2]},
                    }
                ]
            ),
            "malformed",
        ),
        (
            recipe_text(operations=[{"op": "global_prune", "targets": ["a"], "amount": "half"}]),
            "malformed|amount",
        ),
    ],
)
def test_bad_files_give_a_pruning_error(tmp_path: Path, content: str | bytes, match: str) -> None:
    with pytest.raises(PruningError, match=match):
        load_recipe(write(tmp_path, content))


def test_a_missing_file_gives_a_pruning_error(tmp_path: Path) -> None:
    with pytest.raises(PruningError, match=r"no such file|could not be read"):
        load_recipe(tmp_path / "absent.json")
