import math

import pytest
import torch
import torch.nn as nn

from gan_tutorial import data, losses, metrics, models, toy2d


pytestmark = pytest.mark.usefixtures("one_thread")  # the fixture is in conftest.py


# --------------------------------------------------------------------------- smoke and shapes
def test_toy_models_shapes_and_no_sigmoid():
    net_G, net_D = toy2d.toy_models(latent_dim=3, hidden=(16, 16), seed=0)
    x = net_G(torch.randn(5, 3))
    assert x.shape == (5, 2)
    scores = net_D(torch.full((4, 2), 100.0))
    assert scores.shape == (4,)
    assert scores.abs().max() > 1.0  # raw scores, not probabilities squashed into (0, 1)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Sigmoid)) for m in net_G.modules() if m is not net_G)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Sigmoid)) for m in net_D.modules())


def test_recipes_and_bad_method():
    r = toy2d.recipe("wgan-gp")
    assert r["loss"].name == "wasserstein-gp" and r["loss"].gp_weight == 1.0 and r["k"] == 5
    assert toy2d.recipe("wgan")["loss"] == "wasserstein"
    r = toy2d.recipe("gan")
    r["k"] = 99  # a copy: the shared recipe is untouched
    assert toy2d.recipe("gan")["k"] == 1 and r["batch_size"] == 512
    with pytest.raises(ValueError, match="Unknown method"):
        toy2d.recipe("vae")


# --------------------------------------------------------------------------- a critic on its own
def test_fit_critic_with_gradient_penalty_estimates_w1_of_a_shift():
    # two blobs 2 apart in the plane: W1 = 2. Every interpolate sees the same slope s, so the critic
    # maximises 2 s - lambda (s - 1)^2: s = 1 + 1/lambda, and its estimate is 2 (1 + 1/lambda) = 2.2.
    # (In 1-D the two-sided penalty can trap a critic with the wrong sign: its slope cannot turn
    # from -1 to +1 without passing through 0, where the penalty is lambda. In 2-D the gradient turns.)
    real, fake = data.Mixture([[0.0, 0.0]], 0.1), data.Mixture([[2.0, 0.0]], 0.1)
    torch.manual_seed(0)
    net = models.MLPDiscriminator(in_shape=2, hidden=(32, 32))
    h = toy2d.fit_critic(net, real, fake, "wasserstein-gp", num_steps=300, record_every=100,
                         probe=lambda critic: critic.training)
    assert h["step"] == [100, 200, 300] and h["probe"] == [True, True, True]
    assert h["wasserstein"][-1] == pytest.approx(2.2, rel=0.05)
    assert all(g >= 0 for g in h["gp"])
    x = torch.stack([torch.linspace(0.3, 1.7, 50), torch.zeros(50)], 1).requires_grad_(True)
    (grad,) = torch.autograd.grad(net(x).sum(), x)
    assert grad.norm(dim=1).mean() == pytest.approx(1.1, abs=0.1)


def test_fit_critic_clips_and_trains_a_discriminator():
    real, fake = data.gaussian_1d(0.0, 0.1), data.gaussian_1d(2.0, 0.1)
    torch.manual_seed(0)
    net = models.MLPDiscriminator(in_shape=1, hidden=(16, 16))
    h = toy2d.fit_critic(net, real, fake, losses.WassersteinLoss(clip=0.02), num_steps=30, record_every=30)
    assert h["step"] == [30] and max(p.detach().abs().max() for p in net.parameters()) <= 0.02
    torch.manual_seed(0)
    net = models.MLPDiscriminator(in_shape=1, hidden=(16, 16))
    h = toy2d.fit_critic(net, real, fake, "non-saturating", num_steps=200, record_every=50, betas=(0.5, 0.999))
    assert h["d_real"][-1] > 0.9 and h["d_fake"][-1] < 0.1  # disjoint supports: D wins outright
    assert "wasserstein" not in h
    with pytest.raises(ValueError, match="positive"):
        toy2d.fit_critic(net, real, fake, num_steps=0)


# --------------------------------------------------------------------------- sliced Wasserstein
def test_sliced_wasserstein_in_1d_is_the_exact_distance():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, 1, generator=g), 2 + 0.5 * torch.randn(500, 1, generator=g)
    # in 1-D every unit direction is +-1, and W1 is symmetric under a sign flip
    assert toy2d.sliced_wasserstein(a, b, num_projections=8) == pytest.approx(metrics.wasserstein_1d(a, b), rel=1e-9)


def test_sliced_wasserstein_of_a_shift():
    # a cloud and the same cloud shifted by v: every projection is shifted by <v, u>, so the sliced
    # distance is mean |<v, u>| over the directions; for many directions that tends to 2|v|/pi.
    g = torch.Generator().manual_seed(1)
    a = torch.randn(300, 2, generator=g)
    v = torch.tensor([3.0, -4.0])
    d = toy2d.sliced_wasserstein(a, a + v, num_projections=20000, generator=torch.Generator().manual_seed(2))
    assert d == pytest.approx(2 * 5.0 / math.pi, rel=0.02)
    assert toy2d.sliced_wasserstein(a, a.clone()) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        toy2d.sliced_wasserstein(a, a[:10])


def test_evaluate_on_real_data_is_perfect_and_on_collapse_is_not():
    ring = data.ring_2d()
    real = ring.sample(4000, generator=torch.Generator().manual_seed(0))
    q = toy2d.evaluate(real, ring)
    assert q["modes_covered"] == 8 and q["high_quality"] > 0.99 and q["sliced_w1"] < 0.05
    collapsed = ring.means[0] + 0.01 * torch.randn(4000, 2)  # every sample on one mode
    q = toy2d.evaluate(collapsed, ring)
    assert q["modes_covered"] == 1 and q["high_quality"] > 0.99 and q["sliced_w1"] > 1.0


# --------------------------------------------------------------------------- critic surface
class Linear2(nn.Module):
    def forward(self, x):
        return 2 * x[:, 0] - x[:, 1]


def test_critic_surface_layout_matches_contourf():
    xs, ys, z = toy2d.critic_surface(Linear2().train(), lim=2.0, resolution=5)
    assert z.shape == (5, 5) and torch.equal(xs, torch.linspace(-2, 2, 5))
    # rows are y, columns are x: z[i, j] = f(xs[j], ys[i])
    expected = 2 * xs[None, :] - ys[:, None]
    assert torch.allclose(z, expected)


def test_plot_critic_surface_runs():
    import matplotlib.pyplot as plt

    _, net_D = toy2d.toy_models(hidden=(8,), seed=0)
    ax = toy2d.plot_critic_surface(net_D, torch.randn(50, 2), data.ring_2d(), resolution=20, title="t")
    assert ax.get_title() == "t"
    plt.close("all")


# --------------------------------------------------------------------------- runs and tables
def test_quality_tracker_records_at_log_steps():
    ring = data.ring_2d()
    tracker = toy2d.QualityTracker(ring, num_samples=200, every=2)
    tr = toy2d.train_toy("gan", ring, num_steps=40, seed=0, hidden=(16, 16), log_every=5, callbacks=[tracker])
    assert tr.step == 40
    assert tracker.history["step"] == [10, 20, 30, 40]
    for key in ("modes_covered", "high_quality", "sliced_w1"):
        assert len(tracker.history[key]) == 4
    assert "wasserstein" not in tracker.history  # the 2014 loss has no Wasserstein estimate


def test_mode_collapse_experiment_rows_and_table():
    rows = toy2d.mode_collapse_experiment(methods=("gan", "wgan-gp"), mixtures=("ring-8",), seeds=(0, 1),
                                          num_steps={"gan": 6, "wgan-gp": 3}, num_samples=100, hidden=(8,),
                                          verbose=False)
    assert [(r["method"], r["seed"], r["steps"]) for r in rows] == [("gan", 0, 6), ("gan", 1, 6),
                                                                     ("wgan-gp", 0, 3), ("wgan-gp", 1, 3)]
    assert all(r["num_modes"] == 8 and 0 <= r["high_quality"] <= 1 for r in rows)
    table = toy2d.format_table(rows)
    assert table.count("\n") == 1 + 4 + 2  # header, rule, 4 runs, 2 means
    assert "mean of 2" in table


def test_mode_collapse_experiment_can_track_quality_and_keep_trainers():
    rows = toy2d.mode_collapse_experiment(methods=("wgan-gp",), mixtures=("ring-8",), seeds=(0,), num_steps=10,
                                          num_samples=100, hidden=(8,), log_every=5, verbose=False,
                                          track_quality=True, keep_trainers=True)
    (row,) = rows
    assert row["quality_history"]["step"] == [5, 10] and len(row["quality_history"]["wasserstein"]) == 2
    assert row["trainer"].step == 10 and len(row["trainer"].history["wasserstein"]) == 2
    plain = toy2d.mode_collapse_experiment(methods=("wgan-gp",), mixtures=("ring-8",), seeds=(0,), num_steps=10,
                                           num_samples=100, hidden=(8,), log_every=5, verbose=False)
    assert "quality_history" not in plain[0] and "trainer" not in plain[0]
    # tracking measures, it does not change the run
    assert plain[0]["sliced_w1"] == pytest.approx(row["sliced_w1"], rel=1e-6)


def test_summarise_means():
    rows = [dict(mixture="m", method="a", seed=s, steps=10, seconds=1.0 + s, modes_covered=c, num_modes=8,
                 high_quality=hq, sliced_w1=0.1) for s, (c, hq) in enumerate([(8, 0.9), (6, 0.7), (7, 0.8)])]
    (s,) = toy2d.summarise(rows)
    assert s["modes_mean"] == pytest.approx(7.0) and s["modes_min"] == 6 and s["modes_max"] == 8
    assert s["high_quality_mean"] == pytest.approx(0.8) and s["seconds_mean"] == pytest.approx(2.0)


# --------------------------------------------------------------------------- playground
def test_playground_builds_without_training_and_trains_on_press():
    pytest.importorskip("ipywidgets")
    pg = toy2d.Playground(chunk=50)
    assert pg.trainer is None  # building never trains (safe in headless runs)
    pg.w_k.value = 2
    pg.b_train.click()  # what a press does
    assert pg.trainer.step == 50 and pg.trainer.cfg.k == 2
    assert "modes" in pg.status.value
    # new learning rate and k go into the running trainer, the model is kept
    pg.w_lr_D.value, pg.w_k.value = 1e-4, 1
    model = pg.trainer.net_G
    pg.train(10)
    assert pg.trainer.net_G is model and pg.trainer.step == 60 and pg.trainer.cfg.k == 1
    assert pg.trainer.opt_D.param_groups[0]["lr"] == pytest.approx(1e-4)
    # a new loss starts a fresh model
    pg.w_loss.value = "non-saturating"
    pg.train(10)
    assert pg.trainer.net_G is not model and pg.trainer.step == 10 and pg.trainer.loss_fn.name == "non-saturating"
    pg.reset()
    assert pg.trainer is None



def test_plot_run_draws_the_playgrounds_picture():
    import matplotlib.pyplot as plt

    tr = toy2d.train_toy("wgan-gp", data.ring_2d(), 20, seed=0, log_every=5)
    fig = plot = toy2d.plot_run(tr, data.ring_2d(), num_points=100)
    left, right = fig.axes[0], fig.axes[-1]
    assert f"step {tr.step}" in left.get_title()
    assert [line.get_label() for line in right.get_lines()] == ["Wasserstein estimate", "loss G"]
    assert list(right.get_lines()[0].get_ydata()) == tr.history["wasserstein"]
    plt.close(plot)
