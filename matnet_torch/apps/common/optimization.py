"""Optimisers and learning-rate schedules of the apps' training loops, chosen by name from a config dict.

API:

    OPTIMIZERS, SCHEDULES                      the names the command lines offer
    optimizer = make_optimizer(model, config)  config["optimizer"] in OPTIMIZERS, config["lr"], and
                                               config["cuda_graph"] if the app has that option
    scheduler = make_scheduler(optimizer, config)
                                               config["schedule"] in SCHEDULES, config["epochs"];
                                               stepped once per epoch

Every scheduler's state_dict is plain data, so it fits a ``common.checkpoint`` payload.
"""
from typing import Any, Dict

import torch
from torch import nn

OPTIMIZERS = ("sgd", "adam", "lbfgs")
SCHEDULES = ("cosine", "step", "none")


def make_optimizer(model: nn.Module, config: Dict[str, Any]) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum 0.9 (fused), Adam, or LBFGS with a strong-Wolfe line search."""
    parameters, lr = model.parameters(), config["lr"]
    if config["optimizer"] == "sgd":
        # fused: one kernel for all parameters (CPU and CUDA) instead of a Python loop over them,
        # which with a MatNet's few small tensors costs as much as the arithmetic.
        return torch.optim.SGD(parameters, lr=lr, momentum=0.9, nesterov=True, fused=True)
    if config["optimizer"] == "adam":  # capturable: its step counter stays on the device, for CUDA graphs
        return torch.optim.Adam(parameters, lr=lr, capturable=config.get("cuda_graph", False))
    return torch.optim.LBFGS(parameters, lr=lr, max_iter=20, history_size=20, line_search_fn="strong_wolfe")


def make_scheduler(optimizer: torch.optim.Optimizer, config: Dict[str, Any]) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing to 0 over the epochs, step (×0.1 at 50 % and 75 % of them), or constant."""
    epochs = config["epochs"]
    if config["schedule"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if config["schedule"] == "step":
        # x0.1 from epoch E/2 on and x0.01 from 3E/4 on; LambdaLR rather than MultiStepLR, whose state
        # holds a Counter, so that the checkpoint stays plain data.
        milestones = (epochs // 2, 3 * epochs // 4)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.1 ** sum(epoch >= m for m in milestones))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
