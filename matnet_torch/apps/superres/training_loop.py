"""The training loop of ``train``: the paper's objective on random batches of patches, a progress bar
with the loss, a checkpoint after every epoch (``common.training_state``, kind "superres") and
``--resume``, which continues bit for bit. Under torchrun every process draws the same patches and
batches and trains on its share of each (``common.distributed``): the processes' parts of a batch's
objective sum to the objective of one process on the whole batch, so W processes train the model of
one; rank 0 prints and writes the checkpoints."""
import math
import os
import time
from typing import Any, Dict, Tuple

import torch
from torch import nn

from ...imaging.superresolution import modality_list
from ..common.cli import ToolError
from ..common.distributed import Processes
from ..common.progress import progress_bar
from ..common.training_state import save_training_state, start_training
from ..common.training_step import Step, training_step
from .cnn_control import SRCNN, srcnn_reconstruction
from .config import CHECKPOINT_KIND, CHECKPOINT_NAME, RUNTIME_OPTIONS, objective_weights

TERMS = ("total", "reconstruction", "weight_decay", "sparsity")


def objective(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, config: Dict[str, Any],
              processes: Processes = Processes()) -> Tuple[torch.Tensor, torch.Tensor]:
    """(this process's part of the objective of a global batch (N, 5, p, q), the parts of its terms as
    one tensor in the order of TERMS): the paper's objective for the autoencoder; for the SRCNN
    control its reconstruction term alone.

    The parts of the processes sum to the objective on the whole batch (``common.distributed``):
    each process's reconstruction term is its share's sum over the global batch size, and it adds
    1/W of the weight decay and of the sparsity term, whose mean activations ρ̄ are the whole global
    batch's (all-reduced, their gradient reaching every process's samples)."""
    batch = processes.global_batch(len(inputs))
    inputs, targets = inputs[batch.share], targets[batch.share]
    if isinstance(model, SRCNN):
        reconstruction = srcnn_reconstruction(model, inputs, targets, batch.size)
        zero = reconstruction.new_zeros(())
        return reconstruction, torch.stack([reconstruction, reconstruction, zero, zero])
    loss = model.loss(modality_list(inputs), modality_list(targets), **objective_weights(config),
                      batch_size=batch.size, batch_mean=batch.mean)
    decay, sparsity = batch.part_of(loss.weight_decay), batch.part_of(loss.sparsity)
    total = loss.reconstruction + decay + sparsity
    return total, torch.stack([total, loss.reconstruction, decay, sparsity])


def train_epoch(step: Step, inputs: torch.Tensor, targets: torch.Tensor, config: Dict[str, Any],
                generator: torch.Generator, description: str, processes: Processes = Processes()) -> Dict[str, float]:
    """One pass over the patches in random batches, one ``step`` per batch; the mean of each term of
    the objective over the batches as they were trained on (before each step). Every process draws
    the same batches from ``generator``; the parts of the terms are summed over the processes at the
    end of the epoch (each batch's parts sum to its terms)."""
    order = torch.randperm(len(inputs), generator=generator)
    sums, seen = torch.zeros(len(TERMS), dtype=torch.float64), 0
    with progress_bar(len(inputs), description, unit="patch", show=processes.is_main) as bar:
        for batch in order.split(config["batch_size"]):
            _, terms = step(inputs[batch], targets[batch])
            sums += terms.double() * len(batch)
            seen += len(batch)
            bar.update(len(batch))
            if processes.world_size == 1:  # a live loss: only where one process sees all of it
                bar.set_postfix(loss=f"{sums[0].item() / seen:.4f}", refresh=False)
    return dict(zip(TERMS, (processes.sum(sums) / seen).tolist()))


def fit(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, config: Dict[str, Any],
        processes: Processes = Processes()) -> Dict[str, Any]:
    """Trains ``model`` for config["epochs"] epochs, or what remains of them with config["resume"].
    Rank 0 alone prints and writes the checkpoints; every process resumes from rank 0's (so under
    torchrun on several machines --out must be on a shared file system).

    Returns {"history": one dict per epoch, "train_seconds": wall time of all epochs, resumed runs
    included, "train_cpu_seconds": the CPU time of this process's threads over those epochs}.
    """
    path = os.path.join(config["out"], CHECKPOINT_NAME)
    state, history, train_seconds = start_training(path, CHECKPOINT_KIND, model, config, RUNTIME_OPTIONS)
    optimizer = state.optimizer
    processes.start_alike(model)
    step = training_step(lambda x, y: objective(model, x, y, config, processes), optimizer, processes=processes)
    for epoch in range(len(history) + 1, config["epochs"] + 1):
        started, cpu_started = time.perf_counter(), time.process_time()
        lr = float(optimizer.param_groups[0]["lr"])
        model.train()
        terms = train_epoch(step, inputs, targets, config, state.generator, f"epoch {epoch}/{config['epochs']}", processes)
        if not math.isfinite(terms["total"]):
            kept = f"{path} keeps epoch {epoch - 1}" if epoch > 1 else "no checkpoint was written"
            raise ToolError(f"training diverged in epoch {epoch} (loss {terms['total']}); {kept}. Try a smaller --lr.")
        state.scheduler.step()
        record = {"epoch": epoch, "lr": lr, **{f"loss_{term}": value for term, value in terms.items()}}
        record["seconds"] = time.perf_counter() - started
        record["cpu_seconds"] = time.process_time() - cpu_started
        train_seconds += record["seconds"]
        history.append(record)
        if not processes.is_main:
            continue
        print(
            f"epoch {epoch:3d}/{config['epochs']}  lr {lr:.3g}  loss {terms['total']:.4g} (reconstruction "
            f"{terms['reconstruction']:.4g}, weight decay {terms['weight_decay']:.3g}, sparsity {terms['sparsity']:.3g})  "
            f"{record['seconds']:.1f} s ({record['cpu_seconds']:.1f} s CPU)",
            flush=True,
        )
        save_training_state(path, CHECKPOINT_KIND, state, epoch, config, history, train_seconds)
    return {"history": history, "train_seconds": train_seconds,
            "train_cpu_seconds": sum(record.get("cpu_seconds", 0.0) for record in history)}
