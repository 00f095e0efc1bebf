"""Notebook 01's checks: the discriminator's and the generator's loss from raw scores."""
from __future__ import annotations

import math

import torch

from .. import losses
from ._core import ExerciseError, _call

__all__ = ["check_d_loss", "check_g_loss"]


def _scores(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, generator=g) * 3, torch.randn(batch, generator=g) * 3


def check_d_loss(fn) -> None:
    """``fn(s_real, s_fake)``: the discriminator's loss ``-V`` from raw scores (logits)."""
    name = "my_d_loss"
    zero = torch.zeros(8)
    at_half = _call(name, fn, zero, zero)
    if not torch.is_tensor(at_half) or at_half.numel() != 1:
        raise ExerciseError(f"{name} should return one number (a 0-d tensor): average over the batch.")
    if abs(at_half.item() + 2 * math.log(2)) < 1e-4:
        raise ExerciseError(f"{name} returns V instead of the loss: the discriminator *maximises* V, so its "
                            "loss to minimise is -V.")
    if abs(at_half.item() - 16 * math.log(2)) < 1e-3:
        raise ExerciseError(f"{name}(0, 0) on a batch of 8 gives 8 times 2 log 2: take the mean over the batch, "
                            "not the sum.")
    if abs(at_half.item() - 2 * math.log(2)) > 1e-4:
        raise ExerciseError(f"{name}(0, 0) should be 2 log 2 = {2 * math.log(2):.4f} (D outputs 1/2 on both), "
                            f"got {at_half.item():.4f}. Check the two log terms.")
    s_real, s_fake = _scores(16, 0)
    ours = _call(name, fn, s_real, s_fake)
    if abs(ours.item() - losses.d_loss(s_real, s_fake).item()) > 1e-4:
        swapped = losses.d_loss(s_fake, s_real).item()
        hint = (" Real and fake look swapped: real images should push D(x) up, fakes push it down."
                if abs(ours.item() - swapped) < 1e-4 else
                " The loss is -(E log D(x) + E log(1 - D(G(z)))), with D = sigmoid(score).")
        raise ExerciseError(f"{name} gives {ours.item():.4f} on random scores; the value is "
                            f"{losses.d_loss(s_real, s_fake).item():.4f}.{hint}")
    extreme = _call(name, fn, torch.tensor([200.0, -200.0]), torch.tensor([-200.0, 200.0]))
    if not torch.isfinite(extreme):
        raise ExerciseError(f"{name} is not finite for confident scores (+-200): sigmoid rounds to exactly 0 or 1 "
                            "and the log is -inf. Compute log D from the score: F.logsigmoid(s), and "
                            "log(1 - sigmoid(s)) = F.logsigmoid(-s).")
    print(f"{name}: correct (matches gan_tutorial.losses.d_loss, also for confident scores)")


def check_g_loss(fn) -> None:
    """``fn(s_fake)``: the non-saturating generator loss ``-E log D(G(z))`` from raw scores."""
    name = "my_g_loss"
    s_fake = _scores(16, 1)[1]
    ours = _call(name, fn, s_fake)
    if not torch.is_tensor(ours) or ours.numel() != 1:
        raise ExerciseError(f"{name} should return one number (a 0-d tensor): average over the batch.")
    if abs(ours.item() - losses.g_loss_minimax(s_fake).item()) < 1e-4:
        raise ExerciseError(f"{name} is the saturating (minimax) loss log(1 - D(G(z))). The non-saturating "
                            "loss changes what the generator maximises: log D(G(z)).")
    if abs(ours.item() - losses.g_loss_nonsaturating(s_fake).item()) > 1e-4:
        raise ExerciseError(f"{name} gives {ours.item():.4f} on random scores; the value is "
                            f"{losses.g_loss_nonsaturating(s_fake).item():.4f}. It is -E[log D(G(z))], "
                            "D = sigmoid(score), averaged over the batch.")
    s = torch.tensor([-30.0, -200.0], requires_grad=True)     # fakes D is sure about
    loss = _call(name, fn, s)
    if not torch.isfinite(loss):
        raise ExerciseError(f"{name} is not finite when D is sure a sample is fake (score -200): compute "
                            "log D from the score with F.logsigmoid(s).")
    (grad,) = torch.autograd.grad(loss, s)
    if not torch.allclose(grad, torch.full_like(grad, -0.5), atol=1e-3):
        raise ExerciseError(f"{name}'s gradient where D is sure the sample is fake should be -1/B = -0.5 for each "
                            f"of these 2 scores, got {grad.tolist()}: compute from the score (F.logsigmoid), "
                            "not from sigmoid(s), whose log underflows.")
    print(f"{name}: correct (matches gan_tutorial.losses.g_loss_nonsaturating, and keeps its gradient "
          "where D is sure)")
