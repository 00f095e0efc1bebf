import math

import pytest
import torch

from gan_tutorial import data, losses, metrics, models, recipes, train


def toy_nets(seed=0, latent=4):
    torch.manual_seed(seed)
    G = models.MLPGenerator(latent, 1, hidden=(32, 32), activation="leaky_relu", batchnorm=False, out_activation=None)
    D = models.MLPDiscriminator(1, hidden=(32, 32))
    return G, D


def test_learns_a_1d_gaussian():
    """The loop fits N(4, 0.5^2) on CPU in seconds: |Δmean| < 0.15, |Δstd| < 0.15, W1 < 0.15."""
    target = data.gaussian_1d(4.0, 0.5)
    G, D = toy_nets()
    tr = train.train_gan(G, D, target, num_steps=1500, batch_size=128, lr_G=2e-3, lr_D=2e-3,
                         betas=(0.5, 0.999), progress=False, log_every=100)
    fake = tr.sample(4000).flatten()
    real = target.sample(4000, generator=torch.Generator().manual_seed(1)).flatten()
    assert abs(fake.mean().item() - 4.0) < 0.15
    assert abs(fake.std().item() - 0.5) < 0.15
    assert metrics.wasserstein_1d(fake, real) < 0.15
    assert tr.step == 1500 and tr.history["step"][-1] == 1500


def test_history_and_snapshots():
    G, D = toy_nets()
    tr = train.train_gan(G, D, data.gaussian_1d(), num_steps=20, k=3, log_every=5, snapshot_every=10,
                         num_fixed=16, progress=False)
    assert tr.history["step"] == [5, 10, 15, 20]
    for key in ("loss_D", "loss_G", "d_real", "d_fake", "time", "epoch"):
        assert len(tr.history[key]) == 4
    assert all(0 <= v <= 1 for v in tr.history["d_real"])
    assert [s["step"] for s in tr.snapshots] == [10, 20]
    assert tr.snapshots[0]["samples"].shape == (16, 1)


def test_k_discriminator_steps_per_generator_step():
    G, D = toy_nets()
    tr = train.Trainer(G, D, data.gaussian_1d(), k=4, num_steps=3, progress=False)
    tr.fit()
    assert tr.opt_D.state[next(iter(D.parameters()))]["step"].item() == 12
    assert tr.opt_G.state[next(iter(G.parameters()))]["step"].item() == 3


def test_tensor_data_and_callbacks():
    seen = []

    class Spy(train.Callback):
        def on_log(self, trainer, record):
            seen.append(record["step"])

        def on_train_end(self, trainer):
            seen.append("end")

    x = torch.randn(256, 1) + 3
    G, D = toy_nets()
    train.train_gan(G, D, x, num_steps=10, batch_size=32, log_every=5, callbacks=[Spy()], progress=False)
    assert seen == [5, 10, "end"]


def test_callback_can_stop_training():
    class Stop(train.Callback):
        def on_log(self, trainer, record):
            trainer.should_stop = True

    G, D = toy_nets()
    tr = train.train_gan(G, D, data.gaussian_1d(), num_steps=100, log_every=7, callbacks=[Stop()], progress=False)
    assert tr.step == 7


def test_time_budget_stops_early():
    G, D = toy_nets()
    tr = train.train_gan(G, D, data.gaussian_1d(), num_steps=10**7, time_budget=0.5, progress=False)
    assert 0 < tr.step < 10**7 and tr.history["step"][-1] == tr.step


def test_time_budget_is_not_overrun(monkeypatch):
    clock = iter(range(0, 10**6, 3))  # a fake clock: every reading is 3 s after the previous one
    monkeypatch.setattr(train.time, "perf_counter", lambda: float(next(clock)))
    G, D = toy_nets()
    tr = train.train_gan(G, D, data.gaussian_1d(), num_steps=10**7, time_budget=20.0, progress=False)
    assert 1 < tr.step < 10**7
    assert tr.elapsed <= 20.0 < tr.elapsed + tr.elapsed / tr.step  # one more step would have passed it


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    x = torch.randn(300, 1) * 0.5 + 2  # tensor data: the batch order is part of the checkpoint
    G1, D1 = toy_nets(seed=1)
    full = train.train_gan(G1, D1, x, num_steps=40, batch_size=64, k=2, log_every=10, progress=False, seed=5)

    G2, D2 = toy_nets(seed=1)
    ckpt = tmp_path / "run.pt"
    train.train_gan(G2, D2, x, num_steps=20, batch_size=64, k=2, log_every=10, progress=False, seed=5,
                    checkpoint_path=str(ckpt))
    G3, D3 = toy_nets(seed=99)  # different init: everything must come from the checkpoint
    resumed = train.train_gan(G3, D3, x, num_steps=40, batch_size=64, k=2, log_every=10, progress=False, seed=5,
                              checkpoint_path=str(ckpt), resume=True)
    for a, b in zip(list(G1.parameters()) + list(D1.parameters()), list(G3.parameters()) + list(D3.parameters())):
        assert torch.equal(a, b)
    assert resumed.history["loss_D"] == full.history["loss_D"]


def test_checkpoint_is_written_atomically_and_kept_on_divergence(tmp_path):
    G, D = toy_nets()
    ckpt = tmp_path / "good.pt"
    tr = train.Trainer(G, D, data.gaussian_1d(), num_steps=10, log_every=5, progress=False,
                       checkpoint_path=str(ckpt), checkpoint_every=5)
    tr.fit()
    good = ckpt.read_bytes()
    assert list(tmp_path.iterdir()) == [ckpt]  # no temp files left behind
    with torch.no_grad():
        next(G.parameters()).fill_(float("nan"))
    with pytest.raises(train.TrainingDiverged, match="last good checkpoint") as err:
        tr.fit(20)
    assert str(ckpt) in str(err.value)
    assert ckpt.read_bytes() == good and list(tmp_path.iterdir()) == [ckpt]


def test_nan_guard_fires_on_exploding_loss():
    G, D = toy_nets()
    x = torch.full((64, 1), float("inf"))
    with pytest.raises(train.TrainingDiverged, match="lower learning rate"):
        train.train_gan(G, D, x, num_steps=10, batch_size=16, log_every=2, progress=False)


def test_bad_settings_name_the_fix():
    G, D = toy_nets()
    with pytest.raises(ValueError, match="Choose one of"):
        train.Trainer(G, D, data.gaussian_1d(), loss="hinge2")
    with pytest.raises(ValueError, match="amp must be"):
        train.Trainer(G, D, data.gaussian_1d(), amp="fp8")
    with pytest.raises(ValueError, match="Unknown device"):
        train.Trainer(G, D, data.gaussian_1d(), device="gpu")
    with pytest.raises(ValueError, match="num_steps"):
        train.Trainer(G, D, data.gaussian_1d(), num_steps=0)
    with pytest.raises(TypeError, match="not supported"):
        train.Trainer(G, D, "mnist")


def test_conditional_training_needs_labels():
    G = models.MLPGenerator(4, 2, (16,), num_classes=3, batchnorm=False, out_activation=None)
    D = models.MLPDiscriminator(2, (16,), num_classes=3)
    with pytest.raises(ValueError, match="must carry labels"):
        train.Trainer(G, D, torch.randn(30, 2))
    tr = train.train_gan(G, D, (torch.randn(30, 2), torch.arange(30) % 3), num_steps=3, batch_size=10,
                         num_fixed=6, progress=False)
    assert tr.sample().shape == (6, 2)
    D0 = models.MLPDiscriminator(2, (16,))
    with pytest.raises(ValueError, match="same value"):
        train.Trainer(G, D0, (torch.randn(30, 2), torch.arange(30) % 3))


def test_wasserstein_gp_and_clipping_run():
    G, D = toy_nets()
    tr = train.train_gan(G, D, data.gaussian_1d(), loss="wasserstein-gp", k=5, num_steps=5, log_every=5,
                         progress=False, betas=(0.0, 0.9))
    assert {"wasserstein", "gp"} <= set(tr.history)
    tr = train.train_gan(G, D, data.gaussian_1d(), loss="wasserstein", num_steps=3, progress=False)
    assert max(p.abs().max().item() for p in D.parameters()) <= 0.01 + 1e-7


def test_bf16_autocast_on_cpu_runs():
    G, D = toy_nets()
    tr = train.train_gan(G, D, data.gaussian_1d(), num_steps=5, amp="bf16", progress=False, log_every=5)
    assert math.isfinite(tr.history["loss_D"][-1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_amp_paths(amp):
    G, D, _ = recipes.build("wgan-gp-conv", width=8)
    x = torch.rand(256, 1, 28, 28) * 2 - 1
    tr = train.train_gan(G, D, x, loss="wasserstein-gp", device="cuda", amp=amp, num_steps=5, k=2,
                         batch_size=32, progress=False, log_every=5)
    assert math.isfinite(tr.history["loss_D"][-1])


def test_dataloader_data_is_cycled():
    ds = torch.utils.data.TensorDataset(torch.randn(40, 1) + 2, torch.arange(40) % 2)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True, drop_last=True)
    G, D = toy_nets()
    tr = train.train_gan(G, D, loader, num_steps=7, log_every=7, progress=False)
    assert tr.step == 7 and tr.history["epoch"][-1] == 3  # 2 batches per pass


def test_rmsprop_is_the_wgan_papers_optimiser():
    G, D = toy_nets()
    tr = train.Trainer(G, D, data.gaussian_1d(), loss="wasserstein", optimizer="rmsprop", lr_D=5e-5, lr_G=5e-5,
                       k=5, num_steps=2, progress=False)
    assert type(tr.opt_D) is torch.optim.RMSprop and tr.opt_D.param_groups[0]["lr"] == 5e-5
    assert type(tr.opt_G) is torch.optim.RMSprop
    tr.fit()
    assert max(p.abs().max().item() for p in D.parameters()) <= 0.01 + 1e-7
    assert type(train.Trainer(G, D, data.gaussian_1d(), progress=False).opt_G) is torch.optim.Adam
    with pytest.raises(ValueError, match="'adam' or 'rmsprop'"):
        train.Trainer(G, D, data.gaussian_1d(), optimizer="sgd")
