"""``python -m matnet_torch.train``: train a MatNet classifier on MNIST, evaluate it, draw the figures.

    python -m matnet_torch.train --seed 0 --out runs/seed0
    python -m matnet_torch.train --seed 0 --out runs/seed0 --resume    # after an interruption

Options: ``--help`` (defined in ``matnet_torch.train_config``). Writes to --out: checkpoint.pt after
every epoch, then metrics.json, fig1_weights.png and fig2_hidden_outputs.png.
"""
import json
import os
from typing import Optional, Sequence

import torch

from .data import load_mnist
from .evaluate import evaluate, pixels
from .figures import plot_hidden_outputs, plot_weights
from .nn.models import parameter_count
from .train_config import build_model, parse_config
from .training_loop import fit


def main(argv: Optional[Sequence[str]] = None) -> int:
    config = parse_config(argv)
    torch.set_num_threads(config["threads"])
    os.makedirs(config["out"], exist_ok=True)

    images, labels = load_mnist("train", config["data_dir"])
    images = pixels(images)
    held_out = min(config["validation_size"], len(images) - 1)
    train = images[: len(images) - held_out], labels[: len(labels) - held_out]
    validation = (images[len(images) - held_out :], labels[len(labels) - held_out :]) if held_out else None
    test_images, test_labels = load_mnist("test", config["data_dir"])
    test_images = pixels(test_images)

    torch.manual_seed(config["seed"])
    model = build_model(config)
    params = parameter_count(model)
    print(f"model: {params} parameters; training on {len(train[0])} images, validating on {held_out}")
    result = fit(model, train, validation, config)

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


if __name__ == "__main__":
    raise SystemExit(main())
