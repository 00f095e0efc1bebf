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
