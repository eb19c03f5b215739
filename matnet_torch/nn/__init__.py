"""nn.Modules of matnet_torch."""
from .heads import BilinearSoftmaxHead, VectorizedSoftmaxHead
from .layer import MatNetLayer
from .models import MatNetClassifier, MatNetRegressor

__all__ = ["BilinearSoftmaxHead", "MatNetClassifier", "MatNetLayer", "MatNetRegressor", "VectorizedSoftmaxHead"]
