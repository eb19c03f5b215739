"""``python -m matnet_torch.train``: train a MatNet classifier on MNIST, evaluate it, draw the figures.

    python -m matnet_torch.train --seed 0 --out runs/seed0
    python -m matnet_torch.train --seed 0 --out runs/seed0 --resume    # after an interruption
    torchrun --nproc_per_node=2 -m matnet_torch.train --seed 0 --out runs/ddp   # DistributedDataParallel

Options: ``--help`` (defined in ``config``). Writes to --out: checkpoint.pt after every epoch, then
metrics.json, fig1_weights.png and fig2_hidden_outputs.png. Every expected failure (options, data
files, checkpoint, output directory) is one line on stderr, exit status 2 for the command line and
1 otherwise (``common.cli``).
"""
import json
import os
from typing import List, Optional, Sequence

import torch

from ...data import MNISTDataError, load_mnist
from ...nn.models import parameter_count
from ..common.cli import UsageError, output_directory, run_tool
from ..common.devices import training_device
from ..common.distributed import Processes, join_processes
from ..common.reproducibility import thread_independent_blas
from .config import build_model, check_validation_size, parse_config
from .evaluate import evaluate, pixels
from .figures import plot_hidden_outputs, plot_weights
from .training_loop import fit

PROG = "matnet_torch.train"

thread_independent_blas()  # before any matrix product of this process: same bits for every --threads


def _main(argv: List[str]) -> int:
    config = parse_config(argv)
    processes = join_processes(training_device(config["device"]))
    try:
        return _train(config, processes)
    finally:
        processes.leave()


def _train(config, processes: Processes) -> int:
    device = processes.device
    torch.set_num_threads(config["threads"])
    if processes.world_size > 1 and (config["optimizer"] == "lbfgs" or config["cuda_graph"]):
        raise UsageError(f"--optimizer lbfgs and --cuda-graph run on one process only, not {processes.world_size} "
                         "(LBFGS's line search would decide on each process's own loss; the captured step does not "
                         "include the synchronisation of the gradients)")

    images, labels = load_mnist("train", config["data_dir"])
    check_validation_size(config, len(images))
    images, labels = pixels(images).to(device), labels.to(device)
    held_out = config["validation_size"]
    train = images[: len(images) - held_out], labels[: len(labels) - held_out]
    processes.check_batches(config["batch_size"], len(train[0]))
    validation = (images[len(images) - held_out :], labels[len(labels) - held_out :]) if held_out else None
    test_images, test_labels = load_mnist("test", config["data_dir"])
    test_images, test_labels = pixels(test_images).to(device), test_labels.to(device)
    if processes.is_main:
        output_directory(config["out"])  # after the checks of the data: a refused run leaves nothing behind

    torch.manual_seed(config["seed"])
    model = build_model(config).to(device)  # initialised on the CPU: the same start on every device
    params = parameter_count(model)
    if processes.is_main:
        print(f"model: {params} parameters; training on {len(train[0])} images, validating on {held_out}"
              + (f"; {processes.world_size} processes" if processes.world_size > 1 else ""))
    result = fit(model, train, validation, config, processes)
    if not processes.is_main:
        return 0

    test_accuracy, test_loss = evaluate(model, test_images, test_labels)
    metrics = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "params": params,
        "epochs": config["epochs"],
        "train_seconds": result["train_seconds"],
        "seconds_per_epoch": result["train_seconds"] / config["epochs"],
        "torch": torch.__version__,
        "config": config,
        "history": result["history"],
    }
    with open(os.path.join(config["out"], "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    plot_weights(model, os.path.join(config["out"], "fig1_weights.png"))
    plot_hidden_outputs(model, test_images, os.path.join(config["out"], "fig2_hidden_outputs.png"))
    print(f"train time: {result['train_seconds']:.1f} s ({metrics['seconds_per_epoch']:.2f} s per epoch)")
    print(f"test loss: {test_loss:.4f}")
    print(f"test accuracy: {test_accuracy:.4f}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command's entry point: exit status 0, or 1/2 after a one-line error (common.cli)."""
    return run_tool(PROG, _main, argv, expected=(MNISTDataError,))
