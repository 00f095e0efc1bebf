"""Adversarial losses. Every function takes raw scores (logits, or critic values), never
probabilities: ``sigmoid`` lives inside the numerically stable ``softplus`` / BCE-with-logits.

With ``D(x) = sigmoid(s(x))``:

* ``log D(x) = -softplus(-s)`` and ``log(1 - D(x)) = -softplus(s)``.
* discriminator:  ``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]`` (minus the value function V).
* minimax (saturating) generator: ``L_G = E[log(1 - D(G(z)))]``  -- the paper's objective.
* non-saturating generator: ``L_G = -E[log D(G(z))]`` -- same fixed point, strong early gradients.
* Wasserstein critic: ``L_C = E[f(G(z))] - E[f(x)]``; generator ``L_G = -E[f(G(z))]``.

``get_loss(name)`` returns a :class:`GANLoss` that the training loop calls.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Discriminator loss ``-E[log D(x)] - E[log(1 - D(G(z)))]``.

    ``label_smoothing`` (one-sided, e.g. 0.1) trains D towards ``1 - label_smoothing`` on real data.
    Shapes: any, as long as each is a batch of scores. Returns a scalar.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    real_target = torch.full_like(real_logits, 1.0 - label_smoothing)
    return (F.binary_cross_entropy_with_logits(real_logits, real_target)
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def g_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """Saturating generator loss ``E[log(1 - D(G(z)))] = -E[softplus(s)]`` (to be minimised)."""
    return -F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``-E[log D(G(z))] = E[softplus(-s)]``."""
    return F.softplus(-fake_logits).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss ``E[f(G(z))] - E[f(x)]``; its negative estimates the Wasserstein-1 distance."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator loss ``-E[f(G(z))]``."""
    return -fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, labels=None, *,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP penalty ``E[(||grad_x f(x_hat)||_2 - 1)^2]`` at ``x_hat = a x + (1 - a) G(z)``.

    * ``a`` is ONE uniform number per sample (shape ``(B, 1, 1, ...)``), not per pixel;
    * the norm is over each flattened sample;
    * ``create_graph=True`` so the penalty itself can be back-propagated;
    * the norm is computed as ``sqrt(sum g^2 + 1e-12)``, finite (with a finite gradient) at g = 0.

    Mixed precision: under autocast the input gradient is taken of the *unscaled* score sum, and
    its norm is computed in float32. Do not multiply the scores by a ``GradScaler``'s scale first
    (the pattern in PyTorch's AMP notes): the scale starts at 2**16 = 65,536, above float16's
    largest number (65,504), so the backward pass overflows to inf and the penalty becomes NaN.
    Unscaled, the gradient's entries are about ``||grad|| / sqrt(numel)`` -- small but well inside
    float16's range where it matters, near the norm of 1 the penalty aims at -- so nothing is lost.
    The training loop still scales the total loss (penalty included) for the weights' backward pass,
    and the scaler skips any step whose weight gradients overflow.

    A ``torch.compile``-d critic is run without compilation here: compiled graphs do not support the
    double backward this penalty needs. A DistributedDataParallel critic needs no unwrapping: the inner
    ``autograd.grad`` asks only for the input's gradient, so DDP's hooks on the weights fire once, in the
    loop's backward, which averages the whole gradient (penalty included) over the ranks
    (tests/test_distributed.py checks it). Returns a scalar (not yet multiplied by lambda).
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    b = real.shape[0]
    alpha = torch.rand((b,) + (1,) * (real.dim() - 1), device=real.device, generator=generator,
                       dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    critic = getattr(critic, "_orig_mod", critic)  # the eager module behind a torch.compile wrapper
    scores = critic(x_hat) if labels is None else critic(x_hat, labels)
    (grad,) = torch.autograd.grad(scores.float().sum(), x_hat, create_graph=True)
    grad = grad.float().reshape(b, -1)
    norm = torch.sqrt(grad.pow(2).sum(dim=1) + 1e-12)
    return ((norm - 1.0) ** 2).mean()


# --------------------------------------------------------------------------- pluggable losses
class GANLoss:
    """A loss the training loop can use. Subclasses fill in the two methods.

    ``discriminator`` and ``generator`` return ``(loss, stats)`` where ``stats`` is a dict of
    detached scalar tensors (e.g. ``d_real``, ``d_fake``) for the history.
    """

    name = "base"
    uses_probabilities = True  # D(x) shown as sigmoid(score) in the history

    def discriminator(self, net_D, real, fake, labels=None, **kw):
        raise NotImplementedError

    def generator(self, net_D, fake, labels=None):
        raise NotImplementedError

    def after_discriminator_step(self, net_D) -> None:
        """Hook after each optimiser step of D (weight clipping uses it)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _call(net_D, x, labels):
    return net_D(x) if labels is None else net_D(x, labels)


class StandardGANLoss(GANLoss):
    """The 2014 paper's game: D trained with binary cross-entropy, G with ``generator_loss``
    ``"non-saturating"`` (the default, ``-E[log D(G(z))]``) or ``"minimax"`` (the saturating
    ``E[log(1 - D(G(z)))]`` of the paper's value function)."""

    def __init__(self, generator_loss: str = "non-saturating", label_smoothing: float = 0.0):
        if generator_loss not in ("non-saturating", "minimax"):
            raise ValueError(f"generator_loss must be 'non-saturating' or 'minimax', got {generator_loss!r}")
        self.generator_loss, self.label_smoothing = generator_loss, label_smoothing
        self.saturating = generator_loss == "minimax"
        self.name = generator_loss
        d_loss(torch.zeros(1), torch.zeros(1), label_smoothing)  # validates label_smoothing early

    def discriminator(self, net_D, real, fake, labels=None, **kw):
        s_real, s_fake = _call(net_D, real, labels), _call(net_D, fake, labels)
        loss = d_loss(s_real, s_fake, self.label_smoothing)
        stats = {"d_real": torch.sigmoid(s_real.detach().float()).mean(),
                 "d_fake": torch.sigmoid(s_fake.detach().float()).mean()}
        return loss, stats

    def generator(self, net_D, fake, labels=None):
        s_fake = _call(net_D, fake, labels)
        loss = g_loss_minimax(s_fake) if self.saturating else g_loss_nonsaturating(s_fake)
        return loss, {"d_fake_g": torch.sigmoid(s_fake.detach().float()).mean()}

    def __repr__(self) -> str:
        return f"StandardGANLoss(generator_loss={self.generator_loss!r}, label_smoothing={self.label_smoothing})"


class WassersteinLoss(GANLoss):
    """WGAN: weight clipping (``clip=0.01``, the original) or gradient penalty (``gp_weight=10``)."""

    uses_probabilities = False

    def __init__(self, gp_weight: float = 0.0, clip: float | None = None):
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        if clip is not None and clip <= 0:
            raise ValueError(f"clip must be positive, got {clip}")
        self.gp_weight, self.clip = gp_weight, clip
        self.name = "wasserstein-gp" if gp_weight > 0 else "wasserstein"

    def discriminator(self, net_D, real, fake, labels=None, generator=None, **kw):
        s_real, s_fake = _call(net_D, real, labels), _call(net_D, fake, labels)
        loss = wasserstein_critic_loss(s_real, s_fake)
        stats = {"d_real": s_real.detach().float().mean(), "d_fake": s_fake.detach().float().mean(),
                 "wasserstein": -loss.detach().float()}
        if self.gp_weight > 0:
            gp = gradient_penalty(net_D, real, fake, labels, generator=generator)
            loss = loss + self.gp_weight * gp
            stats["gp"] = gp.detach()
        return loss, stats

    def generator(self, net_D, fake, labels=None):
        s_fake = _call(net_D, fake, labels)
        return wasserstein_g_loss(s_fake), {"d_fake_g": s_fake.detach().float().mean()}

    @torch.no_grad()
    def after_discriminator_step(self, net_D) -> None:
        if self.clip is not None:
            for p in net_D.parameters():
                p.clamp_(-self.clip, self.clip)

    def __repr__(self) -> str:
        return f"WassersteinLoss(gp_weight={self.gp_weight}, clip={self.clip})"


LOSSES = {
    "minimax": lambda **kw: StandardGANLoss("minimax", **kw),
    "saturating": lambda **kw: StandardGANLoss("minimax", **kw),
    "non-saturating": lambda **kw: StandardGANLoss("non-saturating", **kw),
    "wasserstein": lambda **kw: WassersteinLoss(clip=kw.pop("clip", 0.01), **kw),
    "wasserstein-gp": lambda **kw: WassersteinLoss(gp_weight=kw.pop("gp_weight", 10.0), **kw),
}


def get_loss(loss: str | GANLoss = "non-saturating", **kwargs) -> GANLoss:
    """Return a :class:`GANLoss` by name (``minimax``, ``non-saturating``, ``wasserstein``,
    ``wasserstein-gp``); a ``GANLoss`` instance is passed through."""
    if isinstance(loss, GANLoss):
        return loss
    key = str(loss).strip().lower().replace("_", "-")
    if key not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}. Choose one of: {', '.join(LOSSES)}.")
    return LOSSES[key](**kwargs)
