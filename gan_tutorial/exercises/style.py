"""Notebook 06's checks: the Gram matrix, AdaIN, a mean-and-std style loss, and Gram matrices at two sizes."""
from __future__ import annotations

import torch

from .. import style
from ._core import ExerciseError, _call

__all__ = ["check_gram_matrix", "check_adain", "check_mean_std_loss", "check_gram_size_difference"]


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


def _mean_std(f, g, dims=(2, 3), unbiased=False, power=1.0, reduce="mean"):
    """``mean_std_loss`` with a choice of the usual slips."""
    mu_f, mu_g = f.mean(dims), g.mean(dims)
    sd_f, sd_g = f.var(dims, unbiased=unbiased) ** (power / 2), g.var(dims, unbiased=unbiased) ** (power / 2)
    terms = (mu_f - mu_g) ** 2 + (sd_f - sd_g) ** 2
    return terms.sum() if reduce == "sum" else terms.mean()


def check_mean_std_loss(fn) -> None:
    """``fn(f, g)``: the mean over channels of ``(mu_f - mu_g)^2 + (sigma_f - sigma_g)^2`` (population std)."""
    name = "mean_std_loss"
    gen = torch.Generator().manual_seed(0)
    scale = torch.tensor([0.5, 1.0, 2.0, 3.0]).view(1, 4, 1, 1)
    f = torch.randn(1, 4, 6, 6, generator=gen) * scale + torch.tensor([1.0, -1.0, 0.0, 2.0]).view(1, 4, 1, 1)
    g = torch.randn(1, 4, 6, 6, generator=gen) * 2 - 0.5
    ours = _call(name, fn, f, g)
    if not torch.is_tensor(ours) or ours.numel() != 1:
        raise ExerciseError(f"{name} should return one number (a 0-d tensor): the mean over the channels.")
    if abs(float(_call(name, fn, f, f))) > 1e-6:
        raise ExerciseError(f"{name}(f, f) should be 0: identical maps have identical statistics.")
    want = _mean_std(f, g).item()
    slips = [
        (_mean_std(f, g, unbiased=True), "uses the sample (unbiased) standard deviation: use the population one, "
                                         "std(..., unbiased=False), as in exercise 2."),
        (_mean_std(f, g, power=2.0), "compares variances: take the standard deviations, the square roots."),
        (_mean_std(f, g, reduce="sum"), "sums over the channels: take the mean."),
        (_mean_std(f, g, dims=(1, 2, 3)), "uses one mean and std for all channels: take them per channel, over "
                                          "the positions only (dims 2 and 3)."),
        (_mean_std(f, g, dims=(1,)), "takes the statistics over the channels, per position: take them per channel, "
                                     "over the positions (dims 2 and 3)."),
    ]
    if abs(ours.item() - want) > 1e-4:
        for value, hint in slips:
            if abs(ours.item() - value.item()) < 1e-4:
                raise ExerciseError(f"{name} {hint}")
        raise ExerciseError(f"{name} gives {ours.item():.4f} on two random maps, which is not the mean over channels "
                            "of (mu_f - mu_g)^2 + (sigma_f - sigma_g)^2.")
    shuffled = f.flatten(2)[:, :, torch.randperm(36, generator=gen)].reshape(f.shape)
    if abs(float(_call(name, fn, shuffled, g)) - want) > 1e-4:
        raise ExerciseError(f"{name} changes when the positions are shuffled: the statistics must cover all positions.")
    g_small = torch.randn(1, 4, 3, 5, generator=gen)
    try:
        other = float(_call(name, fn, f, g_small))
    except RuntimeError as e:
        raise ExerciseError(f"{name} fails on maps of different sizes (6 x 6 and 3 x 5): {str(e).splitlines()[0]}. "
                            "Compare statistics per channel, never the maps position by position.") from None
    if abs(other - _mean_std(f, g_small).item()) > 1e-4:
        raise ExerciseError(f"{name} is wrong when the two maps have different sizes: take each map's statistics "
                            "over its own positions.")
    print(f"{name}: correct (per-channel means and standard deviations, blind to where features are)")


def check_gram_size_difference(answer, extractor, style_image, layer: str = "relu2_1") -> None:
    """Exercise 4: ``||G_64 - G_128|| / ||G_128||`` for the (normalised) Gram matrices of ``style_image``
    at ``layer``, resized with ``style.resize`` to 64 and 128 px."""
    name = "exercise 4"
    if answer is None:
        raise ExerciseError(f"{name}: not answered yet. Put your number in relative_difference and run that cell.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise ExerciseError(f"{name}: expected a number, got {type(answer).__name__}; .item() turns a 0-d "
                            "tensor into one.") from None
    with torch.no_grad():
        feats = {s: extractor(style.resize(style_image, s), [layer])[layer] for s in (64, 128)}
    grams = {s: style.gram_matrix(f) for s, f in feats.items()}
    raw = {s: grams[s] * f.shape[2] * f.shape[3] for s, f in feats.items()}   # F F^T, not divided by H W
    want = ((grams[64] - grams[128]).norm() / grams[128].norm()).item()
    tol = 1e-3 * max(want, 1e-3)
    if abs(value - want) <= tol:
        print(f"{name}: correct")
        return
    if abs(value - ((raw[64] - raw[128]).norm() / raw[128].norm()).item()) <= 1e-3:
        raise ExerciseError(f"{name}: {value:.4g} is the difference of the unnormalised Gram matrices F F^T. The "
                            "number asked for uses style.gram_matrix, divided by H W.")
    if abs(value - ((grams[64] - grams[128]).norm() / grams[64].norm()).item()) <= tol:
        raise ExerciseError(f"{name}: {value:.4g} divides by the norm of the 64-px Gram matrix; divide by the "
                            "128-px one, ||G_64 - G_128|| / ||G_128||.")
    raise ExerciseError(f"{name}: {value:.4g} is not right. Compute both Gram matrices at {layer} with "
                        "style.gram_matrix, from style.resize(style_img, 64) and style.resize(style_img, 128), then "
                        "||G_64 - G_128|| / ||G_128||.")
