"""Tests for gan_tutorial.toy: the 1-D theory (D*, V, JS), the recorder callback and the explorer."""
import math
import time

import matplotlib

matplotlib.use("Agg")
import pytest
import torch

from gan_tutorial import data, models, toy, train_gan
from gan_tutorial.train import Callback


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Networks this small run fastest on one thread (and don't fight parallel test workers)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def grid():
    return toy.make_grid(-6.0, 12.0, 6001)


def gauss(x, mean, std):
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def small_models(seed=0):
    torch.manual_seed(seed)
    return (models.MLPGenerator(2, 1, (16,), activation="leaky_relu", batchnorm=False, out_activation=None),
            models.MLPDiscriminator(1, (16,)))


# --------------------------------------------------------------------------- smoke and bad input
def test_make_grid_and_density(grid):
    assert grid.shape == (6001,) and grid.dtype == torch.float64
    p = toy.density(data.gaussian_1d(4.0, 0.5), grid)
    torch.testing.assert_close(p, gauss(grid, 4.0, 0.5))
    mix = toy.density(data.mixture_1d((-2.0, 2.0), 0.5, weights=(1.0, 3.0)), grid)
    torch.testing.assert_close(mix, 0.25 * gauss(grid, -2, 0.5) + 0.75 * gauss(grid, 2, 0.5))
    assert toy.integrate(mix, grid) == pytest.approx(1.0, abs=1e-9)
    torch.testing.assert_close(toy.density(lambda t: gauss(t, 0, 1), grid), gauss(grid, 0, 1))


def test_bad_input_raises(grid):
    p = gauss(grid, 0, 1)
    with pytest.raises(ValueError):
        toy.make_grid(1.0, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        toy.optimal_discriminator(-p, p)
    with pytest.raises(ValueError, match="shape"):
        toy.optimal_discriminator(p, p[:-1])
    with pytest.raises(ValueError, match="probabilities"):
        toy.value_function(torch.full_like(p, 1.5), p, p, grid)
    with pytest.raises(ValueError):
        toy.kde(torch.tensor([1.0]), grid)
    with pytest.raises(ValueError):
        toy.LinearLRDecay(final_factor=2.0)


# --------------------------------------------------------------------------- the optimal discriminator
def test_optimal_discriminator_analytic_cases():
    p = torch.tensor([0.3, 1.0, 2.0, 0.0, 0.0])
    q = torch.tensor([0.3, 0.0, 6.0, 4.0, 0.0])
    d = toy.optimal_discriminator(p, q)
    # equal densities -> 1/2; only data -> 1; 2 vs 6 -> 1/4; only generator -> 0; neither -> 1/2
    torch.testing.assert_close(d, torch.tensor([0.5, 1.0, 0.25, 0.0, 0.5], dtype=torch.float64))


def test_optimal_discriminator_two_gaussians_is_logistic_in_x(grid):
    # equal stds: log D*/(1 - D*) = log p_data - log p_g is linear in x, zero halfway between the means
    p_data, p_g = gauss(grid, 4.0, 1.0), gauss(grid, 2.0, 1.0)
    d = toy.optimal_discriminator(p_data, p_g)
    expected = torch.sigmoid(grid * (4.0 - 2.0) - (16.0 - 4.0) / 2)
    torch.testing.assert_close(d, expected)
    assert d[torch.argmin((grid - 3.0).abs())] == pytest.approx(0.5, abs=1e-3)


def test_optimal_discriminator_maximises_value(grid):
    p_data, p_g = gauss(grid, 4.0, 0.5), gauss(grid, 2.5, 1.0)
    d_star = toy.optimal_discriminator(p_data, p_g)
    best = toy.value_function(d_star, p_data, p_g, grid)
    for eps in (0.05, -0.05):
        worse = toy.value_function((d_star + eps).clamp(1e-6, 1 - 1e-6), p_data, p_g, grid)
        assert worse < best
    # a discriminator that always says 1/2 scores exactly -log 4
    assert toy.value_function(torch.full_like(grid, 0.5), p_data, p_g, grid) == pytest.approx(-math.log(4), abs=1e-9)


# --------------------------------------------------------------------------- JS divergence and V(D*, G)
def test_js_identical_is_zero_and_disjoint_is_log2():
    x = toy.make_grid(0.0, 4.0, 4001)
    p = ((x >= 0.5) & (x <= 1.5)).double()
    q = ((x >= 2.5) & (x <= 3.5)).double()
    p, q = p / toy.integrate(p, x), q / toy.integrate(q, x)
    assert toy.js_divergence(p, p, x) == pytest.approx(0.0, abs=1e-12)
    assert toy.js_divergence(p, q, x) == pytest.approx(math.log(2), abs=1e-9)
    assert toy.kl_divergence(p, q, x) == math.inf


def test_js_half_overlapping_uniforms():
    # U[0, 2] vs U[1, 3]: each KL(. || m) is (1/2) log 2, so JS = (1/2) log 2
    x = toy.make_grid(-1.0, 4.0, 50001)
    p = ((x >= 0) & (x <= 2)).double() / 2
    q = ((x >= 1) & (x <= 3)).double() / 2
    assert toy.js_divergence(p, q, x) == pytest.approx(0.5 * math.log(2), abs=2e-4)


def test_js_matches_monte_carlo(grid):
    torch.manual_seed(0)
    a, b = torch.distributions.Normal(4.0, 0.5), torch.distributions.Normal(2.5, 1.0)

    def half(dist, n=400_000):  # E_p[log (2 p / (p + q))] with samples from p
        s = dist.sample((n,)).double()
        lp, lq = a.log_prob(s).double(), b.log_prob(s).double()
        own = lp if dist is a else lq
        return float((math.log(2) + own - torch.logaddexp(lp, lq)).mean())

    mc = 0.5 * half(a) + 0.5 * half(b)
    numeric = toy.js_divergence(gauss(grid, 4.0, 0.5), gauss(grid, 2.5, 1.0), grid)
    assert numeric == pytest.approx(mc, abs=3e-3)


@pytest.mark.parametrize("mean_g,std_g", [(4.0, 0.5), (2.5, 1.0), (0.0, 0.3), (3.8, 0.6)])
def test_value_at_optimal_d_is_minus_log4_plus_2js(grid, mean_g, std_g):
    p_data, p_g = gauss(grid, 4.0, 0.5), gauss(grid, mean_g, std_g)
    d_star = toy.optimal_discriminator(p_data, p_g)
    v = toy.value_function(d_star, p_data, p_g, grid)
    assert v == pytest.approx(-math.log(4) + 2 * toy.js_divergence(p_data, p_g, grid), abs=1e-8)
    assert -math.log(4) - 1e-8 <= v <= 0.0


# --------------------------------------------------------------------------- the non-saturating objective
@pytest.mark.parametrize("mean_g,std_g", [(2.5, 1.0), (4.0, 0.5), (3.0, 0.3), (5.0, 1.2)])
def test_nonsaturating_objective_identity(grid, mean_g, std_g):
    # E_pg[-log D*] = KL(p_g || p_data) - 2 JS + log 4 + E_pdata[log D*], each side computed on its own
    p_data, p_g = gauss(grid, 4.0, 0.5), gauss(grid, mean_g, std_g)
    out = toy.nonsaturating_objective(p_data, p_g, grid)
    d_star = p_data / (p_data + p_g)
    direct = toy.integrate(-p_g * torch.log(d_star), grid)
    assert out["loss"] == pytest.approx(direct, abs=1e-10)
    assert out["reverse_kl"] == pytest.approx(toy.kl_divergence(p_g, p_data, grid), abs=1e-12)
    assert out["js"] == pytest.approx(toy.js_divergence(p_data, p_g, grid), abs=1e-12)
    assert out["data_term"] == pytest.approx(toy.integrate(p_data * torch.log(d_star), grid), abs=1e-10)
    assert out["loss"] == pytest.approx(out["rhs"], abs=1e-7)
    if (mean_g, std_g) == (4.0, 0.5):  # at the optimum: D* = 1/2, so the loss is log 2 and the divergences vanish
        assert out["loss"] == pytest.approx(math.log(2), abs=1e-9) and abs(out["reverse_kl"]) < 1e-9


def test_nonsaturating_gradient_with_d_fixed_is_that_of_reverse_kl_minus_2js(grid):
    # Arjovsky & Bottou 2017, Thm 2.5: with D held at D* of theta0, d/dtheta E_pg[-log D*] = d/dtheta (KL(p_g||p_data) - 2 JS)
    p_data = gauss(grid, 4.0, 0.5)
    for mu0, sd in ((2.5, 1.0), (4.6, 0.7)):
        d_star = toy.optimal_discriminator(p_data, gauss(grid, mu0, sd))
        loss = lambda mu: toy.integrate(-torch.xlogy(gauss(grid, mu, sd), d_star), grid)
        div = lambda mu: (toy.kl_divergence(gauss(grid, mu, sd), p_data, grid)
                          - 2 * toy.js_divergence(p_data, gauss(grid, mu, sd), grid))
        h = 1e-3
        g_loss, g_div = (loss(mu0 + h) - loss(mu0 - h)) / (2 * h), (div(mu0 + h) - div(mu0 - h)) / (2 * h)
        assert abs(g_loss) > 0.1 and g_loss == pytest.approx(g_div, abs=1e-6)
        # the minimax objective (2 JS) has a different slope: the identity is specific to the non-saturating loss
        g_js = 2 * (toy.js_divergence(p_data, gauss(grid, mu0 + h, sd), grid)
                    - toy.js_divergence(p_data, gauss(grid, mu0 - h, sd), grid)) / (2 * h)
        assert abs(g_js - g_loss) > 0.1


def test_nonsaturating_objective_is_mode_seeking(grid):
    p_two = 0.5 * gauss(grid, 2.0, 0.5) + 0.5 * gauss(grid, 6.0, 0.5)
    one, spread = gauss(grid, 2.0, 0.5), gauss(grid, 4.0, math.sqrt(4.25))
    ns = {k: toy.nonsaturating_objective(p_two, q, grid) for k, q in (("one", one), ("spread", spread))}
    obj = {k: v["reverse_kl"] - 2 * v["js"] for k, v in ns.items()}
    assert ns["one"]["reverse_kl"] == pytest.approx(math.log(2), abs=1e-3)   # on one of two equal, well-separated modes
    assert obj["one"] < 0.5 < 1.0 < obj["spread"]
    # the forward KL (maximum likelihood) ranks them the other way round
    assert toy.kl_divergence(p_two, one, grid) > 10 > 1 > toy.kl_divergence(p_two, spread, grid)


def test_kde_integrates_to_one_and_recovers_a_gaussian(grid):
    grid = grid[::4]
    s = data.gaussian_1d(4.0, 0.5).sample(5000, generator=torch.Generator().manual_seed(0))
    est = toy.kde(s, grid)
    assert est.shape == grid.shape
    assert toy.integrate(est, grid) == pytest.approx(1.0, abs=1e-6)
    assert toy.js_divergence(est, gauss(grid, 4.0, 0.5), grid) < 1e-3
    # an explicit bandwidth is a plain Gaussian kernel around each sample
    one = toy.kde(torch.tensor([1.0, 1.0]), grid, bandwidth=0.3)
    torch.testing.assert_close(one, gauss(grid, 1.0, 0.3))


# --------------------------------------------------------------------------- D on a grid, fitting D alone
def test_discriminator_on_grid_is_sigmoid_of_scores_and_keeps_mode(grid):
    _, net_D = small_models()
    net_D.train()
    d = toy.discriminator_on_grid(net_D, grid[:50])
    torch.testing.assert_close(d, torch.sigmoid(net_D(grid[:50, None].float()).double()).detach())
    assert net_D.training


def test_fit_discriminator_approaches_optimal_d():
    x = toy.make_grid(-2.0, 8.0, 1001)
    real, fake = data.gaussian_1d(4.0, 0.5), data.gaussian_1d(2.0, 0.5)
    torch.manual_seed(0)
    net_D = models.MLPDiscriminator(1, (32, 32))
    p_data, p_g = toy.density(real, x), toy.density(fake, x)
    d_star = toy.optimal_discriminator(p_data, p_g)
    weight = (p_data + p_g) / 2
    gap_before = toy.integrate(weight * (toy.discriminator_on_grid(net_D, x) - d_star).abs(), x)
    history = toy.fit_discriminator(net_D, real, fake, num_steps=300, batch_size=256, lr=3e-3)
    gap_after = toy.integrate(weight * (toy.discriminator_on_grid(net_D, x) - d_star).abs(), x)
    assert len(history) == 300 and history[-1] < history[0]
    assert gap_after < 0.05 < gap_before


def test_generator_sampler_is_frozen_and_seeded():
    net_G, _ = small_models()
    net_G.train()
    sample = toy.generator_sampler(net_G)
    a = sample(64, generator=torch.Generator().manual_seed(3))
    b = sample(64, generator=torch.Generator().manual_seed(3))
    assert a.shape == (64, 1) and not a.requires_grad and net_G.training
    torch.testing.assert_close(a, b)
    assert sample(5).shape == (5, 1)


def test_fit_generator_moves_g_towards_d_and_leaves_d_alone():
    # D frozen: "real" to the right (a fixed logit 3 (x - 2)); G starts around 0 and must move right
    torch.manual_seed(0)
    net_G, _ = small_models()
    net_D = models.MLPDiscriminator(1, (8,))
    with torch.no_grad():
        for p in net_D.parameters():
            p.zero_()
        net_D.net[0].weight[0, 0], net_D.net[2].weight[0, 0], net_D.net[2].bias[0] = 1.0, 3.0, -6.0
    before_D = {k: v.clone() for k, v in net_D.state_dict().items()}
    noise = torch.randn(500, 2, generator=torch.Generator().manual_seed(1))
    mean_before = float(models.generate(net_G, noise=noise).mean())
    history = toy.fit_generator(net_G, net_D, num_steps=60, batch_size=128, lr=1e-2)
    mean_after = float(models.generate(net_G, noise=noise).mean())
    assert len(history) == 60 and history[-1] < history[0]
    assert mean_after > mean_before + 1.0
    for k, v in net_D.state_dict().items():
        assert torch.equal(v, before_D[k]), f"D's {k} changed"
    assert all(p.requires_grad and p.grad is None for p in net_D.parameters())
    with pytest.raises(ValueError):
        toy.fit_generator(net_G, net_D, num_steps=0)


# --------------------------------------------------------------------------- callbacks
def test_recorder_records_initial_and_every_snapshot(grid):
    x = grid[::20]
    recorder = toy.Figure1Recorder(x)
    net_G, net_D = small_models()
    trainer = train_gan(net_G, net_D, data.gaussian_1d(4.0, 0.5), num_steps=20, snapshot_every=10, batch_size=32,
                        num_fixed=100, callbacks=[recorder], progress=False, device="cpu")
    assert [f["step"] for f in recorder.frames] == [0, 10, 20]
    for frame in recorder.frames:
        assert frame["samples"].shape == (100,)
        assert frame["d"].shape == x.shape
        assert ((frame["d"] > 0) & (frame["d"] < 1)).all()
        assert "net_G" not in frame and "net_D" not in frame  # weights only with keep_weights=True
    # the last frame holds the trainer's final snapshot and the final D on the grid
    torch.testing.assert_close(recorder.frames[-1]["samples"], trainer.snapshots[-1]["samples"].double().flatten())
    torch.testing.assert_close(recorder.frames[-1]["d"], toy.discriminator_on_grid(trainer.net_D, x))
    # the initial frame is the untrained generator, which differs from the trained one
    assert not torch.allclose(recorder.frames[0]["samples"], recorder.frames[-1]["samples"])


def test_recorder_keeps_weights_that_reproduce_each_frame(grid):
    x = grid[::20]
    recorder = toy.Figure1Recorder(x, keep_weights=True)
    net_G, net_D = small_models()
    trainer = train_gan(net_G, net_D, data.gaussian_1d(4.0, 0.5), num_steps=20, snapshot_every=10, batch_size=32,
                        num_fixed=100, callbacks=[recorder], progress=False, device="cpu")
    assert [f["step"] for f in recorder.frames] == [0, 10, 20]
    for frame in recorder.frames:
        G, D = small_models(seed=1)  # other weights, overwritten by the frame's
        G.load_state_dict(frame["net_G"]), D.load_state_dict(frame["net_D"])
        torch.testing.assert_close(toy.discriminator_on_grid(D, x), frame["d"])
        torch.testing.assert_close(models.generate(G, noise=trainer.fixed_noise).double().flatten(), frame["samples"])
    # copies, not references: the first frame's weights differ from the trained nets'
    assert not torch.equal(recorder.frames[0]["net_D"]["net.0.weight"], trainer.net_D.state_dict()["net.0.weight"])


def test_linear_lr_decay_is_linear_and_reaches_final_factor():
    seen = []

    class Record(Callback):  # runs after the decay: logs the learning rates it set
        def on_log(self, trainer, record):
            seen.append((trainer.step, trainer.opt_G.param_groups[0]["lr"], trainer.opt_D.param_groups[0]["lr"]))

    decay = toy.LinearLRDecay(final_factor=0.2)
    train_gan(*small_models(), data.gaussian_1d(), num_steps=40, log_every=10, batch_size=16, lr_G=1e-3,
              lr_D=2e-3, callbacks=[decay, Record()], progress=False, device="cpu")
    factors = [0.8, 0.6, 0.4, 0.2]  # 1 - 0.8 * step / 40
    assert [s for s, _, _ in seen] == [10, 20, 30, 40]
    assert [g for _, g, _ in seen] == pytest.approx([1e-3 * f for f in factors])
    assert [d for _, _, d in seen] == pytest.approx([2e-3 * f for f in factors])
    # reused on a new run, it starts from that run's learning rates, not the old ones
    trainer = train_gan(*small_models(1), data.gaussian_1d(), num_steps=20, log_every=10, batch_size=16,
                        lr_G=5e-4, lr_D=5e-4, callbacks=[decay], progress=False, device="cpu")
    assert trainer.opt_G.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_linear_decay_follows_the_clock_when_time_runs_out_first():
    from types import SimpleNamespace

    def fake_trainer(step, elapsed, budget):
        opts = [SimpleNamespace(param_groups=[{"lr": 1e-3}]) for _ in range(2)]
        return SimpleNamespace(step=step, elapsed=elapsed, cfg=SimpleNamespace(num_steps=1000, time_budget=budget),
                               opt_G=opts[0], opt_D=opts[1])

    for step, elapsed, budget, expected in [(100, 30.0, 60.0, 0.5e-3),    # half the time, 10 % of the steps
                                            (500, 6.0, 60.0, 0.5e-3),     # half the steps, 10 % of the time
                                            (100, 30.0, None, 0.9e-3),    # no budget: steps only
                                            (2000, 1.0, None, 0.0)]:      # never below final
        tr = fake_trainer(step, elapsed, budget)
        decay = toy.LinearLRDecay(final_factor=0.0)
        decay.on_train_begin(tr)
        decay.on_log(tr, {})
        assert tr.opt_G.param_groups[0]["lr"] == pytest.approx(expected)
        assert tr.opt_D.param_groups[0]["lr"] == pytest.approx(expected)


# --------------------------------------------------------------------------- figures and the explorer
def test_plot_figure1_panels_draw_every_curve(grid):
    import matplotlib.pyplot as plt

    x = grid[::10]
    frame = {"step": 3, "samples": torch.randn(300).double() + 4, "d": torch.full_like(x, 0.5)}
    fig = toy.plot_figure1_panels([frame, frame], x, toy.density(data.gaussian_1d(4, 0.5), x))
    assert len(fig.axes) == 2
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert {r"$p_{data}$", r"$D(x)$", r"$D^*(x)$ for this $p_g$"} <= set(labels)
    assert fig.axes[1].get_title().startswith("(b) step 3")
    plt.close(fig)


def test_explorer_builds_without_training_then_retrains_on_demand(grid):
    import ipywidgets

    x = grid[::20]
    recorder = toy.Figure1Recorder(x)
    train_gan(*small_models(), data.gaussian_1d(4.0, 0.5), num_steps=10, snapshot_every=5, batch_size=16,
              num_fixed=50, callbacks=[recorder], progress=False, device="cpu")
    calls = []

    def make_models():
        calls.append(1)
        return small_models(2)

    start = time.perf_counter()
    explorer = toy.ToyExplorer(recorder.frames, x, data.gaussian_1d(4.0, 0.5), make_models, num_steps=200,
                               snapshot_every=50, train_kwargs=dict(batch_size=16, num_fixed=50, device="cpu"))
    assert time.perf_counter() - start < 5.0
    assert isinstance(explorer.widget, ipywidgets.VBox)
    assert calls == []  # building it trained nothing
    assert explorer.slider.max == 2 and explorer.slider.value == 2
    explorer.slider.value = 0
    assert explorer.status.value.startswith("step 0")
    explorer.lr_G.value, explorer.k.value, explorer.loss.value = 1e-4, 2, "minimax"
    settings = explorer.settings()
    assert settings["k"] == 2 and settings["loss"] == "minimax" and settings["lr_G"] == pytest.approx(1e-4)
    trainer = explorer.retrain(num_steps=100)
    assert calls == [1]
    assert trainer.cfg.k == 2 and trainer.loss_fn.name == "minimax" and trainer.step == 100
    assert [f["step"] for f in explorer.frames] == [0, 50, 100]
    assert explorer.slider.max == 2 and not explorer.button.disabled


def test_explorer_with_no_frames_waits_for_a_click(grid):
    explorer = toy.ToyExplorer([], grid[::50], data.gaussian_1d(), lambda: small_models())
    assert explorer.frames == [] and "retrain" in explorer.status.value
