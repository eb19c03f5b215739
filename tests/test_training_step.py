"""One training step, eager or replayed from a CUDA graph (apps/common/training_step.py).

The CUDA-graph cases need a GPU and skip without one (written, not yet run on a GPU)."""
import pytest
import torch
from torch.nn import functional as F

from conftest import requires_cuda
from matnet_torch.apps.common.training_step import GraphedStep, training_step
from matnet_torch.nn import MatNetClassifier

OPTIMIZERS = {
    "sgd": lambda parameters, capturable: torch.optim.SGD(parameters, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda parameters, capturable: torch.optim.Adam(parameters, lr=0.01, capturable=capturable),
    "lbfgs": lambda parameters, capturable: torch.optim.LBFGS(parameters, lr=1.0, max_iter=3),
}


def setup(optimizer_name, device, cuda_graph=False, seed=0):
    """(model, optimizer, step, batches) for a small MatNet classifier on random data; on CUDA the
    optimizer is capturable, graphed or not, so that both runs do the same arithmetic."""
    torch.manual_seed(seed)
    model = MatNetClassifier(in_shape=(8, 8), hidden_shapes=[(6, 6)], num_classes=4).to(device)
    optimizer = OPTIMIZERS[optimizer_name](model.parameters(), device == "cuda")

    def objective(x, y):
        logits = model(x)
        return F.cross_entropy(logits, y), logits

    batches = [(torch.rand(size, 8, 8, device=device), torch.randint(0, 4, (size,), device=device))
               for size in [32] * 6 + [20] + [32] * 5]  # a smaller last batch of an epoch in the middle
    return model, optimizer, training_step(objective, optimizer, cuda_graph), batches


@pytest.mark.parametrize("optimizer_name", list(OPTIMIZERS))
def test_eager_step_returns_the_first_evaluation_and_steps(optimizer_name):
    model, _, step, batches = setup(optimizer_name, "cpu")
    x, y = batches[0]
    before = [p.detach().clone() for p in model.parameters()]
    expected_logits = model(x).detach()
    loss, logits = step(x, y)
    assert torch.equal(logits, expected_logits) and torch.equal(loss, F.cross_entropy(expected_logits, y))
    assert not loss.requires_grad and not logits.requires_grad
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


def test_graphed_step_refuses_an_optimizer_that_cannot_be_captured():
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], capturable=False)
    with pytest.raises(ValueError, match="build Adam with capturable=True"):
        GraphedStep(lambda x, y: (x.sum(), x), optimizer)


@requires_cuda
@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_graphed_steps_train_like_eager_steps(optimizer_name):
    """Same data, same start: the replayed graphs give the eager run's losses and parameters, up to the
    float32 rounding of kernels cuBLAS may choose differently inside a capture (12 steps of a few
    hundred products each: relative 1e-4 leaves a wide margin over 2^-24 per operation). Halfway the
    learning rate halves, as a scheduler does between epochs: the graphs must be recaptured."""
    eager_model, eager_optimizer, eager, batches = setup(optimizer_name, "cuda", cuda_graph=False)
    graph_model, graph_optimizer, graphed, _ = setup(optimizer_name, "cuda", cuda_graph=True)
    for index, (x, y) in enumerate(batches):
        if index == len(batches) // 2:
            for optimizer in (eager_optimizer, graph_optimizer):
                optimizer.param_groups[0]["lr"] /= 2
        eager_loss, _ = eager(x, y)
        graph_loss, _ = graphed(x, y)
        torch.testing.assert_close(graph_loss, eager_loss, rtol=1e-4, atol=1e-6)
    assert isinstance(graphed, GraphedStep) and any("graph" in entry for entry in graphed.graphs.values())
    for graph_parameter, eager_parameter in zip(graph_model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(graph_parameter, eager_parameter, rtol=1e-4, atol=1e-6)
