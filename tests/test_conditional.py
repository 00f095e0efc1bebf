"""Conditional GANs: the projection discriminator, label checks, sampling helpers, the
augmentation experiment, the per-class grid and the digit widget, and a toy cGAN that must learn
to put each label on its own Gaussian."""
import math

import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import conditional, models, plotting, train_gan
from gan_tutorial.conditional import ProjectionMLPDiscriminator
from gan_tutorial.data import ImageData


def _small_pair(k=10):
    G = models.MLPGenerator(8, (1, 28, 28), hidden=(16,), num_classes=k)
    D = ProjectionMLPDiscriminator((1, 28, 28), hidden=(32, 16), num_classes=k)
    return G, D


# --------------------------------------------------------------------------- projection discriminator
def test_projection_smoke_and_shapes():
    G, D = _small_pair()
    y = torch.arange(6) % 10
    x = G(torch.randn(6, 8), y)
    s = D(x, y)
    assert x.shape == (6, 1, 28, 28) and s.shape == (6,)
    with torch.no_grad():
        D.head.bias.fill_(10.0)
        D.embed.weight.zero_()
    assert (D(x, y) > 1).all()  # raw scores, no Sigmoid


@pytest.mark.parametrize("labels, match", [
    (None, "conditional"),                      # missing labels
    (torch.arange(3), "3 labels for a batch of 4"),
    (torch.tensor([0, 1, 2, 10]), r"\[0, 9\]"),  # out of range
    (torch.tensor([0, -1, 2, 3]), r"\[0, 9\]"),
])
def test_projection_bad_labels_raise(labels, match):
    _, D = _small_pair()
    with pytest.raises(ValueError, match=match):
        D(torch.randn(4, 1, 28, 28), labels)


def test_projection_bad_input_and_config_raise():
    _, D = _small_pair()
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\)"):
        D(torch.randn(4, 1, 32, 32), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes >= 1"):
        ProjectionMLPDiscriminator(num_classes=0)
    with pytest.raises(ValueError, match="'projection' or 'concat'"):
        conditional.build_cgan("embedding")


def test_projection_matches_reference_formula():
    """score = w . phi(x) + b + e_y . phi(x), written out with torch.nn.functional."""
    torch.manual_seed(0)
    _, D = _small_pair()
    x, y = torch.randn(5, 1, 28, 28), torch.tensor([3, 0, 9, 3, 7])
    h = x.flatten(1)
    for layer in (D.features[0], D.features[2]):
        h = F.leaky_relu(F.linear(h, layer.weight, layer.bias), 0.2)
    expected = F.linear(h, D.head.weight, D.head.bias).squeeze(1) + (F.embedding(y, D.embed.weight) * h).sum(1)
    torch.testing.assert_close(D(x, y), expected)


def test_projection_label_changes_score_and_gets_gradients():
    _, D = _small_pair()
    x = torch.randn(1, 1, 28, 28).repeat(10, 1, 1, 1)
    s = D(x, torch.arange(10))
    assert s.unique().numel() == 10            # same image, ten labels -> ten scores
    s.sum().backward()
    assert D.embed.weight.grad.abs().sum(1).gt(0).all()  # every class row is used


@pytest.mark.parametrize("kind, cls", [("projection", ProjectionMLPDiscriminator),
                                       ("concat", models.MLPDiscriminator)])
def test_build_cgan(kind, cls):
    G, D = conditional.build_cgan(kind, latent_dim=8, g_hidden=(16,), d_hidden=(16,))
    assert isinstance(D, cls) and G.num_classes == D.num_classes == 10
    y = torch.arange(4)
    assert D(G(torch.randn(4, 8), y), y).shape == (4,)


def test_conditional_nets_need_labels_in_training():
    G, D = _small_pair()
    with pytest.raises(ValueError, match="labels"):
        train_gan(G, D, torch.randn(32, 1, 28, 28), num_steps=1, batch_size=8, progress=False, device="cpu")
    D0 = models.MLPDiscriminator((1, 28, 28), hidden=(16,))
    with pytest.raises(ValueError, match="num_classes"):
        train_gan(G, D0, (torch.randn(32, 1, 28, 28), torch.zeros(32, dtype=torch.long)), num_steps=1,
                  progress=False, device="cpu")


# --------------------------------------------------------------------------- sampling helpers
def test_generate_shapes_seed_and_mode():
    G, _ = _small_pair()
    G.train()
    y = torch.tensor([0, 1, 2, 3, 4])
    a, b = conditional.generate(G, y, seed=1), conditional.generate(G, y, seed=1)
    assert a.shape == (5, 1, 28, 28) and torch.equal(a, b)
    assert G.training  # mode restored
    z = torch.randn(5, 8)
    G.eval()
    torch.testing.assert_close(conditional.generate(G, y, noise=z, batch_size=2), G(z, y).detach())


def test_generate_errors():
    G, _ = _small_pair()
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        conditional.generate(G, [0, 10])
    with pytest.raises(ValueError, match=r"noise must have shape \(2, 8\)"):
        conditional.generate(G, [0, 1], noise=torch.randn(3, 8))
    with pytest.raises(ValueError, match="unconditional"):
        conditional.generate(models.MLPGenerator(8, (1, 28, 28), hidden=(16,)), [0])


def test_class_grid_samples_share_noise_down_columns():
    G, _ = _small_pair()
    images, labels = conditional.class_grid_samples(G, per_class=3, seed=5)
    assert images.shape == (30, 1, 28, 28)
    assert labels.tolist() == [c for c in range(10) for _ in range(3)]
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    G.eval()
    torch.testing.assert_close(images[9:12], G(z, torch.full((3,), 3)).detach())  # row of digit 3


def _fake_digits(n=200, k=10):
    labels = torch.arange(n) % k
    images = torch.randn(n, 1, 28, 28).clamp(-1, 1)
    return ImageData(images, labels, "noise")


def test_balanced_subset_counts_and_errors():
    data = _fake_digits()
    sub = conditional.balanced_subset(data, per_class=7, seed=0)
    assert len(sub) == 70 and torch.bincount(sub.labels, minlength=10).tolist() == [7] * 10
    again = conditional.balanced_subset(data, per_class=7, seed=0)
    assert torch.equal(sub.images, again.images)
    with pytest.raises(ValueError, match="fewer than per_class"):
        conditional.balanced_subset(data, per_class=21)


def test_synthetic_set_and_concat():
    G, _ = _small_pair()
    fake = conditional.synthetic_set(G, 25, seed=0)
    assert len(fake) == 20 and torch.bincount(fake.labels).tolist() == [2] * 10
    both = conditional.concat_data(_fake_digits(30), fake)
    assert len(both) == 50 and both.images.shape == (50, 1, 28, 28)
    with pytest.raises(ValueError, match="fewer than one image per class"):
        conditional.synthetic_set(G, 5)


@pytest.mark.parametrize("real_share, repeats", [(0.5, 10), (0.0, 1), (0.2, 2), (0.01, 1)])
def test_mix_repeats_real_to_the_asked_share(real_share, repeats):
    real, fake = _fake_digits(10), _fake_digits(100)
    both = conditional.mix(real, fake, real_share)
    assert len(both) == 10 * repeats + 100
    torch.testing.assert_close(both.images[:10], real.images)
    torch.testing.assert_close(both.images[-100:], fake.images)
    with pytest.raises(ValueError, match="real_share"):
        conditional.mix(real, fake, 1.0)


def test_augmentation_experiment_smoke():
    G, _ = _small_pair()
    data = _fake_digits(100)
    res = conditional.augmentation_experiment(data, data, G, num_fake=50, seeds=(3,), num_steps=2, device="cpu")
    assert set(res) == {"real", "real + cGAN", "cGAN only"}
    assert all(len(v) == 1 and 0 <= v[0] <= 1 for v in res.values())
    with pytest.raises(ValueError, match="real_share"):
        conditional.augmentation_experiment(data, data, G, real_share=1.0)
    summary = conditional.summarize({"a": [0.5, 0.7], "b": [0.9]})
    assert summary["a"][0] == pytest.approx(0.6) and summary["a"][1] == pytest.approx(math.sqrt(0.02))
    assert summary["b"] == (pytest.approx(0.9), 0.0)


class _StubClassifier:
    """Stands in for the MNIST classifier: reads an image as class 0 when its mean is negative."""

    def __init__(self):
        self.calls = []

    def accuracy(self, images, labels):
        self.calls.append((images.shape, labels.clone()))
        pred = (images.flatten(1).mean(1) >= 0).long()
        return float((pred == labels).float().mean())


def test_label_accuracy_tracker_records_on_schedule():
    G, D = _small_pair()
    clf = _StubClassifier()
    tracker = conditional.LabelAccuracyTracker(clf, every=4, num=20, seed=0)
    data = (torch.randn(64, 1, 28, 28).clamp(-1, 1), torch.arange(64) % 10)
    trainer = train_gan(G, D, data, num_steps=10, batch_size=8, log_every=2, progress=False, device="cpu",
                        callbacks=[tracker])
    assert tracker.steps == [0, 4, 8, 10]
    assert len(tracker.accuracy) == len(tracker.seconds) == 4 and all(0 <= a <= 1 for a in tracker.accuracy)
    assert all(shape == (20, 1, 28, 28) for shape, _ in clf.calls)
    assert clf.calls[0][1].tolist() == [i % 10 for i in range(20)]   # balanced labels
    trainer.fit(12)                                                   # continuing keeps recording
    assert tracker.steps[-1] == 12
    uncond = models.MLPGenerator(8, (1, 28, 28), hidden=(16,))
    with pytest.raises(ValueError, match="conditional generator"):
        train_gan(uncond, models.MLPDiscriminator((1, 28, 28), hidden=(16,)), data[0], num_steps=1, batch_size=8,
                  progress=False, device="cpu", callbacks=[conditional.LabelAccuracyTracker(clf)])


def test_cgan_recipe_trains_the_projection_pair():
    from gan_tutorial import recipes

    recipe = recipes.get("cgan")
    G, D = recipe.build()
    assert isinstance(D, conditional.ProjectionMLPDiscriminator) and recipe.conditional
    trainer = train_gan(G, D, (torch.randn(128, 1, 28, 28), torch.arange(128) % 10), recipe.config(num_steps=1),
                        progress=False, device="cpu")
    assert trainer.cfg.lr_G == recipe.settings["lr_G"] and trainer.cfg.batch_size == recipe.settings["batch_size"]


# --------------------------------------------------------------------------- a cGAN that must learn
@pytest.mark.parametrize("kind", ["concat", "projection"])
def test_toy_cgan_puts_each_label_on_its_mode(kind):
    """Label c -> N(mu_c, 0.5^2) with mu = (-4, 0, 4). After 200 steps the samples for each label
    must sit near their own mean (an unconditional fit would put every label on all three)."""
    means = torch.tensor([-4.0, 0.0, 4.0])
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (3000,), generator=g)
    x = (means[y] + 0.5 * torch.randn(3000, generator=g))[:, None]
    torch.manual_seed(0)
    G = models.MLPGenerator(4, 1, hidden=(32, 32), num_classes=3, batchnorm=False, out_activation=None,
                            activation="leaky_relu")
    D = (ProjectionMLPDiscriminator(1, hidden=(32, 32), num_classes=3) if kind == "projection"
         else models.MLPDiscriminator(1, hidden=(32, 32), num_classes=3))
    trainer = train_gan(G, D, (x, y), num_steps=200, batch_size=128, lr_G=2e-3, lr_D=2e-3, progress=False,
                        device="cpu")
    assert trainer.sample(6, labels=torch.tensor([0, 1, 2, 0, 1, 2])).shape == (6, 1)
    s = conditional.generate(G, torch.arange(3).repeat_interleave(500), seed=0).view(3, 500)
    assert (s.mean(1) - means).abs().max() < 0.6, s.mean(1)
    nearest = (s[..., None] - means).abs().argmin(-1)           # (3, 500): the mode each sample is nearest
    assert (nearest == torch.arange(3)[:, None]).float().mean() > 0.9


# --------------------------------------------------------------------------- figures and widgets
def test_show_class_grid_labels_rows():
    import matplotlib.pyplot as plt

    G, _ = _small_pair()
    images, _ = conditional.class_grid_samples(G, per_class=4)
    ax = plotting.show_class_grid(images, per_class=4, title="t")
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(c) for c in range(10)]
    ticks = ax.get_yticks()
    assert ticks[1] - ticks[0] == pytest.approx(30)  # 28 px + 2 px padding per row
    with pytest.raises(ValueError, match="K \\* 3"):
        plotting.show_class_grid(images, per_class=3)
    with pytest.raises(ValueError, match="class names"):
        plotting.show_class_grid(images, per_class=4, class_names=["a"])
    plt.close("all")


def test_digit_explorer_builds_and_follows_controls():
    import matplotlib.pyplot as plt

    from gan_tutorial import widgets

    G, _ = _small_pair()
    box = widgets.digit_explorer(G, num_samples=4, num_positions=5)
    first = box.images()
    assert first.shape == (4, 1, 28, 28)
    box.digit.value = 7
    seven = box.images()
    assert not torch.allclose(first, seven)  # label changed the images
    box.slider.value = 4
    assert not torch.allclose(seven, box.images())  # noise moved
    G.eval()
    z = _explorer_noise(num_samples=4, num_positions=5, latent_dim=8, seed=0, position=0)
    torch.testing.assert_close(seven, G(z, torch.full((4,), 7)).detach())  # digit 7 at the path's start
    with pytest.raises(ValueError, match="unconditional"):
        widgets.digit_explorer(models.MLPGenerator(8, (1, 28, 28), hidden=(16,)))
    plt.close("all")


def _explorer_noise(num_samples, num_positions, latent_dim, seed, position):
    ends = torch.randn(num_samples, 2, latent_dim, generator=torch.Generator().manual_seed(seed))
    return torch.stack([plotting.interpolate_latents(a, b, num_positions)[position] for a, b in ends])
