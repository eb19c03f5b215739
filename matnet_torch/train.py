"""``python -m matnet_torch.train`` (console script ``matnet-train``): the MNIST app's training command,
``matnet_torch.apps.mnist.train``."""
from .apps.mnist.train import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
