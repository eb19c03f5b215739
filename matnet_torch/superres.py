"""``python -m matnet_torch.superres`` (console script ``matnet-superres``): the super-resolution app's
commands train, eval and upscale, ``matnet_torch.apps.superres.cli``."""
from .apps.superres.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
