"""``upscale IN OUT --model DIR``: a ×s image of any size, colour or grey, written to OUT."""
import argparse


from ...data.images import load_image, save_image
from .upscaling import prepare_inference, upscale_image

DESCRIPTION = (
    "Upscale the image IN by the model's scale and write it to OUT (format from its extension): "
    "luminance by MatNet, chroma by bicubic interpolation; grey images stay grey."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", metavar="IN", help="image file to upscale")
    parser.add_argument("output", metavar="OUT", help="image file to write (.png, .jpg, ...)")
    parser.add_argument("--model", required=True, help="model directory written by train")
    parser.add_argument("--stride", type=int, default=1, help="step of the sliding window of patches")
    parser.add_argument("--scale", type=int, default=None, help="checked against the model's (default: the model's)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")


def run(args: argparse.Namespace) -> int:
    model, checkpoint = prepare_inference(args)
    image = load_image(args.input)
    upscaled = upscale_image(model, checkpoint["config"], image, args.stride, args.input)
    save_image(args.output, upscaled.matnet)
    print(f"{args.input} ({image.shape[-2]}×{image.shape[-1]}) -> {args.output} "
          f"({upscaled.matnet.shape[-2]}×{upscaled.matnet.shape[-1]})")
    return 0
