"""One model's prunable layers, their masks and the originals of their pruned weights.

A :class:`ModelState` is what a :class:`~core.pruning.session.PruningSession`
prunes: it is made fresh for a model (:func:`new_model_state`), grows when more
parameters become prunable (:func:`add_layers`), and is swapped whole when an
operation replaces the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from core.common.errors import UnknownParameterError
from core.pruning.masks import PackedMask
from core.pruning.targets import TargetInfo, find_targets, target_info
from core.pruning.vault import ValueVault

#: Models whose prunable weights exceed this many bytes spill originals to disk.
SPILL_THRESHOLD = 256 << 20


@dataclasses.dataclass
class PrunableLayer:
    """One prunable parameter: what it is, the live tensor, its mask and permanent part."""

    info: TargetInfo
    param: nn.Parameter
    mask: PackedMask | None = None  # None: nothing pruned
    floor: PackedMask | None = None  # pruned for good by make_permanent


@dataclasses.dataclass(eq=False)
class ModelState:
    """One model with its prunable layers, their masks and the originals of pruned weights."""

    model: nn.Module
    layers: dict[str, PrunableLayer]
    aliases: dict[str, str]
    vault: ValueVault
    #: Layers added by :meth:`PruningSession.add_targets` (biases and norm parameters a
    #: group prune holds at zero), not chosen by the target options.
    coupled: set[str] = dataclasses.field(default_factory=set)
    #: The dense model as it was before the first weight update changed kept values
    #: (see :meth:`PruningSession.unpruned_copy`); None until then.
    dense_reference: nn.Module | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of the model's tensors plus the stashed originals."""
        tensors = [*self.model.parameters(), *self.model.buffers()]
        return sum(t.numel() * t.element_size() for t in tensors) + self.vault.stored_bytes()

    def close(self) -> None:
        """Release the stashed originals (the model keeps its values)."""
        self.vault.close()

    def prunes(self, name: str) -> bool:
        """Whether ``name`` or the tensor it is another name of is a prunable layer."""
        return self.aliases.get(name, name) in self.layers

    def layer(self, name: str) -> PrunableLayer:
        """The prunable layer ``name`` (or another name of its tensor) is.

        Raises:
            UnknownParameterError: ``name`` is not prunable here.
        """
        layer = self.layers.get(self.aliases.get(name, name))
        if layer is None:
            raise UnknownParameterError(name, list(self.layers))
        return layer


def new_model_state(
    model: nn.Module,
    target_options: Mapping[str, bool],
    targets: Iterable[str] | None = None,
    *,
    spill: bool | None = None,
    spill_dir: str | None = None,
) -> ModelState:
    """A fresh, unpruned state for ``model``, its layers chosen by ``target_options``.

    ``targets`` restricts them to these names (aliases of tied weights accepted);
    ``spill`` keeps originals on disk (None: only when the prunable weights exceed
    :data:`SPILL_THRESHOLD`), in a temporary folder under ``spill_dir``.

    Raises:
        UnknownParameterError: a name in ``targets`` that the options do not make prunable.
    """
    found = find_targets(model, **target_options)
    params = dict(model.named_parameters(remove_duplicate=False))
    aliases = {alias: info.name for info in found for alias in info.aliases}
    if targets is not None:
        wanted = [aliases.get(n, n) for n in targets]
        by_name = {info.name: info for info in found}
        for name in wanted:
            if name not in by_name:
                raise UnknownParameterError(name, list(by_name))
        found = [by_name[name] for name in dict.fromkeys(wanted)]
    layers = {info.name: PrunableLayer(info, params[info.name]) for info in found}
    total_bytes = sum(info.numel * itemsize(info.dtype) for info in found)
    spill = spill if spill is not None else total_bytes > SPILL_THRESHOLD
    return ModelState(model, layers, aliases, ValueVault(spill=spill, spill_dir=spill_dir))


def add_layers(state: ModelState, names: Iterable[str], *, coupled: bool) -> tuple[str, ...]:
    """Make more parameters of ``state``'s model prunable, unpruned; the names added.

    See :meth:`~core.pruning.session.PruningSession.add_targets`. The layers stay
    in the model's parameter order.

    Raises:
        UnknownParameterError: a name that is not a floating-point parameter.
    """
    params = dict(state.model.named_parameters(remove_duplicate=False))
    added: list[str] = []
    for name in names:
        if state.prunes(name):
            continue
        try:
            info = target_info(state.model, name)
        except KeyError:
            raise UnknownParameterError(name, list(state.layers)) from None
        state.layers[name] = PrunableLayer(info, params[name])
        state.aliases.update(dict.fromkeys(info.aliases, name))
        if coupled:
            state.coupled.add(name)
        added.append(name)
    if not added:
        return ()
    order = {name: i for i, name in enumerate(params)}
    state.layers = dict(sorted(state.layers.items(), key=lambda item: order[item[0]]))
    return tuple(added)


def itemsize(dtype: torch.dtype) -> int:
    """Bytes per entry of ``dtype``."""
    return torch.empty((), dtype=dtype).element_size()
