"""Random mixes of every operation kind, undo and redo, checked bit for bit.

Each state the session reaches is keyed by the operations that produced it;
whenever undo/redo brings the session back to a key seen before, the model's
values, the masks and the originals must have exactly the same bits. Tiny
chunks and a low merge threshold exercise chunking and vault merging; a small
history budget exercises dropping; every float dtype, in memory and spilled.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import core.common.chunks as chunks
import core.pruning.vault as vault_module
from core.common.errors import PruningError
from core.pruning.methods import L1Unstructured, LnStructured, RandomUnstructured
from core.pruning.session import PruningSession


def raw(t: torch.Tensor) -> bytes:
    return t.detach().contiguous().view(-1).view(torch.uint8).numpy().tobytes()


def snapshot(session: PruningSession) -> tuple[bytes, ...]:
    values = [raw(v) for v in session.model.state_dict().values()]
    masks = [
        session.packed_mask(n).bits.tobytes() if session.packed_mask(n) else b""
        for n in session.names
    ]
    originals = [raw(session.original(n)) for n in session.names]
    return (*values, *masks, *originals)


def step(session: PruningSession, rng: random.Random, dtype: torch.dtype) -> None:
    name = rng.choice(session.names)
    shape = session.info(name).shape
    r = rng.random()
    if r < 0.2:
        method = rng.choice([L1Unstructured, RandomUnstructured])(round(rng.random() * 0.5, 3))
        session.prune(name, method, mode=rng.choice(["further", "set"]))
    elif r < 0.27:
        session.prune(name, LnStructured(round(rng.random() * 0.5, 3), n=1, dim=0))
    elif r < 0.42:
        cells = np.array(rng.sample(range(int(np.prod(shape))), rng.randint(1, 9)))
        session.paint(name, cells, keep=rng.random() < 0.4)
    elif r < 0.52:
        values = {name: torch.randn(shape).to(dtype)}
        if rng.random() < 0.5:
            values["0.bias"] = torch.randn(11).to(dtype)
        session.update_weights(values)
    elif r < 0.57:
        session.global_prune(round(rng.random() * 0.3, 3))
    elif r < 0.62:
        session.reset([name])
    elif r < 0.8:
        if session.history.can_undo():
            session.undo()
    elif session.history.can_redo():
        session.redo()


@pytest.mark.parametrize("spill", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_random_operation_mixes_come_back_bit_for_bit(monkeypatch, tmp_path, dtype, spill) -> None:
    monkeypatch.setattr(chunks, "CHUNK", 64)
    monkeypatch.setattr(vault_module, "MAX_SEGMENTS", 3)
    for seed in range(3):
        rng = random.Random(seed)
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(13, 11), nn.Linear(11, 7)).to(dtype)
        budget = rng.choice([1 << 30, 6000])
        session = PruningSession(model, spill=spill, spill_dir=str(tmp_path), history_budget=budget)
        seen: dict[tuple[int, ...], tuple[bytes, ...]] = {}
        keep_alive = []  # operations stay alive so their ids keep naming them
        for _ in range(60):
            try:
                step(session, rng, dtype)
            except PruningError:
                continue  # refused (e.g. a count above what remains): nothing changed
            keep_alive.extend(session.operations)
            key = tuple(id(op) for op in session.operations)
            now = snapshot(session)
            assert seen.setdefault(key, now) == now
            for name in session.names:
                pruned = ~session.mask(name)
                assert not raw(session.effective(name)[pruned]).strip(b"\x00")
            assert session.history.nbytes == sum(e.nbytes for e in session.history.entries)
            assert session.history.nbytes <= budget
        session.close()
