"""Checks for the notebooks' exercises: each raises :class:`ExerciseError` with a hint on a wrong
answer (and when the exercise is not written yet), and prints one line when it is right.

The checks compare the learner's code with the package on inputs chosen to expose the usual
mistakes (a flipped sign, ``log(sigmoid(s))`` that overflows, a sum instead of a mean), so the
notebook never shows the answer before the learner tries.
"""
from __future__ import annotations

import math

import torch

from . import losses, style

__all__ = ["ExerciseError", "check_value", "check_d_loss", "check_g_loss", "check_gram_matrix", "check_adain"]


class ExerciseError(AssertionError):
    """A wrong (or missing) answer; the message says what to look at."""


def _call(name: str, fn, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise ExerciseError(f"{name} is not written yet: replace the `raise NotImplementedError` line "
                            "with your code, run that cell, then this one.") from None


def check_value(name: str, answer, expected: float, tol: float = 1e-3, hint: str = "") -> None:
    """A number the learner computed: ``answer`` within ``tol`` of ``expected``."""
    if answer is None:
        raise ExerciseError(f"{name}: not answered yet. Put your number in the answer cell and run it.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise ExerciseError(f"{name}: expected a number, got {type(answer).__name__} {answer!r}.") from None
    if not math.isfinite(value) or abs(value - float(expected)) > tol:
        raise ExerciseError(f"{name}: {value:.6g} is not right (tolerance {tol:g}). {hint}".rstrip())
    print(f"{name}: correct")


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


def check_gram_matrix(fn) -> None:
    """``fn(features)``: ``(B, C, H, W)`` -> ``(B, C, C)`` Gram matrices, averaged over the ``H W`` positions."""
    name = "my_gram_matrix"
    f = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    ours = _call(name, fn, f)
    want = style.gram_matrix(f)
    if not torch.is_tensor(ours) or ours.shape != want.shape:
        shape = tuple(ours.shape) if torch.is_tensor(ours) else type(ours).__name__
        raise ExerciseError(f"{name} on features of shape (2, 3, 4, 5) should give (2, 3, 3): one C x C matrix "
                            f"per image, got {shape}. Flatten to (B, C, H*W) and multiply by its transpose "
                            "over the positions.")
    if torch.allclose(ours, want * 20, atol=1e-4):
        raise ExerciseError(f"{name} sums over the positions: divide by H*W, so the Gram matrix is an average "
                            "and images of different sizes compare.")
    if torch.allclose(ours, want / 3, atol=1e-5):
        raise ExerciseError(f"{name} divides by C*H*W; divide by H*W only (the number of positions).")
    if not torch.allclose(ours, want, atol=1e-5):
        raise ExerciseError(f"{name} differs from G[b, i, j] = sum_p F[b, i, p] F[b, j, p] / (H W): check which "
                            "dimension the product runs over (positions, not channels).")
    shuffled = f.flatten(2)[:, :, torch.randperm(20, generator=torch.Generator().manual_seed(1))].reshape(f.shape)
    if not torch.allclose(_call(name, fn, shuffled), ours, atol=1e-5):
        raise ExerciseError(f"{name} changes when the positions are shuffled: it must sum over all positions.")
    print(f"{name}: correct (matches gan_tutorial.style.gram_matrix, blind to where features are)")


def check_adain(fn) -> None:
    """``fn(content, style_features)``: AdaIN, per sample and channel, population std with ``eps=1e-5``."""
    name = "my_adain"
    g = torch.Generator().manual_seed(0)
    content = torch.randn(2, 3, 6, 6, generator=g) * 2 + 1
    style_f = torch.randn(1, 3, 4, 5, generator=g) * torch.tensor([0.5, 3.0, 1.0]).view(1, 3, 1, 1) - 2
    ours = _call(name, fn, content, style_f)
    want = style.adain(content, style_f)
    if not torch.is_tensor(ours) or ours.shape != content.shape:
        raise ExerciseError(f"{name} should return a tensor shaped like the content features (2, 3, 6, 6).")
    if torch.allclose(ours, want, atol=1e-4):
        print(f"{name}: correct (matches gan_tutorial.style.adain: the content's layout, the style's channel statistics)")
        return
    mu = ours.mean((2, 3))
    if torch.allclose(mu, content.mean((2, 3)), atol=1e-3):
        raise ExerciseError(f"{name} keeps the content's channel means: the result should take the style's "
                            "mean and standard deviation, channel by channel.")
    def _with_stats(dims, unbiased):   # AdaIN with statistics over other axes: the usual slip
        def stats(x):
            return x.mean(dims, keepdim=True), x.std(dims, keepdim=True, unbiased=unbiased)
        (m_c, s_c), (m_s, s_s) = stats(content), stats(style_f)
        return s_s * (content - m_c) / s_c + m_s
    if any(torch.allclose(ours, _with_stats(d, u), atol=1e-3) for d in ((1, 2, 3), (0, 1, 2, 3)) for u in (False, True)):
        raise ExerciseError(f"{name} uses one mean and std for all channels: take the statistics per sample and "
                            "channel, over the H and W axes only (dims 2 and 3, keepdim=True).")
    unbiased = (style_f.var((2, 3), keepdim=True) + 1e-5).sqrt() * (content - content.mean((2, 3), keepdim=True)) / (
        content.var((2, 3), keepdim=True) + 1e-5).sqrt() + style_f.mean((2, 3), keepdim=True)
    if torch.allclose(ours, unbiased, atol=1e-4):
        raise ExerciseError(f"{name} uses the sample (unbiased) variance: use the population one, "
                            "var(..., unbiased=False), as instance normalisation does.")
    raise ExerciseError(f"{name} does not give sigma_s * (content - mu_c) / sigma_c + mu_s with per-channel "
                        f"statistics (max difference {float((ours - want).abs().max()):.3g}).")
