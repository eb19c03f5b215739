"""Test-set evaluation of a MatNet classifier, and the ``matnet-evaluate CHECKPOINT`` command.

    python -m matnet_torch.evaluate runs/mnist/checkpoint.pt
"""
import argparse
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .data import load_mnist
from .train_config import build_model


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 images with values in [0, 1]."""
    return images.to(torch.float32).div_(255.0)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 10000) -> Tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of ``model`` on float images (N, 28, 28) and labels (N,)."""
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size])
        batch_labels = labels[start : start + batch_size]
        total_loss += F.cross_entropy(logits, batch_labels, reduction="sum").item()
        correct += (logits.argmax(dim=1) == batch_labels).sum().item()
    model.train(was_training)
    return correct / len(images), total_loss / len(images)


def load_checkpoint(path: str) -> Dict[str, Any]:
    """The dict saved by the training loop (model, optimizer, scheduler, RNG states, epoch, config...)."""
    return torch.load(path, map_location="cpu", weights_only=False)


def model_from_checkpoint(checkpoint: Dict[str, Any]) -> nn.Module:
    """The trained classifier of a checkpoint, rebuilt from its configuration."""
    model = build_model(checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m matnet_torch.evaluate",
        description="Evaluate a checkpoint written by matnet_torch.train on the MNIST test set.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("checkpoint", help="path of a checkpoint.pt written by matnet_torch.train")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the MNIST IDX files; default: the one the run was trained with")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    checkpoint = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(checkpoint)
    images, labels = load_mnist("test", args.data_dir or checkpoint["config"]["data_dir"])
    accuracy, loss = evaluate(model, pixels(images), labels)
    print(f"checkpoint: {args.checkpoint} (epoch {checkpoint['epoch']} of {checkpoint['config']['epochs']})")
    print(f"test accuracy: {accuracy:.4f}")
    print(f"test loss: {loss:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
