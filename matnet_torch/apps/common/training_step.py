"""One optimisation step of a training loop, run eagerly or replayed from a CUDA graph.

API:

    step = training_step(objective, optimizer, cuda_graph=False, processes=Processes())
    loss, output = step(x, y)      # objective(x, y) -> (loss, output); after the call the optimizer has
                                   # stepped; loss and output are detached (and, with a CUDA graph,
                                   # valid only until the next call: read them before calling again)

Under torchrun (``common.distributed``) x and y are the whole global batch, the objective returns
this process's part of the batch's objective (the parts sum to it), and the step sums the gradients
over the processes between backward and the optimizer's step.

Eager steps (``eager_step``) go through ``optimizer.step(closure)`` and so work with every torch
optimizer, LBFGS included (which evaluates the closure several times; the first evaluation is
returned). ``GraphedStep`` captures forward, backward and ``optimizer.step()`` of a whole step in one
``torch.cuda.CUDAGraph`` and replays it, copying each batch into static input buffers. The graph bakes
in the learning rate and the batch shape, so there is one graph per batch shape, recaptured when a
scheduler changes the learning rate (once per epoch). Before each capture, ``warmup`` real steps of that
shape run eagerly on a side stream (they initialise the optimizer's lazy state such as momentum
buffers, and CUDA libraries' workspaces, outside the capture). Optimizers with a ``capturable`` option
(Adam, AdamW, ...) must be built with ``capturable=True``; SGD needs none; LBFGS cannot be captured (its
line search branches on values on the host).
"""
from typing import Callable, Dict, Tuple

import torch

from .distributed import Processes

Objective = Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]
Step = Callable[[torch.Tensor, torch.Tensor], Tuple[torch.Tensor, torch.Tensor]]


def eager_step(objective: Objective, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               processes: Processes = Processes()) -> Tuple[torch.Tensor, torch.Tensor]:
    """zero_grad, objective, backward, the gradients summed over the processes, and
    optimizer.step(closure); (loss, output) of the first evaluation."""
    evaluations = []

    def closure():
        optimizer.zero_grad(set_to_none=True)
        loss, output = objective(x, y)
        loss.backward()
        processes.sum_gradients(optimizer)
        evaluations.append((loss.detach(), output.detach()))
        return loss

    optimizer.step(closure)
    return evaluations[0]


class GraphedStep:
    """A training step replayed from CUDA graphs, one per batch shape (module docstring)."""

    def __init__(self, objective: Objective, optimizer: torch.optim.Optimizer, warmup: int = 3):
        if any(group.get("capturable") is False for group in optimizer.param_groups):
            raise ValueError(f"GraphedStep: build {type(optimizer).__name__} with capturable=True to capture its step")
        self.objective, self.optimizer, self.warmup = objective, optimizer, warmup
        self.graphs: Dict[tuple, dict] = {}  # batch shapes -> {"lr", "eager_steps", "graph", static tensors}

    def _learning_rates(self) -> Tuple[float, ...]:
        return tuple(float(group["lr"]) for group in self.optimizer.param_groups)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        key, lr = (tuple(x.shape), tuple(y.shape)), self._learning_rates()
        entry = self.graphs.get(key)
        if entry is None or entry["lr"] != lr:  # a new shape or a new learning rate: warm up, recapture
            entry = self.graphs[key] = {"lr": lr, "eager_steps": 0}
        if entry["eager_steps"] < self.warmup:
            entry["eager_steps"] += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                result = eager_step(self.objective, self.optimizer, x, y)
            torch.cuda.current_stream().wait_stream(side)
            return result
        if "graph" not in entry:
            self._capture(entry, x, y)
        entry["x"].copy_(x)
        entry["y"].copy_(y)
        entry["graph"].replay()
        return entry["loss"], entry["output"]

    def _capture(self, entry: dict, x: torch.Tensor, y: torch.Tensor) -> None:
        """Records forward, backward and optimizer.step() on static copies of x and y (nothing runs yet).

        Gradients are set to None first, so the captured backward writes them afresh in the graph's
        memory instead of accumulating into tensors that live outside it.
        """
        self.optimizer.zero_grad(set_to_none=True)
        entry["x"], entry["y"] = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            loss, output = self.objective(entry["x"], entry["y"])
            loss.backward()
            self.optimizer.step()
        entry.update(graph=graph, loss=loss.detach(), output=output.detach())


def training_step(objective: Objective, optimizer: torch.optim.Optimizer, cuda_graph: bool = False,
                  processes: Processes = Processes()) -> Step:
    """The step function for a training loop: eager, or replayed from CUDA graphs if ``cuda_graph``
    (one process only: the captured step would not include the sum of the gradients)."""
    if cuda_graph:
        if processes.world_size > 1:
            raise ValueError(f"training_step: a CUDA graph runs on one process, not {processes.world_size}")
        return GraphedStep(objective, optimizer)
    return lambda x, y: eager_step(objective, optimizer, x, y, processes)
