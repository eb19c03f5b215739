"""``upscale IN OUT --model DIR``: a ×s image of any size, colour or grey, written to OUT.

The image goes through the network band by band (``upscaling.upscale_to_8bit``): memory for the input,
the 8-bit output and one band of rows. A progress bar over the output rows appears on a terminal
when the run takes more than two seconds. OUT is written through a temporary file in its folder, so
that a failed run leaves nothing there.
"""
import argparse
import time

from ...data.images import check_destination, load_image, save_pixels
from ..common.progress import progress_bar
from .upscaling import model_ycbcr, prepare_inference, upscale_to_8bit

DESCRIPTION = (
    "Upscale the image IN by the model's scale and write it to OUT (format from its extension): "
    "luminance by MatNet, chroma by bicubic interpolation; grey images stay grey. Any image size: "
    "the image is processed in bands of rows."
)

# Seconds before the progress bar appears (on a terminal only).
PROGRESS_DELAY = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="image file to upscale")
    parser.add_argument("output", metavar="OUT", help="image file to write (.png, .jpg, ...)")
    parser.add_argument("--model", required=True, help="model directory written by train")
    parser.add_argument("--stride", type=int, default=3,
                        help="step of the sliding window of patches (at most the patch size): each pixel is the "
                             "mean of (patch size / stride)² estimates; 1 is 9 times slower than 3 and within "
                             "0.01 dB of it (docs/superres_results.md)")
    parser.add_argument("--scale", type=int, default=None, help="checked against the model's (default: the model's)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's default)")


def run(args: argparse.Namespace) -> int:
    check_destination(args.output)  # fails before the work, not after it
    model, checkpoint = prepare_inference(args)
    scale = checkpoint["config"]["scale"]
    ycbcr = model_ycbcr(checkpoint["config"], load_image(args.input))  # the RGB input is freed once converted
    height, width = ycbcr.shape[-2:]
    started = time.perf_counter()
    with progress_bar(scale * height, "upscale", unit="row", delay=PROGRESS_DELAY) as bar:
        pixels = upscale_to_8bit(model, checkpoint["config"], ycbcr, args.stride, args.input, bar.update)
    seconds = time.perf_counter() - started
    save_pixels(args.output, pixels)
    print(f"{args.input} ({height}×{width}) -> {args.output} ({scale * height}×{scale * width}) in {seconds:.1f} s "
          f"({height * width / 1e6 / seconds:.2f} input megapixels/s)")
    return 0
