"""nn.Modules of matnet_torch."""
from .layer import MatNetLayer

__all__ = ["MatNetLayer"]
