"""The one training loop of the attacks (decoder and shadow model), as in the authors' code."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn


def train_epochs(module: nn.Module, batch_loss: Callable[[torch.Tensor], torch.Tensor], count: int, *,
                 epochs: int, lr: float, batch_size: int, lr_halve_every: int, seed: int) -> None:
    """Minimise ``batch_loss(index)`` over shuffled mini-batches of ``range(count)``.

    Adam (amsgrad, eps 1e-3) with ``lr`` halved every ``lr_halve_every`` epochs; the shuffling is
    drawn from ``seed``.
    """
    module.train()
    optimiser = torch.optim.Adam(module.parameters(), lr=lr, amsgrad=True, eps=1e-3)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=lr_halve_every, gamma=0.5)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(count))
        for start in range(0, count, batch_size):
            optimiser.zero_grad(set_to_none=True)
            batch_loss(order[start:start + batch_size]).backward()
            optimiser.step()
        schedule.step()
    module.eval()
