"""Trained models shipped with matnet_torch, ready to use without training::

    import matnet_torch.pretrained as pretrained
    pretrained.available()                 # ["mnist"]
    model = pretrained.load("mnist")       # the paper's MNIST net, trained, in eval mode
    logits = model(images.float() / 255)   # images: uint8 (N, 28, 28), as from load_mnist

From the command line, ``python -m matnet_torch.pretrained`` lists them with their files and
recorded results, and ``python -m matnet_torch.evaluate --pretrained mnist`` re-evaluates one.

Each model is one small file in ``matnet_torch/pretrained_models/``, in the applications' checkpoint
format (``matnet_torch.apps.common.checkpoint``: data only, read with ``torch.load(weights_only=True)``,
so loading never runs code). Its SHA-256 is written below, so the file is checked against this
version of the package before it is read (besides the checkpoint's own checksum of its contents).
The payload is that of the application's own checkpoints, without the optimiser's state::

    {"epoch": int, "config": dict, "model": state_dict, "metrics": {"test_accuracy": float, ...}}

``metrics`` holds what the model scored when it was exported; the test suite checks that it still
does (``evaluate``). A model trained with one of the tools is added by one entry in ``MODELS`` (its
file, kind, builder and evaluator) and exporting its run: ``python tools/export_pretrained.py NAME
RUN_DIR`` writes the file and prints the SHA-256 to write in the entry.
"""
import hashlib
import importlib
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple

from torch import nn

MODELS_DIR = Path(__file__).resolve().parent / "pretrained_models"


class PretrainedModel(NamedTuple):
    """One shipped model: where its file is, what it must hash to, and how to rebuild the module."""

    #: The file's name in MODELS_DIR.
    file: str
    #: The SHA-256 of the file (hex).
    sha256: str
    #: The checkpoint kind of the application that trained it.
    kind: str
    #: The function that turns the checkpoint payload into the nn.Module, as ``module.path:function``.
    builder: str
    #: The function giving the metrics dict of a model as recorded in the payload, as ``module.path:function``.
    evaluator: str
    #: What the model is, in one line.
    summary: str
    #: The command that trained it.
    command: str


MODELS: Dict[str, PretrainedModel] = {
    "mnist": PretrainedModel(
        file="mnist_paper_net.pt",
        sha256="ff05c364953501b32519e6700906cf85c74de85a14ffdae8cc641eac0e50da16",
        kind="mnist",
        builder="matnet_torch.apps.mnist.evaluate:model_from_checkpoint",
        evaluator="matnet_torch.apps.mnist.evaluate:test_metrics",
        summary="the paper's MNIST net 28x28 -> 20x20 -> 16x16 -> 10 (sigmoid, vectorised softmax head)",
        command="python -m matnet_torch.train --out runs/mnist",
    ),
}


class PretrainedError(ValueError):
    """An unknown model name, or a shipped file that is missing or does not match this package."""


def available() -> List[str]:
    """The names of the shipped models."""
    return sorted(MODELS)


def _entry(name: str) -> PretrainedModel:
    if name not in MODELS:
        raise PretrainedError(f"no pretrained model {name!r}; available: {', '.join(available())}")
    return MODELS[name]


def path(name: str) -> Path:
    """The file of model ``name``, after checking its SHA-256; PretrainedError if it is missing or differs."""
    entry = _entry(name)
    file = MODELS_DIR / entry.file
    try:
        contents = file.read_bytes()
    except OSError as err:
        raise PretrainedError(f"{file}: the pretrained model {name!r} cannot be read: {err.strerror or err}") from err
    digest = hashlib.sha256(contents).hexdigest()
    if digest != entry.sha256:
        raise PretrainedError(
            f"{file}: SHA-256 {digest}, expected {entry.sha256}: the file of the pretrained model {name!r} "
            "was modified or belongs to another version of matnet_torch"
        )
    return file


def load_payload(name: str) -> Dict[str, Any]:
    """The checkpoint payload of model ``name`` (configuration, state_dict, metrics), verified."""
    from .apps.common.checkpoint import load_checkpoint

    return load_checkpoint(path(name), _entry(name).kind)


def _function(reference: str) -> Callable:
    """The function named by "module:function", imported only when it is needed."""
    module_name, function = reference.split(":")
    return getattr(importlib.import_module(module_name), function)


def build(name: str, payload: Dict[str, Any]) -> nn.Module:
    """The module of model ``name`` rebuilt from ``payload`` by the application that trained it, in eval mode."""
    return _function(_entry(name).builder)(payload).eval()


def evaluate(name: str, model: nn.Module, **options: Any) -> Dict[str, float]:
    """The metrics of ``model`` measured as those recorded for model ``name`` were (for "mnist": test
    accuracy and loss on the MNIST test set; ``data_dir=`` chooses its files). Needs the test data."""
    return _function(_entry(name).evaluator)(model, **options)


def load(name: str) -> nn.Module:
    """The trained module of model ``name``, in eval mode, on the CPU (``.to(device)`` moves it)."""
    return build(name, load_payload(name))


def _main() -> int:
    """``python -m matnet_torch.pretrained``: one paragraph per shipped model."""
    for name in available():
        entry, payload = MODELS[name], load_payload(name)
        metrics = ", ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                            for key, value in payload["metrics"].items())
        print(f"{name}: {entry.summary}\n  file: {path(name)}\n  recorded: {metrics}\n  trained with: {entry.command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
