"""Command-line plumbing shared by the apps: every expected failure is one line on stderr.

API:

    ToolError(message)          an expected failure (bad data file, damaged checkpoint, diverged run):
                                exit status 1
    UsageError(message)         a bad command line (nonsense option values, conflicting options):
                                exit status 2
    ArgumentParser(...)         argparse.ArgumentParser whose parse errors raise UsageError (one line
                                instead of the usage block) and which adds ``--debug``
    run_tool(prog, body, argv, expected=())
                                calls ``body(argv)`` and returns its exit status; a ToolError, a
                                CheckpointError, an OSError or any type in ``expected`` becomes
                                ``PROG: MESSAGE`` on stderr, status 2 for UsageError and 1 otherwise;
                                Ctrl-C becomes ``PROG: interrupted``, status 130. With ``--debug``
                                among the arguments the traceback is printed too. Anything else (a
                                bug) propagates with its traceback.
    output_directory(path, option="--out")
                                creates the directory ``path``; ToolError naming the option if it
                                cannot be (a file there, no permission)

An app's entry point is then

    def main(argv=None) -> int:
        return run_tool("matnet_torch.train", _main, argv, expected=(MNISTDataError,))

and its messages name the file or the option and what is wrong, e.g.
``matnet_torch.train: --weight-decay must be a finite number >= 0, got -1.0``.
"""
import argparse
import os
import sys
import traceback
from typing import Callable, List, Optional, Sequence, Tuple, Type

from .checkpoint import CheckpointError

DEBUG_OPTION = "--debug"


class ToolError(Exception):
    """An expected failure, reported as one line; exit status 1."""

    exit_status = 1


class UsageError(ToolError):
    """A command line that cannot be run as given; exit status 2."""

    exit_status = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors (raised as UsageError) and a ``--debug`` option."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.add_argument(DEBUG_OPTION, action="store_true",
                          help="on an error, print the Python traceback too, not only the one-line message")

    def error(self, message: str):
        raise UsageError(f"{message} (see --help)")


def run_tool(
    prog: str,
    body: Callable[[List[str]], int],
    argv: Optional[Sequence[str]] = None,
    expected: Tuple[Type[BaseException], ...] = (),
) -> int:
    """``body(argv)``'s exit status, expected failures turned into one line on stderr (module docstring)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_OPTION in arguments
    try:
        return body(arguments)
    except KeyboardInterrupt:
        _report(prog, "interrupted", debug)
        return 130
    except (ToolError, CheckpointError, OSError, *expected) as err:
        _report(prog, _one_line(err), debug)
        return getattr(err, "exit_status", 1)


def _one_line(err: BaseException) -> str:
    """The message of err on one line; OSError as 'PATH: reason'."""
    if isinstance(err, OSError) and err.strerror:
        message = f"{err.filename}: {err.strerror}" if err.filename else err.strerror
    else:
        message = str(err) or type(err).__name__
    return " ".join(message.split())


def _report(prog: str, message: str, debug: bool) -> None:
    if debug:
        traceback.print_exc()
    # One write of the whole line: print() writes the text and the newline separately, and the
    # processes of a torchrun job, which share stderr, then interleave their lines.
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()


def output_directory(path: str, option: str = "--out") -> str:
    """Creates the directory ``path`` (and its parents) if needed; returns it. ToolError naming
    ``option`` when ``path`` is a file or cannot be created."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise ToolError(f"{option} {path}: is a file, not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise ToolError(f"{option} {path}: cannot create the directory: {err.strerror or err}") from err
    return path
