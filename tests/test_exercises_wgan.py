import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import exercises, losses
from gan_tutorial.exercises import ExerciseError


def stub(*args):
    raise NotImplementedError("your code here")


def test_critic_loss_check(capsys):
    exercises.check_wasserstein_critic_loss(lambda r, f: f.mean() - r.mean())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda r, f: r.mean() - f.mean(), "sign flipped"),
    (lambda r, f: f.sum() - r.sum(), "not the sum"),
    (lambda r, f: losses.d_loss(r, f), "sigmoid or a log"),
    (lambda r, f: torch.sigmoid(f).mean() - torch.sigmoid(r).mean(), "sigmoid or a log"),
    (lambda r, f: f - r, "one number"),
    (lambda r, f: f.mean() - r.mean() + 1, "not E f"),
])
def test_critic_loss_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_wasserstein_critic_loss(wrong)


def test_generator_loss_check(capsys):
    exercises.check_wasserstein_generator_loss(lambda f: -f.mean())
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda f: f.mean(), "sign flipped"),
    (lambda f: -f.sum(), "not the sum"),
    (lambda f: F.softplus(-f).mean(), "sigmoid or a log"),
    (lambda f: -torch.sigmoid(f).mean(), "sigmoid or a log"),
    (lambda f: -f, "one number"),
    (lambda f: -f.mean() + 1, "not -E"),
])
def test_generator_loss_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_wasserstein_generator_loss(wrong)


def penalty(critic, real, fake, alpha, *, create_graph=True, interpolate=True, batch_norm=False, squared=False,
            sqrt=False, last_axis=False):
    """The gradient penalty, with switches for the usual mistakes."""
    x_hat = (alpha * real + (1 - alpha) * fake) if interpolate else real
    x_hat = x_hat.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=create_graph)
    if batch_norm:
        return (grad.norm() - 1) ** 2
    if last_axis:
        return ((grad.norm(dim=-1) - 1) ** 2).mean()
    norm = grad.flatten(1).pow(2).sum(1).sqrt() if sqrt else grad.flatten(1).norm(dim=1)
    return (norm ** 2).mean() if squared else ((norm - 1) ** 2).mean()


def test_gradient_penalty_check_passes_the_solution(capsys):
    exercises.check_gradient_penalty(penalty)
    assert "correct" in capsys.readouterr().out
    # the package's way of computing the norm passes too
    exercises.check_gradient_penalty(lambda c, r, f, a: ((torch.sqrt(torch.autograd.grad(
        c(h := (a * r + (1 - a) * f).requires_grad_(True)).sum(), h, create_graph=True)[0].flatten(1).pow(2).sum(1)
        + 1e-12) - 1) ** 2).mean())


@pytest.mark.parametrize("kwargs,needle", [
    (dict(create_graph=False), "create_graph=True"),
    (dict(interpolate=False), "at the real points"),
    (dict(batch_norm=True), "one norm over the whole batch"),
    (dict(squared=True), "penalises the squared norm"),
    (dict(last_axis=True), "last axis only"),
    (dict(sqrt=True), "NaN gradient where the critic is flat"),
])
def test_gradient_penalty_check_catches_the_usual_mistakes(kwargs, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_gradient_penalty(lambda c, r, f, a: penalty(c, r, f, a, **kwargs))


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda c, r, f, a: penalty(c, r, f, 1 - a), "swaps alpha"),
    (lambda c, r, f, a: penalty(c, r, f, a) * r.shape[0], "sums over the batch"),
    (lambda c, r, f, a: penalty(c, r, f, a).reshape(1, 1).expand(2, 1), "one number"),
    (lambda c, r, f, a: penalty(c, r, f, a).detach(), "create_graph=True"),
    (lambda c, r, f, a: penalty(c, r, f, a) * 1.5, "differs from"),
    (lambda c, r, f, a: torch.autograd.grad(c(a * r + (1 - a) * f).sum(), r), "requires_grad_"),
])
def test_gradient_penalty_check_catches_other_slips(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_gradient_penalty(wrong)


def test_gradient_penalty_check_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    exercises.check_gradient_penalty(penalty)
    assert torch.equal(state, torch.random.get_rng_state())
