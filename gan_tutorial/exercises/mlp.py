"""Notebook 02's checks: one training step of Algorithm 1 written by hand, and the Fréchet distance
between two Gaussians."""
from __future__ import annotations

import copy
import math

import torch

from .. import losses, metrics, models
from ._core import ExerciseError, _call

__all__ = ["check_train_step", "check_frechet_distance"]

_LR, _BETAS = 1e-2, (0.5, 0.999)


# --------------------------------------------------------------------------- one training step
def _problem():
    """Tiny nets (the package's MLP classes), a batch of real images, noise, and stale gradients."""
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():                     # leave the notebook's random numbers alone
        torch.manual_seed(0)
        net_G = models.MLPGenerator(latent_dim=4, out_shape=(1, 3, 3), hidden=(16,), batchnorm=False)
        net_D = models.MLPDiscriminator(in_shape=(1, 3, 3), hidden=(16,))
    real = torch.tanh(torch.randn(8, 1, 3, 3, generator=g) + 0.5)
    z = torch.randn(8, 4, generator=g)
    stale = [10 * torch.randn(p.shape, generator=g) for p in (*net_G.parameters(), *net_D.parameters())]
    return net_G, net_D, real, z, stale


def _fresh(problem):
    """Copies of the nets with Adam optimisers, every ``.grad`` holding a leftover gradient."""
    net_G, net_D, real, z, stale = problem
    net_G, net_D = copy.deepcopy(net_G), copy.deepcopy(net_D)
    net_G.train(), net_D.train()
    for p, s in zip((*net_G.parameters(), *net_D.parameters()), stale):
        p.grad = s.clone()                            # what an earlier step left behind
    opt_G = torch.optim.Adam(net_G.parameters(), lr=_LR, betas=_BETAS)
    opt_D = torch.optim.Adam(net_D.parameters(), lr=_LR, betas=_BETAS)
    return net_G, net_D, opt_G, opt_D, real.clone(), z.clone()


def _reference(net_G, net_D, opt_G, opt_D, real, z, *, order="DG", saturating=False, zero_D=True, zero_G=True):
    """Algorithm 1 with k = 1 (as ``train.Trainer`` does it); the keywords make the usual slips
    (``order="GD"``: the generator first; ``"GD-old"``: then D on the fakes made before G's step)."""
    early = net_G(z).detach()

    def d_step():
        if zero_D:
            opt_D.zero_grad()
        loss = losses.d_loss(net_D(real), net_D(early if order == "GD-old" else net_G(z).detach()))
        loss.backward()
        opt_D.step()
        return loss.detach()

    def g_step():
        if zero_G:
            opt_G.zero_grad()
        s_fake = net_D(net_G(z))
        loss = losses.g_loss_minimax(s_fake) if saturating else losses.g_loss_nonsaturating(s_fake)
        loss.backward()
        opt_G.step()
        return loss.detach()

    if order == "DG":
        loss_D = d_step()
        return loss_D, g_step()
    loss_G = g_step()
    return d_step(), loss_G


def _outcome(problem, step, **kw):
    net_G, net_D, opt_G, opt_D, real, z = _fresh(problem)
    loss_D, loss_G = step(net_G, net_D, opt_G, opt_D, real, z, **kw)
    return ([p.detach().clone() for p in net_G.parameters()], [p.detach().clone() for p in net_D.parameters()],
            float(loss_D), float(loss_G))


def _same(a, b) -> bool:
    return all(torch.allclose(x, y, rtol=1e-5, atol=1e-6) for x, y in zip(a, b))


def check_train_step(fn) -> None:
    """``fn(net_G, net_D, opt_G, opt_D, real, z)``: one discriminator step, then one generator step
    (non-saturating loss, from raw scores), returning ``(loss_D, loss_G)`` as 0-d tensors."""
    name = "my_train_step"
    problem = _problem()
    net_G, net_D, opt_G, opt_D, real, z = _fresh(problem)
    before_G = [p.detach().clone() for p in net_G.parameters()]
    before_D = [p.detach().clone() for p in net_D.parameters()]
    calls = [0] * len(before_G)                       # how often a gradient reaches each generator parameter

    def counter(i):
        def hook(grad):
            calls[i] += 1
        return hook

    handles = [p.register_hook(counter(i)) for i, p in enumerate(net_G.parameters())]
    try:
        result = _call(name, fn, net_G, net_D, opt_G, opt_D, real, z)
    except RuntimeError as e:
        text = str(e)
        if "second time" in text:
            raise ExerciseError(f"{name}: the discriminator's backward pass went through the generator, so the "
                                "generator's step could not use that graph again. In the discriminator's step "
                                "score the fakes as net_D(fake.detach()).") from None
        if "inplace" in text or "in-place" in text:
            raise ExerciseError(f"{name}: the generator's loss uses scores computed before opt_D.step() changed "
                                "the discriminator. After the discriminator's step, score the fakes again: "
                                "net_D(fake) in the generator's step.") from None
        raise
    finally:
        for h in handles:
            h.remove()

    if (not isinstance(result, (tuple, list)) or len(result) != 2
            or not all(torch.is_tensor(v) and v.dim() == 0 for v in result)):
        raise ExerciseError(f"{name} should return (loss_D, loss_G): two 0-d tensors, the losses of the two steps "
                            "(e.g. loss_D.detach(), not loss_D.item()).")
    if max(calls) == 0:
        raise ExerciseError(f"{name}: no gradient reached the generator. In its step, score net_G(z) with the "
                            "discriminator without detach, then call loss_G.backward() and opt_G.step().")
    if max(calls) > 1:
        raise ExerciseError(f"{name}: the generator received a gradient {max(calls)} times in one step. The "
                            "discriminator's loss must not send a gradient into the generator: it is wasted work, "
                            "and unless opt_G.zero_grad() runs just before the generator's backward, it adds the "
                            "discriminator's wish (fakes look fake) to the generator's. Score the fakes as "
                            "net_D(fake.detach()) in the discriminator's step.")
    if not all(p.requires_grad for p in (*net_G.parameters(), *net_D.parameters())):
        raise ExerciseError(f"{name} leaves some parameters with requires_grad=False: if you freeze the "
                            "discriminator for the generator's step, call net_D.requires_grad_(True) at the end, "
                            "or the next discriminator step cannot learn.")
    after_G = [p.detach().clone() for p in net_G.parameters()]
    after_D = [p.detach().clone() for p in net_D.parameters()]
    if _same(after_D, before_D):
        raise ExerciseError(f"{name} left the discriminator unchanged: call opt_D.step() after loss_D.backward() "
                            "(and opt_D.zero_grad() before the backward, not between backward and step).")
    if _same(after_G, before_G):
        raise ExerciseError(f"{name} left the generator unchanged: call opt_G.step() after loss_G.backward() "
                            "(and opt_G.zero_grad() before the backward, not between backward and step).")
    ours = (after_G, after_D, float(result[0].detach()), float(result[1].detach()))
    want = _outcome(problem, _reference)
    ok_G, ok_D = _same(ours[0], want[0]), _same(ours[1], want[1])
    ok_loss_D, ok_loss_G = math.isclose(ours[2], want[2], rel_tol=1e-4), math.isclose(ours[3], want[3], rel_tol=1e-4)
    if ok_G and ok_D and ok_loss_D and ok_loss_G:
        print(f"{name}: correct (the same weights and losses as the package's training step)")
        return

    def like(**kw):
        other = _outcome(problem, _reference, **kw)
        return _same(ours[0], other[0]) and _same(ours[1], other[1])

    if like(order="GD") or like(order="GD-old"):
        raise ExerciseError(f"{name} trains the generator first. Algorithm 1 takes the discriminator's step first, "
                            "then the generator's step against the updated discriminator.")
    saturating = _outcome(problem, _reference, saturating=True)
    if math.isclose(ours[3], saturating[3], rel_tol=1e-4) or (ok_D and _same(ours[0], saturating[0])):
        raise ExerciseError(f"{name} uses the saturating generator loss log(1 - D(G(z))). Use the non-saturating "
                            "one, -log D(G(z)) (losses.g_loss_nonsaturating, or softplus(-score)): it still "
                            "gives a gradient when the discriminator is winning.")
    for zero_D, zero_G, which in [(False, True, "opt_D.zero_grad()"), (True, False, "opt_G.zero_grad()"),
                                  (False, False, "opt_D.zero_grad() and opt_G.zero_grad()")]:
        if like(zero_D=zero_D, zero_G=zero_G):
            raise ExerciseError(f"{name}: the step added leftover gradients from an earlier step (the check leaves "
                                f"some in .grad, as a previous step would). Call {which} before the backward "
                                "pass: backward() adds to .grad, it does not overwrite it.")
    if ok_G and ok_D and math.isclose(ours[2], want[3], rel_tol=1e-4) and math.isclose(ours[3], want[2], rel_tol=1e-4):
        raise ExerciseError(f"{name} returns the losses the other way round: return (loss_D, loss_G).")
    if not ok_D:
        raise ExerciseError(f"{name}: the discriminator's step differs from one Adam step on "
                            "L_D = losses.d_loss(net_D(real), net_D(net_G(z).detach())) with the real batch and "
                            "the noise z it is given (zero_grad, backward, step).")
    if not ok_G:
        raise ExerciseError(f"{name}: the discriminator's step is right, the generator's differs. After opt_D.step(), "
                            "take one Adam step on L_G = losses.g_loss_nonsaturating(net_D(net_G(z))) with the same "
                            "z (zero_grad, backward, step).")
    raise ExerciseError(f"{name}: the weights are right but the returned losses are not: return the loss of each "
                        "step as it was computed in that step, (loss_D, loss_G).")


# --------------------------------------------------------------------------- Fréchet distance
def _gaussians(seed: int, spectrum: tuple[float, ...]):
    """Two Gaussians whose covariances have the eigenvalues ``spectrum`` along two random bases: correlated
    (non-diagonal), well-conditioned, and far enough from commuting that the usual slips stand out."""
    g = torch.Generator().manual_seed(seed)
    dim = len(spectrum)
    mu1 = torch.randn(dim, generator=g, dtype=torch.float64)
    step = torch.randn(dim, generator=g, dtype=torch.float64)
    mu2 = mu1 + 3 * step / step.norm()                # |mu1 - mu2| = 3: its square is 9
    covs = []
    for _ in range(2):
        basis, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
        covs.append(basis @ torch.diag(torch.tensor(spectrum, dtype=torch.float64)) @ basis.T)
    return mu1, covs[0], mu2, covs[1]


_CASES = ((2, (9.0, 2.0, 0.25, 0.1)), (2, (10.0, 1.0, 0.1)))


def _number(name: str, value) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ExerciseError(f"{name} should return one number (a float or a 0-d tensor), got a tensor of shape "
                                f"{tuple(value.shape)}. Sum the squared mean difference; take the trace of the "
                                "matrices.")
        value = value.reshape(())
        if value.is_complex():
            raise ExerciseError(f"{name} returns a complex number: the matrix square root can come back complex with "
                                "tiny imaginary parts from rounding. Keep the real part (.real).")
        return float(value)
    if isinstance(value, complex) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "c"):
        raise ExerciseError(f"{name} returns a complex number: the matrix square root can come back complex with "
                            "tiny imaginary parts from rounding. Keep the real part (.real).")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExerciseError(f"{name} should return one number (a float or a 0-d tensor), "
                            f"got {type(value).__name__}.") from None


def _trace_sqrt_product(c1, c2):
    """tr((c1 c2)^1/2): the eigenvalues of c1 c2 are real and >= 0."""
    return torch.linalg.eigvals(c1 @ c2).real.clamp(min=0).sqrt().sum()


def _slips(mu1, c1, mu2, c2) -> list[tuple[float, str]]:
    """The values of the usual mistakes, each with its hint."""
    sq = float(((mu1 - mu2) ** 2).sum())
    trace = float(torch.trace(c1) + torch.trace(c2))
    good_cross = float(_trace_sqrt_product(c1, c2))
    elementwise = ("takes an element-wise square root. (C1 C2)^(1/2) is the *matrix* square root: the matrix M "
                   "with M @ M = C1 @ C2. Element-wise and matrix square roots agree only for diagonal matrices. "
                   "The trace of M is the sum of the square roots of the eigenvalues of C1 @ C2.")
    root = lambda c: metrics._sqrt_psd(c)
    return [
        (sq + trace - 2 * float(torch.sqrt(torch.diagonal(c1) * torch.diagonal(c2)).sum()), elementwise),
        (sq + trace - 2 * float(torch.sqrt(torch.diagonal(c1 @ c2).clamp(min=0)).sum()), elementwise),
        (sq + trace - good_cross, "misses the factor 2 in front of the cross term: "
                                  "tr(C1 + C2 - 2 (C1 C2)^(1/2))."),
        (math.sqrt(sq) + trace - 2 * good_cross, "uses the distance between the means, |mu1 - mu2|; the formula "
                                                 "takes its square, |mu1 - mu2|^2 = ((mu1 - mu2)**2).sum()."),
        (trace - 2 * good_cross, "leaves out the means: add |mu1 - mu2|^2."),
        (sq + trace - 2 * float(torch.trace(root(c1) @ root(c2))),
         "multiplies two square roots: C1^(1/2) C2^(1/2) is not (C1 C2)^(1/2) unless the matrices commute. Take "
         "the square root of the product C1 @ C2."),
    ]


def check_frechet_distance(fn) -> None:
    """``fn(mu1, cov1, mu2, cov2)``: ``|mu1 - mu2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))``."""
    name = "my_frechet_distance"
    cases = [_gaussians(seed, spectrum) for seed, spectrum in _CASES]
    mu, c, _, _ = cases[0]
    cases.append((mu, c, mu.clone(), c.clone()))       # the same Gaussian twice: distance 0
    for mu1, c1, mu2, c2 in cases:
        ours = _number(name, _call(name, fn, mu1.clone(), c1.clone(), mu2.clone(), c2.clone()))
        want = metrics.frechet_distance(mu1, c1, mu2, c2)
        if math.isfinite(ours) and abs(ours - want) <= 1e-4 * max(1.0, abs(want)):
            continue
        if not math.isfinite(ours):
            raise ExerciseError(f"{name} gives {ours} on two Gaussians with correlated covariances. A square "
                                "root of a negative number? Take the matrix square root of C1 @ C2 (or the square "
                                "roots of its eigenvalues, which are >= 0).")
        if want == 0:
            raise ExerciseError(f"{name} gives {ours:.4g} for two identical Gaussians, where the distance is 0.")
        for value, hint in _slips(mu1, c1, mu2, c2):
            if abs(ours - value) <= 1e-4 * max(1.0, abs(value)):
                raise ExerciseError(f"{name} {hint}")
        raise ExerciseError(f"{name} gives {ours:.4g} on two Gaussians with correlated covariances, which is not "
                            "|mu1 - mu2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)): check each of the three terms.")
    print(f"{name}: correct (matches gan_tutorial.metrics.frechet_distance, also for correlated covariances)")
