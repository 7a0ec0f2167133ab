"""Physical slimming: remove pruned channel groups, so the model really gets smaller.

:func:`slim_job` works on a deep copy of the session's (masked) model: it
finds the channel groups (:mod:`core.pruning.groups`) whose every entry the
session's masks prune, which is what :class:`~core.pruning.groups.GroupPrune`
leaves, and removes them with torch-pruning. With ``harvest`` it also removes
*hidden* structure that unstructured pruning left entirely zero, where
removing it provably changes nothing (:func:`harvest_candidates`):

* every layer reading the channel has zero input weights for it (the channel
  may hold anything: nobody looks at it), or
* every weight and bias producing the channel and the norm's scale and shift
  are zero (the channel is zero). An operation between them that turns zero
  into something else (``sigmoid``, ``x + 1``) breaks this; the output check
  notices, and those channels are left in place and reported.

The slim model's output is checked against the masked model's on the example
input (max |diff| <= 1e-5 x max |output|) before anything is returned. Layers
the graph cannot handle are reported and left intact; the rest is slimmed.

:func:`slim_operation` makes the result one undoable :class:`ReplaceModel`
step. The masks of the kept entries come along, index-mapped, with the
original values of their pruned entries, so the remaining unstructured
pruning stays visible and can still be reset. :func:`layer_shapes` and
:func:`rebuild_slim` describe the new shapes in JSON and put them on a freshly
built architecture (the ``slim`` checkpoint format).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from core.common.errors import PruningError, first_line
from core.common.jobs import NEVER_CANCELLED, CancelToken, Job, Progress
from core.pruning.groups import (
    GroupLayout,
    TracedGroups,
    Unsupported,
    pruned_channels,
    trace_groups,
)
from core.pruning.operations import ReplaceModel
from core.pruning.session import PruningSession

#: Slim and masked outputs may differ by this fraction of the largest output magnitude.
TOLERANCE = 1e-5
#: Integer attributes of layers that state their sizes (set again by :func:`rebuild_slim`).
SIZE_ATTRIBUTES: tuple[str, ...] = (
    "in_channels",
    "out_channels",
    "groups",
    "in_features",
    "out_features",
    "num_features",
    "num_parameters",
)

CONSUMERS_ZERO = "every layer reading them has zero input weights for them"
PRODUCERS_ZERO = "their weights, biases and norm scales and shifts are all zero"
KEEPS_ZEROS = (
    "an operation between its layers does not keep zero channels at zero "
    "(e.g. sigmoid or an added constant), so its zero channels were kept"
)
MIXES_CHANNELS = (
    "removing its channels changes the output: an operation mixes them in a way "
    "torch-pruning does not follow (e.g. softmax over channels), so it was kept"
)


@dataclass(frozen=True)
class HarvestCandidate:
    """Channels of a group that unstructured pruning left entirely zero, and why removing
    them changes nothing (channel numbers are the group root's)."""

    root: str
    channels: tuple[int, ...]
    reason: str


@dataclass(frozen=True, eq=False)
class SlimResult:
    """A physically slimmed copy of a session's model.

    ``removed``: channels removed per group root; ``skipped``: layers left intact
    and why; ``max_abs_diff``: slim vs masked output on the example input
    (checked); ``layer_shapes``: the new shapes of the layers that changed
    (JSON, see :func:`layer_shapes`). ``masks`` and ``originals`` are the kept
    entries' masks (bool, True = kept) and original values, index-mapped onto
    the slim model's parameters; ``notes`` say what could not be carried over.
    """

    model: nn.Module
    removed: dict[str, int]
    skipped: tuple[Unsupported, ...]
    params_before: int
    params_after: int
    max_abs_diff: float
    layer_shapes: dict[str, dict[str, Any]]
    masks: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    originals: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    #: What was made permanent (bool, False = pruned for good), index-mapped like ``masks``.
    floors: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------- finding channels


def harvest_candidates(
    session: PruningSession, example_input: torch.Tensor
) -> list[HarvestCandidate]:
    """What ``slim_job(..., harvest=True)`` would remove beyond the groups pruned whole.

    Channels whose readers ignore them come first (:data:`CONSUMERS_ZERO`), then
    channels that are zero (:data:`PRODUCERS_ZERO`; checked when slimming). Every
    group keeps at least one channel.

    Raises:
        PruningError: the model cannot be traced on ``example_input``.
    """
    traced = trace_groups(copy.deepcopy(session.model), example_input)
    tensors = traced.tensors()
    found: list[HarvestCandidate] = []
    for group in traced.groups:
        _, readers, zero = _removable(session, group, tensors, harvest=True)
        for chosen, reason in ((readers, CONSUMERS_ZERO), (zero, PRODUCERS_ZERO)):
            if bool(chosen.any()):
                channels = tuple(int(c) for c in chosen.nonzero().flatten())
                found.append(HarvestCandidate(group.info.root, channels, reason))
    return found


def _pruned_whole(session: PruningSession, group: GroupLayout) -> torch.Tensor:
    """Channels the session prunes whole: every parameter entry of the group is masked."""
    if not all(session.prunes(piece.tensor) for piece in group.parameter_slices()):
        return torch.zeros(group.info.channels, dtype=torch.bool)
    return pruned_channels(session, group)


def _hidden(
    group: GroupLayout, tensors: Mapping[str, torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Channels nobody reads (all consumer inputs zero), and channels that are zero."""
    channels = group.info.channels
    if group.parameter_slices(["in"]):
        readers = ~group.nonzero(tensors, ["in"])
    else:
        readers = torch.zeros(channels, dtype=torch.bool)
    zero = ~group.nonzero(tensors, ["out", "depthwise", "norm"])
    return readers, zero


def _keep_one(*removals: torch.Tensor) -> None:
    """Take the last channel out of the last removal that has it, when all would go."""
    if bool(torch.stack(removals).any(0).all()):
        last = removals[0].numel() - 1
        for removal in reversed(removals):
            if bool(removal[last]):
                removal[last] = False
                return


def _removable(
    session: PruningSession,
    group: GroupLayout,
    tensors: Mapping[str, torch.Tensor],
    harvest: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A group's channels pruned whole, and (``harvest``) those unread and those zero besides.

    Disjoint bool tensors per channel; at least one channel is left out of all three.
    """
    plain = _pruned_whole(session, group)
    readers, zero = torch.zeros_like(plain), torch.zeros_like(plain)
    if harvest:
        readers, zero = _hidden(group, tensors)
        readers &= ~plain
        zero &= ~plain & ~readers
    _keep_one(plain, readers, zero)
    return plain, readers, zero


def _plan(session: PruningSession, traced: TracedGroups, harvest: bool) -> dict[str, _Removal]:
    """What to remove from each group (by root): pruned whole or unread, and zero."""
    tensors = traced.tensors()
    plan: dict[str, _Removal] = {}
    for group in traced.groups:
        plain, readers, zero = _removable(session, group, tensors, harvest)
        removal = _Removal(plain | readers, zero)
        if bool(removal.both.any()):
            plan[group.info.root] = removal
    return plan


# --------------------------------------------------------------------- slimming


def slim_job(
    session: PruningSession,
    example_input: torch.Tensor,
    *,
    harvest: bool = False,
    token: CancelToken = NEVER_CANCELLED,
) -> Job[SlimResult]:
    """A job slimming a deep copy of the session's model (the session is not touched).

    Removes the channel groups the session's masks prune whole and, with
    ``harvest``, the hidden all-zero structure of :func:`harvest_candidates`.
    When the slim model's output differs from the masked model's, each group is
    tried on its own: the groups that change the output (an operation mixes
    their channels in a way the graph does not follow, or a zero channel is not
    zero downstream) are left intact and reported in ``skipped``.

    Raises:
        PruningError: the model cannot be traced, or the output still differs
            beyond the tolerance (nothing is returned).
        JobCancelled: cancelled.
    """
    token.check()
    yield Progress(0.0, "tracing the channel groups")
    result, plan = yield from _attempt(session, example_input, harvest, None, token, 0.0, 0.8)
    if isinstance(result, _Mismatch) and plan:
        kept, skipped = yield from _isolate(session, example_input, plan, token)
        result, _ = yield from _attempt(session, example_input, harvest, kept, token, 0.9, 1.0)
        if isinstance(result, SlimResult):
            result = _replace(result, skipped=result.skipped + skipped)
    if isinstance(result, _Mismatch):
        raise PruningError(result.message)
    yield Progress(1.0, "slimmed")
    return result


@dataclass(frozen=True, eq=False)
class _Removal:
    """A group's channels to remove: pruned whole or unread (``main``), and zero (``zero``)."""

    main: torch.Tensor
    zero: torch.Tensor

    @property
    def both(self) -> torch.Tensor:
        return self.main | self.zero


@dataclass(frozen=True)
class _Mismatch:
    message: str


def _isolate(
    session: PruningSession,
    example_input: torch.Tensor,
    plan: Mapping[str, _Removal],
    token: CancelToken,
) -> Job[tuple[dict[str, torch.Tensor], tuple[Unsupported, ...]]]:
    """Each group slimmed on its own: the removals that keep the output, and the groups left."""
    kept: dict[str, torch.Tensor] = {}
    skipped: list[Unsupported] = []
    for i, (root, removal) in enumerate(plan.items()):
        at = 0.8 + 0.1 * i / len(plan)
        yield Progress(at, f"checking {root} on its own")
        main, zero = bool(removal.main.any()), bool(removal.zero.any())
        if (yield from _keeps_output(session, example_input, root, removal.both, token, at)):
            kept[root] = removal.both
        elif (
            main
            and zero
            and (yield from _keeps_output(session, example_input, root, removal.main, token, at))
        ):
            kept[root] = removal.main
            skipped.append(Unsupported(root, KEEPS_ZEROS))
        else:
            skipped.append(Unsupported(root, MIXES_CHANNELS if main else KEEPS_ZEROS))
    return kept, tuple(skipped)


def _keeps_output(
    session: PruningSession,
    example_input: torch.Tensor,
    root: str,
    removal: torch.Tensor,
    token: CancelToken,
    at: float,
) -> Job[bool]:
    """Whether removing ``removal`` from the group ``root`` alone keeps the output."""
    result, _ = yield from _attempt(session, example_input, False, {root: removal}, token, at, at)
    return isinstance(result, SlimResult)


def _replace(result: SlimResult, **changes: Any) -> SlimResult:
    fields = {name: getattr(result, name) for name in result.__dataclass_fields__}
    fields.update(changes)
    return SlimResult(**fields)


def _attempt(
    session: PruningSession,
    example_input: torch.Tensor,
    harvest: bool,
    removals: Mapping[str, torch.Tensor] | None,
    token: CancelToken,
    start: float,
    stop: float,
) -> Job[tuple[SlimResult | _Mismatch, dict[str, _Removal]]]:
    """One slimming of a fresh copy, and the plan it followed; a mismatch is returned.

    ``removals``: the channels to remove per group root; None: :func:`_plan`'s.
    """
    work = copy.deepcopy(session.model)
    modes = {name: m.training for name, m in session.model.named_modules()}
    flags = {name: p.requires_grad for name, p in session.model.named_parameters()}
    before_shapes = layer_shapes(work)
    params_before = _count(work)
    work.eval()
    with torch.no_grad():
        reference = _outputs(work(example_input))
    traced = trace_groups(work, example_input)
    token.check()
    yield Progress(start + 0.15 * (stop - start), "traced the channel groups")
    plan = _plan(session, traced, harvest) if removals is None else {}
    chosen = {root: r.both for root, r in plan.items()} if removals is None else dict(removals)
    by_root = {group.info.root: group for group in traced.groups}
    removed: dict[str, int] = {}
    cuts: dict[str, dict[int, set[int]]] = {}
    with torch.no_grad():
        for i, (root, removal) in enumerate(chosen.items()):
            token.check()
            group = by_root[root]
            _cut(traced, group, removal)
            removed[root] = int(removal.sum())
            for piece in group.slices:
                positions = piece.positions[removal[piece.channels]].tolist()
                cuts.setdefault(piece.tensor, {}).setdefault(piece.dim, set()).update(positions)
            done = start + (0.15 + 0.7 * (i + 1) / len(chosen)) * (stop - start)
            yield Progress(done, f"slimmed {root}")
    try:
        with torch.no_grad():
            slim_out = _outputs(work(example_input))
    except Exception as exc:  # the model's own code may fix a size that changed
        message = (
            f"the slimmed model no longer runs ({first_line(exc)}); its code may fix a "
            "channel count that slimming changed"
        )
        return _Mismatch(message), plan
    diff, scale = _difference(reference, slim_out)
    if diff is None or diff > TOLERANCE * scale:
        what = "a different output shape" if diff is None else f"max |diff| {diff:.3g}"
        message = (
            f"slimming would change the model's output ({what}, largest output {scale:.3g}): "
            "an operation in the model mixes channels in a way torch-pruning does not follow"
        )
        return _Mismatch(message), plan
    for name, module in work.named_modules():
        module.train(modes.get(name, module.training))
        for attr, param in module.named_parameters(recurse=False):
            param.requires_grad_(flags.get(f"{name}.{attr}" if name else attr, True))
    masks, originals, floors, notes = _carried(session, work, cuts)
    after_shapes = layer_shapes(work)
    changed = {k: v for k, v in after_shapes.items() if before_shapes.get(k) != v}
    result = SlimResult(
        model=work,
        removed=removed,
        skipped=tuple(traced.unsupported),
        params_before=params_before,
        params_after=_count(work),
        max_abs_diff=diff,
        layer_shapes=changed,
        masks=masks,
        originals=originals,
        floors=floors,
        notes=notes,
    )
    return result, plan


def _cut(traced: TracedGroups, group: GroupLayout, removal: torch.Tensor) -> None:
    """Remove the channels ``removal`` marks from every layer of the group (torch-pruning)."""
    graph, root = traced.graph, group.root_module
    handler = graph.get_pruner_of_module(root).prune_out_channels
    indices = [int(i) for i in removal.nonzero().flatten()]
    graph.get_pruning_group(root, handler, indices).prune()


def _outputs(out: Any) -> list[torch.Tensor]:
    """The tensors of a model's output (a tensor, or sequences and mappings of them)."""
    if isinstance(out, torch.Tensor):
        return [out.detach()]
    if isinstance(out, Mapping):
        return [t for value in out.values() for t in _outputs(value)]
    if isinstance(out, list | tuple):
        return [t for value in out for t in _outputs(value)]
    return []


def _difference(
    reference: list[torch.Tensor], slim: list[torch.Tensor]
) -> tuple[float | None, float]:
    """Max |slim - reference| (None: shapes differ) and max |reference|."""
    scale = max((float(t.abs().max()) for t in reference if t.numel()), default=0.0)
    if len(reference) != len(slim) or any(
        a.shape != b.shape for a, b in zip(reference, slim, strict=True)
    ):
        return None, scale
    diff = max(
        (
            float((a.double() - b.double()).abs().max())
            for a, b in zip(reference, slim, strict=True)
            if a.numel()
        ),
        default=0.0,
    )
    return diff, scale


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _carried(
    session: PruningSession, slim: nn.Module, cuts: Mapping[str, Mapping[int, set[int]]]
) -> tuple[
    dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor], tuple[str, ...]
]:
    """The session's masks, originals and permanent parts index-mapped onto the slim model."""
    params = dict(slim.named_parameters(remove_duplicate=False))
    masks: dict[str, torch.Tensor] = {}
    originals: dict[str, torch.Tensor] = {}
    floors: dict[str, torch.Tensor] = {}
    notes: list[str] = []
    for name in session.names:
        param = params.get(name)
        if param is None:
            notes.append(f"{name}: not in the slim model, its mask is dropped")
            continue
        cut = cuts.get(name, {})
        mask = _sliced(session.mask(name), cut)
        if tuple(mask.shape) != tuple(param.shape):
            notes.append(f"{name}: its shape changed unexpectedly, its mask is dropped")
            continue
        masks[name] = mask
        if session.packed_mask(name) is not None:
            # Permanent entries have no original (they read as zero); the floor keeps them
            # permanent, the rest stays restorable.
            originals[name] = _sliced(session.original(name), cut)
        floor = session.floor(name)
        if floor is not None:
            floors[name] = _sliced(floor.to_bool(), cut)
    return masks, originals, floors, tuple(notes)


def _sliced(tensor: torch.Tensor, cuts: Mapping[int, set[int]]) -> torch.Tensor:
    """``tensor`` without the positions ``cuts`` removes along each dimension."""
    for dim, removed in cuts.items():
        keep = [i for i in range(tensor.shape[dim]) if i not in removed]
        tensor = tensor.index_select(dim, torch.tensor(keep, dtype=torch.int64))
    return tensor


def slim_operation(result: SlimResult) -> ReplaceModel:
    """The slim model as one undoable step, with the kept entries' masks and originals.

    Raises:
        PruningError: nothing was removed (prune channel groups whole first, or harvest).
    """
    if not result.removed:
        isolated = (MIXES_CHANNELS, KEEPS_ZEROS)
        kept = [item.layer for item in result.skipped if item.reason in isolated]
        if kept:
            raise PruningError(
                "nothing to slim: the channel groups pruned whole could not be removed without "
                f"changing the model's output ({', '.join(kept[:4])}"
                f"{' and more' if len(kept) > 4 else ''}); see why in the slim result"
            )
        raise PruningError(
            "nothing to slim: no channel group is pruned whole. Prune channel groups "
            "(group pruning) first, or harvest the structure unstructured pruning left zero"
        )
    description = f"Slim: {_short(result.params_before)} → {_short(result.params_after)} parameters"
    return ReplaceModel(result.model, description, result.masks, result.originals, result.floors)


def _short(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:.1f}M"
    if count >= 1_000:
        return f"{count / 1e3:.1f}k"
    return str(count)


# --------------------------------------------------------------------- shapes (slim format)


def layer_shapes(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Every layer with tensors of its own: its type, size attributes and tensor shapes (JSON).

    ``{"layer.name": {"type": "Conv2d", "attrs": {"out_channels": 32, ...},
    "tensors": {"weight": [32, 16, 3, 3], "bias": [32]}}}``.
    """
    shapes: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        transient: set[str] = getattr(module, "_non_persistent_buffers_set", set())
        tensors = {
            attr: list(t.shape)
            for attr, t in (
                *module.named_parameters(recurse=False),
                # Non-persistent buffers are not in the state_dict: the model makes them.
                *((a, b) for a, b in module.named_buffers(recurse=False) if a not in transient),
            )
        }
        if not tensors:
            continue
        attrs = {
            attr: value
            for attr in SIZE_ATTRIBUTES
            if isinstance(value := getattr(module, attr, None), int) and not isinstance(value, bool)
        }
        shapes[name] = {"type": type(module).__name__, "attrs": attrs, "tensors": tensors}
    return shapes


def rebuild_slim(model: nn.Module, shapes: Mapping[str, Any]) -> nn.Module:
    """Give a freshly built architecture the stored shapes (in place; values are zeros until
    the state_dict is loaded). Returns ``model``.

    Raises:
        PruningError: the shapes are malformed or name layers the model does not have
            (another architecture).
    """
    if not isinstance(shapes, Mapping):
        raise PruningError("the stored layer shapes are not an object")
    modules = dict(model.named_modules())
    for name, entry in shapes.items():
        module = modules.get(name)
        if module is None:
            raise PruningError(f"the model has no layer {name!r}: it is another architecture")
        if not isinstance(entry, Mapping):
            raise PruningError(f"the stored shapes of {name!r} are malformed")
        kind = entry.get("type")
        if kind != type(module).__name__:
            raise PruningError(
                f"{name!r} is a {type(module).__name__} in the model but a {kind} in the file"
            )
        _set_sizes(name, module, entry.get("attrs", {}))
        _set_tensors(name, module, entry.get("tensors", {}))
    return model


def _set_sizes(name: str, module: nn.Module, attrs: Any) -> None:
    if not isinstance(attrs, Mapping):
        raise PruningError(f"the stored sizes of {name!r} are malformed")
    for attr, value in attrs.items():
        if attr not in SIZE_ATTRIBUTES or isinstance(value, bool) or not isinstance(value, int):
            raise PruningError(f"{name!r}: unexpected size {attr}={value!r}")
        if not hasattr(module, attr):
            raise PruningError(f"{name!r} has no attribute {attr}: it is another architecture")
        setattr(module, attr, value)


def _set_tensors(name: str, module: nn.Module, tensors: Any) -> None:
    if not isinstance(tensors, Mapping):
        raise PruningError(f"the stored tensor shapes of {name!r} are malformed")
    own = dict(module.named_parameters(recurse=False))
    buffers = dict(module.named_buffers(recurse=False))
    for attr, shape in tensors.items():
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            raise PruningError(f"{name}.{attr}: malformed shape {shape!r}")
        current = own.get(attr, buffers.get(attr))
        if current is None:
            raise PruningError(f"{name!r} has no tensor {attr}: it is another architecture")
        if list(current.shape) == shape:
            continue
        fresh = torch.zeros(shape, dtype=current.dtype, device=current.device)
        if attr in own:
            setattr(module, attr, nn.Parameter(fresh, requires_grad=current.requires_grad))
        else:
            setattr(module, attr, fresh)
