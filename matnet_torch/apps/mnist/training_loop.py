"""The training loop of ``matnet_torch.train``: objective, optimiser, schedule, epochs and checkpoints.

The whole training set is one float tensor, zero-padded once for the ``--shift`` translations
(``augmentation.RandomShifts``); every epoch indexes it with a fresh random permutation (no
DataLoader: on two cores worker processes only compete with the arithmetic). All randomness of
training (shuffling, augmentation) draws from one ``torch.Generator`` whose state is checkpointed
with the model, optimiser and schedule after every epoch (``common.training_state``, kind "mnist"),
so ``--resume`` continues bit for bit. Under torchrun every process draws the same batches and trains
on its share of each (``common.distributed``); rank 0 prints and writes the checkpoints.
"""
import math
import os
import time
from typing import Any, Dict, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ...regularizers import sparsity_penalty, weight_decay_penalty
from ..common.cli import ToolError
from ..common.distributed import Processes
from ..common.progress import progress_bar
from ..common.training_state import save_training_state, start_training
from ..common.training_step import Step, training_step
from .augmentation import RandomShifts
from .config import RUNTIME_OPTIONS
from .evaluate import CHECKPOINT_KIND, evaluate

CHECKPOINT_NAME = "checkpoint.pt"


def objective(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: Dict[str, Any],
              processes: Processes = Processes()) -> Tuple[torch.Tensor, torch.Tensor]:
    """(this process's part of a global batch's objective, the logits of its share).

    The objective is the mean cross-entropy over the global batch (``images``, ``labels``) plus the
    configured penalties; the processes' parts sum to it (``common.distributed``): each trains on
    its share, whose summed cross-entropy counts over the global batch size, and adds its 1/W part
    of the penalties, the sparsity penalty's mean activations taken over the whole global batch.
    """
    batch = processes.global_batch(len(images))
    logits, hidden = model.forward_with_hidden(images[batch.share])
    loss = batch.part_of_mean(F.cross_entropy(logits, labels[batch.share], reduction="none"))
    penalty = None
    if config["weight_decay"] > 0:
        penalty = weight_decay_penalty(model, config["weight_decay"])
    if config["sparsity_weight"] > 0:
        sparsity = sparsity_penalty(hidden, config["sparsity_target"], config["sparsity_weight"],
                                    layers=model.hidden_layers, batch_mean=batch.mean)
        penalty = sparsity if penalty is None else penalty + sparsity
    return (loss if penalty is None else loss + batch.part_of(penalty)), logits


def train_epoch(
    step: Step,
    shifts: RandomShifts,
    labels: torch.Tensor,
    config: Dict[str, Any],
    generator: torch.Generator,
    description: str,
    processes: Processes = Processes(),
) -> Tuple[float, float]:
    """One pass over the images of ``shifts`` and their ``labels`` in random batches, randomly translated,
    one ``step`` per batch; returns (mean objective, accuracy) on the batches as they were trained on
    (augmented, before each step).

    The shuffling and the shifts draw from ``generator`` on the CPU, whatever the device, so a seed
    gives the same batches everywhere, and every process of a torchrun the same global batches, of
    which it trains on its share. The sums stay on the device (float64: the same arithmetic as
    Python floats), read once per epoch (and then summed over the processes: the parts of each
    batch's objective sum to it), so that steps need not wait for each other.
    """
    order = torch.randperm(len(labels), generator=generator).to(labels.device)
    total_loss = torch.zeros((), dtype=torch.float64, device=labels.device)
    correct = torch.zeros((), dtype=torch.int64, device=labels.device)
    seen = 0
    with progress_bar(len(labels), description, show=processes.is_main) as bar:
        for batch in order.split(config["batch_size"]):
            x, y = shifts.batch(batch, generator), labels.index_select(0, batch)
            loss, logits = step(x, y)
            total_loss += loss.double() * len(batch)
            correct += (logits.argmax(dim=1) == y[processes.global_batch(len(batch)).share]).sum()
            seen += len(logits)
            bar.update(len(batch))
            if not bar.disable:  # a live loss synchronises with the device: only on a terminal
                bar.set_postfix(loss=f"{total_loss.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}", refresh=False)
    processes.sum(total_loss)
    processes.sum(correct)
    return total_loss.item() / len(labels), correct.item() / len(labels)


def fit(
    model: nn.Module,
    train: Tuple[torch.Tensor, torch.Tensor],
    validation: Optional[Tuple[torch.Tensor, torch.Tensor]],
    config: Dict[str, Any],
    processes: Processes = Processes(),
) -> Dict[str, Any]:
    """Trains ``model`` for config["epochs"] epochs, or what remains of them with config["resume"].

    Writes ``config["out"]/checkpoint.pt`` after every epoch and prints one summary line per epoch
    (rank 0 only, which also alone measures the validation accuracy; every process resumes from the
    checkpoint, so under torchrun on several machines --out must be on a shared file system).
    Returns {"history": one dict per epoch, "train_seconds": wall time of all epochs, resumed runs
    included (training steps plus the per-epoch validation)}.
    """
    path = os.path.join(config["out"], CHECKPOINT_NAME)
    state, history, train_seconds = start_training(path, CHECKPOINT_KIND, model, config, RUNTIME_OPTIONS)
    optimizer, scheduler, generator = state.optimizer, state.scheduler, state.generator
    processes.start_alike(model)
    step = training_step(lambda x, y: objective(model, x, y, config, processes), optimizer, config["cuda_graph"], processes)
    train_images, train_labels = train
    shifts = RandomShifts(train_images, config["shift"])
    for epoch in range(len(history) + 1, config["epochs"] + 1):
        started = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        model.train()
        train_loss, train_accuracy = train_epoch(step, shifts, train_labels, config, generator, f"epoch {epoch}/{config['epochs']}", processes)
        if not math.isfinite(train_loss):
            kept = f"{path} keeps epoch {epoch - 1}" if epoch > 1 else "no checkpoint was written"
            raise ToolError(f"training diverged in epoch {epoch} (loss {train_loss}); {kept}. Try a smaller --lr.")
        scheduler.step()
        record = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_accuracy": train_accuracy}
        summary = f"epoch {epoch:3d}/{config['epochs']}  lr {lr:.3g}  train loss {train_loss:.4f} acc {train_accuracy:.4f}"
        if validation is not None and processes.is_main:
            record["validation_accuracy"], record["validation_loss"] = evaluate(model, *validation)
            summary += f"  validation loss {record['validation_loss']:.4f} acc {record['validation_accuracy']:.4f}"
        record["seconds"] = time.perf_counter() - started
        train_seconds += record["seconds"]
        history.append(record)
        if not processes.is_main:
            continue
        print(f"{summary}  {record['seconds']:.1f} s", flush=True)
        save_training_state(path, CHECKPOINT_KIND, state, epoch, config, history, train_seconds)
    return {"history": history, "train_seconds": train_seconds}
