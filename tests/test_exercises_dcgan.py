"""Notebook 03's checks: each passes the solution and names the usual mistakes."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from gan_tutorial import exercises, models
from gan_tutorial.exercises import ExerciseError


def stub(*args):
    raise NotImplementedError("your code here")


# --------------------------------------------------------------------------- output size
def good_size(size, kernel, stride, padding, output_padding=0):
    return (size - 1) * stride - 2 * padding + kernel + output_padding


@pytest.mark.parametrize("good", [good_size, lambda n, k, s, p, op=0: np.int64(good_size(n, k, s, p, op))])
def test_size_check_passes_the_formula(good, capsys):
    exercises.check_conv_transpose_size(good)
    assert "my_conv_transpose_size: correct" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda n, k, s, p, op=0: (n + 2 * p - k) // s + 1, "ordinary"),
    (lambda n, k, s, p, op=0: (n - 1) * s - p + k + op, "one border only"),
    (lambda n, k, s, p, op=0: (n - 1) * s - 2 * p + k, "ignores output_padding"),
    (lambda n, k, s, p, op=0: n * s - 2 * p + k + op, r"\(n - 1\) s"),
    (lambda n, k, s, p, op=0: float(good_size(n, k, s, p, op)), "return an int"),
    (lambda n, k, s, p, op=0: torch.tensor(good_size(n, k, s, p, op)) * 1.0, "return an int"),
    (lambda n, k, s, p, op=0: None, "return an int"),
    (lambda n, k, s, p, op=0: good_size(n, k, s, p, op) + (s == 3), "not what nn.ConvTranspose2d gives"),
])
def test_size_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_conv_transpose_size(wrong)


def test_size_check_does_not_print_the_answer():
    with pytest.raises(ExerciseError) as info:
        exercises.check_conv_transpose_size(lambda n, k, s, p, op=0: good_size(n, k, s, p, op) + 1)
    assert str(info.value).endswith("which is not what nn.ConvTranspose2d gives (681 settings disagree). Try it: "
                                    "nn.ConvTranspose2d(1, 1, 1, 1, 0, output_padding=0)(torch.zeros(1, 1, 1, 1)).shape")


# --------------------------------------------------------------------------- generator block
def good_block(in_channels, out_channels):
    return nn.Sequential(nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(True))


class BlockModule(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x):
        return torch.relu(self.norm(self.up(x)))


@pytest.mark.parametrize("good", [good_block, BlockModule])
def test_up_block_check_passes_the_block(good, capsys):
    exercises.check_up_block(good)
    assert "my_up_block: correct" in capsys.readouterr().out


def _seq(*layers):
    return lambda i, o: nn.Sequential(*(layer(i, o) for layer in layers))


conv = lambda i, o: nn.ConvTranspose2d(i, o, 4, 2, 1, bias=False)
norm = lambda i, o: nn.BatchNorm2d(o)
relu = lambda i, o: nn.ReLU()


@pytest.mark.parametrize("wrong,needle", [
    (stub, "not written yet"),
    (lambda i, o: None, "should return an nn.Module"),
    (_seq(lambda i, o: nn.ConvTranspose2d(i, o, 4, 2, 1), norm, relu), "bias=False"),
    (_seq(conv, relu), "BatchNorm2d over the out_channels"),
    (_seq(conv, norm, lambda i, o: nn.LeakyReLU(0.2)), "LeakyReLU"),
    (_seq(conv, norm, lambda i, o: nn.Tanh()), "Tanh"),
    (_seq(conv, norm), "end in ReLU"),
    (_seq(conv, relu, norm), "end in ReLU"),
    (_seq(lambda i, o: nn.ConvTranspose2d(i, o, 3, 2, 1, bias=False), norm, relu), r"\(2, 4, 13, 13\)"),
    (_seq(lambda i, o: nn.Conv2d(i, o, 4, 2, 1, bias=False), norm, relu), "double height and width"),
    (_seq(lambda i, o: nn.ConvTranspose2d(i, 4, 4, 2, 1, bias=False), lambda i, o: nn.BatchNorm2d(4), relu),
     r"my_up_block\(5, 3\)"),
    (_seq(conv, lambda i, o: nn.BatchNorm2d(i), relu), "fails on a 7 x 7 input"),
    (_seq(conv, norm, relu, lambda i, o: nn.Conv2d(o, o, 1, bias=False), relu), "parameters"),
    (_seq(conv, lambda i, o: nn.BatchNorm2d(o, momentum=0.1, affine=False),
          lambda i, o: nn.Conv2d(o, o, 1, groups=o, bias=True), relu), "does not compute"),
])
def test_up_block_check_catches_the_usual_mistakes(wrong, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_up_block(wrong)


# --------------------------------------------------------------------------- a plan for 48 px
@pytest.mark.parametrize("plan", [(3, 4), (6, 3), (12, 2), (24, 1), [3, 4], (np.int64(6), 3)])
def test_plan_check_accepts_every_plan_the_builders_take(plan, capsys):
    exercises.check_dcgan_plan(plan)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(ValueError):                      # the package itself is left as it was
        models.DCGANGenerator(image_size=48)


@pytest.mark.parametrize("plan,needle", [
    (None, "not answered yet"),
    ((4, 3), "gives 32 px, not 48"),
    ((48, 0), "at least one doubling"),
    ((96, -1), "at least one doubling"),
    ((0, 4), "at least 1"),
    ((1.5, 5), "pair of whole numbers"),
    ((3.0, 4), "pair of whole numbers"),
    ((3, 4, 1), "pair of whole numbers"),
    ("48", "pair of whole numbers"),
])
def test_plan_check_catches_the_usual_mistakes(plan, needle):
    with pytest.raises(ExerciseError, match=needle):
        exercises.check_dcgan_plan(plan)
