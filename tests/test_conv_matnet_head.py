"""A MatNetLayer as the head of an ordinary convolutional network (examples/conv_matnet_head.py),
applied per channel to (N, C, p, q) feature maps: gradients through the whole network equal those of
the same network written with the pure-PyTorch reference, and it trains end to end."""
import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from matnet_torch import reference

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "conv_matnet_head.py"
spec = importlib.util.spec_from_file_location("conv_matnet_head", EXAMPLE)
conv_matnet_head = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conv_matnet_head)


def reference_forward(model, images):
    """The model's forward with its MatNetLayer evaluated by the pure-PyTorch reference."""
    layer = model.matnet
    maps = reference.bilinear(model.features(images), layer.u, layer.v, layer.bias, layer.activation)
    return model.classifier(maps.flatten(1))


@pytest.mark.parametrize("channels,head_shape", [(8, (6, 6)), (3, (2, 5))])
def test_gradients_through_conv_and_matnet_head_match_reference(channels, head_shape):
    torch.manual_seed(0)
    model = conv_matnet_head.ConvNetWithMatNetHead(channels, head_shape).double()
    images, labels = torch.rand(5, 1, 28, 28, dtype=torch.float64), torch.randint(0, 10, (5,))
    logits = model(images)
    assert logits.shape == (5, 10)
    grads = torch.autograd.grad(F.cross_entropy(logits, labels), list(model.parameters()))
    expected = torch.autograd.grad(F.cross_entropy(reference_forward(model, images), labels), list(model.parameters()))
    for (name, _), got, want in zip(model.named_parameters(), grads, expected):
        assert want.abs().sum() > 0, f"{name} gets no gradient"
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=f"gradient of {name}")


def test_trains_end_to_end():
    # Eight images with fixed random labels, fitted by the whole network: only possible if the
    # gradient reaches the convolution and the head (the loss of chance is log 10 ≈ 2.3).
    torch.manual_seed(0)
    model = conv_matnet_head.ConvNetWithMatNetHead()
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    conv_before = model.features[0].weight.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(60):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert F.cross_entropy(model(images), labels).item() < 0.05
    assert not torch.equal(model.features[0].weight, conv_before)
