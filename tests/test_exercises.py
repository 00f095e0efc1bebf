import math

import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import exercises
from gan_tutorial.exercises import ExerciseError


def good_d_loss(s_real, s_fake):
    return -(F.logsigmoid(s_real).mean() + F.logsigmoid(-s_fake).mean())


def stub(*args):
    raise NotImplementedError("your code here")


def test_d_loss_check_passes_the_solution(capsys):
    exercises.check_d_loss(good_d_loss)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda r, f: -good_d_loss(r, f), "returns V instead of the loss"),
    (lambda r, f: good_d_loss(f, r), "swapped"),
    (lambda r, f: -(F.logsigmoid(r).sum() + F.logsigmoid(-f).sum()), "mean over the batch"),
    (lambda r, f: -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean()), "not finite"),
    (lambda r, f: -(F.logsigmoid(r) + F.logsigmoid(-f)), "one number"),
    (lambda r, f: -(F.logsigmoid(r).mean() + F.logsigmoid(f).mean()), "on random scores"),
])
def test_d_loss_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_d_loss(wrong)


def test_g_loss_check(capsys):
    exercises.check_g_loss(lambda s: F.softplus(-s).mean())
    assert "correct" in capsys.readouterr().out
    with pytest.raises(ExerciseError, match="saturating"):
        exercises.check_g_loss(lambda s: -F.softplus(s).mean())          # log(1 - D): the minimax loss
    with pytest.raises(ExerciseError, match="not finite"):
        exercises.check_g_loss(lambda s: -torch.log(torch.sigmoid(s)).mean())
    with pytest.raises(ExerciseError, match="not written yet"):
        exercises.check_g_loss(stub)
    with pytest.raises(ExerciseError, match="on random scores"):
        exercises.check_g_loss(lambda s: F.softplus(s).mean())


def test_check_value(capsys):
    exercises.check_value("exercise 3", 0.2347, 0.23468)
    assert "exercise 3: correct" in capsys.readouterr().out
    for answer, needle in [(None, "not answered"), ("abc", "expected a number"), (0.3, "not right"),
                           (math.nan, "not right")]:
        with pytest.raises(ExerciseError, match=needle):
            exercises.check_value("exercise 3", answer, 0.23468, hint="see section 2")


def good_gram(f):
    b, c, h, w = f.shape
    x = f.reshape(b, c, h * w)
    return x @ x.transpose(1, 2) / (h * w)


def test_gram_check(capsys):
    exercises.check_gram_matrix(good_gram)
    assert "correct" in capsys.readouterr().out
    for wrong, needle in [
        (lambda f: good_gram(f) * f.shape[2] * f.shape[3], "sums over the positions"),
        (lambda f: good_gram(f) / f.shape[1], r"divides by C\*H\*W"),
        (lambda f: f.flatten(2).transpose(1, 2) @ f.flatten(2), r"should give \(2, 3, 3\)"),
        (stub, "not written yet"),
    ]:
        with pytest.raises(ExerciseError, match=needle):
            exercises.check_gram_matrix(wrong)


def good_adain(c, s, eps=1e-5):
    mu_c, mu_s = c.mean((2, 3), keepdim=True), s.mean((2, 3), keepdim=True)
    sd_c = (c.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    sd_s = (s.var((2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return sd_s * (c - mu_c) / sd_c + mu_s


def test_adain_check(capsys):
    exercises.check_adain(good_adain)
    assert "correct" in capsys.readouterr().out
    unbiased = lambda c, s: ((s.var((2, 3), keepdim=True) + 1e-5).sqrt() * (c - c.mean((2, 3), keepdim=True))
                             / (c.var((2, 3), keepdim=True) + 1e-5).sqrt() + s.mean((2, 3), keepdim=True))
    for wrong, needle in [
        (lambda c, s: good_adain(s, c)[:, :, :1, :1].expand_as(c) * 0 + c, "keeps the content's channel means"),
        (lambda c, s: s.std() * (c - c.mean()) / c.std() + s.mean(), "one mean and std for all channels"),
        (unbiased, "unbiased"),
        (lambda c, s: good_adain(c, s) + 0.1, "does not give"),
        (stub, "not written yet"),
    ]:
        with pytest.raises(ExerciseError, match=needle):
            exercises.check_adain(wrong)
