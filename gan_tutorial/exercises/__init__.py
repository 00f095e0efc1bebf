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
from .mlp import check_frechet_distance, check_train_step
from .dcgan import check_conv_transpose_size, check_dcgan_plan, check_up_block
from .conditional import check_condition_input, check_label_blind, check_projection_score, check_weakest_digit
from .style import check_adain, check_gram_matrix, check_gram_size_difference, check_mean_std_loss
from .wgan import check_gradient_penalty, check_wasserstein_critic_loss, check_wasserstein_generator_loss

__all__ = ["ExerciseError", "check_value", "check_d_loss", "check_g_loss", "check_train_step", "check_frechet_distance",
           "check_conv_transpose_size", "check_up_block", "check_dcgan_plan", "check_gram_matrix", "check_adain",
           "check_projection_score", "check_condition_input", "check_label_blind", "check_weakest_digit",
           "check_wasserstein_critic_loss", "check_wasserstein_generator_loss", "check_gradient_penalty",
           "check_mean_std_loss", "check_gram_size_difference"]
