"""Channel groups from torch-pruning's dependency graph, and pruning them whole.

A *channel group* is everything that must lose a channel together for the
model to stay consistent: a conv's output channel, the following batch norm's
scale, shift and statistics, the next layers' input slices (a Linear after
``flatten`` has one column per spatial position of the channel), residual
partners that add into the same tensor, and the slices of a concatenation.
The groups come from torch-pruning's :class:`DependencyGraph` traced on an
example input (:func:`trace_groups`); nothing here traces by hand.

:class:`GroupPrune` prunes whole groups in a session: the weights of a pruned
channel *and* the coupled parameters (biases, norm scales and shifts, which it
makes targets on demand) are masked, so the masked model computes exactly what
the physically slimmed model (:mod:`core.pruning.slim`) computes.

Groups whose channels reach the model's outputs (the classifier) or come from
its inputs are never offered. A group with a layer that cannot lose channels
without changing the others (layer and group norm normalise across channels,
grouped convolutions, embeddings, attention, bare parameters) is reported as
:class:`Unsupported` with the layer's name and the reason, and left intact.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch_pruning as tp  # type: ignore[import-untyped]
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch_pruning import ops as tp_ops
from torch_pruning.pruner import function as tp_fn  # type: ignore[import-untyped]

from core.common.errors import PruningError, first_line
from core.common.jobs import CancelToken, Job, Progress, scaled
from core.pruning.amounts import plain_amount, validate_amount
from core.pruning.changes import Change, MaskChange, MaskMap
from core.pruning.masks import PackedMask
from core.pruning.operations import OPERATIONS, MaskOperation

if TYPE_CHECKING:
    from core.pruning.session import PruningSession

#: Slice roles. ``out``: a producer's output rows and bias; ``in``: a consumer's input
#: columns; ``depthwise``: a depthwise conv (one channel in, the same channel out);
#: ``norm``: a per-channel norm's scale and shift; ``stat``: its running statistics
#: (buffers); ``pass``: other per-channel parameters (PReLU slopes).
ROLES: tuple[str, ...] = ("out", "in", "depthwise", "norm", "stat", "pass")

_NORMALISES_ACROSS = "it normalises across channels, so removing one changes the others"
_WHY_NOT: dict[Any, str] = {
    tp_fn.prune_layernorm_out_channels: _NORMALISES_ACROSS,
    tp_fn.prune_groupnorm_out_channels: _NORMALISES_ACROSS,
    tp_fn.prune_embedding_out_channels: "an embedding's width is tied to its lookup table",
    tp_fn.prune_multihead_attention_out_channels: "attention heads are not pruned as channels",
    tp_fn.prune_lstm_out_channels: "recurrent layers are not pruned as channels",
    tp_fn.prune_parameter_out_channels: (
        "a bare parameter used in forward code: torch-pruning cannot tell its channel dimension"
    ),
}


@dataclass(frozen=True)
class ChannelGroup:
    """One group of coupled channels.

    ``root``: the module whose output channels the group numbers (its first
    producer in the model's order); ``channels``: how many; ``members``: the
    parameter names the group slices (weights, biases, norm scales and shifts,
    the next layers' inputs); ``kind``: ``conv``, ``linear``, ``residual``
    (several producers add into one tensor) or ``concat``.
    """

    root: str
    channels: int
    members: tuple[str, ...]
    kind: str


@dataclass(frozen=True)
class Unsupported:
    """A layer the dependency graph cannot prune, and why; it is left intact."""

    layer: str
    reason: str


@dataclass(frozen=True, eq=False)
class Slice:
    """Where one tensor holds a group's channels: positions along ``dim``, each with its channel.

    ``tensor`` is the state_dict name; ``channels[i]`` is the group channel that
    ``positions[i]`` belongs to (a Linear after ``flatten`` has several
    positions per channel).
    """

    tensor: str
    module: str
    dim: int
    positions: torch.Tensor
    channels: torch.Tensor
    role: str
    parameter: bool

    def per_channel(
        self, value: torch.Tensor, channels: int, reduce: Callable[[torch.Tensor], torch.Tensor]
    ) -> torch.Tensor:
        """``reduce`` of each position's entries (a row of floats per position), summed per
        channel (float64)."""
        rows = value.detach().movedim(self.dim, 0).reshape(value.shape[self.dim], -1)
        per_position = reduce(rows.index_select(0, self.positions.to(rows.device)))
        out = torch.zeros(channels, dtype=torch.float64)
        return out.index_add_(0, self.channels, per_position.to("cpu", torch.float64))

    def prune(self, keep: torch.Tensor, pruned: torch.Tensor) -> None:
        """Mark the positions of the ``pruned`` channels (bool per channel) pruned in ``keep``."""
        chosen = self.positions[pruned[self.channels]]
        if chosen.numel():
            keep.index_fill_(self.dim, chosen, False)


@dataclass(frozen=True, eq=False)
class GroupLayout:
    """A channel group and the slices of every tensor it couples."""

    info: ChannelGroup
    slices: tuple[Slice, ...]
    #: The root module in the traced model, for torch-pruning.
    root_module: nn.Module

    @property
    def producers(self) -> tuple[str, ...]:
        """Modules whose output channels the group is (its producers), in model order."""
        return tuple(dict.fromkeys(s.module for s in self.slices if s.role == "out"))

    def parameter_slices(self, roles: Iterable[str] = ROLES) -> list[Slice]:
        """The slices of parameters with one of ``roles``."""
        wanted = set(roles)
        return [s for s in self.slices if s.parameter and s.role in wanted]

    def nonzero(self, tensors: Mapping[str, torch.Tensor], roles: Iterable[str]) -> torch.Tensor:
        """Per channel: whether any entry of the ``roles`` parameter slices is non-zero."""
        count = torch.zeros(self.info.channels, dtype=torch.float64)
        for piece in self.parameter_slices(roles):
            count += piece.per_channel(
                tensors[piece.tensor], self.info.channels, lambda rows: (rows != 0).sum(1)
            )
        return count > 0

    def importance(self, tensors: Mapping[str, torch.Tensor], norm: int) -> torch.Tensor:
        """Per channel: the ``norm``-norm of every parameter entry of the group (float64)."""
        total = torch.zeros(self.info.channels, dtype=torch.float64)
        for piece in self.parameter_slices():
            total += piece.per_channel(
                tensors[piece.tensor],
                self.info.channels,
                lambda rows: rows.double().abs().pow(norm).sum(1),
            )
        return total.pow(1.0 / norm)


@dataclass(eq=False)
class TracedGroups:
    """A model traced by torch-pruning: its groups, what it cannot prune, and the graph."""

    model: nn.Module
    graph: Any
    groups: list[GroupLayout]
    unsupported: list[Unsupported]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The traced model's parameters and buffers by state_dict name."""
        found: dict[str, torch.Tensor] = dict(self.model.named_parameters(remove_duplicate=False))
        found.update(self.model.named_buffers(remove_duplicate=False))
        return found

    def select(self, roots: Iterable[str]) -> list[GroupLayout]:
        """The groups named by ``roots`` (a root or any producer of a group); all when empty.

        Raises:
            PruningError: a name that is no group's root or producer.
        """
        wanted = list(roots)
        if not wanted:
            return list(self.groups)
        by_name: dict[str, GroupLayout] = {}
        for group in self.groups:
            for name in (group.info.root, *group.producers):
                by_name.setdefault(name, group)
        chosen: dict[int, GroupLayout] = {}
        for name in wanted:
            found = by_name.get(name)
            if found is None:
                why = next((u.reason for u in self.unsupported if u.layer == name), None)
                if why is not None:
                    raise PruningError(f"{name} cannot be pruned as channels: {why}")
                known = ", ".join(g.info.root for g in self.groups[:8])
                raise PruningError(
                    f"{name} is not the root of a channel group (the groups: {known}"
                    f"{', ...' if len(self.groups) > 8 else ''})"
                )
            chosen[id(found)] = found
        return list(chosen.values())


def channel_groups(
    model: nn.Module, example_input: torch.Tensor
) -> tuple[list[ChannelGroup], list[Unsupported]]:
    """The channel groups of ``model`` and the layers that cannot be pruned as channels.

    The model is traced on a deep copy (torch-pruning puts what it traces in eval mode),
    so ``model`` is not touched.

    Raises:
        PruningError: the model cannot be traced on ``example_input``.
    """
    traced = trace_groups(copy.deepcopy(model), example_input)
    return [g.info for g in traced.groups], list(traced.unsupported)


def trace_groups(model: nn.Module, example_input: torch.Tensor) -> TracedGroups:
    """Trace ``model`` itself with torch-pruning (pass a copy: it is put in eval mode).

    Raises:
        PruningError: the forward pass or the graph fails.
    """
    outputs: list[torch.Tensor] = []

    def forward(module: nn.Module, x: torch.Tensor) -> Any:
        out = module(x)
        outputs.extend(t for t in tp.utils.flatten_as_list(out) if isinstance(t, torch.Tensor))
        return out

    try:
        with torch.inference_mode(False), torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=example_input, forward_fn=forward, verbose=False
            )
            found = list(graph.get_all_groups())
    except Exception as exc:  # the model's code and torch-pruning raise anything
        raise PruningError(
            f"torch-pruning could not trace the model on its example input: {first_line(exc)}"
        ) from exc
    names = {module: name for name, module in model.named_modules()}
    order = {name: i for i, name in enumerate(names.values())}
    ends = {t.grad_fn for t in outputs if t.grad_fn is not None}
    groups: list[GroupLayout] = []
    unsupported: dict[str, Unsupported] = {}
    for group in found:
        group = _rerooted(graph, group, names, order)
        layout = _layout(graph, group, names, ends)
        if isinstance(layout, Unsupported):
            unsupported.setdefault(layout.layer, layout)
        elif layout is not None:
            groups.append(layout)
    groups.sort(key=lambda g: order.get(g.info.root, len(order)))
    return TracedGroups(model, graph, groups, list(unsupported.values()))


def _is_producer(handler: Any) -> bool:
    return bool(
        handler == tp_fn.prune_conv_out_channels or handler == tp_fn.prune_linear_out_channels
    )


def _rerooted(graph: Any, group: Any, names: dict[Any, str], order: dict[str, int]) -> Any:
    """The same group rooted at its first producer in model order (stable, readable names)."""
    producers = [
        dep.target.module
        for dep, _ in group
        if _is_producer(dep.handler) and dep.target.module in names
    ]
    if not producers:
        return group
    first = min(producers, key=lambda m: order[names[m]])
    if first is group[0].dep.target.module:
        return group
    handler = graph.get_pruner_of_module(first).prune_out_channels
    channels = graph.get_out_channels(first)
    return graph.get_pruning_group(first, handler, list(range(channels)))


def _layout(
    graph: Any, group: Any, names: dict[Any, str], ends: set[Any]
) -> GroupLayout | Unsupported | None:
    """A traced group as slices; Unsupported for a layer it cannot handle; None when the
    group is tied to the model's outputs or inputs (never pruned)."""
    slices: list[Slice] = []
    reaches_output = False
    for item in group:
        dep, idxs = item.dep, item.idxs
        node, handler = dep.target, dep.handler
        if graph.is_out_channel_pruning_fn(handler) and (not node.outputs or node.grad_fn in ends):
            reaches_output = True
        module = node.module
        if isinstance(module, nn.Parameter):
            name = graph._param_to_name.get(module, "a parameter")
            return Unsupported(name, _WHY_NOT[tp_fn.prune_parameter_out_channels])
        if isinstance(graph.get_pruner_of_module(module), tp_ops.DummyPruner):
            continue  # element-wise, reshape, concat, split...: no tensors of their own
        name = names.get(module, type(module).__name__)
        root_idxs = item.root_idxs
        if root_idxs is None or any(r is None for r in root_idxs):
            return Unsupported(name, "torch-pruning could not map its channels to the group's")
        found = _slices(module, name, handler, list(idxs), list(root_idxs))
        if isinstance(found, str):
            return Unsupported(name, found)
        slices.extend(found)
    if reaches_output or not any(s.role == "out" for s in slices):
        return None
    root = group[0].dep.target.module
    channels = len(group[0].idxs)
    members = tuple(dict.fromkeys(s.tensor for s in slices if s.parameter))
    producers = {s.module for s in slices if s.role == "out"}
    if len(producers) > 1:
        kind = "residual"
    elif any(isinstance(dep.target.module, tp_ops._ConcatOp) for dep, _ in group):
        kind = "concat"
    else:
        kind = "linear" if isinstance(root, nn.Linear) else "conv"
    info = ChannelGroup(names[root], channels, members, kind)
    return GroupLayout(info, tuple(slices), root)


def _slices(
    module: nn.Module, name: str, handler: Any, idxs: list[int], root_idxs: list[int]
) -> list[Slice] | str:
    """The slices one group item cuts from ``module``, or why it cannot."""
    positions = torch.tensor(idxs, dtype=torch.int64)
    channels = torch.tensor(root_idxs, dtype=torch.int64)

    def cut(attr: str, dim: int, role: str) -> list[Slice]:
        tensor = getattr(module, attr, None)
        if not isinstance(tensor, torch.Tensor):
            return []
        full = f"{name}.{attr}" if name else attr
        is_param = isinstance(tensor, nn.Parameter)
        return [Slice(full, name, dim, positions, channels, role, is_param)]

    if handler == tp_fn.prune_conv_out_channels or handler == tp_fn.prune_conv_in_channels:
        assert isinstance(module, _ConvNd)
        if module.groups != 1:
            return "a grouped convolution's channels cannot be removed one by one"
        out = handler == tp_fn.prune_conv_out_channels
        if out:
            return cut("weight", 1 if module.transposed else 0, "out") + cut("bias", 0, "out")
        return cut("weight", 0 if module.transposed else 1, "in")
    if handler == tp_fn.prune_depthwise_conv_out_channels:
        assert isinstance(module, _ConvNd)
        if module.in_channels != module.out_channels:
            return "a depthwise convolution with a channel multiplier"
        return cut("weight", 0, "depthwise") + cut("bias", 0, "depthwise")
    if handler == tp_fn.prune_linear_out_channels:
        return cut("weight", 0, "out") + cut("bias", 0, "out")
    if handler == tp_fn.prune_linear_in_channels:
        return cut("weight", 1, "in")
    if handler in (tp_fn.prune_batchnorm_out_channels, tp_fn.prune_instancenorm_out_channels):
        assert isinstance(module, _BatchNorm | _InstanceNorm)
        return [
            *cut("weight", 0, "norm"),
            *cut("bias", 0, "norm"),
            *cut("running_mean", 0, "stat"),
            *cut("running_var", 0, "stat"),
        ]
    if handler == tp_fn.prune_prelu_out_channels:
        assert isinstance(module, nn.PReLU)
        return cut("weight", 0, "pass") if module.num_parameters > 1 else []
    for known, why in _WHY_NOT.items():
        if handler == known:
            return why
    return f"torch-pruning has no channel rule for {type(module).__name__} layers"


# --------------------------------------------------------------------- group pruning


@dataclass(frozen=True)
class GroupPrune(MaskOperation):
    """Prune ``amount`` of each channel group's remaining channels, whole groups at a time.

    A channel's importance is the ``norm``-norm of every entry the group holds
    for it (producer rows and biases, norm scales and shifts, the next layers'
    input slices), on the current weights; the least important go. Each group
    is pruned on its own ("local"), keeps at least one channel and, with
    ``round_to``, a multiple of it. ``roots`` restricts the groups (a group's
    root or any of its producers; empty: every group). The model's outputs are
    never pruned.

    Tracing needs the session's ``example_input``. Applying makes the group
    members that are not targets yet (biases, norm scales and shifts) targets
    first, so they are masked and held at zero too; the preview
    (:meth:`masks_job`) changes nothing and covers the current targets only.
    """

    amount: float
    norm: int = 2
    roots: tuple[str, ...] = ()
    round_to: int = 1

    kind: ClassVar[str] = "group_prune"

    def __post_init__(self) -> None:
        amount = float(plain_amount(self.amount, "group pruning"))
        validate_amount(amount, "group pruning")
        object.__setattr__(self, "amount", amount)
        for what, value in (("norm", self.norm), ("round_to", self.round_to)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PruningError(f"group pruning: {what} must be a whole number >= 1")
        object.__setattr__(self, "roots", tuple(str(r) for r in self.roots))

    @property
    def targets(self) -> tuple[str, ...]:  # type: ignore[override]
        return ()  # known once the model is traced

    @property
    def label(self) -> str:
        where = (
            "every channel group"
            if not self.roots
            else (self.roots[0] if len(self.roots) == 1 else f"{len(self.roots)} groups")
        )
        return f"Group prune {self.amount:.0%} of the channels of {where} (L{self.norm})"

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "amount": self.amount,
            "norm": self.norm,
            "roots": list(self.roots),
            "round_to": self.round_to,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GroupPrune:
        return cls(
            data["amount"],
            int(data.get("norm", 2)),
            tuple(data.get("roots", ())),
            int(data.get("round_to", 1)),
        )

    def masks_job(self, session: PruningSession, token: CancelToken) -> Job[MaskMap]:
        token.check()
        traced = _trace_session(session)
        yield Progress(0.3, "traced the channel groups")
        return (yield from scaled(self._masks(session, traced, token), 0.3, 1.0))

    def apply_job(self, session: PruningSession, token: CancelToken) -> Job[Change | None]:
        token.check()
        traced = _trace_session(session)
        yield Progress(0.2, "traced the channel groups")
        session.add_targets(
            name for group in traced.select(self.roots) for name in group.info.members
        )
        new = yield from scaled(self._masks(session, traced, token), 0.2, 0.6)
        before = yield from scaled(session.commit_masks_job(new, token), 0.6, 1.0)
        return MaskChange(before, dict(new))

    def _masks(
        self, session: PruningSession, traced: TracedGroups, token: CancelToken
    ) -> Job[MaskMap]:
        groups = traced.select(self.roots)
        tensors = traced.tensors()
        keep: dict[str, torch.Tensor] = {}
        for i, group in enumerate(groups):
            token.check()
            pruned = self.choose(session, group, tensors)
            if bool(pruned.any()):
                for piece in group.parameter_slices():
                    if session.prunes(piece.tensor):
                        name = session.canonical(piece.tensor)
                        if name not in keep:
                            keep[name] = session.mask(name)
                        piece.prune(keep[name], pruned)
            yield Progress(
                (i + 1) / max(len(groups), 1), f"chose the channels of {group.info.root}"
            )
        return {
            name: session.apply_floor(name, PackedMask.from_bool(mask))
            for name, mask in keep.items()
        }

    def choose(
        self, session: PruningSession, group: GroupLayout, tensors: Mapping[str, torch.Tensor]
    ) -> torch.Tensor:
        """The group's channels to prune now (bool per channel): the least important alive ones."""
        dead = pruned_channels(session, group)
        alive = int((~dead).sum())
        kept = alive - round(self.amount * alive)
        if self.round_to > 1:
            kept -= kept % self.round_to
            if kept == 0:
                kept = min(self.round_to, alive)
        kept = max(kept, min(1, alive))
        chosen = torch.zeros(group.info.channels, dtype=torch.bool)
        if kept >= alive:
            return chosen
        score = group.importance(tensors, self.norm)
        score[dead] = math.inf
        order = torch.sort(score, stable=True).indices
        chosen[order[: alive - kept]] = True
        return chosen


def pruned_channels(session: PruningSession, group: GroupLayout) -> torch.Tensor:
    """Per channel of ``group``: whether the session masks every entry the group holds for it.

    Only parameters that are targets count; a channel none of whose parameters
    is a target counts as not pruned.
    """
    channels = group.info.channels
    masked = torch.ones(channels, dtype=torch.bool)
    seen = False
    for piece in group.parameter_slices():
        if not session.prunes(piece.tensor):
            continue
        seen = True
        mask = session.packed_mask(piece.tensor)
        if mask is None:
            return torch.zeros(channels, dtype=torch.bool)
        kept = piece.per_channel(mask.to_bool(), channels, lambda rows: rows.sum(1))
        masked &= kept == 0
    return masked if seen else torch.zeros(channels, dtype=torch.bool)


def _trace_session(session: PruningSession) -> TracedGroups:
    """The session's model traced on a deep copy with its example input."""
    if session.example_input is None:
        raise PruningError(
            "group pruning traces the model, and this session has no example input: "
            "open the model with one (demos and saved sessions have one), or give "
            "PruningSession an example_input"
        )
    return trace_groups(copy.deepcopy(session.model), session.example_input)


OPERATIONS[GroupPrune.kind] = GroupPrune
