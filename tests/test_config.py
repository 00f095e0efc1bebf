import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gan_tutorial import config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


@pytest.mark.parametrize("value,expected", [("1", True), ("0", False), ("true", True), ("off", False)])
def test_fast_flag(monkeypatch, value, expected):
    monkeypatch.setenv("GAN_TUTORIAL_FAST", value)
    assert config.fast_mode() is expected


def test_fast_follows_ci_unless_overridden(monkeypatch):
    monkeypatch.delenv("GAN_TUTORIAL_FAST", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert config.fast_mode() is False
    monkeypatch.setenv("CI", "true")
    assert config.fast_mode() is True
    monkeypatch.setenv("GAN_TUTORIAL_FAST", "0")
    assert config.fast_mode() is False
    assert config.pick("fast", "full") == "full"


def test_bad_fast_flag(monkeypatch):
    monkeypatch.setenv("GAN_TUTORIAL_FAST", "maybe")
    with pytest.raises(ValueError, match="set it to 1"):
        config.fast_mode()


def test_device_auto_and_cpu(monkeypatch):
    monkeypatch.delenv("GAN_TUTORIAL_DEVICE", raising=False)
    dev = config.get_device()
    assert dev.type in ("cpu", "cuda", "mps")
    assert config.get_device("cpu") == torch.device("cpu")
    assert config.get_device(torch.device("cpu")) == torch.device("cpu")


def test_device_from_env(monkeypatch):
    monkeypatch.setenv("GAN_TUTORIAL_DEVICE", "cpu")
    assert config.get_device() == torch.device("cpu")


def test_bad_device_names_the_fix():
    with pytest.raises(ValueError, match="Use 'auto'"):
        config.get_device("gpu0")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_missing_cuda_names_the_fix():
    with pytest.raises(RuntimeError, match="not available"):
        config.get_device("cuda")


def test_seed_everything_repeats():
    config.seed_everything(3)
    a = torch.randn(3)
    g = config.seed_everything(3)
    assert torch.equal(a, torch.randn(3))
    assert torch.equal(torch.randn(2, generator=g), torch.randn(2, generator=torch.Generator().manual_seed(3)))


def test_folders_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_TUTORIAL_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("GAN_TUTORIAL_CACHE", str(tmp_path / "c"))
    assert config.data_root() == tmp_path / "d"
    assert config.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GAN_TUTORIAL_DATA")
    assert config.data_root() == tmp_path / "c" / "data"


def test_describe_mentions_mode(monkeypatch):
    monkeypatch.setenv("GAN_TUTORIAL_FAST", "1")
    assert "fast mode" in config.describe(torch.device("cpu"))


# --------------------------------------------------------------------------- repository address, launcher
ROOT = Path(__file__).resolve().parents[1]


def _launcher():
    spec = importlib.util.spec_from_file_location("tutorial_launcher", ROOT / "tutorial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_repo_address_comes_from_pyproject():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert config.REPO_URL == urls["Repository"]
    assert urls["Notebooks"] == f"{config.REPO_URL}/tree/{config.REPO_REF}/notebooks"
    assert (config.REPO_URL, config.REPO_REF) == _launcher().read_repo()


def test_repo_address_from_installed_metadata(monkeypatch):
    """Without pyproject.toml beside the package (a git install), the package metadata is read."""
    import importlib.metadata

    class Meta:
        def get_all(self, key):
            assert key == "Project-URL"
            return ["Repository, https://github.com/a/b", "Notebooks, https://github.com/a/b/tree/v3/notebooks"]

    monkeypatch.setattr(config.Path, "is_file", lambda self: False)
    monkeypatch.setattr(importlib.metadata, "metadata", lambda name: Meta())
    assert config._repository() == ("https://github.com/a/b", "v3")


def test_lab_as_root_passes_allow_root(monkeypatch, capsys):
    launcher = _launcher()
    runs = []
    monkeypatch.setattr(launcher, "setup", lambda fresh=False: Path("python"))
    monkeypatch.setattr(launcher.subprocess, "run", lambda cmd, **kw: runs.append(cmd) or SimpleNamespace(returncode=0))
    monkeypatch.setattr(launcher.os, "geteuid", lambda: 0, raising=False)
    assert launcher.main(["lab"]) == 0
    assert runs[-1][-1] == "--allow-root" and "passing --allow-root" in capsys.readouterr().out
    monkeypatch.setattr(launcher.os, "geteuid", lambda: 1000, raising=False)
    launcher.main(["lab"])
    assert "--allow-root" not in runs[-1]


def test_cpu_name_reads_the_model_name(monkeypatch, tmp_path):
    from pathlib import Path

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t: sse\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: real(cpuinfo if str(self) == "/proc/cpuinfo" else self,
                                                                       *a, **k))
    assert config.cpu_name() == "Test CPU 9000"
    cpuinfo.unlink()   # no /proc/cpuinfo (macOS, Windows): the platform's own name
    assert config.cpu_name() and config.cpu_name() != "Test CPU 9000"
