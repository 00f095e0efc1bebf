"""The shared pieces of the exercise checks: the error they raise, calling the learner's code, and
checking a number."""
from __future__ import annotations

import math

__all__ = ["ExerciseError", "check_value"]


class ExerciseError(AssertionError):
    """A wrong (or missing) answer; the message says what to look at."""


def _call(name: str, fn, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise ExerciseError(f"{name} is not written yet: replace the `raise NotImplementedError` line "
                            "with your code, run that cell, then this one.") from None


def check_value(name: str, answer, expected: float, tol: float = 1e-3, hint: str = "") -> None:
    """A number the learner computed: ``answer`` within ``tol`` of ``expected``."""
    if answer is None:
        raise ExerciseError(f"{name}: not answered yet. Put your number in the answer cell and run it.")
    try:
        value = float(answer)
    except (TypeError, ValueError):
        raise ExerciseError(f"{name}: expected a number, got {type(answer).__name__} {answer!r}.") from None
    if not math.isfinite(value) or abs(value - float(expected)) > tol:
        raise ExerciseError(f"{name}: {value:.6g} is not right (tolerance {tol:g}). {hint}".rstrip())
    print(f"{name}: correct")
