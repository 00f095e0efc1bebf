#!/usr/bin/env python3
"""Set up and run the GAN tutorial series with one command (Python 3.10+ standard library only).

    python3 tutorial.py lab      # make .venv if needed, install, open the notebooks in JupyterLab
    python3 tutorial.py test     # make .venv if needed, install, run the whole test suite
    python3 tutorial.py setup [--fresh]   # only (re)install; --fresh deletes .venv first

Extra arguments after ``test`` go to pytest, after ``lab`` to JupyterLab.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".gan-tutorial-installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def setup(fresh: bool = False) -> Path:
    if sys.version_info < (3, 10):
        sys.exit(f"Python 3.10 or newer is needed (this is {sys.version.split()[0]}).")
    if fresh and VENV.exists():
        print(f"Removing {VENV.name}/ for a fresh install")
        shutil.rmtree(VENV)
    if not venv_python().exists():
        print(f"Creating a virtual environment in {VENV.name}/")
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == wanted_stamp():
        return venv_python()
    print("Installing the package with its test and notebook extras (PyTorch is the big download) ...")
    subprocess.run([str(venv_python()), "-m", "pip", "install", "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([str(venv_python()), "-m", "pip", "install", "-e", ".[dev]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted_stamp())
    return venv_python()


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help") or argv[0] not in ("lab", "test", "setup"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help", "help") else 2
    command, rest = argv[0], argv[1:]
    if command == "setup":
        setup(fresh="--fresh" in rest)
        return 0
    python = setup()
    if command == "test":
        return subprocess.run([str(python), "-m", "pytest", *rest], cwd=ROOT).returncode
    return subprocess.run([str(python), "-m", "jupyter", "lab", "notebooks", *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
