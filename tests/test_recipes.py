"""The recipe registry: every recipe builds a working pair and a valid TrainConfig; names are checked."""
import pytest
import torch

from gan_tutorial import recipes, toy2d, train


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_builds_a_pair_that_fits_its_config(name):
    recipe = recipes.get(name)
    G, D = recipe.build()
    cfg = recipe.config(num_steps=3)
    cfg.validate()
    assert cfg.num_steps == 3 and cfg.k == recipe.settings["k"] and cfg.lr_G == recipe.settings["lr_G"]
    z = torch.randn(2, G.latent_dim)
    y = torch.tensor([0, 1]) if G.num_classes else None
    x = G(z, y) if y is not None else G(z)
    assert (D(x, y) if y is not None else D(x)).shape == (2,)
    assert recipe.conditional == bool(G.num_classes)
    if "wgan-gp" in name:   # batch norm mixes samples and breaks the per-sample gradient penalty
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())


def test_registry_is_what_the_notebooks_and_toys_use():
    assert set(recipes.names("mnist")) >= {"mlp", "dcgan", "cgan", "wgan-gp"}
    assert toy2d.recipe("wgan-gp")["loss"] is recipes.get("toy-wgan-gp").settings["loss"]
    assert recipes.get(" MLP ").name == "mlp"
    settings = recipes.get("mlp").train_kwargs(lr_G=1.0)
    assert settings["lr_G"] == 1.0 and recipes.get("mlp").settings["lr_G"] != 1.0   # a copy


def test_unknown_recipe_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Known recipes: mlp, dcgan"):
        recipes.get("vae")


def test_table_lists_mnist_recipes_only():
    text = recipes.table("mnist")
    assert all(name in text for name in recipes.names("mnist")) and "toy-gan" not in text


def test_recipe_config_trains():
    G, D, recipe = recipes.build("mlp", image_size=8)
    tr = train.train_gan(G, D, torch.rand(64, 1, 8, 8) * 2 - 1, recipe.config(num_steps=2, batch_size=16),
                         progress=False)
    assert tr.step == 2
