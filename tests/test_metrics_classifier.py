"""Classifier-based image metrics: FID of classifier features, class histogram, label accuracy.

Sanity checks on real MNIST (the held-out images the classifier never trained on): two disjoint
halves of real data must score far better than noise, blurred or shifted digits; a set of one
digit must give a one-spike histogram; real images with their true labels must be read right.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import classifier as C
from gan_tutorial import data, metrics


@pytest.fixture(scope="module")
def holdout(trained_classifier):
    return C.mnist_splits(verbose=False)[1]


def _blur(x):
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
    k = (k[:, None] * k[None]) / k.sum() ** 2                          # 5x5 binomial, sums to 1
    return F.conv2d(F.pad(x + 1, (2, 2, 2, 2)), k[None, None]) - 1   # blur with a black border


# --------------------------------------------------------------------------- FID
def test_fid_real_vs_real_is_far_below_corruptions(trained_classifier, holdout):
    a, b = holdout.images[:1000], holdout.images[1000:]
    g = torch.Generator().manual_seed(0)
    real = metrics.classifier_fid(a, b, trained_classifier)
    noise = metrics.classifier_fid(torch.rand(a.shape, generator=g) * 2 - 1, b, trained_classifier)
    blurred = metrics.classifier_fid(_blur(a), b, trained_classifier)
    shifted = metrics.classifier_fid(torch.roll(a, 3, dims=-1), b, trained_classifier)
    assert real >= 0
    assert 5 * real < blurred, (real, blurred)
    assert 5 * real < shifted, (real, shifted)
    assert 50 * real < noise, (real, noise)


def test_fid_grows_with_the_shift(trained_classifier, holdout):
    a, b = holdout.images[:1000], holdout.images[1000:]
    fids = [metrics.classifier_fid(torch.roll(a, s, dims=-1), b, trained_classifier) for s in (0, 2, 4)]
    assert fids[0] < fids[1] < fids[2]


def test_fid_of_a_set_with_itself_is_zero_and_symmetric(trained_classifier, holdout):
    a, b = holdout.images[:300], holdout.images[300:700]
    assert metrics.classifier_fid(a, a, trained_classifier) == pytest.approx(0.0, abs=1e-4)
    assert metrics.classifier_fid(a, b, trained_classifier) == pytest.approx(
        metrics.classifier_fid(b, a, trained_classifier), rel=1e-6)


def test_fid_does_not_depend_on_batch_size(trained_classifier, holdout):
    a, b = holdout.images[:300], holdout.images[300:600]
    assert metrics.classifier_fid(a, b, trained_classifier, batch_size=64) == pytest.approx(
        metrics.classifier_fid(a, b, trained_classifier, batch_size=500), rel=1e-5)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # dead ReLU units make the covariances singular
def test_fid_matches_scipy_on_classifier_features(trained_classifier, holdout):
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a, b = holdout.images[:600], holdout.images[600:1200]
    fa, fb = trained_classifier.extract_features(a).double(), trained_classifier.extract_features(b).double()
    mu1, mu2 = fa.mean(0), fb.mean(0)
    s1, s2 = torch.cov(fa.T), torch.cov(fb.T)
    covmean = scipy_linalg.sqrtm((s1 @ s2).numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2)) - 2 * covmean.trace()
    assert metrics.classifier_fid(a, b, trained_classifier) == pytest.approx(expected, rel=1e-4)


def test_fid_accepts_32px_images(trained_classifier, holdout):
    a, b = holdout.images[:300], holdout.images[300:600]
    assert metrics.classifier_fid(data._resize(a, 32), b, trained_classifier) == pytest.approx(
        metrics.classifier_fid(a, b, trained_classifier), rel=1e-6)


# --------------------------------------------------------------------------- histogram
def test_histogram_of_a_single_digit(trained_classifier, holdout):
    threes = holdout.images[holdout.labels == 3]
    h = metrics.class_histogram(threes, trained_classifier)
    assert sum(h["counts"]) == len(threes)
    assert h["fractions"][3] >= 0.95
    assert h["min_fraction"] == 0.0
    assert h["kl_from_uniform"] > 0.9 * math.log(10)  # the maximum is log 10 (every image the same digit)
    assert torch.equal(h["predictions"], trained_classifier.predict(threes))


def test_histogram_of_balanced_real_data(trained_classifier, holdout):
    h = metrics.class_histogram(holdout.images, trained_classifier)
    assert len(h["counts"]) == 10 and sum(h["fractions"]) == pytest.approx(1.0)
    assert h["kl_from_uniform"] < 0.02
    assert h["min_fraction"] > 0.07
    assert h["mean_confidence"] > 0.9


def test_histogram_kl_formula(trained_classifier, monkeypatch):
    # 3 images: predictions 0, 0, 1 -> p = (2/3, 1/3, 0, ...): KL = 2/3 log(20/3) + 1/3 log(10/3)
    logits = torch.full((3, 10), -5.0)
    logits[0, 0] = logits[1, 0] = logits[2, 1] = 5.0
    monkeypatch.setattr(trained_classifier, "logits", lambda images, batch_size=500: logits)
    h = metrics.class_histogram(torch.zeros(3, 1, 28, 28), trained_classifier)
    assert h["counts"][:3] == [2, 1, 0]
    assert h["kl_from_uniform"] == pytest.approx(2 / 3 * math.log(20 / 3) + 1 / 3 * math.log(10 / 3))
    assert h["min_fraction"] == 0.0


# --------------------------------------------------------------------------- label accuracy
def test_label_accuracy_of_real_images(trained_classifier, holdout):
    assert metrics.label_accuracy(holdout.images, holdout.labels, trained_classifier) >= 0.97
    wrong = (holdout.labels + 1) % 10
    assert metrics.label_accuracy(holdout.images, wrong, trained_classifier) < 0.05


def test_label_accuracy_rejects_mismatched_labels(trained_classifier, holdout):
    with pytest.raises(ValueError):
        metrics.label_accuracy(holdout.images[:10], holdout.labels[:9], trained_classifier)


# --------------------------------------------------------------------------- all together
def test_evaluate_images_is_json_friendly_and_consistent(trained_classifier, holdout):
    import json

    a, b = holdout.images[:300], holdout.images[300:600]
    out = metrics.evaluate_images(a, b, trained_classifier, labels=holdout.labels[:300])
    json.dumps(out)
    assert out["fid"] == pytest.approx(metrics.classifier_fid(a, b, trained_classifier))
    assert out["label_accuracy"] == pytest.approx(metrics.label_accuracy(a, holdout.labels[:300], trained_classifier))
    assert out["num_fake"] == out["num_real"] == 300
    assert "label_accuracy" not in metrics.evaluate_images(a, b, trained_classifier)
    with pytest.raises(ValueError):
        metrics.evaluate_images(a, b, trained_classifier, labels=holdout.labels[:3])


def test_default_classifier_comes_from_the_cache(trained_classifier, holdout, monkeypatch):
    monkeypatch.setattr(C, "get_classifier", lambda **kw: trained_classifier)
    a = holdout.images[:200]
    labels = holdout.labels[:200]
    assert metrics.label_accuracy(a, labels) == metrics.label_accuracy(a, labels, trained_classifier)
