import math

import pytest
import torch

from gan_tutorial import data, metrics


def test_frechet_1d_analytic():
    # N(0, 1) vs N(1, 4): (0 - 1)^2 + (1 - 2)^2 = 2
    assert metrics.frechet_distance([0.0], [[1.0]], [1.0], [[4.0]]) == pytest.approx(2.0)


def test_frechet_diagonal_analytic_and_symmetric():
    mu1, mu2 = torch.tensor([0.0, 1.0]), torch.tensor([2.0, 1.0])
    s1, s2 = torch.diag(torch.tensor([1.0, 9.0])), torch.diag(torch.tensor([4.0, 1.0]))
    expected = 4.0 + (1 - 2) ** 2 + (3 - 1) ** 2
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected)
    assert metrics.frechet_distance(mu2, s2, mu1, s1) == pytest.approx(expected)


def test_frechet_against_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 5, generator=g, dtype=torch.float64), torch.randn(5, 5, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(5, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(5, dtype=torch.float64)
    mu1, mu2 = torch.randn(5, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)
    covmean = scipy_linalg.sqrtm((s1 @ s2).numpy()).real
    expected = float(((mu1 - mu2) ** 2).sum() + torch.trace(s1 + s2) - 2 * covmean.trace())
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_frechet_features_zero_for_same_set_and_grows_with_shift():
    f = torch.randn(500, 8, generator=torch.Generator().manual_seed(0))
    assert metrics.frechet_distance_features(f, f) == pytest.approx(0.0, abs=1e-6)
    assert metrics.frechet_distance_features(f, f + 1.0) == pytest.approx(8.0, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.feature_stats(f[:1])


def test_mode_coverage_real_samples_cover_everything():
    ring = data.ring_2d()
    res = metrics.mode_coverage(ring.sample(4000, generator=torch.Generator().manual_seed(0)), ring)
    assert res["modes_covered"] == 8
    # within 3 sigma in 2-D: 1 - exp(-9/2) = 0.9889
    assert abs(res["high_quality"] - (1 - math.exp(-4.5))) < 0.01


def test_mode_coverage_collapsed_samples():
    grid = data.grid_2d()
    collapsed = grid.means[3] + 0.01 * torch.randn(1000, 2)
    res = metrics.mode_coverage(collapsed, grid)
    assert res["modes_covered"] == 1 and res["high_quality"] == pytest.approx(1.0)
    assert res["counts"][3] == 1000
    far = torch.full((100, 2), 50.0)
    assert metrics.mode_coverage(far, grid)["high_quality"] == 0.0
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        metrics.mode_coverage(torch.zeros(10, 3), grid)


def test_mode_coverage_needs_a_share_of_samples():
    ring = data.ring_2d()
    x = torch.cat([ring.means[0].repeat(990, 1), ring.means[1].repeat(10, 1)])
    # mode 1 holds 10 of 1000 samples, below 0.2 * 1000 / 8 = 25: not counted as covered
    assert metrics.mode_coverage(x, ring)["modes_covered"] == 1


def test_wasserstein_1d():
    a = torch.randn(1000)
    assert metrics.wasserstein_1d(a, a + 2.5) == pytest.approx(2.5)
    assert metrics.wasserstein_1d(a, a[torch.randperm(1000)]) == 0.0
    with pytest.raises(ValueError, match="same size"):
        metrics.wasserstein_1d(a, a[:5])


# --------------------------------------------------------------------------- nearest neighbours
def test_nearest_neighbours_matches_brute_force_cdist():
    g = torch.Generator().manual_seed(0)
    samples, reference = torch.randn(37, 1, 5, 5, generator=g), torch.randn(23, 1, 5, 5, generator=g)
    d, idx = metrics.nearest_neighbours(samples, reference, batch_size=8)   # 5 batches, the last one short
    full = torch.cdist(samples.flatten(1).double(), reference.flatten(1).double())  # every pair, (37, 23)
    expected_d, expected_idx = full.min(dim=1)
    assert d.shape == idx.shape == (37,) and idx.dtype == torch.long
    torch.testing.assert_close(d, expected_d.float())
    assert torch.equal(idx, expected_idx)


def test_nearest_neighbours_analytic_copies_and_shifts():
    g = torch.Generator().manual_seed(1)
    reference = torch.rand(50, 1, 28, 28, generator=g) * 2 - 1
    copies = reference[[7, 0, 49]]
    d, idx = metrics.nearest_neighbours(copies, reference)
    assert d.tolist() == [0.0, 0.0, 0.0]                   # an exact copy: distance exactly 0
    assert idx.tolist() == [7, 0, 49]
    # two far-apart references; a sample offset by c in every one of the D pixels is c * sqrt(D) away
    two = torch.stack([torch.zeros(1, 28, 28), torch.ones(1, 28, 28)])
    d, idx = metrics.nearest_neighbours(two[[0, 1]] + torch.tensor([0.1, -0.2]).view(2, 1, 1, 1), two)
    torch.testing.assert_close(d, torch.tensor([0.1 * 28, 0.2 * 28]))
    assert idx.tolist() == [0, 1]


def test_nearest_neighbours_in_feature_space_and_errors():
    class Features:   # stands in for the MNIST classifier: features = twice the first 3 pixels
        def extract_features(self, images, batch_size=500):
            return 2 * images.flatten(1)[:, :3]

    g = torch.Generator().manual_seed(2)
    samples, reference = torch.randn(11, 1, 4, 4, generator=g), torch.randn(9, 1, 4, 4, generator=g)
    d, idx = metrics.nearest_neighbours(samples, reference, classifier=Features(), space="features", batch_size=4)
    expected_d, expected_idx = torch.cdist(2 * samples.flatten(1)[:, :3], 2 * reference.flatten(1)[:, :3]).min(dim=1)
    torch.testing.assert_close(d, expected_d, rtol=1e-5, atol=1e-5)
    assert torch.equal(idx, expected_idx)
    with pytest.raises(ValueError, match="same shape"):
        metrics.nearest_neighbours(samples, torch.randn(9, 1, 5, 5))
    with pytest.raises(ValueError, match="space"):
        metrics.nearest_neighbours(samples, reference, space="inception")
    with pytest.raises(ValueError, match="at least one"):
        metrics.nearest_neighbours(samples, reference[:0])


def test_mode_coverage_threshold_is_a_fifth_of_an_even_share_of_all_samples():
    ring = data.ring_2d()                                # 8 modes: N = 400 samples -> threshold 0.2 * 400 / 8 = 10
    far = torch.full((400, 2), 50.0)                    # not high quality anywhere
    for hq, covered in ((10, 1), (9, 0)):
        x = far.clone()
        x[:hq] = ring.means[0]                          # exactly on mode 0
        res = metrics.mode_coverage(x, ring)
        assert res["modes_covered"] == covered and res["counts"][0] == hq
