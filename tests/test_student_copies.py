"""Student copies (``tutorial.py student``): with the solutions stubbed out, everything before the first
exercise runs, and every exercise check fails until the learner writes the answer.

The copies run in classroom mode (as a class would run them), so the same execution also proves that
each notebook's classroom path, with the shipped checkpoints, runs."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tutorial_launcher", ROOT / "tutorial.py")
tutorial = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tutorial)
WITH_EXERCISES = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb") if tutorial.BEGIN in p.read_text(encoding="utf-8"))


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o["output_type"] == "error"]


@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_every_check_fails_on_the_student_copy(name, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    import nbformat

    monkeypatch.setenv("GAN_TUTORIAL_FAST", "1")
    monkeypatch.setenv("GAN_TUTORIAL_CLASSROOM", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    source = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    copy, stubs = tutorial.student_copy(source)
    assert stubs >= 2, "at least two exercises with a written solution"
    nb = nbformat.reads(json.dumps(copy), as_version=4)
    nbclient.NotebookClient(nb, timeout=600, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    cells = nb.cells
    first_stub = next(i for i, c in enumerate(cells) if tutorial.STUB in c.source)
    broken = [i for i, c in enumerate(cells[:first_stub]) if c.cell_type == "code" and _errors(c)]
    assert not broken, f"cells before the first exercise failed: {broken}"
    # after it, a cell may only fail because it runs a learner's unwritten function or a check
    others = [(i, e["ename"], e["evalue"][:200]) for i, c in enumerate(cells) if c.cell_type == "code"
              for e in _errors(c) if e["ename"] not in ("NotImplementedError", "ExerciseError")]
    assert not others, f"cells failed for another reason than an unwritten exercise: {others}"
    checks = [c for c in cells if c.cell_type == "code" and "exercises.check_" in c.source]
    assert len(checks) >= stubs
    for c in checks:
        errors = _errors(c)
        assert errors and errors[0]["ename"] == "ExerciseError", f"this check passed on a stub:\n{c.source}"
