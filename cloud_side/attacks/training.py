"""The one training loop of the attacks (decoder and shadow model), as in the authors' code."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

LR_SCHEDULES = ("step", "cosine")


def lr_scheduler(optimiser, schedule: str, epochs: int, lr_halve_every: int):
    """Per-epoch schedule: ``"step"`` halves the lr every ``lr_halve_every`` epochs (the authors'),
    ``"cosine"`` anneals it to 0 over ``epochs``."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; schedules: {', '.join(LR_SCHEDULES)}")
    if schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimiser, step_size=lr_halve_every, gamma=0.5)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, epochs))


def train_epochs(module: nn.Module, batch_loss: Callable[[torch.Tensor], torch.Tensor], count: int, *,
                 epochs: int, lr: float, batch_size: int, lr_schedule: str, lr_halve_every: int, seed: int) -> None:
    """Minimise ``batch_loss(index)`` over shuffled mini-batches of ``range(count)``.

    Adam (amsgrad, eps 1e-3) with ``lr`` following ``lr_schedule`` (see ``lr_scheduler``); the
    shuffling is drawn from ``seed``.
    """
    module.train()
    optimiser = torch.optim.Adam(module.parameters(), lr=lr, amsgrad=True, eps=1e-3)
    schedule = lr_scheduler(optimiser, lr_schedule, epochs, lr_halve_every)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(count))
        for start in range(0, count, batch_size):
            optimiser.zero_grad(set_to_none=True)
            batch_loss(order[start:start + batch_size]).backward()
            optimiser.step()
        schedule.step()
    module.eval()
