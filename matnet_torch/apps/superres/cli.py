"""``python -m matnet_torch.superres`` (console script ``matnet-superres``): ``train``, ``eval`` and
``upscale``, each with --help. Every expected failure is one line on stderr (``common.cli``)."""
import argparse
from typing import List, Optional, Sequence

from ...data.images import ImageDataError
from ..common.cli import ArgumentParser, run_tool
from . import evaluate, train, upscale

PROG = "matnet_torch.superres"
COMMANDS = {"train": train, "eval": evaluate, "upscale": upscale}


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m matnet_torch.superres",
        description="Image super-resolution with a multimodal MatNet autoencoder (Gao, Guo and Wang, section 4.2).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        command = commands.add_parser(name, help=module.DESCRIPTION.split(":")[0].split(". ")[0],
                                      description=module.DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        module.add_arguments(command)
    return parser


def _main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command].run(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command's entry point: exit status 0, or 1/2 after a one-line error (common.cli)."""
    return run_tool(PROG, _main, argv, expected=(ImageDataError,))
