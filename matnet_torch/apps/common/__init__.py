"""What the apps share: checkpoints, command-line error handling, progress bars and figures.

The API is in each module's docstring; the names most apps need are re-exported here.
"""
from .checkpoint import CheckpointError, load_checkpoint, payload_layout, save_checkpoint
from .cli import ArgumentParser, ToolError, UsageError, output_directory, run_tool
from .progress import progress_bar

__all__ = [
    "ArgumentParser", "CheckpointError", "ToolError", "UsageError", "load_checkpoint", "output_directory",
    "payload_layout", "progress_bar", "run_tool", "save_checkpoint",
]
