"""A random state of a job's own, swapped into torch's global RNG for one block at a time.

Jobs are generators: a ``torch.random.fork_rng`` held across their ``yield`` s
would let the caller's code draw from the job's stream (and the job from the
caller's) while the job is suspended. :class:`PrivateRng` keeps the job's state
aside and swaps it in only around synchronous blocks (a training step), so the
caller's RNG is untouched and the job's draws depend only on its seed. Global
draws matter for dropout and for loaders that shuffle without a generator.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class PrivateRng:
    """torch's global RNG state (CPU, and the model's CUDA device) of one seeded job."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self._devices: list[int] = []
        if device.type == "cuda":
            self._devices = [
                device.index if device.index is not None else torch.cuda.current_device()
            ]
        with torch.random.fork_rng(devices=self._devices):
            torch.default_generator.manual_seed(seed)
            for index in self._devices:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
            self._save()

    def _save(self) -> None:
        self._cpu = torch.get_rng_state()
        self._cuda = [torch.cuda.get_rng_state(index) for index in self._devices]

    @contextmanager
    def active(self) -> Iterator[None]:
        """Within the block, torch's global RNG is this job's; the caller's state is put back."""
        with torch.random.fork_rng(devices=self._devices):
            torch.set_rng_state(self._cpu)
            for index, state in zip(self._devices, self._cuda, strict=True):
                torch.cuda.set_rng_state(state, index)
            yield
            self._save()
