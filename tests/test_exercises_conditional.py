import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import exercises
from gan_tutorial.exercises import ExerciseError


def stub(*args):
    raise NotImplementedError("your code here")


def good_score(h, y, psi, embed):
    return psi(h).squeeze(1) + (embed(y) * h).sum(dim=1)


def test_projection_score_check_passes_the_solution(capsys):
    exercises.check_projection_score(good_score)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda h, y, psi, embed: (embed(y) * h).sum(dim=1), "add the unconditional part"),
    (lambda h, y, psi, embed: psi(h).squeeze(1) + (embed(y) * h).sum(dim=0), "sums over the batch"),
    (lambda h, y, psi, embed: psi(h) + (embed(y) * h).sum(dim=1, keepdim=True), r"returns shape \(B, 1\)"),
    (lambda h, y, psi, embed: psi(h) + (embed(y) * h).sum(dim=1), r"\(B, B\) table"),
    (lambda h, y, psi, embed: psi(h).squeeze(1) + (F.one_hot(y, h.shape[1]) * h).sum(dim=1), "one-hot label"),
    (lambda h, y, psi, embed: psi(h).squeeze(1), "ignores the label"),
    (lambda h, y, psi, embed: psi(h).squeeze(1) + (embed(y) * h).mean(dim=1), "differs from"),
    (lambda h, y, psi, embed: psi(h).view(6) + (embed(y) * h).sum(dim=1), "take every size"),
    (lambda h, y, psi, embed: psi(h).squeeze(1) + (embed(y) * h).sum(dim=1) * (h.shape[1] == 6), "take every size"),
])
def test_projection_score_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_projection_score(wrong)


def test_projection_score_check_turns_shape_errors_into_hints():
    # an error in the learner's code (here a sum over the batch on 4 samples, 3 features) becomes a hint
    with pytest.raises(ExerciseError, match="raised RuntimeError"):
        exercises.check_projection_score(lambda h, y, psi, embed: psi(h).squeeze(1) + (embed(y) * h).sum(dim=0)
                                         if h.shape[0] != h.shape[1] else good_score(h, y, psi, embed))


def test_projection_score_check_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    exercises.check_projection_score(good_score)
    assert torch.equal(state, torch.random.get_rng_state())


def good_input(z, y, num_classes):
    return torch.cat([z, F.one_hot(y, num_classes).float()], dim=1)


def test_condition_input_check(capsys):
    exercises.check_condition_input(good_input)
    assert "correct" in capsys.readouterr().out
    exercises.check_condition_input(lambda z, y, k: torch.cat([z, F.one_hot(y, k).to(z.dtype)], 1))


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda z, y, k: torch.cat([z, F.one_hot(y, k).float()], dim=0), "side by side"),
    (lambda z, y, k: torch.cat([z, F.one_hot(y).float()], dim=1), "pass num_classes"),
    (lambda z, y, k: torch.cat([F.one_hot(y, k).float(), z], dim=1), "puts the label first"),
    (lambda z, y, k: torch.cat([z, y[:, None].float()], dim=1), "as one number"),
    (lambda z, y, k: torch.cat([z, F.one_hot(y, k)], dim=1).long(), r"\.float\(\)"),
    (lambda z, y, k: torch.cat([z, 2 * F.one_hot(y, k).float()], dim=1), "not the noise followed by"),
    (lambda z, y, k: torch.cat([z, F.one_hot(y, k).float(), z[:, :1]], dim=1), r"should give shape \(3, 9\)"),
])
def test_condition_input_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_condition_input(wrong)


def test_label_blind_check(capsys):
    with pytest.raises(ExerciseError, match="not answered"):
        exercises.check_label_blind(None)
    with pytest.raises(ExerciseError, match="one letter"):
        exercises.check_label_blind("d")
    right = [letter for letter in "abc" if _passes(exercises.check_label_blind, letter)]
    assert len(right) == 1
    assert "correct" in capsys.readouterr().out
    for letter in set("abc") - set(right):
        with pytest.raises(ExerciseError) as err:
            exercises.check_label_blind(letter.upper())
        assert f"({right[0]})" not in str(err.value) and f'"{right[0]}"' not in str(err.value).split("not (")[1]


def _passes(check, *args):
    try:
        check(*args)
    except ExerciseError:
        return False
    return True


def test_weakest_digit_check(capsys):
    per_digit = torch.tensor([0.99, 0.98, 0.9, 0.95, 0.8, 0.97, 0.96, 0.9, 0.85, 0.8])
    exercises.check_weakest_digit(4, per_digit)
    exercises.check_weakest_digit(torch.tensor(9), per_digit)     # a tie: both are right
    assert capsys.readouterr().out.count("correct") == 2
    for answer, needle in [(None, "not answered"), (2, "another digit does worse"), ("4", "without quotes"),
                           (4.5, "whole digit"), (10, "whole digit"), ([4], "expected a digit")]:
        with pytest.raises(ExerciseError, match=needle) as err:
            exercises.check_weakest_digit(answer, per_digit)
        assert "80%" not in str(err.value)
