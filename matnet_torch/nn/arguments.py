"""Validation of the constructor arguments of matnet_torch.nn modules, shared so that every module
words its errors the same way: the class, the argument and the offending value."""
from typing import Sequence, Tuple

from ..functional import ACTIVATIONS


def matrix_shape(owner: str, name: str, shape: Sequence[int]) -> Tuple[int, int]:
    """``shape`` as (rows, columns) of positive ints, or a ValueError naming ``owner`` and ``name``."""
    if len(shape) != 2 or any(int(size) < 1 for size in shape):
        raise ValueError(f"{owner}: {name} must be two positive sizes (rows, columns), got {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def positive_count(owner: str, name: str, count: int) -> int:
    """``count`` as a positive int, or a ValueError naming ``owner`` and ``name``."""
    if int(count) < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {count}")
    return int(count)


def activation_name(owner: str, name: str, activation: str) -> str:
    """``activation`` if it is one of matnet_torch.ACTIVATIONS, else a ValueError."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"{owner}: unknown {name} '{activation}'; expected one of {', '.join(ACTIVATIONS)}")
    return activation
