"""The shipped checkpoints (classroom mode): hashes, size, safe loading, the measured metric, and the
script that makes them."""
import hashlib
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch

import gan_tutorial
from gan_tutorial import config, shipped
from gan_tutorial.classifier import WeightsMismatchError

ROOT = Path(__file__).resolve().parents[1]


def test_every_spec_is_shipped_small_and_hashed():
    entries = shipped.manifest()
    assert set(entries) == set(shipped.SPECS)
    total = 0
    for name, entry in entries.items():
        raw = shipped.path(name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == entry["sha256"] and len(raw) == entry["bytes"], name
        total += len(raw)
        payload = torch.load(shipped.path(name), map_location="cpu", weights_only=True)
        floats = {v.dtype for v in payload["G"].values() if v.is_floating_point()}
        assert floats == {torch.float16}, name
        assert entry["steps"] == shipped.SPECS[name].num_steps and entry["made_by"].startswith(shipped.RETRAIN)
    assert total <= 20e6, f"shipped checkpoints take {total / 1e6:.1f} MB: keep them under 20 MB"


def test_shipped_files_go_into_the_wheel():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gan_tutorial"]
    for path in [shipped.MANIFEST] + [shipped.path(n) for n in shipped.SPECS]:
        name = path.relative_to(ROOT / "gan_tutorial").as_posix()
        assert any(fnmatch(name, pattern) for pattern in patterns), name


def test_shipped_files_are_not_ignored_by_git():
    """A clone must get the files: none of them may match an ignore rule (``*.pt`` is ignored elsewhere)."""
    import shutil
    import subprocess

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = [str(shipped.path(n).relative_to(ROOT)) for n in shipped.SPECS] + [str(shipped.MANIFEST.relative_to(ROOT))]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True)
    assert ignored.stdout.strip() == "", f"git ignores: {ignored.stdout.split()}; add a ! rule to .gitignore"


@pytest.mark.parametrize("name", list(shipped.SPECS))
def test_shipped_checkpoint_has_the_metric_in_its_manifest(name, mnist):
    data_, holdout = shipped.training_data(name, mnist)
    trainer = shipped.load(name, data_, device="cpu", verbose=False)
    got = shipped.measure(name, trainer, holdout)
    entry = shipped.manifest()[name]
    for key, value in got.items():
        tol = 0.05 if key == "classifier_fid" else 0.002       # float sums may differ a little between CPUs
        assert value == pytest.approx(entry[key], abs=tol), (name, key)
    assert trainer.step == shipped.SPECS[name].num_steps
    assert trainer.history["step"][-1] == trainer.step


def test_loaded_trainer_samples_plots_and_reports(mnist, capsys):
    data_, _ = shipped.training_data("mlp", mnist)
    trainer = shipped.load("mlp", data_, device="cpu")
    out = capsys.readouterr().out
    assert "sha256 checked" in out and "6,000 steps" in out and "classifier-FID" in out
    assert trainer.sample(5).shape == (5, 1, 28, 28)
    assert not torch.equal(trainer.sample(noise=trainer.fixed_noise[:4]), trainer.sample(noise=trainer.fixed_noise[:4], ema=False))
    assert 2 <= len(trainer.snapshots) <= shipped.MAX_SNAPSHOTS
    assert trainer.snapshots[-1]["step"] == trainer.step
    first = trainer.snapshots[0]["samples"]
    assert first.shape[1:] == (1, 28, 28) and first.min() >= -1 and first.max() <= 1
    for key in ("loss_D", "loss_G", "d_real", "d_fake", "time"):
        assert len(trainer.history[key]) == len(trainer.history["step"])


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped files copied to a temporary folder, which the module then uses."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for path in [shipped.MANIFEST, shipped.path("cgan-small")]:
        (folder / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(shipped, "FOLDER", folder)
    monkeypatch.setattr(shipped, "MANIFEST", folder / "manifest.json")
    return folder


def _cgan_stand_in():
    return torch.zeros(64, 1, 28, 28), torch.arange(64) % 10


def test_changed_file_is_refused_with_the_fix(shipped_copy):
    path = shipped_copy / "cgan-small.pt"
    raw = bytearray(path.read_bytes())
    raw[-200] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(WeightsMismatchError, match="does not match the sha256.*git checkout -- gan_tutorial/weights/shipped"):
        shipped.load("cgan-small", _cgan_stand_in(), device="cpu")


def test_missing_file_and_unknown_name(shipped_copy):
    with pytest.raises(FileNotFoundError, match="missing.*--retrain"):
        shipped.load("mlp", torch.zeros(64, 1, 28, 28), device="cpu")
    with pytest.raises(ValueError, match="No shipped checkpoint called 'vae'. Shipped: mlp, dcgan"):
        shipped.load("vae")


def test_a_pickle_that_is_not_weights_is_refused(shipped_copy, monkeypatch):
    path = shipped_copy / "cgan-small.pt"

    class Evil:
        def __reduce__(self):
            return (print, ("this ran",))

    torch.save({"format": shipped.FORMAT, "x": Evil()}, path)
    entries = shipped.manifest()
    entries["cgan-small"]["sha256"] = shipped.sha256(path)
    shipped.MANIFEST.write_text(__import__("json").dumps(entries))
    with pytest.raises(ValueError, match="could not be read"):
        shipped.load("cgan-small", _cgan_stand_in(), device="cpu")


def test_the_script_trains_stores_and_measures(shipped_copy, monkeypatch, mnist):
    """`retrain` on a tiny spec: the file is written, hashed, measured from what was stored, and loads."""
    monkeypatch.setitem(shipped.SPECS, "cgan-small", shipped.Spec("cgan", "04", 20, dict(log_every=10), data="small"))
    monkeypatch.setattr(shipped, "NUM_EVAL", 200)
    monkeypatch.setattr(shipped, "load_mnist", lambda verbose=True: mnist)
    before = shipped.manifest()["mlp"]
    entries = shipped.retrain(["cgan-small"], verbose=False)
    entry = entries["cgan-small"]
    assert entry["steps"] == 20 and entry["sha256"] == shipped.sha256(shipped_copy / "cgan-small.pt")
    assert 0 <= entry["label_accuracy"] <= 1 and "20 images per digit" in entry["trained_on"]
    assert shipped.manifest()["mlp"] == before                      # other entries kept
    trainer = shipped.load("cgan-small", _cgan_stand_in(), device="cpu", verbose=False)
    assert trainer.step == 20 and [s["step"] for s in trainer.snapshots] == [20]    # the end-of-run snapshot


# --------------------------------------------------------------------------- the classroom switch
@pytest.fixture
def classroom_reset(monkeypatch):
    monkeypatch.delenv("GAN_TUTORIAL_CLASSROOM", raising=False)
    monkeypatch.setenv("GAN_TUTORIAL_FAST", "0")
    yield
    config._classroom = False          # directly: the environment variable may still hold a bad value here


def test_classroom_switch_picks_budgets(classroom_reset, monkeypatch):
    assert gan_tutorial.classroom(False) is False and gan_tutorial.pick(1, 2, classroom=3) == 2
    assert gan_tutorial.classroom(True) is True and gan_tutorial.pick(1, 2, classroom=3) == 3
    assert gan_tutorial.pick(1, 2) == 2                      # no classroom budget given: the full one
    assert "classroom mode" in config.describe(torch.device("cpu"))
    monkeypatch.setenv("GAN_TUTORIAL_FAST", "1")
    assert gan_tutorial.pick(1, 2, classroom=3) == 1         # fast mode (the tests) wins


def test_classroom_environment_variable_overrides_the_notebook(classroom_reset, monkeypatch):
    monkeypatch.setenv("GAN_TUTORIAL_CLASSROOM", "1")
    assert gan_tutorial.classroom(False) is True
    monkeypatch.setenv("GAN_TUTORIAL_CLASSROOM", "0")
    assert gan_tutorial.classroom(True) is False
    monkeypatch.setenv("GAN_TUTORIAL_CLASSROOM", "maybe")
    with pytest.raises(ValueError, match="GAN_TUTORIAL_CLASSROOM='maybe'.*1 \\(on\\) or 0 \\(off\\)"):
        gan_tutorial.classroom()
