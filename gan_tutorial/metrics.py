"""Numbers that tell a good generator from a bad one.

* :func:`frechet_distance` -- the Fréchet (2-Wasserstein) distance between two Gaussians fitted to
  feature sets: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``. FID is this on
  Inception features; the tutorial uses features of a small MNIST classifier instead.
* :func:`mode_coverage` -- for samples of a 2-D Gaussian mixture: modes covered and the share of
  high-quality samples (within ``num_sigmas`` standard deviations of a mode centre).
* :func:`wasserstein_1d` -- exact 1-D Wasserstein-1 distance between two equal-size samples.
"""
from __future__ import annotations

import torch


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64."""
    mu1, mu2 = torch.as_tensor(mu1, dtype=torch.float64), torch.as_tensor(mu2, dtype=torch.float64)
    s1, s2 = torch.as_tensor(sigma1, dtype=torch.float64), torch.as_tensor(sigma2, dtype=torch.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.numel(), mu1.numel()):
        raise ValueError(f"shapes do not match: mu {tuple(mu1.shape)}/{tuple(mu2.shape)}, "
                         f"sigma {tuple(s1.shape)}/{tuple(s2.shape)}")
    r1 = _sqrt_psd(s1)
    cross = _sqrt_psd(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * torch.trace(cross))


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased) of ``(N, D)`` features, in float64."""
    f = features.detach().double().reshape(features.shape[0], -1)
    if f.shape[0] < 2:
        raise ValueError("need at least 2 feature vectors to estimate a covariance")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def frechet_distance_features(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two ``(N, D)`` feature sets."""
    return frechet_distance(*feature_stats(features_a), *feature_stats(features_b))


def mode_coverage(samples: torch.Tensor, mixture, num_sigmas: float = 3.0, min_share: float = 0.2) -> dict:
    """Mode coverage of samples from a Gaussian mixture (e.g. ``data.ring_2d()``).

    A sample is *high quality* when it lies within ``num_sigmas`` standard deviations of its
    nearest mode centre. A mode is *covered* when it holds at least ``min_share`` of the
    high-quality samples it would get under a uniform spread (``min_share * N / K``, at least 1).

    Returns ``{"modes_covered", "num_modes", "high_quality", "counts"}`` where ``high_quality``
    is a fraction in [0, 1] and ``counts`` the high-quality samples per mode.
    """
    x = torch.as_tensor(samples, dtype=torch.float32).detach().cpu()
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2 or x.shape[1] != mixture.dim:
        raise ValueError(f"samples must have shape (N, {mixture.dim}), got {tuple(x.shape)}")
    dist = torch.cdist(x, mixture.means)                      # (N, K)
    nearest_d, nearest = dist.min(dim=1)
    good = nearest_d <= num_sigmas * mixture.stds[nearest]
    counts = torch.bincount(nearest[good], minlength=mixture.num_modes)
    threshold = max(1.0, min_share * x.shape[0] / mixture.num_modes)
    return {"modes_covered": int((counts >= threshold).sum()), "num_modes": mixture.num_modes,
            "high_quality": float(good.float().mean()) if x.shape[0] else 0.0, "counts": counts.tolist()}


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor) -> float:
    """Wasserstein-1 distance between two 1-D samples of the same size (mean gap of sorted values)."""
    a, b = torch.as_tensor(a).flatten().double(), torch.as_tensor(b).flatten().double()
    if a.numel() != b.numel():
        raise ValueError(f"samples must have the same size, got {a.numel()} and {b.numel()}")
    return float((a.sort().values - b.sort().values).abs().mean())
