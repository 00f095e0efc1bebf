import pytest
import torch

from gan_tutorial import models


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    G = models.DCGANGenerator(16, channels, size, width=8)
    D = models.DCGANDiscriminator(channels, size, width=8)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # Tanh output
    assert D(x).shape == (4,)


def test_bad_image_size_names_the_fix():
    with pytest.raises(ValueError, match="28, 32 or 64"):
        models.DCGANGenerator(16, 1, 48)
    D = models.DCGANDiscriminator(1, 28, width=8)
    with pytest.raises(ValueError, match=r"\(B, C, 28, 28\)"):
        D(torch.randn(2, 1, 32, 32))


def test_dcgan_init_statistics():
    G = models.DCGANGenerator(100, 1, 64, width=64)
    w = G.net[0].weight
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3


def test_mlp_shapes_and_no_sigmoid():
    G = models.MLPGenerator(8, (1, 28, 28), hidden=(32, 64))
    D = models.MLPDiscriminator((1, 28, 28), hidden=(32,))
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 1, 28, 28)
    with torch.no_grad():
        D.net[-1].bias.fill_(10.0)
    assert (D(x) > 1).all()  # raw scores, not probabilities


def test_batchnorm_eps_is_default():
    G = models.MLPGenerator(8, 4, hidden=(16,))
    bn = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm1d)][0]
    assert bn.eps == 1e-5  # not the 0.8 that circulates in GAN code


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
def test_conditional_models_use_labels(kind):
    if kind == "mlp":
        G, D = models.MLPGenerator(8, (1, 28, 28), (32,), num_classes=10), models.MLPDiscriminator((1, 28, 28), (32,), num_classes=10)
    else:
        G, D = models.DCGANGenerator(8, 1, 28, 8, num_classes=10), models.DCGANDiscriminator(1, 28, 8, num_classes=10)
    G.eval()
    z = torch.randn(1, 8).repeat(10, 1)
    y = torch.arange(10)
    x = G(z, y)
    assert x.shape == (10, 1, 28, 28) and D(x, y).shape == (10,)
    assert not torch.allclose(x[0], x[1])  # same noise, different label -> different image
    assert not torch.allclose(D(x[:1], y[:1]), D(x[:1], y[1:2]))
    with pytest.raises(ValueError, match="call it with labels"):
        G(z)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 9\]"):
        G(z, y + 1)


def test_unconditional_rejects_labels():
    G = models.MLPGenerator(8, 4, (16,))
    with pytest.raises(ValueError, match="unconditional"):
        G(torch.randn(2, 8), torch.tensor([0, 1]))


def test_rebuild_from_hparams():
    G = models.DCGANGenerator(16, 3, 32, 8, num_classes=4)
    H = models.rebuild("DCGANGenerator", G.hparams)
    H.load_state_dict(G.state_dict())
    assert H.hparams == G.hparams
    with pytest.raises(ValueError, match="Unknown model class"):
        models.rebuild("StyleGAN9", {})


def test_generate_is_eval_mode_seeded_and_restores_mode():
    G = models.MLPGenerator(4, (1, 4, 4))
    a = models.generate(G, 6, seed=3)
    assert a.shape == (6, 1, 4, 4) and a.device.type == "cpu" and G.training
    assert torch.equal(a, models.generate(G, 6, seed=3, batch_size=4))   # eval mode: batching does not matter
    with torch.no_grad(), models.eval_mode(G):
        assert torch.allclose(a, G(torch.randn(6, 4, generator=torch.Generator().manual_seed(3))))
    C = models.MLPGenerator(4, (1, 4, 4), num_classes=3)
    z = torch.randn(5, 4)
    with torch.no_grad(), models.eval_mode(C):
        assert torch.allclose(models.generate(C, noise=z), C(z, torch.arange(5) % 3))   # labels 0, 1, 2, 0, 1
    with pytest.raises(ValueError, match="noise must have shape"):
        models.generate(G, noise=torch.randn(2, 5))
    with pytest.raises(ValueError, match="pass num"):
        models.generate(G)


def test_eval_mode_restores_each_nets_mode_even_on_error():
    a, b = models.MLPGenerator(4, (1, 4, 4)), models.MLPDiscriminator((1, 4, 4))
    b.eval()                                                   # one training, one not
    with models.eval_mode(a, b):
        assert not a.training and not b.training
    assert a.training and not b.training
    with pytest.raises(RuntimeError):
        with models.eval_mode(a):
            raise RuntimeError("boom")
    assert a.training
    # batch norm uses its running statistics inside: one sample gives the same output alone or in a batch
    z = torch.randn(3, 4)
    with models.eval_mode(a), torch.no_grad():
        assert torch.allclose(a(z[:1]), a(z)[:1], atol=1e-6)
