"""The configuration of a MNIST training run: its command-line options and the model it describes.

``build_parser`` defines every option of ``python -m matnet_torch.train``; ``config_from_args`` turns
parsed options into the plain dict stored in checkpoints and metrics.json, refusing nonsense values
up front with a UsageError; ``build_model`` rebuilds the classifier from such a dict, so a
checkpoint is all ``matnet_torch.evaluate`` needs.
"""
import argparse
import math
from typing import Any, Dict, Optional, Sequence

from torch import nn

from ...data.mnist import IMAGE_SIZE, NUM_CLASSES
from ...nn import MatNetClassifier
from ...nn.models import HEADS
from ...regularizers import constrain_unit_rows
from ..common import options
from ..common.cli import ArgumentParser, UsageError
from ..common.devices import DEVICES
from ..common.optimization import OPTIMIZERS, SCHEDULES
from ..common.options import matrix_size, option_flag
from ..common.reproducibility import single_threaded

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")

# Per-optimizer defaults for --lr and --batch-size (experiments: docs/mnist_results.md). LBFGS is a
# full-batch method (the paper's optimiser); its line search picks the step, so lr is 1.
DEFAULT_LR = {"sgd": 0.1, "adam": 0.01, "lbfgs": 1.0}
DEFAULT_BATCH_SIZE = {"sgd": 128, "adam": 128, "lbfgs": 60000}

# Options that may differ between a run and its --resume: they change where and how fast the run
# goes, not what it computes (on another device, up to rounding). Not --cuda-graph: it changes how
# the optimizer keeps its state (Adam's capturable step counter).
RUNTIME_OPTIONS = ("out", "resume", "threads", "data_dir", "device")


def build_parser() -> ArgumentParser:
    """The argument parser of ``python -m matnet_torch.train``."""
    parser = ArgumentParser(
        prog="python -m matnet_torch.train",
        description=(
            "Train a MatNet classifier on MNIST (Gao, Guo and Wang, section 4.1). The defaults train the "
            "paper's network 28x28 -> 20x20 -> 16x16 -> 10 (sigmoid, vectorised softmax head). Writes a "
            "checkpoint every epoch, then metrics.json and the figures of the paper (fig1_weights.png, "
            "fig2_hidden_outputs.png) to --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=matrix_size, nargs="+", default=[(20, 20), (16, 16)], metavar="RxC",
                       help="sizes of the hidden matrix layers")
    model.add_argument("--head", choices=list(HEADS), default="vec",
                       help="output layer: vec = softmax on the flattened last hidden matrix (the paper's "
                            "MNIST head), bilinear = s_k = u_k X v_kᵀ + b_k")
    model.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="sigmoid",
                       help="activation of the hidden layers")

    optimisation = parser.add_argument_group("optimisation")
    optimisation.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                              help="sgd is SGD with Nesterov momentum 0.9; lbfgs uses a strong-Wolfe line "
                                   "search and a closure, best with large batches")
    optimisation.add_argument("--lr", type=float, default=None,
                              help=f"peak learning rate; default per optimizer: {DEFAULT_LR}")
    optimisation.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                              help="learning-rate schedule over the epochs: cosine annealing to 0, or step "
                                   "(x0.1 at 50%% and 75%% of the epochs), or constant")
    optimisation.add_argument("--batch-size", type=int, default=None,
                              help=f"samples per step; default per optimizer: {DEFAULT_BATCH_SIZE} "
                                   "(more than the training set means full batch)")
    optimisation.add_argument("--epochs", type=int, default=200, help="passes over the training set")
    optimisation.add_argument("--shift", type=int, default=2,
                              help="data augmentation: translate each training image by a random whole "
                                   "number of pixels in [-SHIFT, SHIFT] along each axis (0 turns it off)")

    regularisation = parser.add_argument_group("regularisation (paper section 2.3)")
    regularisation.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA",
                                help="λ of the penalty λ Σ_l (‖U_l‖²_F + ‖V_l‖²_F), output layer included")
    regularisation.add_argument("--sparsity-target", type=float, default=0.05, metavar="RHO",
                                help="ρ, the target mean activation of the sparsity penalty")
    regularisation.add_argument("--sparsity-weight", type=float, default=0.0, metavar="BETA",
                                help="β of the sparsity penalty β Σ_l KL(ρ ‖ ρ̄_l) (sigmoid only; 0 turns "
                                     "it off)")
    regularisation.add_argument("--unit-norm", action="store_true",
                                help="keep the rows of every U and V at unit norm (the paper's manifold "
                                     "constraint for MNIST), by reparametrisation")

    run = parser.add_argument_group("run")
    run.add_argument("--validation-size", type=int, default=5000,
                     help="hold out the last N training images to report a validation accuracy every "
                          "epoch; they are not trained on (0 trains on all 60000)")
    run.add_argument("--seed", type=int, default=0, help="seeds initialisation, shuffling and augmentation")
    run.add_argument("--threads", type=int, default=1,
                     help="torch.set_num_threads. 1 by default: the steps are small (128 images), and on a "
                          "machine whose other core is busy two threads run 30-90x slower than one, as every "
                          "parallel region waits for the descheduled thread (docs/mnist_results.md)")
    run.add_argument("--device", choices=DEVICES, default="cpu",
                     help="where to train; cuda needs a GPU and a CUDA build of matnet_torch (the model is "
                          "initialised on the CPU either way, so a seed gives the same start)")
    run.add_argument("--cuda-graph", action="store_true",
                     help="with --device cuda and sgd or adam: capture each training step (forward, backward, "
                          "optimizer step) in a CUDA graph and replay it, removing the per-kernel launch cost")
    run.add_argument("--data-dir", default=None,
                     help="directory with the MNIST IDX files; default: the local cache of "
                          "matnet_torch.data.load_mnist")
    run.add_argument("--out", default="runs/mnist", help="directory for checkpoint.pt, metrics.json and figures")
    run.add_argument("--resume", action="store_true",
                     help="continue the run saved in --out from its last completed epoch; give the same "
                          f"options as the interrupted run (only {', '.join(map(option_flag, RUNTIME_OPTIONS[2:]))} may change)")
    return parser


def validate(config: Dict[str, Any]) -> None:
    """UsageError naming the option for every value that cannot give a meaningful run."""

    def require(condition: bool, name: str, requirement: str) -> None:
        options.require(config, name, condition, requirement)

    for name in ("epochs", "batch_size", "threads"):
        require(config[name] >= 1, name, "a positive integer")
    require(math.isfinite(config["lr"]) and config["lr"] > 0, "lr", "a finite number > 0")
    for name in ("weight_decay", "sparsity_weight"):
        require(math.isfinite(config[name]) and config[name] >= 0, name, "a finite number >= 0")
    require(0 < config["sparsity_target"] < 1, "sparsity_target", "in (0, 1), a mean sigmoid activation")
    # A shift of the image's side or more can move every pixel out: blank training images.
    require(0 <= config["shift"] < min(IMAGE_SIZE), "shift", f"in 0..{min(IMAGE_SIZE) - 1} (images are {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]})")
    require(config["validation_size"] >= 0, "validation_size", ">= 0")
    require(0 <= config["seed"] < 2**63, "seed", "in 0..2**63-1")
    if config["cuda_graph"] and (config["device"] != "cuda" or config["optimizer"] == "lbfgs"):
        raise UsageError(
            f"--cuda-graph needs --device cuda and --optimizer sgd or adam, got --device {config['device']} "
            f"--optimizer {config['optimizer']}"
        )
    if config["sparsity_weight"] > 0 and config["activation"] != "sigmoid":
        raise UsageError(
            f"the sparsity penalty (--sparsity-weight) needs activations in (0, 1) (sigmoid), "
            f"got --activation {config['activation']}"
        )


def config_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """The run's configuration as a JSON-serialisable dict, per-optimizer defaults filled in and
    every value checked (UsageError)."""
    config = vars(args).copy()
    del config["debug"]  # how errors are reported, not part of the run
    config["hidden"] = [list(shape) for shape in args.hidden]
    if config["lr"] is None:
        config["lr"] = DEFAULT_LR[args.optimizer]
    if config["batch_size"] is None:
        config["batch_size"] = DEFAULT_BATCH_SIZE[args.optimizer]
    validate(config)
    return config


def check_validation_size(config: Dict[str, Any], training_images: int) -> None:
    """UsageError if --validation-size would hold out every training image."""
    if config["validation_size"] >= training_images:
        raise UsageError(
            f"--validation-size {config['validation_size']} leaves no training images: the training set "
            f"holds {training_images}"
        )


def build_model(config: Dict[str, Any]) -> nn.Module:
    """The MatNetClassifier that ``config`` describes, unit-norm reparametrised if it asks for it, its
    head single-threaded so that the tools' results do not depend on --threads."""
    model = MatNetClassifier(
        in_shape=IMAGE_SIZE,
        hidden_shapes=[tuple(shape) for shape in config["hidden"]],
        num_classes=NUM_CLASSES,
        activation=config["activation"],
        head=config["head"],
    )
    if config["unit_norm"]:
        constrain_unit_rows(model)
    single_threaded(model.head)  # MKL's products are thread-count dependent: common/reproducibility.py
    return model


def parse_config(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Command line -> configuration dict."""
    return config_from_args(build_parser().parse_args(argv))
