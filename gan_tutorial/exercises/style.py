"""Notebook 06's checks: the Gram matrix and AdaIN."""
from __future__ import annotations

import torch

from .. import style
from ._core import ExerciseError, _call

__all__ = ["check_gram_matrix", "check_adain"]


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
