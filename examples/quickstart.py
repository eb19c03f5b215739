"""Quickstart: the MatNet layer Y = σ(U X Vᵀ + B) as a function and as a module, and a small MatNet
trained on MNIST for a few seconds.

    python examples/quickstart.py
"""
import argparse
import time

import torch

import matnet_torch
from matnet_torch.data import load_mnist
from matnet_torch.nn import MatNetClassifier, MatNetLayer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=20000, help="training images used (default: 20000)")
    parser.add_argument("--epochs", type=int, default=3, help="passes over them (default: 3)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    # 1. The operator: a batch of 28×28 matrices to 20×20, one fused C++ call, differentiable.
    x = torch.rand(64, 28, 28)
    u, v, bias = torch.randn(20, 28) / 28**0.5, torch.randn(20, 28) / 28**0.5, torch.zeros(20, 20)
    y = matnet_torch.bilinear(x, u, v, bias, activation="sigmoid")
    print(f"bilinear: {tuple(x.shape)} -> {tuple(y.shape)}")

    # 2. The module: 1,520 parameters where a dense 784 -> 400 layer has 314,000.
    layer = MatNetLayer((28, 28), (20, 20), activation="sigmoid")
    dense = torch.nn.Linear(28 * 28, 20 * 20)
    print(f"{layer}: {sum(p.numel() for p in layer.parameters()):,} parameters "
          f"(dense equivalent: {sum(p.numel() for p in dense.parameters()):,})")

    # 3. The paper's classifier, briefly trained (python -m matnet_torch.train does it properly).
    images, labels = load_mnist("train")
    images, labels = images[: args.samples].float() / 255, labels[: args.samples]
    test_images, test_labels = load_mnist("test")
    model = MatNetClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        for batch in torch.randperm(len(images)).split(128):
            loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            accuracy = (model(test_images.float() / 255).argmax(1) == test_labels).float().mean().item()
        print(f"epoch {epoch + 1}: test accuracy {accuracy:.4f} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
