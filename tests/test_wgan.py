"""WGAN-specific behaviour of the one training loop: weight clipping, the critic's statistics,
the gradient penalty inside training, and WGAN-GP learning the ring of 8 Gaussians."""
import pytest
import torch

from gan_tutorial import data, losses, metrics, toy2d, train


pytestmark = pytest.mark.usefixtures("one_thread")  # the fixture is in conftest.py


def critic_weights(net_D):
    return torch.cat([p.detach().flatten() for p in net_D.parameters()])


def test_weight_clipping_keeps_every_critic_weight_in_bounds():
    ring = data.ring_2d()
    trainer = toy2d.make_trainer("wgan", ring, seed=0, hidden=(32, 32), num_steps=20, lr_decay=False)
    # PyTorch's default init puts many weights of a 32-wide layer far outside [-0.01, 0.01]
    assert critic_weights(trainer.net_D).abs().max() > 0.1
    trainer.fit()
    w = critic_weights(trainer.net_D)
    assert w.abs().max() <= 0.01
    # after 20 generator steps (100 critic steps) most weights sit exactly on the bounds: the pile-up WGAN-GP avoids
    assert (w.abs() == 0.01).float().mean() > 0.5


def test_weight_clipping_uses_the_chosen_bound_and_leaves_the_generator_alone():
    ring = data.ring_2d()
    trainer = toy2d.make_trainer("wgan", ring, seed=0, hidden=(32, 32), num_steps=3,
                                 loss=losses.WassersteinLoss(clip=0.05))
    trainer.fit()
    assert critic_weights(trainer.net_D).abs().max() <= 0.05
    assert critic_weights(trainer.net_D).abs().max() > 0.01
    assert critic_weights(trainer.net_G).abs().max() > 0.05  # only the critic is clipped


def test_wasserstein_history_is_minus_the_critic_loss():
    ring = data.ring_2d()
    trainer = toy2d.train_toy("wgan-gp", ring, num_steps=4, seed=0, hidden=(16,), log_every=1, k=1)
    h = trainer.history
    for key in ("wasserstein", "gp", "d_real", "d_fake"):
        assert len(h[key]) == 4
    # with k = 1 each record is one critic step: loss_D = -(E f(x) - E f(G(z))) + lambda gp
    lam = trainer.loss_fn.gp_weight
    assert lam == toy2d.recipe("wgan-gp")["loss"].gp_weight
    for loss_D, w, gp in zip(h["loss_D"], h["wasserstein"], h["gp"]):
        assert loss_D == pytest.approx(-w + lam * gp, rel=1e-5, abs=1e-6)
    for w, real, fake in zip(h["wasserstein"], h["d_real"], h["d_fake"]):
        assert w == pytest.approx(real - fake, rel=1e-5, abs=1e-6)
    assert all(g >= 0 for g in h["gp"])


def test_plain_gan_history_has_no_wasserstein_estimate():
    trainer = toy2d.train_toy("gan", data.ring_2d(), num_steps=2, seed=0, hidden=(16,), log_every=1)
    assert "wasserstein" not in trainer.history and "gp" not in trainer.history


def input_gradient_norms(net_D, points):
    x = points.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net_D(x).sum(), x)
    return g.norm(dim=1)
