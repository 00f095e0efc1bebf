"""Notebook 03's checks: the output size of a transposed convolution, a generator block that
doubles the image, and a DCGAN plan for a new image size."""
from __future__ import annotations

import operator
from unittest import mock

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import models
from ._core import ExerciseError, _call

__all__ = ["check_conv_transpose_size", "check_up_block", "check_dcgan_plan"]


# --------------------------------------------------------------------------- output size
def _settings():
    """(size, kernel, stride, padding, output_padding) that nn.ConvTranspose2d accepts."""
    for size in range(1, 9):
        for kernel in range(1, 6):
            for stride in range(1, 4):
                for padding in range(kernel):
                    for output_padding in range(stride):
                        yield size, kernel, stride, padding, output_padding


def _torch_size(size, kernel, stride, padding, output_padding) -> int | None:
    """The output height PyTorch gives, or None where it refuses the setting (output below 1)."""
    try:
        out = F.conv_transpose2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, kernel, kernel), stride=stride,
                                 padding=padding, output_padding=output_padding)
    except RuntimeError:
        return None
    return out.shape[-1] if out.numel() else None


def _as_int(name: str, value, args) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ExerciseError(f"{name}{args} returns {value!r} ({type(value).__name__}): return an int, a number of "
                            "pixels (use // for a division, or int(...)).") from None


def check_conv_transpose_size(fn) -> None:
    """``fn(size, kernel, stride, padding, output_padding=0)``: the output height (or width) of
    ``nn.ConvTranspose2d`` on a ``size x size`` input."""
    name = "my_conv_transpose_size"
    _as_int(name, _call(name, fn, 7, 4, 2, 1), (7, 4, 2, 1))
    slips = {
        "conv": (lambda n, k, s, p, op: (n + 2 * p - k) // s + 1,
                 "uses the formula of the ordinary (strided) convolution, which shrinks the image. A transposed "
                 "convolution runs it backwards: (n - 1) s stamps apart, plus the kernel, minus the padding cut "
                 "from both borders."),
        "pad": (lambda n, k, s, p, op: (n - 1) * s - p + k + op,
                "cuts the padding from one border only: p rows are cut at the top and p at the bottom, so 2 p."),
        "n_s": (lambda n, k, s, p, op: n * s - 2 * p + k + op,
                "counts n strides between the stamps: n input pixels are n - 1 strides apart, (n - 1) s."),
        "op": (lambda n, k, s, p, op: (n - 1) * s - 2 * p + k,
               "ignores output_padding: it adds that many rows (and columns) at one border, after the cut."),
    }
    wrong = []
    for args in _settings():
        want = _torch_size(*args)
        if want is None:
            continue
        got = _as_int(name, _call(name, fn, *args), args)
        if got != want:
            wrong.append((args, got))
    if not wrong:
        print(f"{name}: correct (agrees with nn.ConvTranspose2d on every setting tried: sizes 1-8, kernels 1-5, "
              "strides 1-3, every padding and output_padding)")
        return
    for formula, hint in slips.values():
        if all(formula(*args) == got for args, got in wrong):
            raise ExerciseError(f"{name} {hint}")
    (n, k, s, p, op), got = wrong[0]
    raise ExerciseError(f"{name}({n}, {k}, {s}, {p}, {op}) gives {got}, which is not what nn.ConvTranspose2d gives "
                        f"({len(wrong)} settings disagree). Try it: nn.ConvTranspose2d(1, 1, {k}, {s}, {p}, "
                        f"output_padding={op})(torch.zeros(1, 1, {n}, {n})).shape")


# --------------------------------------------------------------------------- generator block
def _package_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """An inner block of ``models.DCGANGenerator`` (28 px: one block, from 2w to w channels)."""
    if in_channels != 2 * out_channels:
        raise ValueError("the package's blocks halve the channels")
    with torch.random.fork_rng():
        net = models.DCGANGenerator(latent_dim=2, channels=1, image_size=28, width=out_channels)
    return net.net[3:6]


def check_up_block(fn) -> None:
    """``fn(in_channels, out_channels)``: a module that doubles height and width, as the inner blocks
    of ``models.DCGANGenerator`` do: ConvTranspose2d(4, 2, 1, no bias), BatchNorm2d, ReLU."""
    name = "my_up_block"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        block = _call(name, fn, 8, 4)
        other = _call(name, fn, 5, 3)
    if not isinstance(block, nn.Module) or not isinstance(other, nn.Module):
        raise ExerciseError(f"{name} should return an nn.Module (e.g. nn.Sequential(...)), got {type(block).__name__}.")
    block.train(), other.train()
    x = torch.randn(2, 8, 7, 7, generator=torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            y, y_other = block(x), other(x[:, :5])
    except Exception as e:                            # wrong channel counts, most often
        raise ExerciseError(f"{name}(8, 4) or {name}(5, 3) fails on a 7 x 7 input: {type(e).__name__}: "
                            f"{str(e)[:200]}. The first layer takes in_channels, the others work on "
                            "out_channels.") from None
    for got, c_in, c_out in ((y, 8, 4), (y_other, 5, 3)):
        if tuple(got.shape) != (2, c_out, 14, 14):
            raise ExerciseError(f"{name}({c_in}, {c_out}) turns a (2, {c_in}, 7, 7) input into {tuple(got.shape)}; "
                                f"it should double height and width and give {c_out} channels. Use "
                                "nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1).")
    convs = [m for m in block.modules() if isinstance(m, nn.ConvTranspose2d)]
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    if len(convs) != 1:
        raise ExerciseError(f"{name} should hold one nn.ConvTranspose2d, found {len(convs)}.")
    if not norms or norms[0].num_features != 4:
        raise ExerciseError(f"{name} needs an nn.BatchNorm2d over the out_channels after the transposed convolution: "
                            "it keeps each channel's scale steady while the generator learns.")
    if convs[0].bias is not None:
        raise ExerciseError(f"{name}: the transposed convolution has a bias, but BatchNorm right after it subtracts "
                            "each channel's mean, bias included, so the bias can never change the output: wasted "
                            "parameters. Build it with bias=False (BatchNorm's own shift takes its place).")
    if any(isinstance(m, nn.LeakyReLU) for m in block.modules()):
        raise ExerciseError(f"{name} uses LeakyReLU: that is the discriminator's activation. DCGAN's generator uses "
                            "ReLU inside (and Tanh only on its last layer).")
    if any(isinstance(m, nn.Tanh) for m in block.modules()):
        raise ExerciseError(f"{name} uses Tanh: that belongs to the generator's last layer only, to give images in "
                            "[-1, 1]. Inner blocks end in ReLU.")
    if y.min() < 0:                                   # nn.ReLU or torch.relu: no negative outputs
        raise ExerciseError(f"{name} should end in ReLU: ConvTranspose2d, then BatchNorm2d, then nn.ReLU().")
    want_count = models.count_parameters(_package_block(8, 4))
    if models.count_parameters(block) != want_count:
        raise ExerciseError(f"{name}(8, 4) has {models.count_parameters(block):,} parameters; the generator's block "
                            "has only the convolution's weights (no bias) and BatchNorm's scale and shift. "
                            "Remove anything else.")
    reference = _package_block(8, 4).train()
    reference[0].weight.data.copy_(convs[0].weight.data)
    reference[1].load_state_dict(norms[0].state_dict(), strict=False)
    with torch.no_grad():
        expected = reference(x)
    if not torch.allclose(y, expected, atol=1e-5):
        raise ExerciseError(f"{name} has the right layers but does not compute ReLU(BatchNorm(ConvTranspose(x))): "
                            "check their order (and kernel 4, stride 2, padding 1).")
    print(f"{name}: correct (the same block as in gan_tutorial.models.DCGANGenerator: doubles the size, "
          "no wasted bias, ReLU)")


# --------------------------------------------------------------------------- a plan for a new size
def check_dcgan_plan(plan, image_size: int = 48) -> None:
    """``plan = (start size, number of doublings)``: builds ``models.DCGANGenerator`` and
    ``models.DCGANDiscriminator`` for ``image_size`` with it and runs them."""
    name = f"my_plan ({image_size} px)"
    if plan is None:
        raise ExerciseError(f"{name}: not answered yet. Put your (start size, number of doublings) in my_plan and "
                            "run that cell.")
    try:
        start, ups = (operator.index(v) for v in plan)
    except (TypeError, ValueError):
        raise ExerciseError(f"{name} should be a pair of whole numbers, (start size, number of doublings), "
                            f"got {plan!r}.") from None
    if ups < 1:
        raise ExerciseError(f"{name}: the generator's last layer always doubles the size (kernel 4, stride 2, "
                            "padding 1), so a plan needs at least one doubling.")
    if start < 1:
        raise ExerciseError(f"{name}: the start size is the side of the first feature map, at least 1.")
    if start * 2 ** ups != image_size:
        raise ExerciseError(f"{name}: starting at {start} px and doubling {ups} times gives {start * 2 ** ups} px, "
                            f"not {image_size}.")
    original = models._plan
    planned = lambda size: (start, ups) if size == image_size else original(size)
    try:
        with mock.patch.object(models, "_plan", planned), torch.random.fork_rng():
            net_G = models.DCGANGenerator(latent_dim=8, channels=1, image_size=image_size, width=4)
            net_D = models.DCGANDiscriminator(channels=1, image_size=image_size, width=4)
            with torch.no_grad():
                images = net_G(torch.randn(2, 8))
                scores = net_D(images)
    except Exception as e:
        raise ExerciseError(f"{name}: the DCGAN builders refuse this plan ({type(e).__name__}: {str(e)[:200]}).") from None
    if tuple(images.shape) != (2, 1, image_size, image_size) or tuple(scores.shape) != (2,):
        raise ExerciseError(f"{name}: the generator built with it makes images of shape {tuple(images.shape)[1:]}, "
                            f"not (1, {image_size}, {image_size}).")
    print(f"{name}: correct (models.DCGANGenerator and DCGANDiscriminator build with it: "
          f"a {start} x {start} start, {ups} doubling(s))")
