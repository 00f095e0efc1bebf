"""Checkpoints: clear errors for bad files, refusing mismatched nets, EMA saved and resumed exactly,
and rebuilding the nets (EMA weights by default) from a file."""
import pytest
import torch

from gan_tutorial import checkpoints, data, models, recipes, train


def toy_nets(seed=0):
    torch.manual_seed(seed)
    G = models.MLPGenerator(4, 1, hidden=(32, 32), activation="leaky_relu", batchnorm=False, out_activation=None)
    D = models.MLPDiscriminator(1, hidden=(32, 32))
    return G, D


def test_bad_checkpoints_name_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="Train first"):
        checkpoints.load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt or not a gan_tutorial checkpoint"):
        checkpoints.load(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(ValueError, match="not a gan_tutorial checkpoint"):
        checkpoints.load(foreign)
    old = tmp_path / "old.pt"
    torch.save({"format": "gan_tutorial-checkpoint-v0", "step": 3}, old)
    with pytest.raises(ValueError, match=r"another layout .*Train it again"):
        checkpoints.load(old)


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    checkpoints.atomic_save({"a": torch.ones(2)}, path)

    def broken_save(obj, f):
        f.write(b"half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.atomic_save({"a": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]          # no temporary file left behind


def test_resume_into_different_models_is_refused(tmp_path):
    G, D = toy_nets()
    ckpt = tmp_path / "a.pt"
    train.train_gan(G, D, data.gaussian_1d(), num_steps=2, progress=False, checkpoint_path=str(ckpt))
    G2 = models.MLPGenerator(4, 1, hidden=(64,), batchnorm=False, out_activation=None)
    with pytest.raises(ValueError, match="Build the same models"):
        train.Trainer(G2, D, data.gaussian_1d(), progress=False).load_checkpoint(ckpt)
    G3, D3 = checkpoints.models_from_checkpoint(ckpt)
    assert torch.equal(next(G3.parameters()), next(G.parameters()))
    with pytest.raises(ValueError, match="ema_decay"):
        G4, D4 = toy_nets()
        train.Trainer(G4, D4, data.gaussian_1d(), progress=False, ema_decay=0.9).load_checkpoint(ckpt)


def test_ema_is_the_exponential_average_of_the_generator_weights():
    G, D = toy_nets()
    decay = 0.8
    trainer = train.Trainer(G, D, data.gaussian_1d(), num_steps=1, batch_size=16, progress=False, ema_decay=decay)
    # the reference (AveragedModel's convention): e_1 = w_1 after the first generator step, then
    # e_t = decay * e_(t-1) + (1 - decay) * w_t after each further one
    trainer.fit(1)
    expected = [p.detach().clone() for p in G.parameters()]
    for _ in range(3):
        trainer.fit(trainer.step + 1)
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, G.parameters())]
    for e, p in zip(expected, trainer.ema_G.module.parameters()):
        torch.testing.assert_close(p, e)
    assert not torch.equal(next(trainer.ema_G.module.parameters()), next(G.parameters()))


def test_ema_averages_batchnorm_buffers_and_is_used_for_sampling():
    net_G, net_D, _ = recipes.build("mlp", image_size=8)
    x = torch.rand(64, 1, 8, 8) * 2 - 1
    tr = train.train_gan(net_G, net_D, x, num_steps=5, batch_size=16, progress=False, ema_decay=0.5)
    bn = [m for m in tr.ema_G.module.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    raw = [m for m in net_G.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    assert int(bn.num_batches_tracked) > 0 and not torch.equal(bn.running_mean, raw.running_mean)
    noise = torch.randn(4, net_G.latent_dim)
    assert torch.equal(tr.sample(noise=noise), models.generate(tr.ema_G.module, noise=noise))
    assert torch.equal(tr.sample(noise=noise, ema=False), models.generate(net_G, noise=noise))


def test_ema_resume_reproduces_an_uninterrupted_run_and_rebuild_uses_it(tmp_path):
    x = torch.randn(256, 1) * 0.5 + 4
    settings = dict(batch_size=32, log_every=5, progress=False, seed=2, ema_decay=0.9)
    G, D = toy_nets(1)
    full = train.train_gan(G, D, x, num_steps=20, **settings)
    ckpt = tmp_path / "run.pt"
    G2, D2 = toy_nets(1)
    train.train_gan(G2, D2, x, num_steps=10, checkpoint_path=str(ckpt), **settings)   # a multiple of log_every
    G3, D3 = toy_nets(1)
    resumed = train.train_gan(G3, D3, x, num_steps=20, checkpoint_path=str(ckpt), resume=True, **settings)
    assert resumed.history["loss_G"] == full.history["loss_G"]
    for a, b in zip(full.ema_G.module.state_dict().values(), resumed.ema_G.module.state_dict().values()):
        assert torch.equal(a, b)
    ema_G, _ = checkpoints.models_from_checkpoint(ckpt)
    raw_G, _ = checkpoints.models_from_checkpoint(ckpt, ema=False)
    assert torch.equal(next(ema_G.parameters()), next(resumed.ema_G.module.parameters()))
    assert torch.equal(next(raw_G.parameters()), next(G3.parameters()))


def test_every_mnist_recipe_rebuilds_from_its_checkpoint(tmp_path):
    x, y = torch.rand(64, 1, 28, 28) * 2 - 1, torch.arange(64) % 10
    for name in recipes.names("mnist"):
        recipe = recipes.get(name)
        net_G, net_D = recipe.build(width=8) if "conv" in name or name == "dcgan" else recipe.build()
        path = tmp_path / f"{name}.pt"
        trainer = train.Trainer(net_G, net_D, (x, y) if recipe.conditional else x, recipe.config(
            num_steps=1, batch_size=16, progress=False, checkpoint_path=str(path)), recipe=name)
        trainer.fit()
        ckpt = checkpoints.load(path)
        assert ckpt["recipe"] == name
        G2, D2 = checkpoints.models_from_checkpoint(ckpt)
        assert type(G2) is type(net_G) and type(D2) is type(net_D), name
        noise = torch.randn(3, net_G.latent_dim)
        torch.testing.assert_close(models.generate(G2, noise=noise), trainer.sample(noise=noise), msg=name)
