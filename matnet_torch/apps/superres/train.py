"""``train``: sample training patches, train the autoencoder, write the model directory.

    python -m matnet_torch.superres train --out runs/sr
    torchrun --nproc_per_node=2 -m matnet_torch.superres train --out runs/sr   # several processes

Under torchrun (gloo on the CPU) every process samples the same patches and trains on its share of
every batch; the model is the one a single process trains (``common.distributed``).

Writes to --out: checkpoint.pt after every epoch, then metrics.json (training time, configuration,
per-epoch losses) and, for the autoencoder, weights.png (the learned U_j, V_j, R_j, S_j).
"""
import argparse
import json
import os

import torch

from ...nn import MultimodalMatNetAutoencoder
from ...nn.models import parameter_count
from ..common.cli import UsageError, output_directory
from ..common.distributed import Processes, join_processes
from .config import add_training_options, build_model, config_from_args
from .data import image_names, image_paths, training_set
from .figures import plot_weights
from .training_loop import fit

DESCRIPTION = (
    "Train the multimodal MatNet autoencoder for ×s super-resolution (Gao, Guo and Wang, section 4.2) on "
    "random patches of high-resolution images. The defaults are the paper's protocol."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_options(parser)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    processes = join_processes(torch.device("cpu"))
    try:
        return _train(config, processes)
    finally:
        processes.leave()


def _train(config, processes: Processes) -> int:
    if config["threads"] is not None:
        torch.set_num_threads(config["threads"])
    if processes.world_size > 1 and config["optimizer"] == "lbfgs":
        raise UsageError(f"--optimizer lbfgs runs on one process only, not {processes.world_size} (its line search "
                         "would decide on each process's own part of the loss)")
    paths = image_paths(config["images"], "train")
    inputs, targets = training_set(paths, config)
    processes.check_batches(config["batch_size"], len(inputs))
    if processes.is_main:
        output_directory(config["out"])  # after the checks of the data: a refused run leaves nothing behind
    torch.manual_seed(config["seed"])
    model = build_model(config)
    if processes.is_main:
        print(f"model: {parameter_count(model)} parameters; training on {len(inputs)} patches of {len(paths)} images"
              + (f"; {processes.world_size} processes" if processes.world_size > 1 else ""))
    result = fit(model, inputs, targets, config, processes)
    if not processes.is_main:
        return 0
    metrics = {
        "train_seconds": result["train_seconds"],
        "train_cpu_seconds": result["train_cpu_seconds"],
        "seconds_per_epoch": result["train_seconds"] / config["epochs"],
        "params": parameter_count(model),
        "training_images": image_names(paths),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": config,
        "history": result["history"],
    }
    with open(os.path.join(config["out"], "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    if isinstance(model, MultimodalMatNetAutoencoder):
        plot_weights(model, os.path.join(config["out"], "weights.png"))
    print(f"train time: {result['train_seconds']:.1f} s ({metrics['seconds_per_epoch']:.2f} s per epoch), "
          f"{result['train_cpu_seconds']:.1f} s CPU on {torch.get_num_threads()} thread(s)")
    print(f"model directory: {config['out']}")
    return 0
