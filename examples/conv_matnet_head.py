"""A MatNetLayer inside an ordinary PyTorch model: a small convolutional network whose classifier
head applies one MatNetLayer to every channel of its (N, C, p, q) feature maps, trained end to end
with the convolution on MNIST.

    python examples/conv_matnet_head.py --epochs 3

MatNetLayer accepts any leading dimensions, so (N, C, 14, 14) maps to (N, C, m, n) with one U, V, B
shared by all channels, exactly as nn.Linear treats the leading dimensions of its input.
"""
import argparse
import time

import torch
from torch import nn
import torch.nn.functional as F

from matnet_torch.data import load_mnist
from matnet_torch.nn import MatNetClassifier, MatNetLayer


class ConvNetWithMatNetHead(nn.Module):
    """(N, 1, 28, 28) → conv 3×3, C channels, ReLU, 2×2 max-pool → (N, C, 14, 14)
    → MatNetLayer 14×14 → m×n (ReLU) on each channel → (N, C, m, n) → flatten → Linear → 10 logits."""

    def __init__(self, channels: int = 8, head_shape=(6, 6), num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.matnet = MatNetLayer((14, 14), head_shape, activation="relu")
        self.classifier = nn.Linear(channels * head_shape[0] * head_shape[1], num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feature_maps = self.features(images)  # (N, C, 14, 14)
        return self.classifier(self.matnet(feature_maps).flatten(1))  # MatNetLayer over (N, C) leading dims


def train(model, images, labels, epochs, lr, batch_size=128):
    """SGD with Nesterov momentum 0.9 and a cosine learning rate over the epochs; returns seconds."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(len(images)).split(batch_size):
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        schedule.step()
    return time.perf_counter() - start


@torch.no_grad()
def accuracy(model, images, labels):
    return (model(images).argmax(1) == labels).float().mean().item()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="passes over the 60,000 training images (default: 3)")
    parser.add_argument("--lr", type=float, default=0.05, help="peak learning rate of SGD (default: 0.05)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads, as the training tool (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    train_images, train_labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    train_images = train_images.float().unsqueeze(1) / 255  # (N, 1, 28, 28)
    test_images = test_images.float().unsqueeze(1) / 255
    # The paper's net for comparison, trained the same way.
    models = {"conv + MatNetLayer head": ConvNetWithMatNetHead, "the paper's MatNet": MatNetClassifier}
    for name, make_model in models.items():
        torch.manual_seed(args.seed)
        model = make_model()
        seconds = train(model, train_images, train_labels, args.epochs, args.lr)
        parameters = sum(p.numel() for p in model.parameters())
        print(f"{name}: {parameters:,} parameters, test accuracy {accuracy(model, test_images, test_labels):.4f} "
              f"after {args.epochs} epochs ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
