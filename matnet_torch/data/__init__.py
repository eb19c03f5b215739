"""Data sets for matnet_torch: MNIST from its standard IDX files, and the IDX format itself."""
from .idx import read_idx, write_idx
from .mnist import MNISTDataError, default_mnist_dir, load_mnist, prepare_mnist

__all__ = ["MNISTDataError", "default_mnist_dir", "load_mnist", "prepare_mnist", "read_idx", "write_idx"]
