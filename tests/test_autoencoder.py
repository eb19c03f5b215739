"""MultimodalMatNetAutoencoder: shapes, the objective's terms against their formulas, training with
SGD, Adam and LBFGS, errors."""
import math

import pytest
import torch

from matnet_torch import reference
from matnet_torch.nn import MultimodalMatNetAutoencoder

IN_SHAPES = [(15, 15), (6, 4), (5, 9)]


def make_batch(count=8, in_shapes=IN_SHAPES, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(count, p, q, generator=generator, dtype=torch.float64) for p, q in in_shapes]


@pytest.mark.parametrize("leading", [(8,), (2, 3), (0,)], ids=["batch", "leading-dims", "empty"])
def test_shapes(leading):
    model = MultimodalMatNetAutoencoder(IN_SHAPES, (10, 10)).double()
    xs = [torch.rand(*leading, p, q, dtype=torch.float64) for p, q in IN_SHAPES]
    reconstructions, hidden = model(xs)
    assert hidden.shape == leading + (10, 10)
    assert [tuple(r.shape) for r in reconstructions] == [leading + shape for shape in IN_SHAPES]
    torch.testing.assert_close(model.encode(xs), hidden)
    for reconstruction, decoded in zip(reconstructions, model.decode(hidden)):
        torch.testing.assert_close(reconstruction, decoded)


def test_encoder_and_decoders_compute_the_paper_equations():
    model = MultimodalMatNetAutoencoder(IN_SHAPES, (4, 3), activation="sigmoid", output_activation="identity").double()
    xs = make_batch()
    reconstructions, hidden = model(xs)
    encoder = model.encoder
    # H = σ(Σ_j U_j X^j V_jᵀ + B);  X̂^j = R_j H S_jᵀ + C_j
    torch.testing.assert_close(hidden, torch.sigmoid(sum(u @ x @ v.mT for u, x, v in zip(encoder.us, xs, encoder.vs)) + encoder.bias))
    for decoder, reconstruction in zip(model.decoders, reconstructions):
        torch.testing.assert_close(reconstruction, reference.bilinear(hidden, decoder.u, decoder.v, decoder.bias))


def test_loss_terms_match_their_formulas():
    model = MultimodalMatNetAutoencoder(IN_SHAPES, (5, 4)).double()
    xs, targets = make_batch(seed=1), make_batch(seed=2)
    weight_decay, rho, beta = 0.001, 0.05, 1.0
    loss = model.loss(xs, targets, weight_decay=weight_decay, sparsity_target=rho, sparsity_weight=beta)
    reconstructions, hidden = model(xs)
    count = xs[0].shape[0]
    reconstruction = sum((r - t).square().sum() for r, t in zip(reconstructions, targets)) / (2 * count)
    matrices = list(model.encoder.us) + list(model.encoder.vs) + [m for d in model.decoders for m in (d.u, d.v)]
    assert len(matrices) == 4 * len(IN_SHAPES)  # every U_j, V_j, R_j, S_j
    decay = weight_decay * sum(m.square().sum() for m in matrices)
    mean = hidden.mean(0)
    sparsity = beta * (rho * torch.log(rho / mean) + (1 - rho) * torch.log((1 - rho) / (1 - mean))).sum()
    torch.testing.assert_close(loss.reconstruction, reconstruction)
    torch.testing.assert_close(loss.weight_decay, decay)
    torch.testing.assert_close(loss.sparsity, sparsity)
    torch.testing.assert_close(loss.total, reconstruction + decay + sparsity)
    # without targets the inputs are the targets; zero weights give zero terms
    plain = model.loss(xs)
    assert plain.weight_decay == 0 and plain.sparsity == 0
    torch.testing.assert_close(plain.total, sum((r - x).square().sum() for r, x in zip(reconstructions, xs)) / (2 * count))


def test_reconstruction_weights_weight_each_modality_s_term():
    model = MultimodalMatNetAutoencoder(IN_SHAPES, (5, 4)).double()
    xs, targets = make_batch(seed=5), make_batch(seed=6)
    reconstructions, _ = model(xs)
    terms = [(r - t).square().sum() / (2 * len(t)) for r, t in zip(reconstructions, targets)]
    weighted = model.loss(xs, targets, reconstruction_weights=[1.0, 0.0, 2.5])
    torch.testing.assert_close(weighted.reconstruction, terms[0] + 2.5 * terms[2])
    for weights in ([1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 0.0, 0.0]):
        with pytest.raises(ValueError, match=r"MultimodalMatNetAutoencoder.loss: expected 3 reconstruction_weights >= 0, not all 0"):
            model.loss(xs, targets, reconstruction_weights=weights)


def test_shares_of_a_batch_sum_to_its_loss_and_gradient():
    """Data parallelism in one process: shares of 3, 2 and 2 samples of a batch of 7, each with
    batch_size=7 and a batch_mean that adds the other shares' activations to its own, give parts
    share_reconstruction + (decay + sparsity)/3 whose values and gradients sum to the whole batch's.
    The batch_mean stands for ``GlobalBatch.mean``'s all-reduce, whose backward sums the 3 processes'
    gradients with respect to ρ̄ (equal, each process computing the same term): here 3 times the
    share's own, so its value is the share's sum and its gradient 3 times that of the sum."""
    model = MultimodalMatNetAutoencoder(IN_SHAPES, (5, 4)).double()
    xs, targets = make_batch(7, seed=3), make_batch(7, seed=4)
    weights = {"weight_decay": 0.01, "sparsity_target": 0.1, "sparsity_weight": 2.0}
    whole = model.loss(xs, targets, **weights)
    expected = torch.autograd.grad(whole.total, list(model.parameters()))
    with torch.no_grad():
        all_hidden = model.encode(xs)
    shares = [slice(0, 3), slice(3, 5), slice(5, 7)]
    total, gradients = 0.0, [torch.zeros_like(parameter) for parameter in model.parameters()]
    for share in shares:
        others = torch.cat([all_hidden[:share.start], all_hidden[share.stop:]]).sum(0)

        def batch_mean(hidden, others=others):
            own = hidden.sum(0)
            return (len(shares) * own - (len(shares) - 1) * own.detach() + others) / 7

        part = model.loss([x[share] for x in xs], [t[share] for t in targets], **weights, batch_size=7, batch_mean=batch_mean)
        value = part.reconstruction + (part.weight_decay + part.sparsity) / len(shares)
        total = total + value.detach()
        for gradient, part_gradient in zip(gradients, torch.autograd.grad(value, list(model.parameters()))):
            gradient += part_gradient
    torch.testing.assert_close(total, whole.total.detach())
    for gradient, reference_gradient in zip(gradients, expected):
        torch.testing.assert_close(gradient, reference_gradient)


def test_sparsity_needs_a_sigmoid_encoder_but_zero_beta_does_not():
    model = MultimodalMatNetAutoencoder(IN_SHAPES, (3, 3), activation="tanh")
    xs = [x.float() for x in make_batch()]
    assert math.isfinite(model.loss(xs, weight_decay=0.01).total.item())
    with pytest.raises(ValueError, match=r"sparsity_penalty: layers\[0\] has activation 'tanh'"):
        model.loss(xs, sparsity_weight=1.0)


@pytest.fixture
def one_thread():
    """One torch thread for a test of many tiny steps: with two, each step waits at OpenMP barriers for
    a thread that a busy machine deschedules (50× slower on our shared 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_optimizers_decrease_the_paper_objective(optimizer, one_thread):
    torch.manual_seed(0)
    in_shapes = [(8, 8), (8, 8), (4, 6)]
    model = MultimodalMatNetAutoencoder(in_shapes, (5, 5))
    # Structured data: every modality a random bilinear image of one shared 3×3 code.
    code = torch.rand(256, 3, 3)
    xs = [torch.sigmoid(torch.randn(p, 3) @ code @ torch.randn(q, 3).mT) for p, q in in_shapes]
    make = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.5, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=0.02),
        "lbfgs": lambda p: torch.optim.LBFGS(p, max_iter=10, line_search_fn="strong_wolfe"),
    }
    opt = make[optimizer](model.parameters())

    def closure():
        opt.zero_grad()
        loss = model.loss(xs, weight_decay=1e-3, sparsity_target=0.05, sparsity_weight=0.1).total
        loss.backward()
        return loss

    with torch.no_grad():
        initial = model.loss(xs, weight_decay=1e-3, sparsity_target=0.05, sparsity_weight=0.1).total.item()
    for _ in range(5 if optimizer == "lbfgs" else 30):  # an LBFGS step is up to 10 evaluations
        opt.step(closure)
    with torch.no_grad():
        final = model.loss(xs, weight_decay=1e-3, sparsity_target=0.05, sparsity_weight=0.1).total.item()
    assert final < 0.7 * initial, (initial, final)


def test_weight_decay_reaches_every_matrix_and_no_bias():
    model = MultimodalMatNetAutoencoder([(3, 3), (2, 4)], (2, 2))
    model.loss([torch.rand(4, 3, 3), torch.rand(4, 2, 4)], weight_decay=1.0).weight_decay.backward()
    for name, parameter in model.named_parameters():
        if name.endswith("bias"):
            assert parameter.grad is None, name
        else:  # d/dW of λ‖W‖² = 2λW
            torch.testing.assert_close(parameter.grad, 2 * parameter.detach(), msg=name)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (([], (2, 2)), r"MultiMatNetLayer: in_shapes must name at least one input shape"),
        (([(2, 2)], (2, 0)), r"MultimodalMatNetAutoencoder: hidden_shape must be two positive sizes"),
        (([(2, 2)], (2, 2), "gelu"), r"MultimodalMatNetAutoencoder: unknown activation 'gelu'"),
        (([(2, 2)], (2, 2), "sigmoid", "exp"), r"MultimodalMatNetAutoencoder: unknown output_activation 'exp'"),
    ],
)
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        MultimodalMatNetAutoencoder(*arguments)


@pytest.mark.parametrize(
    "xs, message",
    [
        ([torch.zeros(2, 3, 3)], r"expected 2 modalities, got 1"),
        ([torch.zeros(2, 3, 3), torch.zeros(2, 4, 2)], r"expected xs\[1\] of shape \(\.\.\., 2, 4\), got \(2, 4, 2\)"),
    ],
)
def test_rejects_bad_modalities(xs, message):
    model = MultimodalMatNetAutoencoder([(3, 3), (2, 4)], (2, 2))
    with pytest.raises(ValueError, match=r"MultimodalMatNetAutoencoder: " + message):
        model(xs)
    with pytest.raises(ValueError, match=r"MultimodalMatNetAutoencoder.loss: expected 2 targets, got 1"):
        model.loss([torch.zeros(2, 3, 3), torch.zeros(2, 2, 4)], [torch.zeros(2, 3, 3)])
