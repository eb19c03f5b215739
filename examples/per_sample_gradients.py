"""Per-sample gradient norms of MatNetClassifier with torch.func, as DP-SGD needs them: one
gradient per image (vmap over grad), clipped to a norm bound, averaged, noised, applied. The fused
operators run under vmap(grad) as they do in plain training (one call per layer for the batch).

    python examples/per_sample_gradients.py [--batches 40] [--batch-size 128] [--clip 1.0] [--noise 1.0] [--lr 4]
"""
import argparse

import torch
import torch.nn.functional as F
from torch import func

from matnet_torch.data import load_mnist
from matnet_torch.nn import MatNetClassifier


def per_sample_gradients(model, images, labels):
    """{name: (N, *parameter shape)}: the gradient of each image's cross-entropy loss."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss(params, image, label):
        logits = func.functional_call(model, params, (image.unsqueeze(0),))
        return F.cross_entropy(logits, label.unsqueeze(0))

    return func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, images, labels)


def gradient_norms(grads):
    """(N,): each sample's gradient norm over all parameters."""
    return torch.stack([g.flatten(1).norm(dim=1) for g in grads.values()]).norm(dim=0)


def private_step(model, images, labels, clip, noise, lr, generator):
    """One DP-SGD step: per-sample gradients clipped to norm `clip`, summed, Gaussian noise of
    standard deviation noise·clip added, divided by the batch size. Returns the norms before clipping."""
    grads = per_sample_gradients(model, images, labels)
    norms = gradient_norms(grads)
    scale = (clip / (norms + 1e-12)).clamp(max=1.0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            total = (grads[name] * scale.view(-1, *[1] * p.dim())).sum(0)
            total += noise * clip * torch.randn(p.shape, generator=generator)
            p -= lr * total / len(images)
    return norms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--clip", type=float, default=1.0, help="per-sample gradient norm bound")
    parser.add_argument("--noise", type=float, default=1.0, help="noise multiplier")
    parser.add_argument("--lr", type=float, default=4.0)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    images, labels = load_mnist("train")
    images = images.float() / 255
    model = MatNetClassifier()
    for batch in range(args.batches):
        index = torch.randint(0, len(images), (args.batch_size,), generator=generator)
        norms = private_step(model, images[index], labels[index], args.clip, args.noise, args.lr, generator)
        if batch % 5 == 0 or batch == args.batches - 1:
            with torch.no_grad():
                loss = F.cross_entropy(model(images[:2000]), labels[:2000]).item()
            print(f"batch {batch:3d}: per-sample gradient norms median {norms.median():.3f}, "
                  f"max {norms.max():.3f}; loss on 2000 training images {loss:.3f}")


if __name__ == "__main__":
    main()
