"""Command line: train / sample / evaluate end to end (tiny budgets), and clear errors for bad input."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from gan_tutorial import recipes
from gan_tutorial.checkpoints import load as load_checkpoint, models_from_checkpoint
from gan_tutorial.cli import main
from gan_tutorial.models import generate

has_cuda = torch.cuda.is_available()


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory, mnist):
    """An empty cache folder: `evaluate` must use the classifier the package ships, not train one."""
    return tmp_path_factory.mktemp("classifier_cache")


def _train(out, *extra, model="mlp", steps="4"):
    return main(["train", "--model", model, "--steps", steps, "--batch-size", "32", "--log-every", "2",
                 "--out", str(out), "--device", "cpu", *extra])


@pytest.fixture(scope="module")
def mlp_ckpt(tmp_path_factory, mnist):
    out = tmp_path_factory.mktemp("mlp_run")
    assert _train(out) == 0
    return out / "mlp.pt"


@pytest.fixture(scope="module")
def cgan_ckpt(tmp_path_factory, mnist):
    out = tmp_path_factory.mktemp("cgan_run")
    assert _train(out, model="cgan") == 0
    return out / "cgan.pt"


def _fails(argv, capsys, *needles):
    """Run ``main(argv)``, expect exit status 2 and one clear line (no traceback) containing ``needles``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


# --------------------------------------------------------------------------- train
@pytest.mark.parametrize("model,size", [("dcgan", "28"), ("dcgan", "32"), ("wgan-gp", "28"),
                                        ("wgan-gp-conv", "28"), ("cgan-concat", "28")])
def test_train_writes_checkpoint_and_grid(tmp_path, mnist, capsys, model, size):
    # (mlp and cgan are trained by the fixtures above)
    assert _train(tmp_path, "--image-size", size, model=model, steps="2") == 0
    ckpt = load_checkpoint(tmp_path / f"{model}.pt")
    assert ckpt["step"] == 2 and ckpt["recipe"] == model
    recipe = recipes.get(model).settings
    assert (ckpt["config"]["loss"], ckpt["config"]["k"], ckpt["config"]["lr_G"], ckpt["config"]["ema_decay"]) == (
        recipe["loss"], recipe["k"], recipe["lr_G"], recipe.get("ema_decay"))
    assert (tmp_path / f"{model}_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    net_G, _ = models_from_checkpoint(ckpt)
    assert generate(net_G, 3).shape == (3, 1, int(size), int(size))
    assert f"Checkpoint: {tmp_path / (model + '.pt')}" in capsys.readouterr().out


def test_train_output_files(mlp_ckpt):
    assert load_checkpoint(mlp_ckpt)["step"] == 4
    assert (mlp_ckpt.parent / "mlp_samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lr_overrides_the_recipe(tmp_path, mnist):
    assert _train(tmp_path, "--lr", "3e-4", steps="1") == 0
    cfg = load_checkpoint(tmp_path / "mlp.pt")["config"]
    assert cfg["lr_G"] == cfg["lr_D"] == 3e-4 and cfg["loss"] == "non-saturating"


def test_epochs_become_steps(tmp_path, mnist):
    argv = ["train", "--model", "mlp", "--epochs", "0.01", "--batch-size", "32", "--out", str(tmp_path),
            "--device", "cpu"]
    assert main(argv) == 0
    # 0.01 passes over the images in batches of 32, one discriminator batch per step (k = 1)
    assert load_checkpoint(tmp_path / "mlp.pt")["step"] == math.ceil(0.01 * len(mnist) / 32)


def test_global_batch_size_in_one_process_is_the_batch(tmp_path, mnist, capsys):
    argv = ["train", "--model", "mlp", "--epochs", "0.01", "--global-batch-size", "40", "--out", str(tmp_path),
            "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "batch 40, " in out or "batch 40)" in out, out
    assert load_checkpoint(tmp_path / "mlp.pt")["step"] == math.ceil(0.01 * len(mnist) / 40)


def test_global_batch_size_must_split_evenly():
    from gan_tutorial.cli import UserError, _split_batch

    assert _split_batch(96, 4) == 24 and _split_batch(7, 1) == 7
    with pytest.raises(UserError, match=r"--global-batch-size 100 does not split evenly over 3 processes.*"
                                        r"multiple of 3 \(e\.g\. 99 or 102\).*--batch-size"):
        _split_batch(100, 3)
    with pytest.raises(UserError, match=r"multiple of 4 \(e\.g\. 4\)"):
        _split_batch(2, 4)


def test_batch_size_and_global_batch_size_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "mlp", "--batch-size", "8", "--global-batch-size", "16", "--out", str(tmp_path)])
    assert "not allowed with argument" in capsys.readouterr().err


def test_time_budget_stops_early(tmp_path, mnist):
    assert _train(tmp_path, "--time-budget", "0.05", steps="100000") == 0
    assert 1 <= load_checkpoint(tmp_path / "mlp.pt")["step"] < 100000


def test_resume_continues_exactly(tmp_path, mnist, capsys):
    assert _train(tmp_path / "straight", steps="5") == 0
    assert _train(tmp_path / "split", steps="3") == 0
    assert _train(tmp_path / "split", "--resume", steps="5") == 0
    assert "Resuming from step 3" in capsys.readouterr().out
    a = load_checkpoint(tmp_path / "straight" / "mlp.pt")
    b = load_checkpoint(tmp_path / "split" / "mlp.pt")
    assert b["step"] == 5
    for key, value in a["G"]["state"].items():
        torch.testing.assert_close(b["G"]["state"][key], value, msg=key)


def test_train_refuses_to_overwrite(tmp_path, mlp_ckpt, capsys):
    _fails(["train", "--model", "mlp", "--steps", "1", "--out", str(mlp_ckpt.parent)], capsys,
           "already exists", "--resume")
    _fails(["train", "--model", "dcgan", "--steps", "1", "--out", str(tmp_path), "--resume"], capsys,
           "no", "dcgan.pt")


# --------------------------------------------------------------------------- sample
def test_sample_pt_unconditional(tmp_path, mlp_ckpt):
    out = tmp_path / "s.pt"
    assert main(["sample", "--checkpoint", str(mlp_ckpt), "--num-samples", "12", "--out", str(out)]) == 0
    payload = torch.load(out, weights_only=True)
    x = payload["samples"]
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert "labels" not in payload and payload["step"] == 4
    # same seed -> same images; different seed -> different ones
    main(["sample", "--checkpoint", str(mlp_ckpt), "--num-samples", "12", "--out", str(tmp_path / "t.pt")])
    main(["sample", "--checkpoint", str(mlp_ckpt), "--num-samples", "12", "--out", str(tmp_path / "u.pt"),
          "--seed", "1"])
    assert torch.equal(torch.load(tmp_path / "t.pt", weights_only=True)["samples"], x)
    assert not torch.equal(torch.load(tmp_path / "u.pt", weights_only=True)["samples"], x)


def test_sample_matches_the_generator(tmp_path, mlp_ckpt):
    out = tmp_path / "s.pt"
    main(["sample", "--checkpoint", str(mlp_ckpt), "--num-samples", "5", "--out", str(out), "--seed", "3"])
    net_G, _ = models_from_checkpoint(mlp_ckpt)
    z = torch.randn(5, net_G.latent_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = net_G(z)
    torch.testing.assert_close(torch.load(out, weights_only=True)["samples"], expected)


def test_sample_conditional_labels(tmp_path, cgan_ckpt):
    out = tmp_path / "s.pt"
    assert main(["sample", "--checkpoint", str(cgan_ckpt), "--num-samples", "6", "--out", str(out),
                 "--label", "7"]) == 0
    payload = torch.load(out, weights_only=True)
    assert payload["labels"].tolist() == [7] * 6
    main(["sample", "--checkpoint", str(cgan_ckpt), "--num-samples", "12", "--out", str(out)])
    assert torch.load(out, weights_only=True)["labels"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_sample_png(tmp_path, cgan_ckpt):
    out = tmp_path / "grid.png"
    assert main(["sample", "--checkpoint", str(cgan_ckpt), "--num-samples", "20", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- evaluate
def test_evaluate_unconditional(tmp_path, mlp_ckpt, classifier_cache, monkeypatch, capsys):
    monkeypatch.setenv("GAN_TUTORIAL_CACHE", str(classifier_cache))
    out = tmp_path / "m.json"
    assert main(["evaluate", "--checkpoint", str(mlp_ckpt), "--num-samples", "60", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "classifier FID" in text and "not comparable to Inception FID" in text
    assert "label accuracy" not in text
    record = json.loads(out.read_text())
    assert sum(record["counts"]) == record["num_fake"] == 60 and record["num_real"] == 2000
    # four steps of training: far from real digits
    assert record["fid"] > 10 * record["reference_fid_real_halves"]
    assert 0.9 < record["classifier_holdout_accuracy"] <= 1


def test_evaluate_conditional_reports_label_accuracy(tmp_path, cgan_ckpt, classifier_cache, monkeypatch, capsys):
    monkeypatch.setenv("GAN_TUTORIAL_CACHE", str(classifier_cache))
    out = tmp_path / "m.json"
    assert main(["evaluate", "--checkpoint", str(cgan_ckpt), "--num-samples", "40", "--json", str(out)]) == 0
    assert "label accuracy" in capsys.readouterr().out
    assert 0 <= json.loads(out.read_text())["label_accuracy"] <= 1


def test_list_prints_every_mnist_recipe(capsys):
    assert main(["train", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in recipes.names("mnist")) and "toy-gan" not in out


def test_ema_run_samples_and_evaluates_the_average(tmp_path, mnist, classifier_cache, monkeypatch, capsys):
    monkeypatch.setenv("GAN_TUTORIAL_CACHE", str(classifier_cache))
    assert _train(tmp_path, "--ema-decay", "0.5", steps="3") == 0
    ckpt = tmp_path / "mlp.pt"
    assert load_checkpoint(ckpt)["G_ema"] is not None
    for flag, weights in (([], "EMA"), (["--no-ema"], "raw")):
        out = tmp_path / f"{weights}.pt"
        assert main(["sample", "--checkpoint", str(ckpt), "--num-samples", "4", "--out", str(out), *flag]) == 0
        net_G, _ = models_from_checkpoint(ckpt, ema=not flag)
        torch.testing.assert_close(torch.load(out, weights_only=True)["samples"], generate(net_G, 4, seed=0))
        report = tmp_path / f"{weights}.json"
        assert main(["evaluate", "--checkpoint", str(ckpt), "--num-samples", "20", "--json", str(report), *flag]) == 0
        assert json.loads(report.read_text())["weights"] == weights
    a, b = (torch.load(tmp_path / f"{w}.pt", weights_only=True)["samples"] for w in ("EMA", "raw"))
    assert not torch.equal(a, b)


def test_an_average_of_few_steps_is_flagged(tmp_path, mnist, capsys):
    """EMA 0.9 after 4 steps weighs the untrained generator at 0.9^4 = 66 %: train, sample and evaluate say so."""
    assert _train(tmp_path, "--ema-decay", "0.9", steps="4") == 0
    assert "still holds about 66% of the untrained generator" in capsys.readouterr().out
    ckpt, out = str(tmp_path / "mlp.pt"), str(tmp_path / "s.pt")
    assert main(["sample", "--checkpoint", ckpt, "--num-samples", "4", "--out", out]) == 0
    err = capsys.readouterr().err
    assert "about 66%" in err and "train to about 29 steps" in err and "add --no-ema" in err
    assert main(["sample", "--checkpoint", ckpt, "--num-samples", "4", "--out", out, "--no-ema"]) == 0
    assert "untrained" not in capsys.readouterr().err
    assert _train(tmp_path / "long", "--ema-decay", "0.5", steps="5") == 0   # 0.5^5 = 3 %: no note
    assert "untrained" not in capsys.readouterr().out


def test_resume_says_how_the_budget_counts(tmp_path, mnist, capsys):
    assert _train(tmp_path, steps="3") == 0
    capsys.readouterr()
    _fails(["train", "--model", "mlp", "--steps", "3", "--out", str(tmp_path), "--device", "cpu", "--resume"], capsys,
           "already trained 3 steps", "count the whole run", "larger --steps")
    assert _train(tmp_path, "--resume", steps="4") == 0
    assert "count the whole run, so 1 steps" in capsys.readouterr().out


def test_resume_with_another_recipe_is_refused(tmp_path, mnist, capsys):
    assert _train(tmp_path, steps="1") == 0
    (tmp_path / "mlp.pt").rename(tmp_path / "wgan-gp.pt")      # same nets, another recipe's file name
    _fails(["train", "--model", "wgan-gp", "--steps", "2", "--out", str(tmp_path), "--device", "cpu", "--resume"],
           capsys, "'mlp' recipe", "--model mlp")


def test_bad_fast_mode_value_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAN_TUTORIAL_FAST", "maybe")
    _fails(["train", "--model", "mlp", "--out", str(tmp_path)], capsys, "GAN_TUTORIAL_FAST", "set it to 1")


def test_checkpoint_of_another_layout_says_how_to_retrain(tmp_path, capsys):
    old = tmp_path / "old.pt"
    torch.save({"format": "gan_tutorial-checkpoint-v0", "step": 1}, old)
    _fails(["sample", "--checkpoint", str(old), "--out", str(tmp_path / "s.pt")], capsys, "another layout",
           "Train it again")


# --------------------------------------------------------------------------- bad input: exit 2, one clear line
@pytest.mark.parametrize("argv,needles", [
    (["train", "--model", "gan"], ["invalid choice", "dcgan", "wgan-gp-conv"]),
    (["train"], ["--model is required", "--list"]),
    (["train", "--model", "mlp", "--ema-decay", "1.5"], ["--ema-decay", "0.999"]),
    (["train", "--model", "dcgan", "--image-size", "48"], ["28, 32 or 64"]),
    (["train", "--model", "mlp", "--image-size", "4"], ["too small"]),
    (["train", "--model", "mlp", "--device", "tpu"], ["Unknown device", "--device"]),
    (["train", "--model", "mlp", "--steps", "0"], ["at least 1"]),
    (["train", "--model", "mlp", "--steps", "5", "--epochs", "1"], ["not allowed with"]),
    (["train", "--model", "mlp", "--time-budget", "-3"], ["positive"]),
    (["sample", "--checkpoint", "x.pt", "--out", "x.pt", "--label", "12"], ["0 to 9"]),
    (["evaluate"], ["--checkpoint"]),
])
def test_bad_arguments(tmp_path, capsys, argv, needles):
    _fails(argv + ["--out", str(tmp_path)] if argv[0] == "train" else argv, capsys, *needles)


@pytest.mark.skipif(has_cuda, reason="needs a machine without CUDA")
def test_missing_cuda(tmp_path, capsys):
    _fails(["train", "--model", "mlp", "--device", "cuda", "--out", str(tmp_path)], capsys,
           "CUDA is not available")


def test_missing_and_corrupt_checkpoints(tmp_path, capsys):
    _fails(["sample", "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "s.pt")], capsys,
           "no checkpoint", "train")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00garbage")
    _fails(["sample", "--checkpoint", str(bad), "--out", str(tmp_path / "s.pt")], capsys, "corrupt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    _fails(["evaluate", "--checkpoint", str(foreign)], capsys, "not a gan_tutorial checkpoint")


def test_sample_errors(tmp_path, mlp_ckpt, capsys):
    _fails(["sample", "--checkpoint", str(mlp_ckpt), "--out", str(tmp_path / "s.jpg")], capsys, ".pt", ".png")
    _fails(["sample", "--checkpoint", str(mlp_ckpt), "--out", str(tmp_path / "s.pt"), "--label", "3"], capsys,
           "conditional", "cgan")


def test_missing_data_offline(tmp_path, mlp_ckpt, monkeypatch, capsys):
    monkeypatch.setenv("GAN_TUTORIAL_DATA", str(tmp_path / "empty"))
    err = _fails(["train", "--model", "mlp", "--steps", "1", "--out", str(tmp_path / "run")], capsys,
                 "MNIST", "was not found", "--download", "GAN_TUTORIAL_DATA")
    assert len(err.strip().splitlines()) == 1
    _fails(["evaluate", "--checkpoint", str(mlp_ckpt)], capsys, "MNIST", "was not found", "--download")


# --------------------------------------------------------------------------- as a program
def _run(*args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "gan_tutorial", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_python_dash_m_train(tmp_path, mnist):
    proc = _run("train", "--model", "dcgan", "--steps", "2", "--batch-size", "16", "--out", str(tmp_path),
                "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(tmp_path / "dcgan.pt")["step"] == 2
    assert "Next: python -m gan_tutorial evaluate" in proc.stdout


def test_python_dash_m_bad_argument():
    proc = _run("sample", "--checkpoint", "does-not-exist.pt", "--out", "x.pt")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("python -m gan_tutorial sample: error: no checkpoint at does-not-exist.pt. "
                                   "Fix: check --checkpoint, or train one with "
                                   "`python -m gan_tutorial train --model dcgan --out DIR`.")


def test_console_script_entry_point():
    from gan_tutorial.__main__ import main as entry

    assert entry is main
    with pytest.raises(SystemExit) as info:
        entry(["--help"])
    assert info.value.code == 0
