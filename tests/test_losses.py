import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gan_tutorial import losses


def test_d_loss_matches_bce():
    real, fake = torch.randn(16), torch.randn(16)
    expected = (F.binary_cross_entropy(torch.sigmoid(real), torch.ones(16))
                + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(16)))
    assert torch.allclose(losses.d_loss(real, fake), expected, atol=1e-6)


def test_d_loss_at_chance_is_log4():
    zero = torch.zeros(8)
    assert math.isclose(losses.d_loss(zero, zero).item(), math.log(4), rel_tol=1e-6)


def test_label_smoothing_targets():
    real, fake = torch.randn(8), torch.randn(8)
    expected = (F.binary_cross_entropy_with_logits(real, torch.full((8,), 0.9))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros(8)))
    assert torch.allclose(losses.d_loss(real, fake, label_smoothing=0.1), expected)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.d_loss(real, fake, label_smoothing=0.7)


def test_generator_losses_match_their_formulas():
    s = torch.randn(32)
    d = torch.sigmoid(s)
    assert torch.allclose(losses.g_loss_minimax(s), torch.log(1 - d).mean(), atol=1e-6)
    assert torch.allclose(losses.g_loss_nonsaturating(s), -torch.log(d).mean(), atol=1e-6)


def test_saturating_gradient_vanishes_when_d_rejects_fakes():
    # D(G(z)) ~ 0 (logit -10): the minimax loss barely moves, the non-saturating one pushes hard.
    s = torch.full((4,), -10.0, requires_grad=True)
    (g_sat,) = torch.autograd.grad(losses.g_loss_minimax(s), s)
    (g_ns,) = torch.autograd.grad(losses.g_loss_nonsaturating(s), s)
    # analytic: d/ds log(1 - sigmoid(s)) = -sigmoid(s); d/ds -log sigmoid(s) = sigmoid(s) - 1 (over a mean of 4)
    assert torch.allclose(g_sat, -torch.sigmoid(s.detach()) / 4)
    assert torch.allclose(g_ns, (torch.sigmoid(s.detach()) - 1) / 4)
    assert g_sat.abs().max() < 1e-4 < g_ns.abs().min()


def test_losses_are_stable_for_extreme_logits():
    s = torch.tensor([-200.0, 200.0])
    for value in (losses.d_loss(s, s), losses.g_loss_minimax(s), losses.g_loss_nonsaturating(s)):
        assert torch.isfinite(value)


def test_wasserstein_losses():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0])
    assert losses.wasserstein_critic_loss(real, fake).item() == pytest.approx(-3.0)
    assert losses.wasserstein_g_loss(fake).item() == pytest.approx(1.0)


class Linear(nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w).sum(1)


def test_gradient_penalty_linear_critic_is_analytic():
    # f(x) = <w, x> has gradient w everywhere: penalty = (|w| - 1)^2 for any interpolate.
    w = torch.randn(2 * 3 * 3)
    critic = Linear(w)
    real, fake = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    gp = losses.gradient_penalty(critic, real, fake)
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-5)


def test_gradient_penalty_matches_per_sample_reference():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 1))
    real, fake = torch.randn(6, 3, 2, 2), torch.randn(6, 3, 2, 2)
    gp = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    alpha = torch.rand(6, 1, 1, 1, generator=torch.Generator().manual_seed(7))  # one alpha per sample
    norms = []
    for i in range(6):  # one sample at a time: no mixing between samples is possible
        x = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i])[None].requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        norms.append(g.flatten().norm())
    expected = ((torch.stack(norms) - 1) ** 2).mean()
    assert torch.allclose(gp, expected, atol=1e-6)


def test_gradient_penalty_is_differentiable_and_safe_at_zero_gradient():
    critic = nn.Sequential(nn.Flatten(), nn.Linear(4, 1))
    nn.init.zeros_(critic[1].weight)  # gradient wrt x is exactly 0: the norm must not produce NaN
    gp = losses.gradient_penalty(critic, torch.randn(3, 4), torch.randn(3, 4))
    assert gp.item() == pytest.approx(1.0, abs=1e-5)
    gp.backward()
    assert torch.isfinite(critic[1].weight.grad).all()
    assert critic[1].weight.grad.abs().sum() == 0  # d/dw of (|w|-1)^2 at w=0 through sqrt(eps): finite


class Recorder(nn.Module):
    def forward(self, x):
        self.seen = x.detach().clone()
        return (x.flatten(1) ** 2).sum(1)


def test_gradient_penalty_alpha_is_one_number_per_sample():
    critic = Recorder()
    real, fake = torch.rand(8, 3, 4, 4) + 1.0, -torch.rand(8, 3, 4, 4) - 1.0
    losses.gradient_penalty(critic, real, fake)
    alpha = (critic.seen - fake) / (real - fake)  # (8, 3, 4, 4): must be constant within a sample
    flat = alpha.flatten(1)
    assert torch.allclose(flat, flat[:, :1].expand_as(flat), atol=1e-5)
    assert flat[:, 0].unique().numel() == 8 and ((flat >= 0) & (flat <= 1)).all()
    with pytest.raises(ValueError, match="same shape"):
        losses.gradient_penalty(critic, real, fake[:4])


def test_get_loss_registry():
    assert losses.get_loss("minimax").saturating is True
    assert losses.get_loss("non_saturating").saturating is False
    assert losses.get_loss("wasserstein").clip == 0.01
    assert losses.get_loss("wasserstein-gp").gp_weight == 10.0
    custom = losses.StandardGANLoss(label_smoothing=0.1)
    assert losses.get_loss(custom) is custom
    with pytest.raises(ValueError, match="Choose one of"):
        losses.get_loss("hinge2")


def test_weight_clipping_hook():
    net = nn.Linear(3, 3)
    with torch.no_grad():
        net.weight.fill_(5.0)
    losses.get_loss("wasserstein").after_discriminator_step(net)
    assert net.weight.abs().max() <= 0.01


@pytest.mark.parametrize("weight_scale", [1.0, 2.0])  # gradient norms below 1 and above 1
def test_gradient_penalty_under_fp16_autocast_matches_fp32(weight_scale):
    from gan_tutorial import models

    torch.manual_seed(0)
    critic = models.DCGANDiscriminator(1, 28, width=16, norm="layer")
    with torch.no_grad():
        for m in critic.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.mul_(weight_scale)
    real, fake = torch.rand(16, 1, 28, 28) * 2 - 1, torch.rand(16, 1, 28, 28) * 2 - 1
    expected = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    for dtype in (torch.float16, torch.bfloat16):
        with torch.autocast("cpu", dtype=dtype):
            gp = losses.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
            gp.backward()  # the double backward runs too, with finite weight gradients
        assert gp.dtype == torch.float32 and torch.isfinite(gp)
        assert gp.item() == pytest.approx(expected.item(), rel=1e-2), dtype
        grads = [p.grad for p in critic.parameters() if p.grad is not None]  # (a bias can get none)
        assert len(grads) > 5 and all(torch.isfinite(g).all() for g in grads)
        critic.zero_grad()
    # why the penalty takes the gradient unscaled: a GradScaler's first scale, 2**16, is past fp16's
    # largest number (65,504), so the gradient of the scaled scores is inf
    x = real.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.float16):
        (g,) = torch.autograd.grad(critic(x).float().sum() * torch.amp.GradScaler("cpu").get_scale(), x)
    assert not torch.isfinite(g).all()
