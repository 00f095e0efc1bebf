"""Notebook 05's checks: the Wasserstein critic and generator losses, and the gradient penalty."""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import losses, models
from ._core import ExerciseError, _call

__all__ = ["check_wasserstein_critic_loss", "check_wasserstein_generator_loss", "check_gradient_penalty"]


def _scores(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, generator=g) * 3 + 1, torch.randn(16, generator=g) * 2 - 1


def _one_number(name: str, value) -> float:
    if not torch.is_tensor(value) or value.numel() != 1:
        raise ExerciseError(f"{name} should return one number (a 0-d tensor): average over the batch.")
    return value.item()


def _is_affine(fn, *scores) -> bool:
    """A Wasserstein loss is linear in the scores, no sigmoid or log: f(2s) - 2 f(s) + f(0) = 0."""
    zero, one, two = fn(*(0 * s for s in scores)), fn(*scores), fn(*(2 * s for s in scores))
    return abs(two.item() - 2 * one.item() + zero.item()) < 1e-4 * (1 + abs(one.item()))


def _matches(name: str, ours: float, want: float, flipped: str) -> bool:
    """True when ``ours`` is the value; raises for a flipped sign or a sum over the batch of 16."""
    if abs(ours - want) < 1e-4:
        return True
    if abs(ours + want) < 1e-4:
        raise ExerciseError(f"{name} has the sign flipped: {flipped}")
    if abs(ours - 16 * want) < 1e-3:
        raise ExerciseError(f"{name} on a batch of 16 is 16 times too large: take the mean of the scores, not the sum.")
    return False


def check_wasserstein_critic_loss(fn) -> None:
    """``fn(s_real, s_fake)``: the critic's loss ``E f(G(z)) - E f(x)`` from raw critic scores."""
    name = "my_critic_loss"
    s_real, s_fake = _scores(0)
    ours = _one_number(name, _call(name, fn, s_real, s_fake))
    want = losses.wasserstein_critic_loss(s_real, s_fake).item()
    if _matches(name, ours, want, "the critic *maximises* E f(x) - E f(G(z)), so the loss it minimises is "
                                  "E f(G(z)) - E f(x)."):
        print(f"{name}: correct (matches gan_tutorial.losses.wasserstein_critic_loss)")
        return
    if abs(ours - losses.d_loss(s_real, s_fake).item()) < 1e-4 or not _is_affine(lambda r, f: fn(r, f), s_real, s_fake):
        raise ExerciseError(f"{name} puts the scores through a sigmoid or a log, as the GAN's discriminator loss does. "
                            "A critic's scores are raw numbers: use their means directly.")
    raise ExerciseError(f"{name} gives {ours:.4f} on random scores, which is not E f(G(z)) - E f(x): the mean of the "
                        "fake scores minus the mean of the real ones.")


def check_wasserstein_generator_loss(fn) -> None:
    """``fn(s_fake)``: the generator's loss ``-E f(G(z))`` from raw critic scores."""
    name = "my_generator_loss"
    s_fake = _scores(1)[1]
    ours = _one_number(name, _call(name, fn, s_fake))
    want = losses.wasserstein_g_loss(s_fake).item()
    if _matches(name, ours, want, "the generator wants the critic to score its samples *high*, so it minimises "
                                  "-E f(G(z))."):
        print(f"{name}: correct (matches gan_tutorial.losses.wasserstein_g_loss)")
        return
    if any(abs(ours - g(s_fake).item()) < 1e-4 for g in (losses.g_loss_nonsaturating, losses.g_loss_minimax)) \
            or not _is_affine(fn, s_fake):
        raise ExerciseError(f"{name} puts the scores through a sigmoid or a log, as the GAN's generator loss does. "
                            "A critic's scores are raw numbers: use their mean directly.")
    raise ExerciseError(f"{name} gives {ours:.4f} on random scores, which is not -E f(G(z)).")


# --------------------------------------------------------------------------- the gradient penalty
def _critic(in_shape, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):          # the learner's random numbers stay as they were
        torch.manual_seed(seed)
        return models.MLPDiscriminator(in_shape=in_shape, hidden=(16, 16))


def _input_grad(critic, x_hat: torch.Tensor) -> torch.Tensor:
    x_hat = x_hat.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    return grad


def _named_mistake(name, ours, critic, real, fake, alpha) -> str:
    """The hint for a penalty that differs from the package's: which usual slip gives ``ours``?"""
    b = real.shape[0]
    grad = _input_grad(critic, alpha * real + (1 - alpha) * fake)
    norm = grad.reshape(b, -1).norm(dim=1)
    candidates = [
        (((_input_grad(critic, real).reshape(b, -1).norm(dim=1) - 1) ** 2).mean(),
         f"{name} takes the gradient at the real points: evaluate the critic at the interpolates "
         "x_hat = alpha * real + (1 - alpha) * fake."),
        (((_input_grad(critic, (1 - alpha) * real + alpha * fake).reshape(b, -1).norm(dim=1) - 1) ** 2).mean(),
         f"{name} swaps alpha and 1 - alpha: x_hat = alpha * real + (1 - alpha) * fake."),
        ((grad.norm() - 1) ** 2,
         f"{name} takes one norm over the whole batch: the constraint is per sample, so take one norm per "
         "sample, grad.flatten(1).norm(dim=1), then the mean of (norm - 1) ** 2."),
        ((norm ** 2).mean(),
         f"{name} penalises the squared norm, which pushes the slope to 0: penalise its distance from 1, "
         "(norm - 1) ** 2."),
        (((norm ** 2 - 1) ** 2).mean(),
         f"{name} uses the squared norm: take the norm itself (the square root of the sum of squares), "
         "then (norm - 1) ** 2."),
        (((norm - 1) ** 2).sum(),
         f"{name} sums over the batch: take the mean of (norm - 1) ** 2."),
    ]
    if grad.dim() > 2:
        candidates.append((((grad.norm(dim=-1) - 1) ** 2).mean(),
                           f"{name} takes the norm over the last axis only: flatten each sample first, "
                           "grad.flatten(1).norm(dim=1), so the norm covers every pixel."))
    for value, hint in candidates:
        if abs(ours - value.item()) < 1e-4 * (1 + abs(value.item())):
            return hint
    return (f"{name} differs from E[(||grad f(x_hat)|| - 1)^2] with one norm per flattened sample. Use the alpha "
            "you are given (do not draw a new one), and check each step: the interpolates, the gradient of the "
            "summed scores, one norm per sample, the mean.")


def check_gradient_penalty(fn) -> None:
    """``fn(critic, real, fake, alpha)``: the WGAN-GP penalty at ``alpha * real + (1 - alpha) * fake``."""
    name = "my_gradient_penalty"
    g = torch.Generator().manual_seed(0)
    cases = {"2-D points (8, 2)": ((2,), torch.randn(8, 2, generator=g), torch.randn(8, 2, generator=g) + 2),
             "images (6, 1, 4, 4)": ((1, 4, 4), torch.rand(6, 1, 4, 4, generator=g) * 2 - 1,
                                     torch.rand(6, 1, 4, 4, generator=g) * 2 - 1)}
    for seed, (case, (in_shape, real, fake)) in enumerate(cases.items(), start=1):
        critic = _critic(in_shape, seed)
        # the package draws alpha itself: the same seeded generator gives the learner the same numbers
        alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=torch.Generator().manual_seed(seed))
        want = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))
        try:
            penalty = _call(name, fn, critic, real, fake, alpha)
        except RuntimeError as e:
            if "does not require grad" in str(e):
                raise ExerciseError(f"{name}: autograd cannot differentiate with respect to x_hat. Make it a leaf that "
                                    "requires gradients: x_hat = (...).detach().requires_grad_(True).") from None
            raise
        ours = _one_number(name, penalty)
        if abs(ours - want.item()) > 1e-4 * (1 + abs(want.item())):
            raise ExerciseError(f"On {case}: {_named_mistake(name, ours, critic, real, fake, alpha)}")
        if not penalty.requires_grad:
            raise ExerciseError(f"{name} has the right value but cannot train the critic: without create_graph=True "
                                "the gradient is a constant, and the penalty has no gradient with respect to the "
                                "critic's weights. Pass create_graph=True to torch.autograd.grad.")
        params = list(critic.parameters())
        mine = torch.autograd.grad(penalty, params, allow_unused=True)
        theirs = torch.autograd.grad(want, params, allow_unused=True)
        for a, b in zip(mine, theirs):
            a = torch.zeros_like(b) if a is None and b is not None else a
            if b is not None and not torch.allclose(a, b, atol=1e-5, rtol=1e-4):
                raise ExerciseError(f"On {case}, {name} has the right value but gives the critic's weights other "
                                    "gradients than the package: build the penalty from the gradient that "
                                    "autograd.grad returns with create_graph=True, without .detach() or .item().")
    with torch.random.fork_rng(devices=[]):
        flat = nn.Linear(2, 1)
    with torch.no_grad():
        flat.weight.zero_(), flat.bias.zero_()                 # a critic with slope 0 everywhere
    alpha = torch.full((4, 1), 0.5)
    points = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    penalty = _call(name, fn, lambda x: flat(x).squeeze(1), *points, alpha)
    grads = torch.autograd.grad(penalty, list(flat.parameters()), allow_unused=True)
    if not torch.isfinite(penalty) or any(gr is not None and not torch.isfinite(gr).all() for gr in grads):
        raise ExerciseError(f"{name} gives a NaN gradient where the critic is flat (slope 0): the square root of a "
                            "sum of squares has an infinite derivative at 0. Use grad.flatten(1).norm(dim=1), or "
                            "add 1e-12 inside the square root.")
    print(f"{name}: correct (matches gan_tutorial.losses.gradient_penalty on points and images, and trains the "
          "critic the same way)")
