"""Command-line option helpers shared by the apps.

API:

    matrix_size("20x20") -> (20, 20)          an argparse type for matrix shapes
    option_flag("batch_size") -> "--batch-size"
    require(config, name, condition, requirement)
                                              UsageError "--NAME must be REQUIREMENT, got VALUE"
    differing_options(saved, requested, runtime_options)
                                              ["--name: saved -> requested", ...] for every option
                                              that differs and is not a runtime option
"""
import argparse
from typing import Any, Dict, Iterable, List, Tuple

from .cli import UsageError


def matrix_size(text: str) -> Tuple[int, int]:
    """'20x20' -> (20, 20); an argparse type."""
    try:
        rows, columns = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a matrix size ROWSxCOLUMNS such as 20x20, got {text!r}")
    if rows < 1 or columns < 1:
        raise argparse.ArgumentTypeError(f"matrix sizes must be positive, got {text!r}")
    return rows, columns


def option_flag(name: str) -> str:
    """The command-line spelling of a config key: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def require(config: Dict[str, Any], name: str, condition: bool, requirement: str) -> None:
    """UsageError naming the option ``name`` and its value unless ``condition`` holds."""
    if not condition:
        raise UsageError(f"{option_flag(name)} must be {requirement}, got {config[name]!r}")


def differing_options(saved: Dict[str, Any], requested: Dict[str, Any], runtime_options: Iterable[str]) -> List[str]:
    """'--name: saved -> requested' for every option outside ``runtime_options`` (those that change
    where and how fast a run goes, never what it computes) whose value differs between two configs."""
    runtime_options = set(runtime_options)
    return [
        f"{option_flag(name)}: {saved.get(name)!r} -> {value!r}"
        for name, value in requested.items()
        if name not in runtime_options and saved.get(name) != value
    ]
