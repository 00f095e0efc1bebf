"""The GPU code paths, checked on the CPU: mixed precision (fp16 with GradScaler, bf16) for every loss,
torch.compile, device synchronisation for the time budget, label checks outside the hot loop, and a
checkpoint written on CUDA resumed on the CPU.

The inductor compile test takes minutes on a 2-core machine: it runs with GAN_TUTORIAL_SLOW=1.
"""
import contextlib
import functools
import math
import os

import pytest
import torch

from gan_tutorial import checkpoints, models, train

LOSSES = ["non-saturating", "minimax", "wasserstein", "wasserstein-gp"]
X = torch.rand(256, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1  # small "images": tiny nets, fast tests


def nets(seed=0):
    torch.manual_seed(seed)
    G = models.MLPGenerator(8, (1, 8, 8), hidden=(32, 32), batchnorm=False)
    D = models.MLPDiscriminator((1, 8, 8), hidden=(32, 32))
    return G, D


def run(loss, amp=None, num_steps=4, **kw):
    G, D = nets()
    settings = dict(loss=loss, amp=amp, num_steps=num_steps, batch_size=32, log_every=1, progress=False, seed=3,
                    betas=(0.5, 0.9))
    tr = train.train_gan(G, D, X, **{**settings, **kw})
    return tr


def all_params(tr):
    return [p.detach().clone() for p in [*tr.net_G.parameters(), *tr.net_D.parameters()]]


# ------------------------------------------------------------------ mixed precision, every loss
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
@pytest.mark.parametrize("loss", LOSSES)
def test_amp_trains_every_loss_close_to_fp32(loss, amp, one_thread):
    ref = run(loss)
    tr = run(loss, amp)
    # a Wasserstein loss is a difference of two mean scores: its rounding error scales with the scores,
    # not with the (possibly tiny) difference; bf16 keeps 8 significant bits, fp16 11
    eps = {"bf16": 2.0 ** -8, "fp16": 2.0 ** -11}[amp]
    scale = max(abs(v) for k in ("d_real", "d_fake") for v in ref.history[k]) if loss.startswith("wasserstein") else 0.0
    for key in ("loss_D", "loss_G"):
        got, want = torch.tensor(tr.history[key]), torch.tensor(ref.history[key])
        assert torch.isfinite(got).all(), f"{amp} {loss}: {key} = {got.tolist()}"
        # same init, data and noise: a few steps stay within the low precision's rounding
        assert torch.allclose(got, want, rtol=2e-2, atol=max(2e-4, 8 * eps * scale)), \
            f"{amp} {loss} {key}: {got.tolist()} vs {want.tolist()}"
    assert all(torch.isfinite(p).all() for p in all_params(tr))
    if loss == "wasserstein-gp":
        assert all(math.isfinite(v) and v > 0 for v in tr.history["gp"])


def test_fp16_gradient_penalty_training_does_not_diverge(one_thread):
    # Before the fix: the penalty's gradient of GradScaler-scaled scores overflowed fp16 -> gp = NaN -> TrainingDiverged
    tr = run("wasserstein-gp", "fp16", num_steps=10, k=2, log_every=5)
    assert tr.step == 10 and all(math.isfinite(v) for v in tr.history["gp"] + tr.history["loss_D"])


def test_skipped_fp16_steps_are_not_divergence(one_thread):
    G, D = nets()
    tr = train.Trainer(G, D, X, loss="wasserstein-gp", amp="fp16", num_steps=40, batch_size=32, log_every=3,
                       progress=False, betas=(0.5, 0.9))
    # a scale of 2**30 makes the scaled weight gradients overflow fp16: the scaler skips those steps
    tr.scaler_D = torch.amp.GradScaler("cpu", init_scale=2.0**30)
    before = [p.detach().clone() for p in D.parameters()]
    tr.fit(3)
    assert all(torch.equal(a, b) for a, b in zip(before, D.parameters())), "the first steps should be skipped"
    assert tr.scaler_D.get_scale() == 2.0**27  # halved once per skipped step
    assert all(math.isfinite(v) for v in tr.history["loss_D"] + tr.history["gp"])
    tr.fit()  # the scale keeps falling until the steps go through
    assert tr.step == 40 and tr.scaler_D.get_scale() < 2.0**20
    assert not all(torch.equal(a, b) for a, b in zip(before, D.parameters()))


def test_nan_guard_still_fires_under_fp16(one_thread):
    # the scaler skips every step (so the weights stay finite), yet the losses are NaN: that is divergence
    G, D = nets()
    with pytest.raises(train.TrainingDiverged, match="amp=None"):
        train.train_gan(G, D, torch.full((64, 1, 8, 8), float("inf")), loss="wasserstein-gp", amp="fp16",
                        num_steps=10, batch_size=16, log_every=2, progress=False)
    assert all(torch.isfinite(p).all() for p in D.parameters())


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_resume_under_amp_equals_an_uninterrupted_run(amp, tmp_path, one_thread):
    full = run("wasserstein-gp", amp, num_steps=8, k=2, log_every=2)
    ckpt = tmp_path / "run.pt"
    run("wasserstein-gp", amp, num_steps=4, k=2, log_every=2, checkpoint_path=str(ckpt))
    G, D = nets(seed=99)  # a different init: everything must come from the checkpoint
    resumed = train.train_gan(G, D, X, loss="wasserstein-gp", amp=amp, num_steps=8, k=2, batch_size=32, log_every=2,
                              progress=False, seed=3, betas=(0.5, 0.9), checkpoint_path=str(ckpt), resume=True)
    assert all(torch.equal(a, b) for a, b in zip(all_params(full), all_params(resumed)))
    assert resumed.history["loss_D"] == full.history["loss_D"]
    assert resumed.scaler_D.state_dict() == full.scaler_D.state_dict()


def test_amp_off_means_no_autocast_context():
    G, D = nets()
    tr = train.Trainer(G, D, X, progress=False)
    assert isinstance(tr._autocast(), contextlib.nullcontext)
    tr = train.Trainer(G, D, X, amp="bf16", progress=False)
    assert isinstance(tr._autocast(), torch.autocast)


def test_bad_amp_settings_name_the_fix(monkeypatch):
    G, D = nets()
    with pytest.raises(ValueError, match="amp must be None, 'bf16' or 'fp16'"):
        train.Trainer(G, D, X, amp="float16")

    def unsupported_autocast(device_type, dtype=None, **kw):  # what PyTorch does for an unsupported dtype
        import warnings
        warnings.warn(f"In {device_type} autocast, but the target dtype is not supported. Disabling autocast.")
        return contextlib.nullcontext()

    monkeypatch.setattr(train.torch, "autocast", unsupported_autocast)
    with pytest.raises(ValueError, match=r"amp='fp16' is not supported on cpu .*use amp='bf16', amp=None"):
        train.Trainer(G, D, X, amp="fp16")


# ------------------------------------------------------------------ torch.compile
def _compiles(backend):
    """None if ``backend`` compiles a tiny function here, else the reason it does not."""
    try:
        torch.compile(lambda v: v * 2 + 1, backend=backend)(torch.ones(3))
        return None
    except Exception as e:  # a missing compiler or an unsupported platform: nothing in our code
        return f"torch.compile(backend={backend!r}) does not work here: {type(e).__name__}: {str(e)[:100]}"


def _compare_compiled(loss, backend, monkeypatch):
    reason = _compiles(backend)
    if reason:
        pytest.skip(reason)
    eager = run(loss, num_steps=3)
    monkeypatch.setattr(train.torch, "compile", functools.partial(torch.compile, backend=backend))
    compiled = run(loss, num_steps=3, compile=True)
    assert isinstance(compiled._D, torch._dynamo.eval_frame.OptimizedModule)
    for a, b in zip(all_params(eager), all_params(compiled)):
        assert torch.allclose(a, b, atol=1e-6), f"compiled {loss} gradients differ from eager ones"


@pytest.mark.parametrize("loss", LOSSES)
def test_compile_trains_every_loss_like_eager(loss, monkeypatch, one_thread):
    # "aot_eager" runs the same graph capture and autograd tracing as inductor (where double backward
    # fails) without the C++ code generation, so it takes seconds; inductor is checked below
    _compare_compiled(loss, "aot_eager", monkeypatch)


@pytest.mark.skipif(os.environ.get("GAN_TUTORIAL_SLOW") != "1",
                    reason="inductor compilation takes minutes on a small CPU: set GAN_TUTORIAL_SLOW=1")
@pytest.mark.parametrize("loss", ["wasserstein-gp", "non-saturating"])
def test_compile_with_inductor_trains_like_eager(loss, monkeypatch):
    _compare_compiled(loss, "inductor", monkeypatch)


# ------------------------------------------------------------------ no host sync in the hot loop
def test_time_budget_syncs_the_device_only_at_a_few_steps(monkeypatch, one_thread):
    G, D = nets()
    tr = train.Trainer(G, D, X, num_steps=10**6, batch_size=32, time_budget=10.0, progress=False)
    syncs = []
    tr._sync = lambda: syncs.append(tr.step)  # as on a GPU: the clock is read after waiting for the device
    monkeypatch.setattr(train.time, "perf_counter", lambda: tr.step * 0.125)  # every step takes 0.125 s
    tr.fit()
    assert tr.step == 80 and tr.elapsed == 10.0  # all the budget, not a step more
    assert len(syncs) < 15, syncs  # not 80: the budget is checked ever more often as it runs out
    assert tr.history["step"][-1] == 80


def test_labels_are_checked_once_when_data_comes_in():
    G = models.MLPGenerator(4, 2, (16,), num_classes=3, batchnorm=False, out_activation=None)
    D = models.MLPDiscriminator(2, (16,), num_classes=3)
    with pytest.raises(ValueError, match=r"labels must be integers in \[0, 2\], got 0\.\.3"):
        train.Trainer(G, D, (torch.randn(30, 2), torch.arange(30) % 4), batch_size=10)
    # forward on a GPU skips the value check (it would wait for the device); "meta" tensors have no
    # values at all, so reading one would raise
    on_meta = models.MLPDiscriminator(2, (16,), num_classes=3).to("meta")
    assert on_meta(torch.randn(2, 2, device="meta"), torch.tensor([0, 7], device="meta")).shape == (2,)
    with pytest.raises(ValueError, match="labels must be in"):  # on the CPU the helpful error stays
        D(torch.randn(2, 2), torch.tensor([0, 7]))


# ------------------------------------------------------------------ a CUDA checkpoint on the CPU
def test_checkpoint_written_on_cuda_resumes_on_cpu(tmp_path, one_thread):
    path = tmp_path / "cuda.pt"
    tr = run("wasserstein-gp", "fp16", num_steps=3, checkpoint_path=str(path))
    ckpt = checkpoints.load(path)
    # what capture() stores on a GPU: a CUDA generator's state (seed and offset, 16 bytes) and the CUDA RNG
    ckpt["rng"]["rng_device"] = "cuda"
    ckpt["rng"]["rng"] = torch.zeros(16, dtype=torch.uint8)
    ckpt["rng"]["cuda"] = torch.zeros(16, dtype=torch.uint8)
    ckpt["config"]["device"] = "cuda"
    checkpoints.atomic_save(ckpt, path)

    G, D = nets(seed=99)
    resumed = train.Trainer(G, D, X, loss="wasserstein-gp", amp="fp16", num_steps=6, batch_size=32, log_every=1,
                            progress=False, seed=3, checkpoint_path=str(path))
    with pytest.warns(UserWarning, match="written on cuda; continuing on cpu"):
        resumed.load_checkpoint(path)
    assert resumed.step == 3 and resumed.rng.initial_seed() == 3 + 3
    assert all(torch.equal(a, b) for a, b in zip(all_params(tr), all_params(resumed)))
    assert resumed.scaler_D.get_scale() == tr.scaler_D.get_scale()
    resumed.fit()
    assert resumed.step == 6 and all(math.isfinite(v) for v in resumed.history["loss_D"])
