"""The models under PyTorch's compilers: torch.compile with inductor and fullgraph=True (forward and
backward equal eager; a whole training step compiles to one graph), and torch.export of a trained
classifier (the exported program runs, matches eager, survives torch.export.save and torch.export.load
in a fresh process, takes any batch size)."""
import copy
import subprocess
import sys

import torch
import torch.nn.functional as F

from matnet_torch.nn import MatNetClassifier, MultimodalMatNetAutoencoder


def batch_of(size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(size, 28, 28, generator=generator), torch.randint(0, 10, (size,), generator=generator)


def test_inductor_fullgraph_forward_and_backward_match_eager():
    torch.compiler.reset()
    torch.manual_seed(0)
    model = MatNetClassifier()
    compiled = torch.compile(model, fullgraph=True)  # inductor, the default backend
    parameters = list(model.parameters())
    for size in (16, 5):  # a second batch size: dynamic shape or a recompile, either must match
        x, labels = batch_of(size)
        torch.testing.assert_close(compiled(x), model(x))
        compiled_grads = torch.autograd.grad(F.cross_entropy(compiled(x), labels), parameters)
        eager_grads = torch.autograd.grad(F.cross_entropy(model(x), labels), parameters)
        for compiled_grad, eager_grad in zip(compiled_grads, eager_grads):
            torch.testing.assert_close(compiled_grad, eager_grad)


def test_autoencoder_objective_compiles_with_inductor_fullgraph_and_matches_eager():
    """The multimodal autoencoder (multi_bilinear encoder, bilinear decoders) and the paper's whole
    objective (reconstruction, weight decay, KL sparsity) in one graph; its gradients equal eager."""
    torch.compiler.reset()
    torch.manual_seed(0)
    model = MultimodalMatNetAutoencoder([(15, 15), (15, 15), (8, 6)], (10, 10))
    objective = lambda xs: model.loss(xs, weight_decay=1e-3, sparsity_weight=1.0).total  # noqa: E731
    compiled = torch.compile(objective, fullgraph=True)
    generator = torch.Generator().manual_seed(1)
    xs = [torch.rand(12, p, q, generator=generator) for p, q in ((15, 15), (15, 15), (8, 6))]
    parameters = list(model.parameters())
    torch.testing.assert_close(compiled(xs), objective(xs))
    for compiled_grad, eager_grad in zip(torch.autograd.grad(compiled(xs), parameters),
                                         torch.autograd.grad(objective(xs), parameters)):
        torch.testing.assert_close(compiled_grad, eager_grad)


def sgd_step(model, x, labels, lr=0.1):
    """Forward, loss, gradients and the SGD update p ← p − lr ∂L/∂p: one training step."""
    loss = F.cross_entropy(model(x), labels)
    parameters = list(model.parameters())
    gradients = torch.autograd.grad(loss, parameters)
    with torch.no_grad():
        torch._foreach_add_(parameters, gradients, alpha=-lr)
    return loss.detach()


def test_whole_training_step_compiles_to_one_graph_and_matches_eager():
    # Dynamo traces torch.autograd.grad only when asked (trace_autograd_ops, off by default in
    # torch 2.13); then forward, backward (our fused backward operator) and the update are one
    # graph. torch.optim optimizers graph-break around step() by design, so the update is written out.
    torch.compiler.reset()
    torch.manual_seed(0)
    model = MatNetClassifier()
    eager_model = copy.deepcopy(model)
    with torch._dynamo.config.patch(trace_autograd_ops=True):
        compiled_step = torch.compile(sgd_step, fullgraph=True)
        for seed in range(3):
            x, labels = batch_of(32, seed)
            torch.testing.assert_close(compiled_step(model, x, labels), sgd_step(eager_model, x, labels))
    for compiled_parameter, eager_parameter in zip(model.parameters(), eager_model.parameters()):
        torch.testing.assert_close(compiled_parameter, eager_parameter)


LOAD_AND_RUN = """
import sys, torch, matnet_torch  # importing matnet_torch registers torch.ops.matnet
program = torch.export.load(sys.argv[1])
inputs = torch.load(sys.argv[2])
torch.save([program.module()(x) for x in inputs], sys.argv[3])
"""


def test_exported_trained_classifier_runs_matches_eager_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = MatNetClassifier()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for seed in range(5):
        x, labels = batch_of(64, seed)
        optimizer.zero_grad()
        F.cross_entropy(model(x), labels).backward()
        optimizer.step()
    model.eval()

    batch = torch.export.Dim("batch")
    program = torch.export.export(model, (batch_of(8)[0],), dynamic_shapes={"x": {0: batch}})
    operators = [node.target for node in program.graph.nodes if node.op == "call_function"]
    assert operators.count(torch.ops.matnet.bilinear.default) == 2  # the fused operator, not a decomposition

    inputs = [batch_of(size, seed=size)[0] for size in (0, 1, 7, 300)]
    with torch.no_grad():
        expected = [model(x) for x in inputs]
        for x, y in zip(inputs, expected):
            torch.testing.assert_close(program.module()(x), y, rtol=0, atol=0)

    torch.export.save(program, tmp_path / "classifier.pt2")
    torch.save(inputs, tmp_path / "inputs.pt")
    subprocess.run([sys.executable, "-c", LOAD_AND_RUN, tmp_path / "classifier.pt2", tmp_path / "inputs.pt",
                    tmp_path / "outputs.pt"], check=True)
    for y, y_loaded in zip(expected, torch.load(tmp_path / "outputs.pt")):
        torch.testing.assert_close(y_loaded, y, rtol=0, atol=0)
