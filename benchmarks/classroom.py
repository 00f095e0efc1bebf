"""Time each notebook top to bottom in classroom mode: the shipped checkpoints in place of the long runs.

Runs every notebook (or those named) in a fresh kernel with ``GAN_TUTORIAL_CLASSROOM=1`` and
``GAN_TUTORIAL_FAST=0``, as a class would run it, and prints the wall-clock time of each, the CPU,
the thread count, and whether it met the 5-minute target. The executed copies go to ``--out`` (not
over the stored notebooks). A cell that raises stops the run and is reported.

    GAN_TUTORIAL_DATA=DIR python benchmarks/classroom.py [02 03 ...] [--out /tmp/classroom]
    GAN_TUTORIAL_DATA=DIR python benchmarks/classroom.py --fast     # fast mode instead (what CI runs)

Wall-clock: run it on a quiet machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 300


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or names (default: all six)")
    parser.add_argument("--out", default="/tmp/classroom", help="folder for the executed copies")
    parser.add_argument("--fast", action="store_true", help="time fast mode (GAN_TUTORIAL_FAST=1, CI's budgets) instead")
    args = parser.parse_args()
    import nbformat
    import torch
    from nbclient import NotebookClient

    sys.path.insert(0, str(ROOT))
    from gan_tutorial.config import cpu_name

    mode = "fast" if args.fast else "classroom"
    os.environ.update(GAN_TUTORIAL_CLASSROOM="0" if args.fast else "1", GAN_TUTORIAL_FAST="1" if args.fast else "0")
    os.environ.pop("MPLBACKEND", None)
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if any(p.stem.startswith(n) for n in args.notebooks)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"{mode} mode, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    failed = False
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        try:
            NotebookClient(nb, timeout=-1, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
            status = ""
        except Exception as e:           # a failing cell: report it, go on with the next notebook
            status = f"  FAILED: {type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
            failed = True
        seconds = time.perf_counter() - start
        nbformat.write(nb, out / path.name)
        verdict = "" if args.fast else f"  ({'within' if seconds <= TARGET_S else 'OVER'} the {TARGET_S // 60}-minute target)"
        print(f"{path.stem:28s} {seconds:6.0f} s{verdict}{status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
