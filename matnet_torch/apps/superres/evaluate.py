"""``eval``: per test image, the luminance PSNR of MatNet and of bicubic upscaling against the truth,
under an evaluation protocol (``imaging.protocol``; the literature's by default).

Each test image is cropped to sides divisible by s and converted to the protocol's YCbCr (its
luminance rounded to 8 bits if the protocol says so), downscaled by the protocol's bicubic to the
low-resolution input, and upscaled by both methods; both PSNRs come from ``imaging.psnr`` on the
same border crop, on estimates rounded like the truth. Writes eval.json and one comparison figure per
image, comparison_<image>.png, to --out.
"""
import argparse
import json
import os
from typing import Any, Dict, List


from ...data.images import load_image
from ...imaging import crop_to_multiple, downscale, psnr
from ...imaging.protocol import PROTOCOLS, eight_bit, protocol, to_rgb, to_ycbcr
from ..common.cli import UsageError, output_directory
from .data import check_size, image_names, image_paths
from .figures import plot_comparison
from .upscaling import minimum_side, network_name, prepare_inference, upscale_image

DESCRIPTION = (
    "Evaluate a trained model: for every test image print the luminance PSNR of MatNet and of bicubic "
    "upscaling (same code, same border crop), their difference and the averages; write eval.json and "
    "comparison figures."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model directory written by train")
    parser.add_argument("--images", default=None,
                        help="folder of high-resolution test images; default: the test photographs shipped with "
                             "scikit-image (matnet_torch.data.skimage_photos)")
    parser.add_argument("--protocol", choices=tuple(PROTOCOLS), default="literature",
                        help="literature = MATLAB imresize bicubic (a = -0.5, antialiased) for the degradation and "
                             "the baseline, PSNR on 8-bit BT.601 Y in [16, 235]; pytorch = torch's antialiased "
                             "bicubic (a = -0.75), PSNR on unrounded full-range Y (matnet_torch.imaging.protocol)")
    parser.add_argument("--stride", type=int, default=3,
                        help="step of the sliding window of patches (upscale's default; 1 is within 0.01 dB of it)")
    parser.add_argument("--border", type=int, default=None,
                        help="pixels cropped on every side before the PSNR (default: the scale)")
    parser.add_argument("--scale", type=int, default=None, help="checked against the model's (default: the model's)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")
    parser.add_argument("--out", default=None, help="directory for eval.json and the figures (default: --model)")


def _table(rows: List[Dict[str, Any]], averages: Dict[str, float], network: str) -> str:
    width = max(len("average"), *(len(row["image"]) for row in rows))
    lines = [f"{'image':<{width}}  {network + ' dB':>9}  {'bicubic dB':>10}  {'difference':>10}"]
    for row in rows + [dict(averages, image="average")]:
        lines.append(f"{row['image']:<{width}}  {row['matnet_psnr']:9.2f}  {row['bicubic_psnr']:10.2f}  {row['difference']:+10.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    model, checkpoint = prepare_inference(args)
    config = checkpoint["config"]
    scale, scoring, network = config["scale"], protocol(args.protocol), network_name(config)
    rounded = eight_bit if scoring.eight_bit else (lambda image: image)
    border = scale if args.border is None else args.border
    if border < 0:
        raise UsageError(f"--border must be >= 0, got {border}")
    out = output_directory(args.model if args.out is None else args.out)
    paths = image_paths(args.images, "test")
    rows = []
    for path, name in zip(paths, image_names(paths)):
        truth = to_ycbcr(crop_to_multiple(load_image(path), scale), scoring.studio_swing)
        truth[0] = rounded(truth[0])
        check_size(path, truth, scale * minimum_side(config), f"evaluating ×{scale} with {config['patch_size']}×{config['patch_size']} patches")
        if 2 * border >= min(truth.shape[-2:]):
            raise UsageError(f"--border {border} leaves no pixels of {path} ({truth.shape[-2]}×{truth.shape[-1]})")
        low = downscale(truth, scale, scoring.kernel)
        upscaled = upscale_image(model, config, low, args.stride, scoring, path)
        matnet_psnr = psnr(rounded(upscaled.matnet_luminance), truth[0], border)
        bicubic_psnr = psnr(rounded(upscaled.bicubic_luminance), truth[0], border)
        rows.append({"image": name, "matnet_psnr": matnet_psnr, "bicubic_psnr": bicubic_psnr, "difference": matnet_psnr - bicubic_psnr})
        plot_comparison(os.path.join(out, f"comparison_{os.path.splitext(name)[0]}.png"), name, network,
                        to_rgb(low, scoring.studio_swing), to_rgb(truth, scoring.studio_swing),
                        upscaled.matnet, upscaled.bicubic, matnet_psnr, bicubic_psnr, scale)
    averages = {key: sum(row[key] for row in rows) / len(rows) for key in ("matnet_psnr", "bicubic_psnr", "difference")}
    print(f"model: {args.model} (epoch {checkpoint['epoch']} of {config['epochs']}); ×{scale}, stride {args.stride}, "
          f"border {border}; luminance PSNR, {scoring.name} protocol")
    print(_table(rows, averages, network))
    print(f"{network} beats bicubic on {sum(row['difference'] > 0 for row in rows)} of {len(rows)} images")
    with open(os.path.join(out, "eval.json"), "w") as file:
        json.dump({"model": args.model, "protocol": scoring.name, "scale": scale, "stride": args.stride, "border": border, "images": rows,
                   "average": averages, "minimum_side": minimum_side(config)}, file, indent=2)
    return 0
