"""nn.Modules of matnet_torch."""
from .autoencoder import AutoencoderLoss, MultimodalMatNetAutoencoder
from .heads import BilinearSoftmaxHead, VectorizedSoftmaxHead
from .layer import MatNetLayer
from .models import MatNetClassifier, MatNetRegressor
from .multi_layer import MultiMatNetLayer

__all__ = [
    "AutoencoderLoss",
    "BilinearSoftmaxHead",
    "MatNetClassifier",
    "MatNetLayer",
    "MatNetRegressor",
    "MultiMatNetLayer",
    "MultimodalMatNetAutoencoder",
    "VectorizedSoftmaxHead",
]
