"""The state of a training run in a checkpoint: saved after every epoch, restored by ``--resume``.

API:

    state, history, train_seconds = start_training(path, kind, model, config, runtime_options)
                                   # a fresh run, or with config["resume"] the one saved at path
    save_training_state(path, kind, state, epoch, config, history, train_seconds)
    history, train_seconds = restore_training_state(path, kind, state, config, runtime_options)
    TrainingState(model, optimizer, scheduler, generator)

The payload (``common.checkpoint``, of the app's ``kind``) is

    {"epoch": int, "config": dict, "model": state_dict, "optimizer": state_dict,
     "scheduler": state_dict, "rng": {"generator": uint8 tensor, "torch": uint8 tensor},
     "history": [dict per epoch], "train_seconds": float}

so a resumed run continues bit for bit: the model, the optimiser's moments, the schedule and both
random streams (the loop's own generator and torch's global one) come back.
"""
import os
from typing import Any, Dict, Iterable, List, NamedTuple, Tuple

import torch
from torch import nn

from .checkpoint import load_checkpoint, payload_layout, save_checkpoint
from .cli import ToolError, UsageError
from .optimization import make_optimizer, make_scheduler
from .options import differing_options


class TrainingState(NamedTuple):
    """Everything a training loop updates besides its history."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator


def save_training_state(
    path: str,
    kind: str,
    state: TrainingState,
    epoch: int,
    config: Dict[str, Any],
    history: List[Dict[str, Any]],
    train_seconds: float,
) -> None:
    """Writes the checkpoint of ``state`` after ``epoch`` to ``path`` (atomically)."""
    save_checkpoint(path, kind=kind, payload={
        "epoch": epoch,
        "config": config,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "rng": {"generator": state.generator.get_state(), "torch": torch.get_rng_state()},
        "history": history,
        "train_seconds": train_seconds,
    })


def restore_training_state(
    path: str, kind: str, state: TrainingState, config: Dict[str, Any], runtime_options: Iterable[str]
) -> Tuple[List[Dict[str, Any]], float]:
    """Loads the checkpoint at ``path`` into ``state``; returns (history, train_seconds).

    ToolError when there is no checkpoint; UsageError when its run had other options than
    ``config`` (``runtime_options`` aside): the schedule, the data and the model depend on them.
    """
    if not os.path.exists(path):
        raise ToolError(f"--resume: no checkpoint at {path}")
    checkpoint = load_checkpoint(path, kind)
    with payload_layout(path, f"a '{kind}' training state"):
        differences = differing_options(checkpoint["config"], config, runtime_options)
        if differences:
            raise UsageError(f"--resume with options that differ from {path}: " + "; ".join(differences))
        state.model.load_state_dict(checkpoint["model"])
        state.optimizer.load_state_dict(checkpoint["optimizer"])
        state.scheduler.load_state_dict(checkpoint["scheduler"])
        state.generator.set_state(checkpoint["rng"]["generator"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
    print(f"resuming {path} after epoch {checkpoint['epoch']} of {config['epochs']}")
    return checkpoint["history"], checkpoint["train_seconds"]


def start_training(
    path: str, kind: str, model: nn.Module, config: Dict[str, Any], runtime_options: Iterable[str]
) -> Tuple[TrainingState, List[Dict[str, Any]], float]:
    """(state, history, train_seconds) at the start of a run: the model with the configured optimiser,
    schedule and a generator seeded by config["seed"]; restored from ``path`` when config["resume"]
    (``restore_training_state``), else empty history. UsageError when a fresh run would overwrite
    the checkpoint at ``path``."""
    optimizer = make_optimizer(model, config)
    state = TrainingState(model, optimizer, make_scheduler(optimizer, config), torch.Generator().manual_seed(config["seed"]))
    if config["resume"]:
        return (state, *restore_training_state(path, kind, state, config, runtime_options))
    if os.path.exists(path):
        raise UsageError(f"{path} exists; pass --resume to continue it, or choose another --out")
    return state, [], 0.0
