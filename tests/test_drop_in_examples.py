"""The torch.func examples (examples/per_sample_gradients.py, examples/ensemble_vmap.py) against the
same quantities computed one sample / one model at a time with ordinary autograd."""
import copy
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from matnet_torch.nn import MatNetClassifier

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


per_sample_gradients = load("per_sample_gradients")
ensemble_vmap = load("ensemble_vmap")


def test_per_sample_gradient_norms_match_one_backward_per_sample():
    torch.manual_seed(0)
    model = MatNetClassifier(dtype=torch.float64)
    images, labels = torch.rand(5, 28, 28, dtype=torch.float64), torch.tensor([3, 1, 4, 1, 5])
    norms = per_sample_gradients.gradient_norms(per_sample_gradients.per_sample_gradients(model, images, labels))
    for k in range(len(images)):
        grads = torch.autograd.grad(F.cross_entropy(model(images[k : k + 1]), labels[k : k + 1]), list(model.parameters()))
        torch.testing.assert_close(norms[k], torch.stack([g.norm() for g in grads]).norm(), rtol=1e-10, atol=0)


def test_private_step_clips_every_sample():
    torch.manual_seed(0)
    model = MatNetClassifier(dtype=torch.float64)
    before = copy.deepcopy(model)
    images, labels = torch.rand(4, 28, 28, dtype=torch.float64), torch.arange(4)
    generator = torch.Generator().manual_seed(0)
    # Without noise, the step is the mean of the clipped per-sample gradients: its norm is ≤ clip.
    per_sample_gradients.private_step(model, images, labels, clip=0.01, noise=0.0, lr=1.0, generator=generator)
    step = torch.cat([(b - a).flatten() for a, b in zip(model.parameters(), before.parameters())])
    assert 0 < step.norm() <= 0.01 * (1 + 1e-9)


def test_ensemble_step_equals_each_member_trained_alone():
    base, params, buffers = ensemble_vmap.make_ensemble(3)
    members = [MatNetClassifier() for _ in range(3)]
    for k, member in enumerate(members):
        member.load_state_dict({name: p[k] for name, p in params.items()})
    images, labels = torch.rand(3, 8, 28, 28), torch.randint(0, 10, (3, 8))
    ensemble_vmap.train_step(base, params, buffers, images, labels, lr=0.5)
    for k, member in enumerate(members):
        optimizer = torch.optim.SGD(member.parameters(), lr=0.5)
        F.cross_entropy(member(images[k]), labels[k]).backward()
        optimizer.step()
        for name, p in member.named_parameters():
            # float32 both ways, summed in different orders (torch.func's ATen backward, the fused one).
            torch.testing.assert_close(params[name][k], p.detach(), rtol=1e-5, atol=1e-6)
