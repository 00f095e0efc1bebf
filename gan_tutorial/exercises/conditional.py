"""Notebook 04's checks: the projection discriminator's score, the conditional generator's input,
and the two questions (a label-blind discriminator, the weakest digit)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models
from ._core import ExerciseError, _call

__all__ = ["check_projection_score", "check_condition_input", "check_label_blind", "check_weakest_digit"]


def _run(name: str, fn, hint: str, *args):
    """``fn(*args)``; a shape error in the learner's code becomes an ExerciseError with ``hint``."""
    try:
        return _call(name, fn, *args)
    except (RuntimeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExerciseError(f"{name} raised {type(e).__name__}: {first}. {hint}") from None


def _projection_D(in_features: int, width: int, num_classes: int, seed: int) -> models.ProjectionMLPDiscriminator:
    with torch.random.fork_rng(devices=[]):          # the learner's random numbers stay as they were
        torch.manual_seed(seed)
        return models.ProjectionMLPDiscriminator((in_features,), hidden=(width,), num_classes=num_classes)


def check_projection_score(fn) -> None:
    """``fn(h, y, psi, embed)``: the projection discriminator's scores ``(B,)`` from its features ``h``."""
    name = "my_projection_score"
    shapes = ("h is (B, F), psi(h) is (B, 1) and embed(y) is (B, F): check which shapes your lines combine, "
              "and that the result has one score per sample, shape (B,).")
    net = _projection_D(5, 6, 4, seed=0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 5, generator=g), torch.tensor([0, 3, 1, 1, 2, 3])
    with torch.no_grad():
        h = net.features(x)                                   # (6, 6): as many samples as features
        want = net(x, y)                                      # the package's score, (6,)
        ours = _run(name, fn, shapes, h, y, net.head, net.embed)
        if not torch.is_tensor(ours):
            raise ExerciseError(f"{name} should return a tensor of scores, one per sample, got {type(ours).__name__}.")
        if ours.shape == (6, 1):
            raise ExerciseError(f"{name} returns shape (B, 1): psi(h) is (B, 1), so squeeze(1) it (and sum the "
                                "product over dim=1 without keepdim) to get one score per sample, shape (B,).")
        if ours.shape == (6, 6):
            raise ExerciseError(f"{name} returns a (B, B) table: adding psi(h), shape (B, 1), to a (B,) tensor "
                                "broadcasts. Squeeze psi(h) to (B,) first: psi(h).squeeze(1).")
        if ours.shape != want.shape:
            raise ExerciseError(f"{name} should return one score per sample, shape (B,), got {tuple(ours.shape)}. {shapes}")
        head, proj = net.head(h).squeeze(1), (net.embed(y) * h).sum(dim=1)
        if torch.allclose(ours, want, atol=1e-5):
            pass
        elif torch.allclose(ours, proj, atol=1e-5):
            raise ExerciseError(f"{name} has only the label's part e_y . phi(x): add the unconditional part "
                                "psi(h).squeeze(1) (is it a digit at all?).")
        elif torch.allclose(ours, head + (net.embed(y) * h).sum(dim=0), atol=1e-5):
            raise ExerciseError(f"{name} sums over the batch (dim=0): each sample gets its own inner product "
                                "e_y . phi(x), a sum over the features, dim=1.")
        elif torch.allclose(ours, head + h.gather(1, y[:, None]).squeeze(1), atol=1e-5):
            raise ExerciseError(f"{name} uses a one-hot label on the features, which just picks feature y of h. "
                                "The label enters through its learned vector e_y = embed(y), shape (B, F).")
        elif torch.allclose(ours, head, atol=1e-5):
            raise ExerciseError(f"{name} ignores the label: add the inner product of embed(y) with h, summed over dim=1.")
        else:
            raise ExerciseError(f"{name} differs from the projection discriminator's score "
                                f"(max difference {float((ours - want).abs().max()):.3g}). {shapes}")
        net2 = _projection_D(7, 3, 10, seed=2)              # another batch size, width and number of classes
        x2, y2 = torch.randn(4, 7, generator=g), torch.tensor([9, 0, 5, 5])
        other_sizes = (f"{name} is right for 6 samples with 6 features but not for 4 samples with 3 features and "
                       "10 classes: take every size from the inputs (h.shape), never a fixed number.")
        ours2 = _run(name, fn, other_sizes, net2.features(x2), y2, net2.head, net2.embed)
        if not torch.is_tensor(ours2) or ours2.shape != (4,) or not torch.allclose(ours2, net2(x2, y2), atol=1e-5):
            raise ExerciseError(other_sizes)
    print(f"{name}: correct (matches gan_tutorial.models.ProjectionMLPDiscriminator)")


def check_condition_input(fn) -> None:
    """``fn(z, y, num_classes)``: the conditional generator's input ``[z ; one_hot(y)]``, shape ``(B, L + K)``."""
    name = "my_condition_input"
    hint = ("z is (B, latent_dim) and the one-hot labels (B, num_classes): put them side by side, "
            "torch.cat([z, one_hot], dim=1).")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net_G = models.MLPGenerator(5, (1, 2, 2), hidden=(8,), num_classes=4).eval()
    z = torch.randn(3, 5, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([2, 0, 1])                             # no label 3 in this batch
    ours = _run(name, fn, hint, z, y, 4)
    if not torch.is_tensor(ours):
        raise ExerciseError(f"{name} should return a tensor, got {type(ours).__name__}.")
    if ours.shape == (3, 8):
        raise ExerciseError(f"{name} gives 3 one-hot columns for a batch whose largest label is 2, but there are 4 "
                            "classes: pass num_classes to F.one_hot(y, num_classes), or a batch without the "
                            "last digit would give a narrower input.")
    if ours.shape == (3, 6):
        raise ExerciseError(f"{name} appends the label as one number: turn it into a one-hot vector first, "
                            "F.one_hot(y, num_classes).")
    if ours.shape != (3, 9):
        raise ExerciseError(f"{name} on z (3, 5) and 4 classes should give shape (3, 9), got {tuple(ours.shape)}. {hint}")
    if not ours.is_floating_point():
        raise ExerciseError(f"{name} returns {ours.dtype}: a Linear layer reads floats, so convert the one-hot "
                            "labels with .float() (or .to(z.dtype)).")
    one_hot, ours = F.one_hot(y, 4).to(z.dtype), ours.to(z.dtype)
    if torch.equal(ours, torch.cat([one_hot, z], dim=1)):
        raise ExerciseError(f"{name} puts the label first: the package's generator reads the noise first, then "
                            "the one-hot label, torch.cat([z, one_hot], dim=1).")
    with torch.no_grad():
        if not torch.equal(ours, torch.cat([z, one_hot], dim=1)) or not torch.allclose(
                net_G.net(ours).view(3, 1, 2, 2), net_G(z, y)):
            raise ExerciseError(f"{name} is not the noise followed by the one-hot labels. {hint}")
    print(f"{name}: correct (the input gan_tutorial.models.MLPGenerator(num_classes=...) builds)")


_LABEL_BLIND_RIGHT = "b"
_LABEL_BLIND_WRONG = {
    "a": "More steps do not help: a discriminator that cannot see the label never penalises a wrong digit, so "
         "nothing pushes the generator towards the right one. Look at the last paragraph of section 1.",
    "c": "Training does not fail: without the label it is an ordinary GAN on all digits together, which trains "
         "as in notebook 02. Ask what it then compares, and whether the label matters to that.",
}


def check_label_blind(answer) -> None:
    """Exercise 1: what a generator learns against a discriminator that does not see the label."""
    name = "exercise 1"
    if answer is None:
        raise ExerciseError(f"{name}: not answered yet. Put \"a\", \"b\" or \"c\" in my_answer and run that cell.")
    letter = str(answer).strip().strip("()").lower()
    if letter not in ("a", "b", "c"):
        raise ExerciseError(f"{name}: answer with one letter, \"a\", \"b\" or \"c\"; got {answer!r}.")
    if letter != _LABEL_BLIND_RIGHT:
        raise ExerciseError(f"{name}: not ({letter}). {_LABEL_BLIND_WRONG[letter]}")
    print(f"{name}: correct. The discriminator compares only the mixtures over all digits, which a generator "
          "that ignores the label can already match.")


def check_weakest_digit(answer, per_digit) -> None:
    """Exercise 2: the digit whose label accuracy in ``per_digit`` (10 numbers) is lowest."""
    name = "exercise 2"
    if answer is None:
        raise ExerciseError(f"{name}: not answered yet. Put a digit, 0 to 9, in my_digit and run that cell.")
    acc = torch.as_tensor(per_digit, dtype=torch.float64).reshape(-1)
    if isinstance(answer, str):
        raise ExerciseError(f"{name}: give the digit as a number, without quotes; got the text {answer!r}.")
    try:
        digit = int(answer)
    except (TypeError, ValueError):
        raise ExerciseError(f"{name}: expected a digit from 0 to 9, got {answer!r}.") from None
    if digit != answer or not 0 <= digit < acc.numel():
        raise ExerciseError(f"{name}: expected a whole digit from 0 to {acc.numel() - 1}, got {answer!r}.")
    if acc[digit] > acc.min() + 1e-9:
        raise ExerciseError(f"{name}: the generator draws a {digit} right {acc[digit]:.0%} of the time, and another "
                            "digit does worse. Find the smallest entry of per_digit (tensor.argmin() gives its "
                            "position).")
    print(f"{name}: correct")
