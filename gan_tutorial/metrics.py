"""Numbers that tell a good generator from a bad one.

* :func:`frechet_distance` -- the Fréchet (2-Wasserstein) distance between two Gaussians fitted to
  feature sets: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``. FID is this on
  Inception features; the tutorial uses features of a small MNIST classifier instead.
* :func:`mode_coverage` -- for samples of a 2-D Gaussian mixture: modes covered and the share of
  high-quality samples (within ``num_sigmas`` standard deviations of a mode centre).
* :func:`wasserstein_1d` -- exact 1-D Wasserstein-1 distance between two equal-size samples.
* :func:`classifier_fid`, :func:`class_histogram`, :func:`label_accuracy`, :func:`evaluate_images`
  -- image metrics measured with the small MNIST classifier of :mod:`gan_tutorial.classifier`.
* :func:`nearest_neighbours` -- a memorisation check: for each generated image, the distance to
  its nearest image in a reference set (the training images), in pixels or classifier features.

For colour images, :func:`gan_tutorial.fid.colour_fid` gives the Fréchet distance of Inception-v3
features (FID proper; optional extra ``fid``) or of any feature extractor you pass.
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
    value = float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * torch.trace(cross))
    return max(value, 0.0)  # rounding can give -1e-6 for identical sets


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
    nearest mode centre. A mode is *covered* when at least ``min_share * N / K`` of the ``N``
    samples (and at least 1) are high-quality samples of that mode: ``min_share`` of its even share
    of all samples.

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


# --------------------------------------------------------------------------- image metrics (MNIST classifier)
# These use :class:`gan_tutorial.classifier.MNISTClassifier`. ``classifier=None`` means
# ``get_classifier(verbose=False)``: the package's committed weights (trained only if they are missing).

def _classifier(classifier):
    if classifier is not None:
        return classifier
    from .classifier import get_classifier

    return get_classifier(verbose=False)


def classifier_fid(fake_images: torch.Tensor, real_images: torch.Tensor, classifier=None,
                   batch_size: int = 500) -> float:
    """Fréchet distance between the classifier features of two image sets ("classifier FID").

    Both sets are passed through ``classifier.features`` (128 numbers per image), a Gaussian is
    fitted to each, and :func:`frechet_distance` compares them. Lower is better; 0 means the two
    feature distributions have the same mean and covariance.

    This is NOT comparable to FID numbers in papers: those use Inception-v3 features (2048-D,
    trained on ImageNet photos); this uses a small MNIST network, so the scale is different.
    Compare numbers only with each other, computed with the same classifier and the same number
    of images (the estimate is biased upwards for small sets; use >= 1,000 images per set when
    you can) and at the same resolution (resizing 64 px images back to 28 px blurs them a little,
    which the distance notices: compare with real images resized the same way).
    """
    clf = _classifier(classifier)
    fa = clf.extract_features(fake_images, batch_size)
    fb = clf.extract_features(real_images, batch_size)
    return max(0.0, frechet_distance_features(fa, fb))  # clip rounding noise (~1e-6) below zero


def class_histogram(images: torch.Tensor, classifier=None, batch_size: int = 500) -> dict:
    """How the classifier labels a set of images: a quick mode-collapse check.

    Returns a dict with
    ``counts`` (list of 10 ints), ``fractions`` (list of 10 floats), ``kl_from_uniform``
    (``KL(p || uniform) = sum_k p_k log(10 p_k)`` in nats: 0 when all digits are equally common,
    ``log 10 = 2.30`` when every image gets the same digit), ``min_fraction`` (share of the
    rarest digit; 0.1 is perfect balance), ``mean_confidence`` (average top softmax
    probability: low values mean the classifier cannot tell what the images show) and
    ``predictions`` (a ``long`` tensor ``(N,)``).
    """
    clf = _classifier(classifier)
    logits = clf.logits(images, batch_size)
    num_classes = logits.shape[1]
    predictions = logits.argmax(dim=1)
    counts = torch.bincount(predictions, minlength=num_classes)
    p = counts.double() / counts.sum()
    nonzero = p > 0
    kl = float((p[nonzero] * torch.log(p[nonzero] * num_classes)).sum())
    return {"counts": counts.tolist(), "fractions": p.tolist(), "kl_from_uniform": kl,
            "min_fraction": float(p.min()), "mean_confidence": float(logits.softmax(dim=1).max(dim=1).values.mean()),
            "predictions": predictions}


def label_accuracy(images: torch.Tensor, labels, classifier=None, batch_size: int = 500) -> float:
    """Share of images the classifier reads as the digit they were meant to show.

    For a conditional generator: generate ``images = G(z, labels)`` and pass the same
    ``labels``. Real MNIST images with their true labels score about the classifier's held-out
    accuracy (~0.98), which is the ceiling to compare against.
    """
    return _classifier(classifier).accuracy(images, labels, batch_size)


def evaluate_images(fake_images: torch.Tensor, real_images: torch.Tensor, classifier=None, labels=None,
                    batch_size: int = 500) -> dict:
    """All image metrics in one JSON-friendly dict (plain numbers and lists, no tensors).

    Keys: ``fid`` (:func:`classifier_fid` against ``real_images``), ``kl_from_uniform``,
    ``min_fraction``, ``mean_confidence``, ``counts``, ``fractions`` (from
    :func:`class_histogram` of the fakes), ``num_fake``, ``num_real``; plus ``label_accuracy``
    when ``labels`` (the digits the fakes were generated for) are given.
    """
    clf = _classifier(classifier)
    hist = class_histogram(fake_images, clf, batch_size)
    out = {"fid": classifier_fid(fake_images, real_images, clf, batch_size),
           "kl_from_uniform": hist["kl_from_uniform"], "min_fraction": hist["min_fraction"],
           "mean_confidence": hist["mean_confidence"], "counts": hist["counts"], "fractions": hist["fractions"],
           "num_fake": int(fake_images.shape[0]), "num_real": int(real_images.shape[0])}
    if labels is not None:
        labels = torch.as_tensor(labels).reshape(-1).cpu().long()
        if labels.shape[0] != fake_images.shape[0]:
            raise ValueError(f"got {labels.shape[0]} labels for {fake_images.shape[0]} images")
        out["label_accuracy"] = float((hist["predictions"] == labels).float().mean())
    return out


def nearest_neighbours(samples: torch.Tensor, reference: torch.Tensor, classifier=None, space: str = "pixels",
                       batch_size: int = 500, candidates: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample, its nearest image in ``reference``: ``(distances, indices)``, both ``(N,)``.

    A memorisation check. Compute it for generated images against the generator's training set,
    and, as the baseline, for real images the generator never saw against the same set: a
    generator that copies its training images puts many samples much closer to them (distance 0
    for an exact copy) than fresh real digits are.

    Args:
        samples: ``(N, ...)`` images (or any vectors); ``reference``: ``(M, ...)``, the same shape per item.
        classifier: the net whose features ``space="features"`` uses (``None``: the package's
            metric classifier); ignored for pixels.
        space: ``"pixels"`` -- Euclidean distance between the flattened images (for images in
            [-1, 1], 2 per pixel at most); ``"features"`` -- between the classifier's 128 penultimate
            features (``classifier.extract_features``), which look at shapes more than at single pixels.
        batch_size: samples compared at a time (memory ``batch_size x M``).
        candidates: how many nearest candidates, found by a fast matrix product, are re-measured
            exactly (so that an exact copy gets distance 0, not rounding noise).

    Returns CPU tensors: ``distances`` (float32, Euclidean) and ``indices`` (long) into ``reference``.
    """
    if space not in ("pixels", "features"):
        raise ValueError(f"space must be 'pixels' or 'features', got {space!r}")
    samples, reference = torch.as_tensor(samples), torch.as_tensor(reference)
    if reference.shape[0] == 0 or samples.shape[0] == 0:
        raise ValueError(f"need at least one sample and one reference item, got {samples.shape[0]} and "
                         f"{reference.shape[0]}")
    if space == "features":
        clf = _classifier(classifier)
        a, b = clf.extract_features(samples, batch_size), clf.extract_features(reference, batch_size)
    else:
        if samples.shape[1:] != reference.shape[1:]:
            raise ValueError(f"samples {tuple(samples.shape[1:])} and reference {tuple(reference.shape[1:])} "
                             "items must have the same shape")
        a, b = samples, reference
    a = a.detach().cpu().reshape(a.shape[0], -1).double()
    b = b.detach().cpu().reshape(b.shape[0], -1).double()
    b_sq = (b * b).sum(1)
    k = max(1, min(candidates, b.shape[0]))
    distances, indices = [], []
    for i in range(0, a.shape[0], max(1, batch_size)):
        x = a[i : i + batch_size]
        sq = (x * x).sum(1, keepdim=True) + b_sq - 2 * x @ b.T             # (B, M) squared distances
        cand = sq.topk(k, dim=1, largest=False).indices                     # (B, k)
        exact = (x[:, None, :] - b[cand]).norm(dim=2)                       # (B, k), no cancellation
        best = exact.argmin(dim=1)
        distances.append(exact.gather(1, best[:, None]).squeeze(1))
        indices.append(cand.gather(1, best[:, None]).squeeze(1))
    return torch.cat(distances).float(), torch.cat(indices)
