"""MatNet models (paper section 2.1): a stack of bilinear layers
X⁽ˡ⁺¹⁾ = σ(U⁽ˡ⁾ X⁽ˡ⁾ V⁽ˡ⁾ᵀ + B⁽ˡ⁾)
ending in a classification head (Cases 2 and 3) or in a matrix output layer (Case 1)."""
from typing import List, Sequence, Tuple

import torch
from torch import nn

from .arguments import activation_name, matrix_shape, positive_count
from .heads import BilinearSoftmaxHead, VectorizedSoftmaxHead
from .layer import MatNetLayer

HEADS = {"vec": VectorizedSoftmaxHead, "bilinear": BilinearSoftmaxHead}


def _layer_stack(shapes: Sequence[Tuple[int, int]], activations: Sequence[str], factory) -> nn.ModuleList:
    """MatNetLayers mapping shapes[l] to shapes[l + 1] with activations[l]."""
    return nn.ModuleList(
        MatNetLayer(shape_in, shape_out, activation, **factory)
        for shape_in, shape_out, activation in zip(shapes, shapes[1:], activations)
    )


def _layer_outputs(owner: str, layers: nn.ModuleList, in_shape: Tuple[int, int], x: torch.Tensor) -> List[torch.Tensor]:
    """[X⁽¹⁾, X⁽²⁾, …]: the input, as (N, p, q), followed by every layer's output.

    x is (N, p, q), or an image batch (N, 1, p, q) whose channel dimension is dropped.
    """
    if x.dim() == 4 and x.size(1) == 1:
        x = x.squeeze(1)
    if x.dim() != 3 or tuple(x.shape[1:]) != in_shape:
        p, q = in_shape
        raise ValueError(f"{owner}: expected x of shape (N, {p}, {q}) or (N, 1, {p}, {q}), got {tuple(x.shape)}")
    outputs = [x]
    for layer in layers:
        outputs.append(layer(outputs[-1]))
    return outputs


def parameter_count(module: nn.Module) -> int:
    """Number of trained numbers in ``module`` (every parameter of these models is trained)."""
    return sum(parameter.numel() for parameter in module.parameters())


class _MatNetStack(nn.Module):
    """What the models share: ``forward`` and ``hidden`` are the two halves of the subclass's
    ``forward_with_hidden``, which computes both in one pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_hidden(x)[0]

    def hidden(self, x: torch.Tensor) -> List[torch.Tensor]:
        """Every hidden layer's output (N, m_l, n_l), for figures and the sparsity penalty."""
        return self.forward_with_hidden(x)[1]


class MatNetClassifier(_MatNetStack):
    """Hidden MatNetLayers, all with one activation, then a softmax head giving K logits.

    ``head="vec"`` is Case 3, the paper's MNIST net (``VectorizedSoftmaxHead``); ``head="bilinear"``
    is Case 2 (``BilinearSoftmaxHead``). With the defaults, 28×28 → 20×20 → 16×16 → 10 with sigmoid
    and the vec head: 1520 + 896 + 2570 = 4986 parameters. ``hidden_shapes`` may be empty (the head
    then reads the input directly).

    Input x: (N, p, q), or an image batch (N, 1, p, q) whose single channel is dropped.
    ``forward`` returns logits (N, K) for ``F.cross_entropy``; ``hidden`` every hidden layer's
    output (for figures and the sparsity penalty); ``forward_with_hidden`` both from one pass.
    """

    def __init__(
        self,
        in_shape: Sequence[int] = (28, 28),
        hidden_shapes: Sequence[Sequence[int]] = ((20, 20), (16, 16)),
        num_classes: int = 10,
        activation: str = "sigmoid",
        head: str = "vec",
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner = type(self).__name__
        if head not in HEADS:
            raise ValueError(f"{owner}: unknown head '{head}'; expected one of {', '.join(HEADS)}")
        self.in_shape = matrix_shape(owner, "in_shape", in_shape)
        self.hidden_shapes = tuple(matrix_shape(owner, "hidden_shapes entry", shape) for shape in hidden_shapes)
        self.num_classes = positive_count(owner, "num_classes", num_classes)
        self.activation = activation_name(owner, "activation", activation)
        self.head_kind = head
        factory = {"device": device, "dtype": dtype}
        shapes = (self.in_shape,) + self.hidden_shapes
        self.matnet_layers = _layer_stack(shapes, [activation] * len(self.hidden_shapes), factory)
        self.head = HEADS[head](shapes[-1], num_classes, **factory)

    @property
    def hidden_layers(self) -> nn.ModuleList:
        """The layers whose outputs ``hidden`` returns: all of ``matnet_layers``."""
        return self.matnet_layers

    def forward_with_hidden(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """(logits (N, K), [each hidden layer's output (N, m_l, n_l)])."""
        outputs = _layer_outputs(type(self).__name__, self.matnet_layers, self.in_shape, x)
        return self.head(outputs[-1]), outputs[1:]

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, hidden_shapes={list(self.hidden_shapes)}, "
            f"num_classes={self.num_classes}, activation={self.activation!r}, head={self.head_kind!r}, "
            f"parameters={parameter_count(self)}"
        )


class MatNetRegressor(_MatNetStack):
    """Case 1: hidden MatNetLayers, then an output MatNetLayer whose matrix (N, m, n) is the prediction.

    The hidden layers use ``activation``, the output layer ``output_activation`` ("identity" for
    unbounded targets, "sigmoid" for targets in (0, 1) such as image intensities). Train with
    ``matnet_torch.losses.matrix_regression_loss``. ``hidden_shapes`` may be empty (one layer).

    Input x: (N, p, q), or an image batch (N, 1, p, q) whose single channel is dropped.
    ``matnet_layers`` holds the hidden layers followed by the output layer; ``hidden`` returns the
    hidden layers' outputs only (the output layer is not hidden; the paper's sparsity penalty
    excludes it).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        hidden_shapes: Sequence[Sequence[int]],
        out_shape: Sequence[int],
        activation: str = "sigmoid",
        output_activation: str = "identity",
        device=None,
        dtype=None,
    ):
        super().__init__()
        owner = type(self).__name__
        self.in_shape = matrix_shape(owner, "in_shape", in_shape)
        self.hidden_shapes = tuple(matrix_shape(owner, "hidden_shapes entry", shape) for shape in hidden_shapes)
        self.out_shape = matrix_shape(owner, "out_shape", out_shape)
        self.activation = activation_name(owner, "activation", activation)
        self.output_activation = activation_name(owner, "output_activation", output_activation)
        shapes = (self.in_shape,) + self.hidden_shapes + (self.out_shape,)
        activations = [activation] * len(self.hidden_shapes) + [output_activation]
        self.matnet_layers = _layer_stack(shapes, activations, {"device": device, "dtype": dtype})

    @property
    def hidden_layers(self) -> nn.ModuleList:
        """The layers whose outputs ``hidden`` returns: ``matnet_layers`` without the output layer."""
        return self.matnet_layers[:-1]

    def forward_with_hidden(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """(prediction (N, m, n), [each hidden layer's output (N, m_l, n_l)])."""
        outputs = _layer_outputs(type(self).__name__, self.matnet_layers, self.in_shape, x)
        return outputs[-1], outputs[1:-1]

    def extra_repr(self) -> str:
        return (
            f"in_shape={self.in_shape}, hidden_shapes={list(self.hidden_shapes)}, out_shape={self.out_shape}, "
            f"activation={self.activation!r}, output_activation={self.output_activation!r}, "
            f"parameters={parameter_count(self)}"
        )
