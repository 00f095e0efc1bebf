"""Latent interpolation, class-histogram chart and the latent explorer (plotting.py / widgets.py)."""
import math

import matplotlib.pyplot as plt
import pytest
import torch

from gan_tutorial import models, plotting, widgets


def _tiny_generator():
    torch.manual_seed(0)
    return models.MLPGenerator(latent_dim=8, out_shape=(1, 6, 6), hidden=(16,)).eval()


# --------------------------------------------------------------------------- interpolate_latents
def test_interpolate_smoke_and_endpoints():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(16, generator=g), torch.randn(16, generator=g)
    for method in ("lerp", "slerp"):
        path = plotting.interpolate_latents(z0, z1, 7, method)
        assert path.shape == (7, 16)
        torch.testing.assert_close(path[0], z0, atol=1e-5, rtol=0)
        torch.testing.assert_close(path[-1], z1, atol=1e-5, rtol=0)


def test_interpolate_bad_input_raises():
    with pytest.raises(ValueError, match="same size"):
        plotting.interpolate_latents(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="at least 2"):
        plotting.interpolate_latents(torch.ones(3), torch.ones(3), num=1)
    with pytest.raises(ValueError, match="lerp"):
        plotting.interpolate_latents(torch.ones(3), torch.ones(3), method="cubic")


def test_lerp_matches_torch_lerp():
    z0, z1 = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([3.0, 0.0, -1.0])
    path = plotting.interpolate_latents(z0, z1, 5, "lerp")
    for i, t in enumerate(torch.linspace(0, 1, 5)):
        torch.testing.assert_close(path[i], torch.lerp(z0, z1, t))


def test_slerp_on_orthogonal_unit_vectors_is_the_circle():
    # between e1 and e2 the great circle is (cos(t pi/2), sin(t pi/2)): known values, unit norm
    path = plotting.interpolate_latents(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 5, "slerp")
    angles = torch.linspace(0, 1, 5) * math.pi / 2
    torch.testing.assert_close(path, torch.stack([angles.cos(), angles.sin()], dim=1), atol=1e-6, rtol=0)
    # lerp's midpoint is shorter: 1/sqrt(2)
    mid = plotting.interpolate_latents(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 3, "lerp")[1]
    assert float(mid.norm()) == pytest.approx(1 / math.sqrt(2))


def test_slerp_parallel_vectors_fall_back_to_lerp():
    z = torch.tensor([1.0, 2.0, 3.0])
    path = plotting.interpolate_latents(z, 2 * z, 3, "slerp")
    torch.testing.assert_close(path[1], 1.5 * z)
    assert torch.isfinite(path).all()


# --------------------------------------------------------------------------- plot_interpolation
def test_plot_interpolation_ends_are_the_end_codes():
    net_G = _tiny_generator()
    ax, images = plotting.plot_interpolation(net_G, num_rows=2, num_steps=4, seed=3)
    assert images.shape == (8, 1, 6, 6)
    g = torch.Generator().manual_seed(3)
    ends = torch.randn(2, 2, 8, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(images[0], net_G(ends[0, :1])[0])     # row 0 starts at z0
        torch.testing.assert_close(images[7], net_G(ends[1, 1:])[0])     # row 1 ends at z1
    assert net_G.training is False
    plt.close("all")


# --------------------------------------------------------------------------- plot_class_histogram
def test_class_histogram_bars_and_colours():
    fractions = [0.2, 0.01] + [0.0975] * 8
    ax = plotting.plot_class_histogram({"fractions": fractions})
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx(fractions)
    red = [p.get_facecolor() for p in ax.patches]
    assert red[1] != red[0]  # the 1 % class is marked
    assert "1.0%" in ax.get_title()
    plt.close("all")


def test_class_histogram_accepts_tensor_and_rejects_empty():
    ax = plotting.plot_class_histogram(torch.full((10,), 0.1))
    assert len(ax.patches) == 10
    with pytest.raises(ValueError):
        plotting.plot_class_histogram([])
    plt.close("all")


# --------------------------------------------------------------------------- latent explorer
def test_latent_directions_are_orthonormal():
    d = widgets.latent_directions(16, 4, seed=1)
    assert d.shape == (4, 16)
    torch.testing.assert_close(d @ d.T, torch.eye(4), atol=1e-5, rtol=0)
    with pytest.raises(ValueError):
        widgets.latent_directions(4, 5)


def test_latent_explorer_follows_the_sliders():
    pytest.importorskip("ipywidgets")
    net_G = _tiny_generator()
    box = widgets.latent_explorer(net_G, num_directions=3, num_samples=5, seed=0)
    assert len(box.sliders) == 3
    base = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(box.images(), net_G(base))
    box.sliders[1].value = 2.0  # triggers a redraw; must not raise or block
    d = widgets.latent_directions(8, 3, seed=0)
    with torch.no_grad():
        torch.testing.assert_close(box.images(), net_G(base + 2.0 * d[1]))
    plt.close("all")


def test_latent_explorer_rejects_wrong_directions():
    pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError, match="shape"):
        widgets.latent_explorer(_tiny_generator(), directions=torch.zeros(2, 5))


# --------------------------------------------------------------------------- plot_by_class
def test_plot_by_class_rows_hold_the_right_images():
    images = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, -0.5, 0.0, 0.5)])
    preds = torch.tensor([2, 0, 2, 2])
    ax = plotting.plot_by_class(images, preds, num_classes=3, per_class=2)
    grid = ax.get_images()[0].get_array()
    # make_grid: 2 px padding; row c starts at y = 2 + 4 c; [-1, 1] shown as [0, 1]
    assert float(grid[2, 2, 0]) == pytest.approx(0.25)   # class 0: the -0.5 image
    assert float(grid[6, 2, 0]) == pytest.approx(1.0)    # class 1: empty, white
    assert float(grid[10, 2, 0]) == pytest.approx(0.0)   # class 2: first the -1 image ...
    assert float(grid[10, 6, 0]) == pytest.approx(0.5)   # ... then the 0 image (only two per row)
    with pytest.raises(ValueError, match="predictions"):
        plotting.plot_by_class(images, preds[:3])
    plt.close("all")


# --------------------------------------------------------------------------- animate_snapshots
def test_animation_keeps_the_last_frame_and_stays_small():
    g = torch.Generator().manual_seed(0)
    snaps = [{"step": 10 * i, "samples": torch.rand(16, 1, 8, 8, generator=g) * 2 - 1} for i in range(8)]
    html = plotting.animate_snapshots(snaps, nrow=4, max_frames=3).data
    assert html.count("data:image/jpeg;base64") == 5          # frames 0, 2, 4, 6 and the last one, 7
    assert "data:image/png" not in html                        # JPEG frames: notebooks stay small
    with pytest.raises(ValueError, match="snapshot_every"):
        plotting.animate_snapshots([])
