"""Tests for gan_tutorial.style: Gram matrix, losses, AdaIN, the VGG feature extractor and its
offline fallback, and a tiny style-transfer run."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import style


@pytest.fixture(scope="module")
def vgg_small():
    """Random-weight VGG-19 cut after relu3_1 (cheap), with no announcement."""
    return style.VGGFeatures(layers=("relu1_1", "conv2_1", "relu3_1"), weights="random", verbose=False)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty torch.hub cache and no network (every download raises): an offline machine.

    ``.path`` is the cache folder, ``.calls`` the download attempts (URL and keyword arguments)."""
    calls = []

    def no_network(url, *args, **kwargs):
        calls.append((url, kwargs))
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.delenv("GAN_TUTORIAL_DOWNLOAD", raising=False)
    return SimpleNamespace(path=tmp_path / "hub", calls=calls)


# --------------------------------------------------------------------------- Gram matrix
def test_gram_matches_explicit_loops():
    torch.manual_seed(0)
    f = torch.randn(2, 3, 4, 5)
    g = style.gram_matrix(f)
    assert g.shape == (2, 3, 3)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                explicit = sum(f[b, i, y, x] * f[b, j, y, x] for y in range(4) for x in range(5)) / 20
                assert torch.isclose(g[b, i, j], explicit, atol=1e-6)


def test_gram_matches_einsum_and_is_symmetric_psd():
    torch.manual_seed(1)
    f = torch.randn(3, 8, 7, 6, dtype=torch.float64)
    g = style.gram_matrix(f)
    torch.testing.assert_close(g, torch.einsum("bihw,bjhw->bij", f, f) / 42)
    torch.testing.assert_close(g, g.transpose(1, 2))
    assert torch.linalg.eigvalsh(g).min() > -1e-10


def test_gram_does_not_grow_with_image_size():
    """Normalised by H W: tiling a feature map 2x2 leaves the Gram matrix unchanged."""
    f = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(style.gram_matrix(f.repeat(1, 1, 2, 2)), style.gram_matrix(f))


def test_gram_rejects_wrong_rank():
    with pytest.raises(ValueError, match="B, C, H, W"):
        style.gram_matrix(torch.randn(3, 4, 5))


# --------------------------------------------------------------------------- losses
def test_content_loss_is_mse():
    a, b = torch.randn(2, 4, 6, 6), torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(style.content_loss(a, b), F.mse_loss(a, b))
    torch.testing.assert_close(style.content_loss(a, b, normalize=True), F.mse_loss(a, b) / b.pow(2).mean())
    assert style.content_loss(b, b) == 0


def test_style_loss_zero_for_identical_features():
    torch.manual_seed(2)
    feats = [torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4)]
    grams = [style.gram_matrix(f) for f in feats]
    assert style.style_loss(feats, grams) == 0
    assert style.style_loss(feats, grams, normalize=True) == 0
    assert style.style_loss(feats[0] * 1.1, grams[0]) > 0


def test_style_loss_invariant_to_spatial_shuffle():
    """The same permutation of positions for every channel leaves the Gram matrix unchanged."""
    torch.manual_seed(3)
    f = torch.randn(1, 5, 6, 7)
    perm = torch.randperm(42)
    shuffled = f.reshape(1, 5, 42)[:, :, perm].reshape(1, 5, 6, 7)
    assert not torch.allclose(shuffled, f)
    assert style.style_loss(shuffled, style.gram_matrix(f)) < 1e-12
    # ... but shuffling each channel independently breaks co-activations and is noticed
    broken = torch.stack([c.flatten()[torch.randperm(42)] for c in f[0]]).reshape(1, 5, 6, 7)
    assert style.style_loss(broken, style.gram_matrix(f)) > 1e-3


def test_style_loss_value_and_normalisation():
    torch.manual_seed(4)
    f, t = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    a = style.gram_matrix(t)
    plain = ((style.gram_matrix(f) - a) ** 2).mean()
    torch.testing.assert_close(style.style_loss(f, a), plain)
    torch.testing.assert_close(style.style_loss({"x": f}, {"x": a}, normalize=True), plain / a.pow(2).mean())
    # two layers: the mean of the two terms
    torch.testing.assert_close(style.style_loss([f, t], [a, a]), (plain + 0) / 2)
    with pytest.raises(ValueError, match="one target Gram per feature map"):
        style.style_loss([f, t], [a])


def test_style_loss_gradient_matches_autograd_of_explicit_formula():
    torch.manual_seed(5)
    f = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    a = style.gram_matrix(torch.randn(1, 3, 4, 4, dtype=torch.float64))
    (g1,) = torch.autograd.grad(style.style_loss(f, a), f)
    explicit = ((torch.einsum("bihw,bjhw->bij", f, f) / 16 - a) ** 2).mean()
    (g2,) = torch.autograd.grad(explicit, f)
    torch.testing.assert_close(g1, g2)


# --------------------------------------------------------------------------- AdaIN
def test_adain_takes_style_statistics():
    torch.manual_seed(6)
    content = torch.randn(2, 4, 8, 8) * 3 + 1
    style_maps = torch.randn(2, 4, 5, 6) * torch.tensor([0.5, 1.0, 2.0, 4.0]).view(1, 4, 1, 1) - 2
    out = style.adain(content, style_maps)
    assert out.shape == content.shape
    torch.testing.assert_close(out.mean((2, 3)), style_maps.mean((2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std((2, 3), unbiased=False), style_maps.std((2, 3), unbiased=False),
                               atol=1e-3, rtol=1e-3)
    # the normalised content pattern is kept: per channel, out is an increasing affine map of content
    corr = torch.corrcoef(torch.stack([out[0, 0].flatten(), content[0, 0].flatten()]))[0, 1]
    assert corr > 0.9999


def test_adain_rejects_channel_mismatch():
    with pytest.raises(ValueError, match="same C"):
        style.adain(torch.randn(1, 3, 4, 4), torch.randn(1, 4, 4, 4))


# --------------------------------------------------------------------------- feature extractor
def test_layer_names_follow_vgg19():
    names = style.VGG19_LAYERS
    assert names[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert names.index("conv4_2") == 21 and names[-1] == "pool5" and len(names) == 37


def test_extractor_returns_named_layers_with_shapes(vgg_small):
    x = torch.rand(2, 3, 32, 48)
    out = vgg_small(x)
    assert list(out) == ["relu1_1", "conv2_1", "relu3_1"]
    assert out["relu1_1"].shape == (2, 64, 32, 48)
    assert out["conv2_1"].shape == (2, 128, 16, 24)
    assert out["relu3_1"].shape == (2, 256, 8, 12)
    assert (out["relu1_1"] >= 0).all() and (out["conv2_1"] < 0).any()  # conv is before its ReLU
    assert len(vgg_small.net) == style.VGG19_LAYERS.index("relu3_1") + 1  # cut after the deepest layer
    assert set(vgg_small(x, ["conv2_1"])) == {"conv2_1"}


def test_extractor_matches_a_manual_forward(vgg_small):
    x = torch.rand(1, 3, 16, 16)
    conv = vgg_small.net[0]
    mean = torch.tensor(style.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(style.IMAGENET_STD).view(1, 3, 1, 1)
    expected = F.relu(F.conv2d((x - mean) / std, conv.weight, conv.bias, padding=1))
    torch.testing.assert_close(vgg_small(x, ["relu1_1"])["relu1_1"], expected)


def test_extractor_is_frozen_but_passes_gradients(vgg_small):
    assert not any(p.requires_grad for p in vgg_small.parameters())
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    vgg_small(x)["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_bad_layer_names_raise_clear_errors(vgg_small):
    with pytest.raises(ValueError, match=r"Unknown VGG-19 layer 'relu_1_1'.*Did you mean relu1_1"):
        style.VGGFeatures(layers=["relu_1_1"], weights="random", verbose=False)
    with pytest.raises(ValueError, match="Unknown VGG-19 layer 'conv6_1'"):
        vgg_small(torch.rand(1, 3, 8, 8), ["conv6_1"])
    with pytest.raises(ValueError, match="deeper than this extractor"):
        vgg_small(torch.rand(1, 3, 8, 8), ["relu4_1"])
    with pytest.raises(ValueError, match="weights must be"):
        style.VGGFeatures(weights="pretrained", verbose=False)


def test_random_weights_are_reproducible():
    a = style.VGGFeatures(layers=["relu1_1"], weights="random", seed=7, verbose=False)
    b = style.VGGFeatures(layers=["relu1_1"], weights="random", seed=7, verbose=False)
    c = style.VGGFeatures(layers=["relu1_1"], weights="random", seed=8, verbose=False)
    torch.testing.assert_close(a.net[0].weight, b.net[0].weight)
    assert not torch.allclose(a.net[0].weight, c.net[0].weight)


# --------------------------------------------------------------------------- weights: one rule everywhere
def test_offline_fallback_announces_download_then_random_weights(offline_hub, capsys):
    """Not cached: a download is tried (announced with its size); offline it fails and random weights are announced."""
    vgg = style.VGGFeatures(layers=["relu2_1"], weights="auto")
    out = capsys.readouterr().out
    assert "Downloading VGG-19" in out and " MB" in out
    assert "download failed" in out and "RANDOM weights" in out and "internet access" in out
    assert [url for url, _ in offline_hub.calls] == [style.VGG19_URL]
    assert offline_hub.calls[0][1].get("check_hash") is True
    assert vgg.source.startswith("random")
    assert vgg(torch.rand(1, 3, 8, 8))["relu2_1"].shape == (1, 128, 4, 4)


def test_download_messages_name_the_cache_without_its_path(offline_hub, monkeypatch, capsys):
    """torch.hub prints where it downloads to; the message names the cache instead of this machine's path."""
    def noisy_download(url, **kwargs):
        import sys

        sys.stdout.write(f'Downloading: "{url}" to {torch.hub.get_dir()}/checkpoints/vgg19.pth\n')  # as torch.hub does
        sys.stderr.write(f"progress of {torch.hub.get_dir()}\n")
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", noisy_download)
    style.VGGFeatures(layers=["relu1_1"], weights="auto")
    captured = capsys.readouterr()
    assert "<torch.hub cache>/checkpoints/vgg19.pth" in captured.out and "progress of <torch.hub cache>" in captured.err
    assert str(offline_hub.path) not in captured.out + captured.err


@pytest.mark.parametrize("switch", ["argument", "env"])
def test_download_can_be_switched_off(offline_hub, monkeypatch, capsys, switch):
    kwargs = {"download": False} if switch == "argument" else {}
    if switch == "env":
        monkeypatch.setenv("GAN_TUTORIAL_DOWNLOAD", "0")
    vgg = style.VGGFeatures(layers=["relu1_1"], weights="auto", **kwargs)
    out = capsys.readouterr().out
    assert offline_hub.calls == [] and "Downloading" not in out
    assert "switched off" in out and "RANDOM weights" in out and vgg.source.startswith("random")


def test_imagenet_weights_required_but_missing_fails_with_fix(offline_hub):
    with pytest.raises(FileNotFoundError, match="Fix: run once with internet access"):
        style.VGGFeatures(layers=["relu1_1"], weights="imagenet")
    assert len(offline_hub.calls) == 1
    with pytest.raises(FileNotFoundError, match="switched off"):
        style.VGGFeatures(layers=["relu1_1"], weights="imagenet", download=False)


def test_random_weights_never_download(offline_hub, capsys):
    vgg = style.VGGFeatures(layers=["relu1_1"], weights="random")
    assert offline_hub.calls == [] and capsys.readouterr().out == "" and vgg.source.startswith("random")


def _fake_vgg_file(seed=3):
    """A file in torch.hub's cache with torchvision's key layout (random weights standing in for ImageNet's)."""
    ref = style.VGGFeatures(layers=["relu2_1"], weights="random", seed=seed, verbose=False)
    state = {f"features.{k}": v for k, v in ref.net.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored
    path = style.vgg19_cache_path()
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return ref, path


def test_cached_weights_are_loaded_without_download(offline_hub, capsys):
    ref, path = _fake_vgg_file()
    assert path.parent.parent == offline_hub.path
    vgg = style.VGGFeatures(layers=["relu1_1"], weights="auto")  # cut shorter than the file
    assert "ImageNet" in capsys.readouterr().out and vgg.source.startswith("ImageNet")
    assert offline_hub.calls == []
    torch.testing.assert_close(vgg.net[0].weight, ref.net[0].weight)


def test_unreadable_cached_file_names_the_fix(offline_hub):
    path = style.vgg19_cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    with pytest.raises(RuntimeError, match="delete it"):
        style.VGGFeatures(layers=["relu1_1"], weights="auto")


def test_successful_download_is_used(offline_hub, monkeypatch, capsys):
    ref = style.VGGFeatures(layers=["relu1_1"], weights="random", seed=5, verbose=False)
    state = {f"features.{k}": v for k, v in ref.net.state_dict().items()}
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda url, **kw: state)
    monkeypatch.setenv("GAN_TUTORIAL_DOWNLOAD", "1")
    vgg = style.VGGFeatures(layers=["relu1_1"], weights="auto")
    out = capsys.readouterr().out
    assert "Downloading VGG-19" in out and "RANDOM" not in out and vgg.source.startswith("ImageNet")
    torch.testing.assert_close(vgg.net[0].weight, ref.net[0].weight)


# --------------------------------------------------------------------------- style transfer and images
def test_style_transfer_lowers_the_loss(vgg_small):
    torch.manual_seed(0)
    content, style_img = torch.rand(1, 3, 24, 24), torch.rand(1, 3, 24, 24) ** 3
    image, hist = style.style_transfer(content, style_img, vgg_small, content_layers=["conv2_1"],
                                       style_layers=["relu1_1", "relu3_1"], steps=15, progress=False)
    assert image.shape == content.shape and 0 <= image.min() and image.max() <= 1
    assert set(hist) == {"content", "style", "tv", "total", "final"}
    assert 15 <= len(hist["total"]) <= 15 + 25  # a budget of evaluations; the last line search may overrun
    assert hist["content"][0] == 0  # the first evaluation is at the content image itself
    final = hist["final"]
    assert final["style"] < 0.8 * hist["style"][0] and final["total"] < 0.8 * hist["total"][0]
    assert final["total"] == pytest.approx(final["content"] + 10.0 * final["style"], rel=1e-6)  # no TV asked for


def test_texture_synthesis_from_noise(vgg_small):
    style_img = style.painterly_texture(32)
    image, hist = style.style_transfer(None, style_img, vgg_small, style_layers=["relu1_1"], init="noise",
                                       size=(20, 28), steps=10, optimizer="adam", lr=0.05, progress=False)
    assert image.shape == (1, 3, 20, 28)
    assert hist["style"][-1] < hist["style"][0]
    with pytest.raises(ValueError, match="init='noise'"):
        style.style_transfer(None, style_img, vgg_small, steps=1)


def test_images():
    photo = style.sample_photo(40)
    assert photo.shape == (1, 3, 40, 40) and 0 <= photo.min() and photo.max() <= 1
    tex = style.painterly_texture(48, seed=1)
    assert tex.shape == (1, 3, 48, 48)
    torch.testing.assert_close(tex, style.painterly_texture(48, seed=1))
    assert style.to_numpy_image(tex).shape == (48, 48, 3)


def test_load_image_fallback(capsys):
    fallback = torch.zeros(1, 3, 4, 4)
    assert style.load_image("no/such/file.png", fallback=fallback) is fallback
    assert "Could not load" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError):
        style.load_image("no/such/file.png")


def test_optimize_image_inverts_features(vgg_small):
    """Matching one layer's features from noise moves the image towards the source picture."""
    target_img = style.sample_photo(24)
    targets = {"relu1_1": vgg_small(target_img, ["relu1_1"])["relu1_1"]}
    start = style.noise_image((24, 24))
    image, hist = style.optimize_image(start, vgg_small, content_targets=targets, steps=20, progress=False)
    assert hist["final"]["total"] < 0.2 * hist["total"][0]
    assert F.mse_loss(image, target_img) < 0.5 * F.mse_loss(start, target_img)
    with pytest.raises(ValueError, match="content_targets and/or style_grams"):
        style.optimize_image(start, vgg_small, steps=1)
    with pytest.raises(ValueError, match="optimizer"):
        style.optimize_image(start, vgg_small, targets, optimizer="sgd")


def test_show_images_and_explorer():
    import matplotlib

    matplotlib.use("Agg")
    from gan_tutorial.widgets import precomputed_explorer

    fig = style.show_images([torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)], ["a", "b"])
    assert len(fig.axes) == 2 and fig.axes[1].get_title() == "b"
    results, drawn = {(1, "x"): "one"}, []
    box = precomputed_explorer(results, {"weight": [1, 10], "layers": ["x"]},
                               lambda res, ax, key: drawn.append((res, key)), run=lambda key: f"ran {key}")
    assert drawn[-1] == ("one", (1, "x"))
    box.selectors[0].value = 10  # not precomputed: drawn as None, nothing is run
    assert drawn[-1] == (None, (10, "x")) and box.key() == (10, "x")
    box.children[-2].children[0].click()  # the run button
    assert results[(10, "x")] == "ran (10, 'x')" and drawn[-1][0] == "ran (10, 'x')"


# --------------------------------------------------------------------------- total variation and the optimiser
def test_tv_loss_analytic_values():
    h = w = 6
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    ramp = (0.3 * xs - 0.2 * ys).expand(2, 3, h, w)       # every horizontal step 0.3, every vertical -0.2
    torch.testing.assert_close(style.tv_loss(ramp), torch.tensor(0.3**2 + 0.2**2, dtype=torch.float64))
    checker = ((xs + ys) % 2).expand(1, 3, h, w)            # every neighbour differs by 1
    assert style.tv_loss(checker).item() == 2.0
    assert style.tv_loss(torch.full((1, 3, h, w), 0.7)).item() == 0.0
    with pytest.raises(ValueError, match="B, C, H, W"):
        style.tv_loss(torch.rand(3, 4, 4))


def test_tv_loss_gradient_matches_the_analytic_gradient():
    """d/dx of mean((x[h+1]-x[h])^2): 2 (x[h]-x[h-1]) / N - 2 (x[h+1]-x[h]) / N, zero terms past the border."""
    torch.manual_seed(7)
    x = torch.rand(2, 3, 5, 7, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(style.tv_loss(x), x)
    x = x.detach()
    dv, dh = x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]
    expected = torch.zeros_like(x)
    expected[..., 1:, :] += 2 * dv / dv.numel()
    expected[..., :-1, :] -= 2 * dv / dv.numel()
    expected[..., :, 1:] += 2 * dh / dh.numel()
    expected[..., :, :-1] -= 2 * dh / dh.numel()
    torch.testing.assert_close(grad, expected)


class _Identity(torch.nn.Module):
    """A stand-in extractor whose one 'feature map' is the image itself."""

    def __init__(self):
        super().__init__()
        self.register_buffer("dummy", torch.zeros(()))

    def forward(self, images, layers=None):
        return {"pixels": images}


def test_lbfgs_with_line_search_solves_a_quadratic_and_respects_the_box():
    """With identity features the loss is ||x - t||^2 / ||t||^2 on [0, 1]: its minimiser is clamp(t)."""
    torch.manual_seed(8)
    target = torch.rand(1, 3, 8, 8) * 1.4 - 0.2          # partly outside [0, 1]
    start = torch.full((1, 3, 8, 8), 0.5)
    image, hist = style.optimize_image(start, _Identity(), {"pixels": target}, steps=300, progress=False)
    assert len(hist["total"]) < 300                       # converged: it stops before the budget is spent
    assert 0 <= image.min() and image.max() <= 1
    torch.testing.assert_close(image, target.clamp(0, 1), atol=2e-3, rtol=0)
    expected = F.mse_loss(target.clamp(0, 1), target) / target.pow(2).mean()
    assert hist["final"]["total"] == pytest.approx(expected.item(), rel=1e-3)
    assert hist["final"]["content"] == hist["final"]["total"]   # inside [0, 1] the range penalty is 0
    # Adam with the same budget of evaluations gets closer than where it started, but not as close
    budget = len(hist["total"])
    adam, hist_adam = style.optimize_image(start, _Identity(), {"pixels": target}, steps=budget, optimizer="adam",
                                           progress=False)
    assert len(hist_adam["total"]) == budget
    assert hist["final"]["total"] < hist_adam["final"]["total"] < hist_adam["total"][0]


def test_range_penalty():
    x = torch.tensor([[[[-0.5, 0.0], [0.3, 1.2]]]])
    assert style.range_penalty(x).item() == pytest.approx((0.25 + 0.04) / 4)
    assert style.range_penalty(x.clamp(0, 1)).item() == 0


def test_tv_weight_smooths_the_result():
    torch.manual_seed(9)
    noisy = torch.rand(1, 3, 12, 12)
    plain, h0 = style.optimize_image(noisy, _Identity(), {"pixels": noisy}, steps=20, progress=False)
    smooth, h1 = style.optimize_image(noisy, _Identity(), {"pixels": noisy}, steps=40, tv_weight=1.0, progress=False)
    assert h0["final"]["tv"] == 0 and h1["final"]["tv"] > 0
    assert style.tv_loss(smooth) < 0.5 * style.tv_loss(plain)
    total = h1["final"]["content"] + h1["final"]["tv"]
    assert h1["final"]["total"] == pytest.approx(total, rel=1e-6)
    assert h1["final"]["total"] < h1["total"][0]
