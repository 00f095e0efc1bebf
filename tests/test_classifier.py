"""The MNIST metric classifier: shapes, input handling, training, files of your own (load, atomic
write, bad files), and the committed weights (hash, stated accuracy, retraining command)."""
import hashlib
import json
import pickle
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gan_tutorial import classifier as C
from gan_tutorial import data


@pytest.fixture(scope="module")
def splits():
    try:
        return C.mnist_splits(verbose=False)
    except data.DataNotFoundError:
        pytest.skip("real MNIST not available (set GAN_TUTORIAL_DATA)")


def _toy_data(n=300, seed=0):
    """Rendered-looking toy digits without matplotlib: class k is a bright bar at row 2k+4."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    x = -torch.ones(n, 1, 28, 28)
    for i, k in enumerate(labels.tolist()):
        x[i, 0, 2 * k + 4 : 2 * k + 6, 6:22] = 1.0
    x = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return data.ImageData(x, labels, "toy bars")


# --------------------------------------------------------------------------- smoke and shapes
def test_shapes_and_feature_dim():
    net = C.MNISTClassifier()
    x = torch.rand(5, 1, 28, 28) * 2 - 1
    assert net(x).shape == (5, 10)
    assert net.features(x).shape == (5, 128)
    assert net.extract_features(x, batch_size=2).shape == (5, 128)
    assert net.predict(x, batch_size=2).dtype == torch.long


def test_forward_is_head_of_features():
    net = C.MNISTClassifier().eval()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(net(x), net.head(net.features(x)))


def test_prepare_sizes():
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    assert torch.equal(C.MNISTClassifier.prepare(x), x)
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)  # what load_mnist(image_size=32) does
    assert torch.equal(C.MNISTClassifier.prepare(padded), x)
    assert C.MNISTClassifier.prepare(torch.zeros(3, 1, 64, 64)).shape == (3, 1, 28, 28)
    assert C.MNISTClassifier.prepare(torch.zeros(3, 28, 28)).shape == (3, 1, 28, 28)


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (2, 784), (2, 1, 4, 4)])
def test_prepare_rejects_bad_shapes(shape):
    with pytest.raises(ValueError):
        C.MNISTClassifier.prepare(torch.zeros(shape))


def test_accuracy_checks_label_count():
    with pytest.raises(ValueError, match="labels"):
        C.MNISTClassifier().accuracy(torch.zeros(3, 1, 28, 28), torch.zeros(2))


# --------------------------------------------------------------------------- training (tiny, synthetic)
def test_train_classifier_learns_toy_task_and_keeps_global_rng():
    train, holdout = _toy_data(400, seed=0), _toy_data(100, seed=1)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    threads = torch.get_num_threads()
    net = C.train_classifier(train, holdout, device="cpu", num_steps=60, batch_size=64, verbose=False)
    assert torch.equal(torch.get_rng_state(), before), "training must not move the caller's random state"
    assert torch.get_num_threads() == threads
    assert not net.training
    assert net.holdout_accuracy > 0.9  # an untrained net scores ~0.1
    assert "400 images (toy bars)" in net.trained_on


def test_train_classifier_is_deterministic():
    train, holdout = _toy_data(200), _toy_data(50, seed=1)
    a = C.train_classifier(train, holdout, device="cpu", num_steps=5, batch_size=32, verbose=False)
    b = C.train_classifier(train, holdout, device="cpu", num_steps=5, batch_size=32, verbose=False)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_augment_keeps_background_and_range():
    x = -torch.ones(4, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    y = C._augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5
    assert torch.allclose(y[:, :, :2, :], torch.full_like(y[:, :, :2, :], -1.0), atol=1e-5)  # border stays black


# --------------------------------------------------------------------------- cache
@pytest.fixture
def fake_training(monkeypatch):
    """Replace the real training with a quick stand-in, counting the calls."""
    calls = []

    def fake(train, holdout, device=None, num_steps=0, verbose=True, **kw):
        calls.append(len(train))
        net = C.MNISTClassifier().eval()
        net.holdout_accuracy, net.trained_on = 0.5, f"{len(train)} images of {train.source}"
        return net

    monkeypatch.setattr(C, "train_classifier", fake)
    return calls


def test_get_classifier_trains_caches_and_reloads(tmp_path, fake_training, capsys):
    path = tmp_path / "sub" / C.CACHE_NAME
    toy = _toy_data(2500)
    net = C.get_classifier(device="cpu", data=toy, path=path)
    assert fake_training == [500]
    assert path.is_file() and not list(path.parent.glob("*.tmp"))  # written atomically, no leftovers
    assert "50.0% accuracy" in capsys.readouterr().out
    again = C.get_classifier(device="cpu", data=toy, path=path)
    assert fake_training == [500]  # not trained a second time
    assert f"loaded from {C.CACHE_NAME}" in capsys.readouterr().out
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(again(x), net(x))
    payload = torch.load(path, weights_only=True)
    assert payload["holdout_accuracy"] == 0.5 and "toy bars" in payload["trained_on"]


def test_cache_file_round_trip_without_memo(tmp_path, fake_training):
    path = tmp_path / C.CACHE_NAME
    net = C.get_classifier(device="cpu", data=_toy_data(2100), path=path, verbose=False)
    loaded = C._load(path, torch.device("cpu"))  # straight from disk
    assert loaded.holdout_accuracy == 0.5 and loaded.trained_on == net.trained_on
    for p, q in zip(net.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(p, q)


def _foreign_pickle(path):
    with open(path, "wb") as f:
        pickle.dump({"format": C.CACHE_FORMAT, "obj": _toy_data}, f, protocol=2)  # a function: weights_only refuses it


@pytest.mark.parametrize("write", [
    lambda p: p.write_bytes(b"this is not a torch file"),
    lambda p: torch.save({"something": torch.zeros(3)}, p),
    lambda p: torch.save({"format": C.CACHE_FORMAT, "hparams": {"width": 4}, "state": {}, "holdout_accuracy": 1.0}, p),
    _foreign_pickle,
], ids=["garbage", "foreign-dict", "wrong-weights", "unsafe-pickle"])
def test_bad_cache_file_is_replaced(tmp_path, fake_training, capsys, write):
    path = tmp_path / C.CACHE_NAME
    write(path)
    net = C.get_classifier(device="cpu", data=_toy_data(2100), path=path)
    assert fake_training == [100]
    assert "cannot be used" in capsys.readouterr().out
    assert C._load(path, torch.device("cpu")).holdout_accuracy == net.holdout_accuracy


def test_retrain_ignores_cache(tmp_path, fake_training):
    path = tmp_path / C.CACHE_NAME
    C.get_classifier(device="cpu", data=_toy_data(2100), path=path, verbose=False)
    C.get_classifier(device="cpu", data=_toy_data(2100), path=path, verbose=False, retrain=True)
    assert fake_training == [100, 100]


def test_missing_mnist_raises_with_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_TUTORIAL_DATA", str(tmp_path / "nothing"))
    with pytest.raises(data.DataNotFoundError, match="download"):
        C.get_classifier(device="cpu", path=tmp_path / C.CACHE_NAME, verbose=False)


# --------------------------------------------------------------------------- the real, trained classifier
def test_split_is_fixed(splits):
    rest, holdout = splits
    assert len(holdout) == C.HOLDOUT
    again_rest, again_holdout = C.mnist_splits(verbose=False)
    assert torch.equal(holdout.labels, again_holdout.labels)


def test_trained_classifier_accuracy(trained_classifier, splits):
    _, holdout = splits
    assert trained_classifier.holdout_accuracy >= 0.97
    assert trained_classifier.accuracy(holdout.images, holdout.labels) == pytest.approx(
        trained_classifier.holdout_accuracy, abs=1e-6)


def test_trained_classifier_reads_32_and_64_px(trained_classifier, splits):
    _, holdout = splits
    x = holdout.images[:500]
    p28 = trained_classifier.predict(x)
    assert torch.equal(trained_classifier.predict(data._resize(x, 32)), p28)  # exact inverse of the padding
    agree64 = (trained_classifier.predict(data._resize(x, 64)) == p28).float().mean()
    assert agree64 >= 0.97


# --------------------------------------------------------------------------- the committed weights
ROOT = Path(__file__).resolve().parents[1]


def test_committed_weights_match_their_manifest():
    entry = C.manifest()
    raw = C.WEIGHTS.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == entry["sha256"] and len(raw) == entry["bytes"]
    assert len(raw) < 300_000, "keep the committed weights small (float16)"
    payload = torch.load(C.WEIGHTS, map_location="cpu", weights_only=True)   # plain tensors and numbers only
    assert {v.dtype for v in payload["state"].values()} == {torch.float16}
    assert payload["holdout_accuracy"] == entry["holdout_accuracy"]
    assert entry["made_by"] == C.RETRAIN and "test split" in entry["holdout"]


def test_committed_weights_go_into_the_wheel():
    """pyproject's package-data must cover the files in gan_tutorial/weights/ (or a git install lacks them)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gan_tutorial"]
    for path in (C.WEIGHTS, C.MANIFEST):
        name = path.relative_to(ROOT / "gan_tutorial").as_posix()
        assert any(fnmatch(name, pattern) for pattern in patterns), name


def test_default_classifier_is_the_committed_one(capsys):
    net = C.get_classifier(device="cpu")
    assert "committed with the package, sha256 checked" in capsys.readouterr().out
    assert net.holdout_accuracy == C.manifest()["holdout_accuracy"]
    assert C.get_classifier(device="cpu", verbose=False) is net          # loaded once per process


def test_committed_classifier_has_the_stated_accuracy(splits):
    """The accuracy in the manifest is what the committed weights score on the held-out test-split images."""
    _, holdout = splits
    net = C.get_classifier(device="cpu", verbose=False)
    measured = net.accuracy(holdout.images, holdout.labels)
    assert measured == C.manifest()["holdout_accuracy"]
    assert measured >= 0.97


@pytest.fixture
def weights_copy(tmp_path, monkeypatch):
    """The committed weights and manifest copied to a temporary folder, which the module then uses."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for path in (C.WEIGHTS, C.MANIFEST):
        (folder / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(C, "WEIGHTS", folder / C.WEIGHTS.name)
    monkeypatch.setattr(C, "MANIFEST", folder / C.MANIFEST.name)
    monkeypatch.setattr(C, "_LOADED", {})
    return folder


def test_changed_weights_file_raises_with_the_fix(weights_copy):
    raw = bytearray(C.WEIGHTS.read_bytes())
    raw[-100] ^= 0x01                                     # one bit flipped
    C.WEIGHTS.write_bytes(bytes(raw))
    with pytest.raises(C.WeightsMismatchError, match="does not match the sha256.*git checkout.*--retrain"):
        C.get_classifier(device="cpu", verbose=False)


def test_missing_weights_file_raises_with_the_fix(weights_copy):
    C.WEIGHTS.unlink()
    with pytest.raises(FileNotFoundError, match="missing.*reinstall"):
        C.get_classifier(device="cpu", verbose=False)


def test_retrain_without_a_path_is_refused():
    with pytest.raises(ValueError, match="--retrain"):
        C.get_classifier(device="cpu", retrain=True, verbose=False)


def test_retrain_command_writes_weights_and_manifest_together(weights_copy, monkeypatch):
    real = C.train_classifier

    def quick(train, holdout, device=None, num_steps=0, verbose=True, **kw):
        return real(train, holdout, device="cpu", num_steps=20, batch_size=32, verbose=False)

    monkeypatch.setattr(C, "train_classifier", quick)
    monkeypatch.setattr(C, "load_mnist", lambda verbose=True: _toy_data(2300))
    assert C.main(["--retrain"]) == 0
    entry = json.loads(C.MANIFEST.read_text())[C.WEIGHTS.name]
    assert entry == C.manifest() and entry["sha256"] == hashlib.sha256(C.WEIGHTS.read_bytes()).hexdigest()
    _, holdout = C.mnist_splits(_toy_data(2300))
    net = C.get_classifier(device="cpu", verbose=False)
    assert net.accuracy(holdout.images, holdout.labels) == entry["holdout_accuracy"] > 0.5
    assert not list(weights_copy.glob("*.tmp"))


def test_check_command_reports_the_hash(capsys):
    code = C.main([])
    out = capsys.readouterr().out
    assert "sha256 matches" in out
    assert code == 0
