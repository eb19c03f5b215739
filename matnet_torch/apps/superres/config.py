"""The configuration of a super-resolution training run: its options and the model it describes.

``add_training_options`` defines every option of ``train``; ``config_from_args`` turns them into the
plain dict stored in the checkpoint, refusing nonsense values with a UsageError; ``build_model``
rebuilds the autoencoder from such a dict, so a checkpoint is all ``eval`` and ``upscale`` need.
"""
import argparse
import math
from typing import Any, Dict

from torch import nn

from ...imaging.protocol import PROTOCOLS, Protocol, protocol
from ...imaging.superresolution import IMAGE_INPUTS, MODALITIES, TARGETS, Encoding
from ...nn import MultimodalMatNetAutoencoder
from ..common.optimization import OPTIMIZERS, SCHEDULES
from ..common.options import matrix_size, require
from .cnn_control import MARGIN, SRCNN

CHECKPOINT_KIND = "superres"
CHECKPOINT_NAME = "checkpoint.pt"
ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")
ARCHITECTURES = ("matnet", "srcnn")

# Per-optimizer defaults for --lr and --batch-size (experiments: docs/superres_results.md). LBFGS is a
# large-batch method whose line search picks the step, so its lr is 1.
DEFAULT_LR = {"sgd": 0.2, "adam": 0.01, "lbfgs": 1.0}
DEFAULT_BATCH_SIZE = {"sgd": 100, "adam": 100, "lbfgs": 10000}
DEFAULT_CONTRAST_NORM = 0.02
DEFAULT_DETAIL_GAIN = {True: 0.5, False: 4.0}  # with and without contrast normalisation

# Options that may differ between a run and its --resume: where and how fast it runs, not what.
RUNTIME_OPTIONS = ("out", "resume", "threads", "images")


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """Every option of ``train``; the defaults are the paper's protocol (section 4.2) where it gives one."""
    protocol = parser.add_argument_group("protocol (paper section 4.2)")
    protocol.add_argument("--architecture", choices=ARCHITECTURES, default="matnet",
                          help="matnet = the multimodal MatNet autoencoder (the paper); srcnn = the CNN control, "
                               "SRCNN 9-1-5 on the bicubic image (matnet_torch.apps.superres.cnn_control), trained "
                               "on the same patches and targets; the MatNet options below do not apply to it")
    protocol.add_argument("--scale", type=int, default=2, help="upscaling factor s")
    protocol.add_argument("--protocol", choices=tuple(PROTOCOLS), default="literature",
                          help="how the low-resolution training images are made and which luminance the network "
                               "works on (matnet_torch.imaging.protocol): literature = MATLAB imresize bicubic and "
                               "BT.601 studio-swing Y, as eval scores by default; pytorch = torch's bicubic and "
                               "full-range Y")
    protocol.add_argument("--patch-size", type=int, default=15, help="side of the square patches (every modality)")
    protocol.add_argument("--hidden", type=matrix_size, default=(80, 80), metavar="RxC",
                          help="size of the hidden matrix H (the paper: 10x10)")
    protocol.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid",
                          help="σ of the encoder (and of the decoders unless --decoder-activation)")
    protocol.add_argument("--decoder-activation", choices=ACTIVATIONS, default=None,
                          help="σ of the decoders (default: --activation)")
    protocol.add_argument("--weight-decay", type=float, default=0.001, metavar="LAMBDA",
                          help="λ of λ Σ_j (‖U_j‖² + ‖V_j‖² + ‖R_j‖² + ‖S_j‖²)")
    protocol.add_argument("--sparsity-target", type=float, default=0.05, metavar="RHO",
                          help="ρ, the target mean activation of H")
    protocol.add_argument("--sparsity-weight", type=float, default=1.0, metavar="BETA",
                          help="β of the sparsity penalty β KL(ρ ‖ ρ̄_H) (needs --activation sigmoid; 0 turns it off)")
    protocol.add_argument("--derivative-weight", type=float, default=0.0, metavar="W",
                          help="weight of the reconstruction terms of the derivative modalities X²…X⁵ in the "
                               "objective, X¹'s being 1 (the paper: 1; inference uses X̂¹ alone, and 0 leaves "
                               "their decoders out of training)")
    protocol.add_argument("--patches", type=int, default=40000,
                          help="training patches, an equal share from each training image at uniformly random "
                               "positions (the paper drew 10000)")
    protocol.add_argument("--intensity-scale", type=float, default=255.0,
                          help="the unit of the reconstruction error in the objective: 1/SCALE of the intensity "
                               "range, so 255 = 8-bit gray levels; equivalently λ and β act as λ/SCALE² and "
                               "β/SCALE² on errors of intensities in [0, 1], under which (SCALE 1) the paper's λ "
                               "and β leave only the trivial solution, bicubic (docs/superres_results.md)")

    image = parser.add_argument_group("the image modality X¹ (matnet_torch.imaging.superresolution.Encoding)")
    image.add_argument("--image-input", choices=IMAGE_INPUTS, default="bicubic",
                       help="what X¹ holds at the encoder during training: truth = the high-resolution patch "
                            "(the paper's plain autoencoder), bicubic = the bicubic-upscaled patch, as at "
                            "inference")
    image.add_argument("--target", choices=TARGETS, default="detail",
                       help="what the decoder's X̂¹ reconstructs: image = the high-resolution patch (the paper), "
                            "detail = ½ + gain · (truth − bicubic), added to bicubic at inference")
    image.add_argument("--contrast-norm", type=float, default=None, metavar="EPS",
                       help="> 0 (MatNet with --target detail): normalise each patch's contrast: the encoder sees "
                            "the patches minus X¹'s mean, divided by c = √(variance of the bicubic patch + EPS²), "
                            "and the detail it predicts is multiplied by c (matnet_torch.imaging.superresolution."
                            f"Encoding); EPS is in intensities in [0, 1]; 0 = off (the paper); default "
                            f"{DEFAULT_CONTRAST_NORM} for MatNet's detail target, else 0")
    image.add_argument("--detail-gain", type=float, default=None,
                       help="gain of the detail in the target (with --target detail): puts the detail into the "
                            "sigmoid decoder's range (0, 1); default 0.5 with --contrast-norm (detail over c), "
                            "4 without (detail of a few percent of the range)")

    optimisation = parser.add_argument_group("optimisation")
    optimisation.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                              help="sgd is SGD with Nesterov momentum 0.9; lbfgs uses a strong-Wolfe line search")
    optimisation.add_argument("--lr", type=float, default=None, help=f"peak learning rate; default per optimizer: {DEFAULT_LR}")
    optimisation.add_argument("--schedule", choices=SCHEDULES, default="cosine",
                              help="learning-rate schedule over the epochs: cosine annealing to 0, step (×0.1 at "
                                   "50%% and 75%% of the epochs) or constant")
    optimisation.add_argument("--batch-size", type=int, default=None,
                              help=f"patches per step; default per optimizer: {DEFAULT_BATCH_SIZE}")
    optimisation.add_argument("--epochs", type=int, default=40, help="passes over the training patches")

    run = parser.add_argument_group("run")
    run.add_argument("--images", default=None,
                     help="folder of high-resolution training images (every image file in it); default: the "
                          "training photographs shipped with scikit-image (matnet_torch.data.skimage_photos)")
    run.add_argument("--seed", type=int, default=0, help="seeds the patch positions, initialisation and shuffling")
    run.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")
    run.add_argument("--out", default="runs/superres", help="model directory: checkpoint.pt, metrics.json, figures")
    run.add_argument("--resume", action="store_true",
                     help="continue the run saved in --out from its last completed epoch (same options; only "
                          "--threads and --images may change)")


def validate(config: Dict[str, Any]) -> None:
    """UsageError naming the option for every value that cannot give a meaningful run."""
    for name in ("scale", "patches", "epochs", "batch_size"):
        require(config, name, config[name] >= 1, "a positive integer")
    require(config, "threads", config["threads"] is None or config["threads"] >= 1, "a positive integer")
    require(config, "scale", config["scale"] >= 2, "an integer >= 2")
    require(config, "patch_size", config["patch_size"] >= 3, "an integer >= 3")
    if config["architecture"] == "srcnn":
        require(config, "patch_size", config["patch_size"] > 2 * MARGIN, f"an integer > {2 * MARGIN} with --architecture srcnn")
        require(config, "target", config["target"] == "detail", "detail with --architecture srcnn")
        require(config, "image_input", config["image_input"] == "bicubic", "bicubic with --architecture srcnn")
        require(config, "contrast_norm", config["contrast_norm"] == 0, "0 with --architecture srcnn")
    for name in ("intensity_scale", "detail_gain"):
        require(config, name, math.isfinite(config[name]) and config[name] > 0, "a finite number > 0")
    require(config, "lr", math.isfinite(config["lr"]) and config["lr"] > 0, "a finite number > 0")
    for name in ("weight_decay", "sparsity_weight", "derivative_weight", "contrast_norm"):
        require(config, name, math.isfinite(config[name]) and config[name] >= 0, "a finite number >= 0")
    require(config, "sparsity_target", 0 < config["sparsity_target"] < 1, "in (0, 1), a mean sigmoid activation")
    require(config, "seed", 0 <= config["seed"] < 2**63, "in 0..2**63-1")
    require(config, "contrast_norm", config["contrast_norm"] == 0 or config["target"] == "detail",
            "0 unless --target detail (the normalised patch has lost the mean an image target needs)")
    require(config, "sparsity_weight", config["sparsity_weight"] == 0 or config["activation"] == "sigmoid",
            "0 unless --activation is sigmoid (the KL penalty needs activations in (0, 1))")


def config_from_args(args: argparse.Namespace) -> Dict[str, Any]:
    """The run's configuration as a JSON-serialisable dict, defaults filled in, every value checked."""
    config = {name: value for name, value in vars(args).items() if name not in ("debug", "command")}
    config["hidden"] = list(args.hidden)
    if config["lr"] is None:
        config["lr"] = DEFAULT_LR[args.optimizer]
    if config["batch_size"] is None:
        config["batch_size"] = DEFAULT_BATCH_SIZE[args.optimizer]
    if config["contrast_norm"] is None:
        normalisable = args.architecture == "matnet" and args.target == "detail"
        config["contrast_norm"] = DEFAULT_CONTRAST_NORM if normalisable else 0.0
    if config["detail_gain"] is None:
        config["detail_gain"] = DEFAULT_DETAIL_GAIN[config["contrast_norm"] > 0]
    validate(config)
    return config


def build_model(config: Dict[str, Any]) -> nn.Module:
    """The network of ``config``: the autoencoder, five patch-size square modalities into one hidden
    matrix, or the SRCNN control (models saved before --architecture existed are autoencoders)."""
    if config.get("architecture", "matnet") == "srcnn":
        return SRCNN()
    size = config["patch_size"]
    return MultimodalMatNetAutoencoder([(size, size)] * MODALITIES, tuple(config["hidden"]), config["activation"],
                                       config.get("decoder_activation"))


def encoding(config: Dict[str, Any]) -> Encoding:
    """How the image modality X¹ is trained and decoded under ``config``."""
    return Encoding(config["image_input"], config["target"], config["detail_gain"], config.get("contrast_norm", 0.0))


def training_protocol(config: Dict[str, Any]) -> Protocol:
    """The protocol the model was trained under: its bicubic kernel and luminance (models saved before
    the option existed were trained under "pytorch")."""
    return protocol(config.get("protocol", "pytorch"))


def objective_weights(config: Dict[str, Any]) -> Dict[str, float]:
    """The keyword arguments of ``MultimodalMatNetAutoencoder.loss`` for intensities in [0, 1]:

    (1/2N) Σ ‖S (X̂ − X)‖² + λ‖W‖² + β KL  =  S² [(1/2N) Σ ‖X̂ − X‖² + (λ/S²)‖W‖² + (β/S²) KL]

    with S = --intensity-scale: the same minimiser, reported in the units of [0, 1] intensities.
    """
    units = config["intensity_scale"] ** 2
    derivatives = config.get("derivative_weight", 1.0)  # models saved before the option: the paper's 1
    return {
        "reconstruction_weights": [1.0] + [derivatives] * (MODALITIES - 1),
        "weight_decay": config["weight_decay"] / units,
        "sparsity_target": config["sparsity_target"],
        "sparsity_weight": config["sparsity_weight"] / units,
    }
