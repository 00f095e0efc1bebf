"""Checks for the notebooks' exercises, one module per notebook: each check raises
:class:`ExerciseError` with a hint on a wrong answer (and when the exercise is not written yet), and
prints one line when it is right.

The checks compare the learner's code with the package on inputs chosen to expose the usual
mistakes (a flipped sign, ``log(sigmoid(s))`` that overflows, a sum instead of a mean), so the
notebook never shows the answer before the learner tries. Notebooks call them as
``exercises.check_NAME(...)``.
"""
from ._core import ExerciseError, check_value
from .minimax import check_d_loss, check_g_loss
from .style import check_adain, check_gram_matrix

__all__ = ["ExerciseError", "check_value", "check_d_loss", "check_g_loss", "check_gram_matrix", "check_adain"]
