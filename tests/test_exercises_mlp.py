"""Notebook 02's checks: each passes the solution and names the usual mistakes."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import exercises, losses, metrics
from gan_tutorial.exercises import ExerciseError


def stub(*args):
    raise NotImplementedError("your code here")


# --------------------------------------------------------------------------- one training step
def make_step(order="DG", detach=True, g_loss=losses.g_loss_nonsaturating, zero_D=True, zero_G=True,
              returns=lambda loss_D, loss_G: (loss_D.detach(), loss_G.detach()), fake_once=True, freeze_D=False):
    """A training step written by a learner, with the chosen slips."""
    def step(net_G, net_D, opt_G, opt_D, real, z):
        fake = net_G(z)

        def d_step():
            if zero_D:
                opt_D.zero_grad()
            f = net_G(z) if not fake_once else fake
            loss = losses.d_loss(net_D(real), net_D(f.detach() if detach else f))
            loss.backward(retain_graph=not detach)
            opt_D.step()
            return loss

        def g_step():
            if zero_G:
                opt_G.zero_grad()
            if freeze_D:
                net_D.requires_grad_(False)
            loss = g_loss(net_D(fake if fake_once else net_G(z)))
            loss.backward()
            opt_G.step()
            return loss

        if order == "DG":
            loss_D = d_step()
            loss_G = g_step()
        else:
            loss_G = g_step()
            loss_D = d_step()
        return returns(loss_D, loss_G)
    return step


def by_hand(net_G, net_D, opt_G, opt_D, real, z):
    """Softplus written out, fakes made without a graph, D frozen during G's step: also right."""
    with torch.no_grad():
        fake = net_G(z)
    opt_D.zero_grad()
    loss_D = F.softplus(-net_D(real)).mean() + F.softplus(net_D(fake)).mean()
    loss_D.backward()
    opt_D.step()
    opt_G.zero_grad()
    net_D.requires_grad_(False)
    loss_G = F.softplus(-net_D(net_G(z))).mean()
    loss_G.backward()
    opt_G.step()
    net_D.requires_grad_(True)
    return loss_D.detach(), loss_G.detach()


@pytest.mark.parametrize("good", [make_step(), make_step(fake_once=False), by_hand,
                                  make_step(returns=lambda d, g: (d, g))])
def test_train_step_check_passes_right_steps(good, capsys):
    exercises.check_train_step(good)
    assert "my_train_step: correct" in capsys.readouterr().out


def no_detach_one_graph(net_G, net_D, opt_G, opt_D, real, z):
    fake = net_G(z)
    opt_D.zero_grad()
    loss_D = losses.d_loss(net_D(real), net_D(fake))     # no detach: backward frees G's graph
    loss_D.backward()
    opt_D.step()
    opt_G.zero_grad()
    loss_G = losses.g_loss_nonsaturating(net_D(fake))
    loss_G.backward()
    opt_G.step()
    return loss_D.detach(), loss_G.detach()


def scores_before_d_step(net_G, net_D, opt_G, opt_D, real, z):
    fake = net_G(z)
    s_fake = net_D(fake)                                 # reused after opt_D.step() changed D
    opt_D.zero_grad()
    loss_D = losses.d_loss(net_D(real), s_fake.detach())
    loss_D.backward()
    opt_D.step()
    opt_G.zero_grad()
    loss_G = losses.g_loss_nonsaturating(s_fake)
    loss_G.backward()
    opt_G.step()
    return loss_D.detach(), loss_G.detach()


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (make_step(detach=False), "received a gradient 2 times"),
    (make_step(detach=False, zero_G=False), "received a gradient 2 times"),
    (make_step(detach=False, fake_once=False), "received a gradient 2 times"),
    (no_detach_one_graph, r"fake\.detach\(\)"),
    (scores_before_d_step, "score the fakes again"),
    (make_step(order="GD"), "trains the generator first"),
    (make_step(order="GD", fake_once=False), "trains the generator first"),
    (make_step(g_loss=losses.g_loss_minimax), "saturating generator loss"),
    (make_step(zero_D=False), r"Call opt_D\.zero_grad\(\) before"),
    (make_step(zero_G=False), r"Call opt_G\.zero_grad\(\) before"),
    (make_step(zero_D=False, zero_G=False), r"opt_D\.zero_grad\(\) and opt_G\.zero_grad\(\)"),
    (make_step(returns=lambda d, g: (d.item(), g.item())), "two 0-d tensors"),
    (make_step(returns=lambda d, g: d + g), "two 0-d tensors"),
    (make_step(returns=lambda d, g: (g.detach(), d.detach())), "the other way round"),
    (make_step(freeze_D=True), "requires_grad=False"),
    (make_step(g_loss=lambda s: F.softplus(-s).mean() * 0), "no gradient reached the generator|unchanged"),
    (make_step(g_loss=lambda s: losses.g_loss_nonsaturating(s).detach().requires_grad_()),
     "no gradient reached the generator"),
    (make_step(g_loss=lambda s: losses.g_loss_nonsaturating(s[:4])), "generator's differs"),
])
def test_train_step_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_train_step(wrong)


def test_train_step_check_catches_a_wrong_discriminator_step_and_no_step():
    def wrong_d(net_G, net_D, opt_G, opt_D, real, z):
        return make_step()(net_G, net_D, opt_G, opt_D, -real, z)     # D trained on other images

    with pytest.raises(ExerciseError, match="discriminator's step differs"):
        exercises.check_train_step(wrong_d)

    def no_d_step(net_G, net_D, opt_G, opt_D, real, z):
        opt_D.step = lambda: None                         # a step that is never taken
        return make_step()(net_G, net_D, opt_G, opt_D, real, z)

    with pytest.raises(ExerciseError, match="left the discriminator unchanged"):
        exercises.check_train_step(no_d_step)


def test_train_step_check_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    exercises.check_train_step(make_step())
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- Fréchet distance
def good_frechet(mu1, cov1, mu2, cov2):
    cross = torch.linalg.eigvals(cov1 @ cov2).real.clamp(min=0).sqrt().sum()
    return ((mu1 - mu2) ** 2).sum() + torch.trace(cov1 + cov2) - 2 * cross


def scipy_frechet(mu1, cov1, mu2, cov2):
    linalg = pytest.importorskip("scipy.linalg")
    root = linalg.sqrtm(cov1.numpy() @ cov2.numpy()).real
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(cov1) + torch.trace(cov2)) - 2 * float(np.trace(root))


@pytest.mark.parametrize("good", [good_frechet, scipy_frechet, metrics.frechet_distance,
                                  lambda m1, c1, m2, c2: good_frechet(m1.float(), c1.float(), m2.float(), c2.float())])
def test_frechet_check_passes_right_answers(good, capsys):
    exercises.check_frechet_distance(good)
    assert "my_frechet_distance: correct" in capsys.readouterr().out


def _root(c):
    vals, vecs = torch.linalg.eigh(c)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda m1, c1, m2, c2: ((m1 - m2) ** 2).sum() + torch.trace(c1 + c2 - 2 * torch.sqrt(c1 * c2)), "element-wise"),
    (lambda m1, c1, m2, c2: ((m1 - m2) ** 2).sum() + torch.trace(c1 + c2 - 2 * torch.sqrt((c1 @ c2).clamp(min=0))),
     "element-wise"),
    (lambda m1, c1, m2, c2: ((m1 - m2) ** 2).sum() + torch.trace(c1 + c2)
     - torch.linalg.eigvals(c1 @ c2).real.sqrt().sum(), "factor 2"),
    (lambda m1, c1, m2, c2: good_frechet(m1, c1, m2, c2) - ((m1 - m2) ** 2).sum() + (m1 - m2).norm(), "its square"),
    (lambda m1, c1, m2, c2: good_frechet(m1, c1, m2, c2) - ((m1 - m2) ** 2).sum(), "leaves out the means"),
    (lambda m1, c1, m2, c2: ((m1 - m2) ** 2).sum() + torch.trace(c1 + c2 - 2 * _root(c1) @ _root(c2)),
     "multiplies two square roots"),
    (lambda m1, c1, m2, c2: good_frechet(m1, c1, m2, c2) + 1, "check each of the three terms"),
    (lambda m1, c1, m2, c2: 1.0 if torch.equal(m1, m2) else good_frechet(m1, c1, m2, c2), "identical Gaussians"),
    (lambda m1, c1, m2, c2: (m1 - m2) ** 2 + torch.trace(c1), "one number"),
    (lambda m1, c1, m2, c2: torch.tensor(1.0 + 0.5j), "complex"),
    (lambda m1, c1, m2, c2: complex(good_frechet(m1, c1, m2, c2)), "complex"),
    (lambda m1, c1, m2, c2: "far", "one number"),
    (lambda m1, c1, m2, c2: torch.tensor(float("nan")), "square root of a negative"),
    (lambda m1, c1, m2, c2: good_frechet(m1, c1, m2, c2) * 1.1, "check each of the three terms"),
])
def test_frechet_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_frechet_distance(wrong)


def test_frechet_slips_differ_clearly_from_the_distance():
    """The test Gaussians tell every slip apart from the right value (and from each other's hints)."""
    from gan_tutorial.exercises import mlp

    for case in (mlp._gaussians(seed, spectrum) for seed, spectrum in mlp._CASES):
        want = metrics.frechet_distance(*case)
        for value, _ in mlp._slips(*case):
            assert abs(value - want) > 0.05 * want        # the check's tolerance is 1e-4 of it
