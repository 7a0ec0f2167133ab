"""Measurements (e.g. evaluations) attached to the history position they were taken at."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.pruning.methods import L1Unstructured
from core.pruning.session import PruningSession


def _session() -> PruningSession:
    torch.manual_seed(0)
    return PruningSession(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4)))


def test_measurements_follow_their_entry_through_undo_and_redo() -> None:
    session = _session()
    history = session.history
    history.measurements()["evaluation:test"] = {"top1": 0.9}
    session.prune("0.weight", L1Unstructured(0.5))
    assert history.measurements() == {}
    history.measurements()["evaluation:test"] = {"top1": 0.8}
    session.prune("2.weight", L1Unstructured(0.5))
    assert history.measurements(1) == {"evaluation:test": {"top1": 0.8}}
    session.undo()
    assert history.measurements() == {"evaluation:test": {"top1": 0.8}}
    session.undo()
    assert history.measurements() == {"evaluation:test": {"top1": 0.9}}
    session.redo()
    assert history.measurements()["evaluation:test"]["top1"] == 0.8
    with pytest.raises(IndexError):
        history.measurements(5)


def test_a_new_branch_forgets_the_undone_measurements() -> None:
    session = _session()
    session.prune("0.weight", L1Unstructured(0.5))
    session.history.measurements()["x"] = 1
    session.undo()
    session.prune("0.weight", L1Unstructured(0.25))
    assert session.history.measurements() == {}


def test_dropped_entries_hand_their_measurements_to_the_new_start() -> None:
    session = _session()
    session.prune("0.weight", L1Unstructured(0.5))
    session.history.measurements()["x"] = "after first"
    session.prune("2.weight", L1Unstructured(0.5))
    session.history.set_budget(session.history.entries[-1].nbytes)
    assert session.history.dropped == 1
    assert session.history.measurements(0) == {"x": "after first"}
