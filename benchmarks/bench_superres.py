"""Upscaling whole photographs: time, megapixels per second and peak resident memory of
``python -m matnet_torch.superres upscale`` against bicubic interpolation (and the CNN control when
given), at several image sizes, each method and size in a fresh process.

Each run reads a colour PNG of the size (made once per size from scikit-image's astronaut, mirrored
to fill it), upscales it ×s and writes a PNG, as a user's command would; the child process reports
its own wall time, CPU time and peak resident memory (ru_maxrss: the whole process, Python, torch and
the images included). Bicubic is the same read, YCbCr conversion, torch's bicubic upscaling of the
whole image at once, conversion back and write. Megapixels per second are of the input image.

Target (issue 20): a 12-megapixel colour photo upscaled with at most 1.5 GB peak resident memory.

    python benchmarks/bench_superres.py                         # an untrained default-size model
    python benchmarks/bench_superres.py --model runs/superres --cnn runs/superres_cnn --megapixels 1 4 12
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

import numpy
import torch
from PIL import Image

CHILD = r"""
import json, resource, sys, time
import torch
method, source, target, model, stride, threads = sys.argv[1:7]
if threads:
    torch.set_num_threads(int(threads))
started, cpu_started = time.perf_counter(), time.process_time()
if method == "bicubic":
    from matnet_torch.data.images import load_image, save_image
    from matnet_torch.imaging import rgb_to_ycbcr, upscale, ycbcr_to_rgb
    image = load_image(source)
    save_image(target, ycbcr_to_rgb(upscale(rgb_to_ycbcr(image), 2)))
else:
    from matnet_torch.apps.superres.cli import main
    status = main(["upscale", source, target, "--model", model] + (["--stride", stride] if stride else [])
                  + (["--threads", threads] if threads else []))
    if status != 0:
        raise SystemExit(status)
print(json.dumps({"seconds": time.perf_counter() - started, "cpu_seconds": time.process_time() - cpu_started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "threads": torch.get_num_threads()}))
"""


def photo(megapixels: float) -> numpy.ndarray:
    """An RGB uint8 image of about ``megapixels`` at 4:3, the astronaut mirrored to fill it."""
    from skimage import data

    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    height = int(round(width * 3 / 4))
    tile = data.astronaut()
    tile = numpy.concatenate([tile, tile[::-1]], axis=0)
    tile = numpy.concatenate([tile, tile[:, ::-1]], axis=1)
    reps = (-(-height // tile.shape[0]), -(-width // tile.shape[1]), 1)
    return numpy.ascontiguousarray(numpy.tile(tile, reps)[:height, :width])


def untrained_model(folder: str) -> str:
    """A model directory holding the default configuration with its initial weights (for timing)."""
    from matnet_torch.apps.superres.cli import build_parser
    from matnet_torch.apps.superres.config import CHECKPOINT_KIND, CHECKPOINT_NAME, build_model, config_from_args
    from matnet_torch.apps.common.checkpoint import save_checkpoint

    os.makedirs(folder)
    config = config_from_args(build_parser().parse_args(["train", "--out", folder]))
    torch.manual_seed(0)
    save_checkpoint(os.path.join(folder, CHECKPOINT_NAME),
                    {"config": config, "model": build_model(config).state_dict(), "epoch": 0}, CHECKPOINT_KIND)
    return folder


def run_child(method: str, source: str, target: str, model: str, stride: str, threads: str) -> dict:
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    completed = subprocess.run([sys.executable, "-c", CHILD, method, source, target, model or "", stride, threads],
                               capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        raise SystemExit(f"bench_superres: {method} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="MatNet model directory (default: an untrained default-size model)")
    parser.add_argument("--cnn", default=None, help="CNN control model directory (train --model cnn); left out if not given")
    parser.add_argument("--megapixels", type=float, nargs="+", default=[1.0, 4.0, 12.0], help="input sizes")
    parser.add_argument("--stride", type=int, default=None, help="upscale's --stride (default: upscale's default)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of every method (default: torch's default)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        model = args.model or untrained_model(os.path.join(folder, "untrained"))
        methods = [("bicubic", None), ("matnet", model)] + ([("cnn", args.cnn)] if args.cnn else [])
        print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores visible; torch {torch.__version__}; "
              f"model: {args.model or 'untrained default configuration'}; stride {args.stride or 'default'}; "
              f"threads {args.threads or 'default'}")
        print(f"{'input':>16} {'method':>8} | {'wall s':>8} {'CPU s':>8} {'input MP/s':>10} {'peak RSS MiB':>12}")
        for megapixels in args.megapixels:
            pixels = photo(megapixels)
            source = os.path.join(folder, "input.png")
            Image.fromarray(pixels).save(source)
            size = f"{pixels.shape[1]}x{pixels.shape[0]}"
            for method, directory in methods:
                result = run_child(method, source, os.path.join(folder, "output.png"), directory,
                                   "" if args.stride is None else str(args.stride),
                                   "" if args.threads is None else str(args.threads))
                rate = pixels.shape[0] * pixels.shape[1] / 1e6 / result["seconds"]
                print(f"{size:>16} {method:>8} | {result['seconds']:8.1f} {result['cpu_seconds']:8.1f} {rate:10.3f} "
                      f"{result['peak_rss_mib']:12.0f}", flush=True)


if __name__ == "__main__":
    main()
