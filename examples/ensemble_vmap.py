"""An ensemble of MatNetClassifiers trained at once with torch.func: the members' parameters
stacked (stack_module_state), one vmap over them computes every member's logits, one grad gives
every member's gradient. Each member starts from its own initialisation and sees its own
shuffle of the data; the ensemble predicts with the mean of the members' probabilities.

    python examples/ensemble_vmap.py [--members 4] [--steps 300] [--batch-size 64]
"""
import argparse
import copy

import torch
import torch.nn.functional as F
from torch import func

from matnet_torch.data import load_mnist
from matnet_torch.nn import MatNetClassifier


def make_ensemble(members, seed=0):
    """(base model, stacked parameters, stacked buffers) of `members` differently initialised models."""
    models = []
    for k in range(members):
        torch.manual_seed(seed + k)
        models.append(MatNetClassifier())
    params, buffers = func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")  # only its structure is used
    return base, params, buffers


def ensemble_logits(base, params, buffers, images):
    """(members, N, 10): every member's logits; images (members, N, 28, 28) or (N, 28, 28) shared."""
    member = lambda p, b, x: func.functional_call(base, (p, b), (x,))  # noqa: E731
    return func.vmap(member, in_dims=(0, 0, 0 if images.dim() == 4 else None))(params, buffers, images)


def train_step(base, params, buffers, images, labels, lr, velocity=None, momentum=0.9):
    """One SGD step (with momentum where `velocity`, a dict of buffers, is given) of every member on
    its own batch: images (members, N, 28, 28), labels (members, N). Returns the mean member loss."""
    def loss(params):
        logits = ensemble_logits(base, params, buffers, images)
        # The sum of the members' mean losses: each member's gradient is that of its own loss.
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum") / labels.shape[1]

    grads, value = func.grad_and_value(loss)(params)
    with torch.no_grad():
        for name in params:
            step = grads[name]
            if velocity is not None:
                step = velocity.setdefault(name, torch.zeros_like(step)).mul_(momentum).add_(step)
            params[name] -= lr * step
    return value.item() / labels.shape[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate, momentum 0.9")
    args = parser.parse_args(argv)
    train_images, train_labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    train_images, test_images = train_images.float() / 255, test_images.float() / 255
    base, params, buffers = make_ensemble(args.members)
    generator = torch.Generator().manual_seed(0)
    velocity = {}
    for step in range(args.steps):
        index = torch.randint(0, len(train_images), (args.members, args.batch_size), generator=generator)
        loss = train_step(base, params, buffers, train_images[index], train_labels[index], args.lr, velocity)
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:4d}: mean member loss on its batch {loss:.3f}")
    with torch.no_grad():
        probabilities = ensemble_logits(base, params, buffers, test_images).softmax(-1)
    members = (probabilities.argmax(-1) == test_labels).float().mean(1)
    ensemble = (probabilities.mean(0).argmax(-1) == test_labels).float().mean()
    print("test accuracy of each member: " + ", ".join(f"{100 * a:.2f} %" for a in members))
    print(f"test accuracy of the ensemble: {100 * ensemble:.2f} %")


if __name__ == "__main__":
    main()
