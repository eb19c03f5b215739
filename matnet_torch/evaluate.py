"""``python -m matnet_torch.evaluate CHECKPOINT`` (console script ``matnet-evaluate``): the MNIST app's
evaluation command, ``matnet_torch.apps.mnist.evaluate``."""
from .apps.mnist.evaluate import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
