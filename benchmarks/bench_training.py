"""Times a training epoch of the paper's MNIST net (MatNetClassifier's defaults: 28×28 → 20×20 → 16×16
→ 10, sigmoid, vec head) with matnet_torch's operators against the same net in plain PyTorch
(each layer torch.sigmoid(U @ X @ V.mT + B), differentiated by autograd), in the same process.

One step is the training tool's: cross-entropy, backward, SGD with Nesterov momentum 0.9, lr 0.1.
On CUDA each step runs eagerly and also as a captured CUDA graph replayed per batch (CapturedStep).
The images are synthetic (random, of MNIST's shape) and already on the device, so the time is that
of the arithmetic and the framework, not of data loading; the last partial batch is dropped.

    python benchmarks/bench_training.py                          # CPU, and CUDA when there is a GPU
    python benchmarks/bench_training.py --images 6000 --devices cpu
"""
import argparse
import copy
import time

import torch
import torch.nn.functional as F

import matnet_torch
from matnet_torch import reference
from matnet_torch.nn import MatNetClassifier, MatNetLayer


class PlainPyTorchLayer(MatNetLayer):
    """A MatNetLayer computed by reference.bilinear (plain PyTorch autograd) instead of the fused operators."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return reference.bilinear(x, self.u, self.v, self.bias, self.activation)


def plain_pytorch_copy(model: MatNetClassifier) -> MatNetClassifier:
    """The same net with the same parameters, its bilinear layers in plain PyTorch."""
    plain = copy.deepcopy(model)
    for layer in plain.matnet_layers:
        layer.__class__ = PlainPyTorchLayer
    return plain


def make_optimizer(model):
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)


def training_step(model, optimizer, images, labels):
    """One SGD step on a batch; returns the loss (a tensor: reading it would synchronise)."""
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


class CapturedStep:
    """training_step captured once as a CUDA graph and replayed for each batch, PyTorch's whole-network
    capture recipe: a few warm-up steps on a side stream (they train on the first batch), then the
    capture. Each call copies the batch into the graph's static inputs and replays the graph: one
    launch per step instead of one per kernel."""

    def __init__(self, model, optimizer, images, labels, warmup_steps=3):
        self.images, self.labels = images.clone(), labels.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup_steps):
                training_step(model, optimizer, self.images, self.labels)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.loss = training_step(model, optimizer, self.images, self.labels)

    def __call__(self, images, labels):
        self.images.copy_(images)
        self.labels.copy_(labels)
        self.graph.replay()
        return self.loss


def synthetic_mnist(count, device, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return images.to(device), labels.to(device)


def time_epoch(step, images, labels, batch_size, device):
    """Seconds for one pass of step over the full batches, after two untimed warm-up steps."""
    batches = [(images[i:i + batch_size], labels[i:i + batch_size])
               for i in range(0, len(images) - batch_size + 1, batch_size)]
    for batch in batches[:2]:
        step(*batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for batch in batches:
        step(*batch)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def epoch_times(device, images, labels, batch_size, graphs):
    """{(implementation, mode): seconds per epoch} for matnet and plain PyTorch, eager and (CUDA) captured."""
    torch.manual_seed(0)
    nets = {"matnet": MatNetClassifier(device=device)}
    nets["torch"] = plain_pytorch_copy(nets["matnet"])
    times = {}
    for name, net in nets.items():
        model = copy.deepcopy(net)
        optimizer = make_optimizer(model)
        times[name, "eager"] = time_epoch(lambda x, t: training_step(model, optimizer, x, t), images, labels,
                                          batch_size, device)
        if graphs:
            model = copy.deepcopy(net)
            step = CapturedStep(model, make_optimizer(model), images[:batch_size], labels[:batch_size])
            times[name, "graph"] = time_epoch(step, images, labels, batch_size, device)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=60000, help="images per epoch (default: 60000, MNIST's training set)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 1024], help="(default: 128 1024)")
    parser.add_argument("--devices", nargs="+", default=None, help="cpu and/or cuda (default: cpu, and cuda if available)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1, the training tool's default)")
    args = parser.parse_args(argv)
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    torch.set_num_threads(args.threads)

    print(f"torch {torch.__version__}, matnet_torch {matnet_torch.__version__}, {args.images} images per epoch, "
          f"{args.threads} CPU thread(s); ratio = plain PyTorch time / matnet time in the same mode")
    for name in devices:
        device = torch.device(name)
        label = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        images, labels = synthetic_mnist(args.images, device)
        print(f"\n{label}")
        print(f"{'batch':>6} {'mode':>6} | {'matnet s':>9} {'torch s':>9} {'ratio':>6} | {'matnet img/s':>12}")
        for batch_size in args.batch_sizes:
            times = epoch_times(device, images, labels, batch_size, graphs=device.type == "cuda")
            for mode in ("eager", "graph"):
                if ("matnet", mode) not in times:
                    continue
                ours, plain = times["matnet", mode], times["torch", mode]
                images_timed = (args.images // batch_size) * batch_size
                print(f"{batch_size:>6} {mode:>6} | {ours:>9.3f} {plain:>9.3f} {plain / ours:>6.2f} | "
                      f"{images_timed / ours:>12.0f}")


if __name__ == "__main__":
    main()
