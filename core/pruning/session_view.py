"""The read side of a :class:`~core.pruning.session.PruningSession`.

Which parameters are prunable, what each is, its mask, its live (effective)
and original values, and a dense copy of the model: everything that can be
asked of a session without changing it. The session adds the commands.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from core.common.tensors import writable_flat
from core.pruning.masks import PackedMask
from core.pruning.model_state import ModelState, PrunableLayer
from core.pruning.targets import TargetInfo
from core.pruning.vault import ValueVault


class SessionView:
    """Read-only questions about the live :class:`~core.pruning.model_state.ModelState`.

    The base of :class:`~core.pruning.session.PruningSession`, which sets ``_state``.
    """

    _state: ModelState

    @property
    def model(self) -> nn.Module:
        """The model being pruned (replaced by :class:`ReplaceModel`)."""
        return self._state.model

    @property
    def state(self) -> ModelState:
        """The live model state (for operations; see :meth:`swap_state`)."""
        return self._state

    @property
    def vault(self) -> ValueVault:
        """Where original values are kept."""
        return self._state.vault

    @property
    def names(self) -> list[str]:
        """Prunable parameter names, in model order."""
        return list(self._state.layers)

    @property
    def weight_names(self) -> list[str]:
        """The prunable parameters the target options chose (without the biases and norm
        parameters group pruning added): what global pruning ranks by default."""
        return [name for name in self._state.layers if name not in self._state.coupled]

    def prunes(self, name: str) -> bool:
        """Whether ``name`` is a prunable parameter of the session: one of :attr:`names`
        or another name of a tied tensor (every name :meth:`canonical` accepts).

        Parameters added by :meth:`add_targets` (the biases and norm parameters a group
        prune holds) count, though :attr:`weight_names` leaves them out. Module names,
        buffers and parameters that are not targets do not.
        """
        return self._state.prunes(name)

    def canonical(self, name: str) -> str:
        """The session's name of a prunable parameter (aliases of tied weights resolved)."""
        return self._layer(name).info.name

    def info(self, name: str) -> TargetInfo:
        """What a parameter is and where it lives."""
        return self._layer(name).info

    def packed_mask(self, name: str) -> PackedMask | None:
        """The parameter's packed mask, or None when nothing is pruned."""
        return self._layer(name).mask

    def floor(self, name: str) -> PackedMask | None:
        """What of the parameter is pruned for good (None: nothing was made permanent)."""
        return self._layer(name).floor

    def mask(self, name: str) -> torch.Tensor:
        """The parameter's mask as a bool tensor (True = kept) on the CPU."""
        layer = self._layer(name)
        if layer.mask is None:
            return torch.ones(layer.info.shape, dtype=torch.bool)
        return layer.mask.to_bool()

    def effective(self, name: str) -> torch.Tensor:
        """The live weights (pruned entries are zero). Do not modify in place."""
        return self._layer(name).param.detach()

    def original(self, name: str) -> torch.Tensor:
        """A copy of the parameter's original (unpruned) values.

        Kept entries are the live weights; pruned ones come from the vault.
        """
        layer = self._layer(name)
        copy = layer.param.detach().clone()
        saved = self.vault.saved(layer.info.name)
        if saved is not None and layer.mask is not None:
            # Only pruned entries: a value stashed for an entry kept today may be stale.
            with writable_flat(copy) as flat:
                self.vault.restore(layer.info.name, flat, saved.and_not(layer.mask))
        return copy

    def unpruned_copy(self) -> nn.Module:
        """A deep copy of the unpruned model: the original value of every pruned entry back.

        The dense reference: the teacher of distillation, the baseline of fidelity and
        of speed. Once a weight update (fine-tuning) changed kept values, it is the dense
        model as it was just before the first one, not today's kept values with the old
        pruned ones. Entries made permanent before that stay zero (their originals are
        gone). The session's own model is not touched.
        """
        if self._state.dense_reference is not None:
            return copy.deepcopy(self._state.dense_reference)
        model = copy.deepcopy(self.model)
        params = dict(model.named_parameters(remove_duplicate=False))
        with torch.no_grad():
            for name, layer in self._state.layers.items():
                if layer.mask is not None:
                    params[name].copy_(self.original(name))
        return model

    def sparsity(self, name: str) -> float:
        """Fraction of the parameter's entries that are pruned."""
        layer = self._layer(name)
        return 0.0 if layer.mask is None else layer.mask.sparsity

    def is_permanent(self, name: str) -> bool:
        """Whether some of the parameter's pruning was made permanent."""
        return self._layer(name).floor is not None

    def _layer(self, name: str) -> PrunableLayer:
        return self._state.layer(name)
