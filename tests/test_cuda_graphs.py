"""A whole training step of MatNetClassifier captured as a CUDA graph gives the eager step's result
(skipped without a GPU). The operators allocate only from PyTorch's caching allocator and never
synchronise, which capture requires; the capture is benchmarks/bench_training.py's CapturedStep."""
import copy
import sys

import pytest
import torch

from conftest import requires_cuda
from native_toolchain import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_training import CapturedStep, make_optimizer, synthetic_mnist, training_step  # noqa: E402

from matnet_torch.nn import MatNetClassifier  # noqa: E402

pytestmark = requires_cuda


@pytest.mark.parametrize("activation", ["sigmoid", "relu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_captured_training_steps_equal_eager_steps(activation, dtype):
    torch.manual_seed(0)
    model = MatNetClassifier(activation=activation, device="cuda", dtype=dtype)
    eager, captured = copy.deepcopy(model), copy.deepcopy(model)
    images, labels = synthetic_mnist(5 * 64, "cuda")
    images = images.to(dtype)
    batches = [(images[i:i + 64], labels[i:i + 64]) for i in range(0, len(images), 64)]

    # CapturedStep trains three warm-up steps on the first batch, then replays the graph per batch.
    eager_optimizer = make_optimizer(eager)
    for _ in range(3):
        training_step(eager, eager_optimizer, *batches[0])
    eager_losses = [training_step(eager, eager_optimizer, *batch).item() for batch in batches[1:]]
    step = CapturedStep(captured, make_optimizer(captured), *batches[0], warmup_steps=3)
    captured_losses = [step(*batch).item() for batch in batches[1:]]

    # The same kernels in the same order; the default tolerances of the dtype allow for cuBLAS
    # choosing another algorithm for the head under capture.
    assert captured_losses == pytest.approx(eager_losses, rel=1e-5)
    for eager_parameter, captured_parameter in zip(eager.parameters(), captured.parameters()):
        torch.testing.assert_close(captured_parameter, eager_parameter)


def test_compiled_step_with_cuda_graphs_trains():
    # torch.compile(mode="reduce-overhead") records CUDA graphs of the compiled forward and backward.
    torch.manual_seed(0)
    model = MatNetClassifier(device="cuda")
    optimizer = make_optimizer(model)
    compiled = torch.compile(model, mode="reduce-overhead", fullgraph=True)
    images, labels = synthetic_mnist(4 * 128, "cuda")
    losses = []
    for i in range(0, len(images), 128):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(compiled(images[i:i + 128]), labels[i:i + 128])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    reference_model = copy.deepcopy(model)
    torch.testing.assert_close(compiled(images[:128]), reference_model(images[:128]), rtol=1e-5, atol=1e-5)
    assert all(torch.isfinite(torch.tensor(losses)))
