"""Test-set evaluation of a MatNet classifier, and the ``matnet-evaluate CHECKPOINT`` command.

    python -m matnet_torch.evaluate runs/mnist/checkpoint.pt
    python -m matnet_torch.evaluate --pretrained mnist     # the model shipped with the package

The checkpoint is read with ``common.checkpoint.load_checkpoint`` (no code runs, checksum verified);
its ``"model"`` entry is a plain state_dict of the ``MatNetClassifier`` that ``build_model`` makes
from its ``"config"``.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from ... import pretrained
from ...data import MNISTDataError, load_mnist
from ..common.checkpoint import load_checkpoint, payload_layout
from ..common.cli import ArgumentParser, UsageError, run_tool
from .config import build_model

PROG = "matnet_torch.evaluate"
CHECKPOINT_KIND = "mnist"


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 images with values in [0, 1]."""
    return images.to(torch.float32).div_(255.0)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 10000) -> Tuple[float, float]:
    """(accuracy in [0, 1], mean cross-entropy) of ``model`` on float images (N, 28, 28) and labels (N,), N > 0."""
    if len(images) == 0:
        raise ValueError("evaluate: no images to evaluate on")
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


def test_metrics(model: nn.Module, data_dir: Optional[str] = None) -> Dict[str, float]:
    """{"test_accuracy", "test_loss"} of ``model`` on the MNIST test set in ``data_dir`` (None: the default copy)."""
    images, labels = load_mnist("test", data_dir)
    accuracy, loss = evaluate(model, pixels(images), labels)
    return {"test_accuracy": accuracy, "test_loss": loss}


def model_from_checkpoint(checkpoint: Dict[str, Any]) -> nn.Module:
    """The trained classifier of a checkpoint payload, rebuilt from its configuration."""
    model = build_model(checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model


def load_classifier(path: str) -> Tuple[nn.Module, Dict[str, Any]]:
    """(classifier, payload) of the checkpoint at ``path``; CheckpointError, one line, if the file is
    unusable or its payload does not describe a classifier (missing entries, mismatched weights)."""
    checkpoint = load_checkpoint(path, CHECKPOINT_KIND)
    with payload_layout(path, "a MNIST classifier"):
        return model_from_checkpoint(checkpoint), checkpoint


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m matnet_torch.evaluate",
        description="Evaluate a checkpoint written by matnet_torch.train on the MNIST test set.",
    )
    parser.add_argument("checkpoint", nargs="?", help="path of a checkpoint.pt written by matnet_torch.train")
    parser.add_argument("--pretrained", choices=pretrained.available(), metavar="NAME",
                        help="evaluate the model of that name shipped with matnet_torch instead of a checkpoint "
                             f"({', '.join(pretrained.available())}; python -m matnet_torch.pretrained lists them)")
    parser.add_argument("--data-dir", default=None,
                        help="directory with the MNIST IDX files (default: the one the run was trained with)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default: 1)")
    return parser


def _main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {args.threads}")
    if (args.checkpoint is None) == (args.pretrained is None):
        raise UsageError("give either a CHECKPOINT or --pretrained NAME")
    torch.set_num_threads(args.threads)
    path = str(pretrained.path(args.pretrained)) if args.pretrained else args.checkpoint
    model, checkpoint = load_classifier(path)
    metrics = test_metrics(model, args.data_dir or checkpoint["config"]["data_dir"])
    print(f"checkpoint: {path} (epoch {checkpoint['epoch']} of {checkpoint['config']['epochs']})")
    print(f"test accuracy: {metrics['test_accuracy']:.4f}")
    print(f"test loss: {metrics['test_loss']:.4f}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command's entry point: exit status 0, or 1/2 after a one-line error (common.cli)."""
    return run_tool(PROG, _main, argv, expected=(MNISTDataError, pretrained.PretrainedError))
