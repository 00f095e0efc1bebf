"""The committed notebooks: all six present, in order, executed top to bottom, small, and portable.

nbval executes them (they are collected from notebooks/); these checks cover what a reader sees on
GitHub or Colab before running anything.
"""
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("tutorial_launcher", ROOT / "tutorial.py")
tutorial = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tutorial)
SERIES = ["01_minimax_and_1d_toy", "02_mlp_gan_mnist", "03_dcgan", "04_conditional_gan", "05_wgan_gp",
          "06_style_loss"]
# the notebooks delivered executed and verified so far (the rest of SERIES is still being written)
EXPECTED = ["01_minimax_and_1d_toy", "02_mlp_gan_mnist", "03_dcgan", "04_conditional_gan", "05_wgan_gp", "06_style_loss"]


def test_notebooks_belong_to_the_series():
    present = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
    assert set(present) <= set(SERIES) and set(EXPECTED) <= set(present)


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_readable_before_running(name):
    path = NOTEBOOKS / f"{name}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    assert all(isinstance(n, int) for n in counts), "commit the notebook executed (every code cell run)"
    assert counts == sorted(counts), "cells were run out of order: restart and run all"
    outputs = json.dumps([c.get("outputs", []) for c in code])
    assert not re.search(r"/(work|tmp|root|home)/", outputs), "outputs show a path of the machine that ran them"
    assert '"ename"' not in outputs, "an error is saved in the outputs"
    assert any(re.search(r'"image/(png|jpeg)"', json.dumps(c.get("outputs", []))) for c in code), "no figure in the outputs"
    assert path.stat().st_size < 3 * 1024 * 1024, "keep notebooks under 3 MB"
    setup = "".join(code[0]["source"]) + "".join(code[1]["source"]) if len(code) > 1 else ""
    assert "google.colab" in setup and "describe(" in setup, "the setup cell detects Colab and prints the mode"


@pytest.mark.parametrize("name", EXPECTED)
def test_badge_and_install_cell_follow_pyproject(name):
    """Every Colab badge and the install block point at [project.urls] of pyproject.toml (tutorial.py set-repo)."""
    url, ref = tutorial.read_repo()
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    first = "".join(nb["cells"][0]["source"])
    assert tutorial.badge_url(url, ref, f"{name}.ipynb") in first
    text = "".join("".join(c["source"]) for c in nb["cells"])
    badges = re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"']+", text)
    assert badges and set(badges) == {tutorial.badge_url(url, ref, f"{name}.ipynb")}
    setup = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "".join(setup["source"]).startswith(tutorial.install_block(url, ref) + "\n")
    assert "%pip" not in text and "!pip" not in text, "install only through the generated block"


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_states_its_colab_time(name):
    first = "".join(json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"][0]["source"])
    assert "Colab T4 GPU:* not yet measured" in first


def test_install_block_is_valid_python_and_never_installs_torch():
    block = tutorial.install_block("https://github.com/someone/gan-tutorial", "v1.0")
    compile(block, "<install block>", "exec")
    assert '"https://github.com/someone/gan-tutorial", "v1.0"' in block and '"/content/gan-tutorial"' in block
    code = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("#"))
    assert "torch" not in code and "numpy" not in code


def _run_install_block(block, monkeypatch, tmp_path, returncode, stderr=""):
    """Run the block as Colab would (google.colab importable), with pip replaced by a recorder."""
    import subprocess
    import types

    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return types.SimpleNamespace(returncode=returncode, stderr=stderr, stdout="")

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "<install block>", "exec"), {})
    return calls


def test_install_block_pins_the_ref(monkeypatch, tmp_path, capsys):
    block = tutorial.install_block("https://github.com/someone/gan-tutorial", "v1.0")
    calls = _run_install_block(block, monkeypatch, tmp_path, 0)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/someone/gan-tutorial@v1.0"]]
    assert "installed from git+" in capsys.readouterr().out


def test_install_block_prefers_a_cloned_folder(monkeypatch, tmp_path):
    clone = tmp_path / "gan-tutorial"
    (clone / "gan_tutorial").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('name = "gan-tutorial"\n')
    (clone / "notebooks").mkdir()
    block = tutorial.install_block("https://github.com/someone/gan-tutorial", "main")
    calls = _run_install_block(block, monkeypatch, clone / "notebooks", 0)   # a notebook inside the clone
    assert calls[0][-1] == str(clone)


def test_failed_install_raises_with_the_fix(monkeypatch, tmp_path):
    block = tutorial.install_block("https://github.com/someone/gan-tutorial", "no-such-tag")
    with pytest.raises(RuntimeError, match=r"(?s)did not match.*Fix:.*git clone --branch no-such-tag "
                                           r"https://github.com/someone/gan-tutorial.*upload"):
        _run_install_block(block, monkeypatch, tmp_path, 1, stderr="error: pathspec 'no-such-tag' did not match")


def test_set_repo_rewrites_pyproject_and_every_notebook(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for name in EXPECTED:
        (tmp_path / "notebooks" / f"{name}.ipynb").write_bytes((NOTEBOOKS / f"{name}.ipynb").read_bytes())
    changed = tutorial.set_repo("https://github.com/someone/gans.git/", "v2.0", root=tmp_path)
    assert len(changed) == 1 + len(EXPECTED)
    assert tutorial.read_repo(tmp_path) == ("https://github.com/someone/gans", "v2.0")
    for name in EXPECTED:
        path = tmp_path / "notebooks" / f"{name}.ipynb"
        before = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
        after = json.loads(path.read_text(encoding="utf-8"))
        assert path.read_text(encoding="utf-8") == json.dumps(after, indent=1, ensure_ascii=False) + "\n"
        assert tutorial.badge_url("https://github.com/someone/gans", "v2.0", f"{name}.ipynb") in "".join(after["cells"][0]["source"])
        setup = next(c for c in after["cells"] if c["cell_type"] == "code")
        assert "".join(setup["source"]).startswith(tutorial.install_block("https://github.com/someone/gans", "v2.0"))
        assert '"/content/gans"' in "".join(setup["source"])
        changed_cells = [i for i, (a, b) in enumerate(zip(before["cells"], after["cells"])) if a != b]
        assert changed_cells and all(before["cells"][i]["source"] != after["cells"][i]["source"] for i in changed_cells)
        assert all(a.get("outputs") == b.get("outputs") for a, b in zip(before["cells"], after["cells"]))
    assert tutorial.set_repo("https://github.com/someone/gans", "v2.0", root=tmp_path) == []   # idempotent
    tutorial.set_repo("https://github.com/gan-tutorial/gan-tutorial", tutorial.read_repo()[1], root=tmp_path)
    for name in EXPECTED:                                              # and back: byte for byte as committed
        assert (tmp_path / "notebooks" / f"{name}.ipynb").read_bytes() == (NOTEBOOKS / f"{name}.ipynb").read_bytes()


@pytest.mark.parametrize("url,ref,needle", [
    ("https://gitlab.com/someone/gans", "main", "GitHub only"),
    ("git@github.com:someone/gans.git", "main", "GitHub only"),
    ("https://github.com/someone", "main", "GitHub only"),
    ("https://github.com/someone/gans", "bad ref", "not a branch or tag"),
    ("https://github.com/someone/gans", "../x", "not a branch or tag"),
])
def test_set_repo_rejects_bad_input(tmp_path, url, ref, needle):
    with pytest.raises(SystemExit, match=needle):
        tutorial.set_repo(url, ref, root=tmp_path)


def _md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": [text]}


def _out(text):
    return {"cell_type": "code", "metadata": {}, "source": [], "execution_count": 1,
            "outputs": [{"output_type": "stream", "name": "stdout", "text": [text]}]}


def test_number_check_catches_a_number_no_output_shows():
    nb = {"cells": [_out("FID 49.0, rarest digit 7.4%\n"),
                    _md("FID **49.0**, rarest 7.4 % and 13 %; `lr=0.5` in code, [a](http://x.org/1.5) link")]}
    assert [(i, t) for i, t, _ in tutorial.unbacked_numbers(nb)] == [(1, "13%")]
    nb["cells"][1] = _md("FID 49.01, then 149.0 and 9.0")       # no partial matches
    assert [t for _, t, _ in tutorial.unbacked_numbers(nb)] == ["49.01", "149.0", "9.0"]
    nb["cells"][1] = _md("Adam's beta1 = 0.5, and 12 %.\n<!-- not measured: 0.5 12% -->")
    assert tutorial.unbacked_numbers(nb) == []
    nb["cells"][1] = _md("a range of 5 to 6 times, 3 modes, 6,000 steps")   # integers are not checked
    assert tutorial.unbacked_numbers(nb) == []


@pytest.mark.parametrize("name", EXPECTED)
def test_every_prose_number_is_backed_by_an_output(name):
    """A decimal or a percentage in the text is one an output shows, or is marked as not measured."""
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    missing = [f"cell {i}: {token} (...{context}...)" for i, token, context in tutorial.unbacked_numbers(nb)]
    assert not missing, "prose numbers no output shows (fix the text, print the number, or mark it " \
                        "<!-- not measured: ... -->):\n" + "\n".join(missing)


def _code(text, outputs=()):
    return {"cell_type": "code", "metadata": {}, "source": text.splitlines(keepends=True), "execution_count": 3,
            "outputs": list(outputs)}


def test_student_copy_replaces_each_solution_with_a_stub():
    source = ("def gram(f):\n"
              "    ### BEGIN SOLUTION\n"
              "    b, c = f.shape[:2]\n"
              "    return f @ f.T / c\n"
              "    ### END SOLUTION\n\n"
              "answer = 1\n")
    nb = {"cells": [_code(source, [{"output_type": "stream", "name": "stdout", "text": ["hi"]}]),
                    _md("Question.\n\n<details><summary>Solution</summary>\n\nIt is 16.\n</details>\n\nNext."),
                    _code("check(answer)\n")]}
    copy, stubs = tutorial.student_copy(nb)
    assert stubs == 1
    code = "".join(copy["cells"][0]["source"])
    assert code == "def gram(f):\n    " + tutorial.STUB + "\n\nanswer = 1\n"
    compile(code, "<student>", "exec")
    assert "16" not in "".join(copy["cells"][1]["source"]) and "Next." in "".join(copy["cells"][1]["source"])
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in copy["cells"] if c["cell_type"] == "code")
    assert "".join(nb["cells"][0]["source"]) == source        # the source notebook is untouched
    with pytest.raises(NotImplementedError):
        namespace = {}
        exec(code, namespace)
        namespace["gram"](None)


@pytest.mark.parametrize("source,needle", [
    ("### BEGIN SOLUTION\nx = 1\n", "without ### END"),
    ("x = 1\n### END SOLUTION\n", "without ### BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_student_copy_refuses_broken_markers(source, needle):
    with pytest.raises(ValueError, match=needle):
        tutorial.student_copy({"cells": [_code(source)]})


def test_student_command_writes_copies_and_protects_the_sources(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    nb = {"cells": [_code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    (src / "a.ipynb").write_text(json.dumps(nb))
    assert tutorial.main(["student", str(tmp_path / "out"), str(src / "a.ipynb")]) == 0
    copy = json.loads((tmp_path / "out" / "a.ipynb").read_text())
    assert "".join(copy["cells"][0]["source"]) == tutorial.STUB + "\n"
    assert "1 exercise(s)" in capsys.readouterr().out
    assert tutorial.main(["student", str(src), str(src / "a.ipynb")]) == 2      # would overwrite the source
    assert "choose another folder" in capsys.readouterr().out


def test_student_copies_can_turn_the_classroom_switch_on(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    setup = "import gan_tutorial\n" + tutorial.CLASSROOM_OFF + "   # the switch\n"
    nb = {"cells": [_code(setup), _code("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n")], "metadata": {},
          "nbformat": 4, "nbformat_minor": 5}
    (src / "a.ipynb").write_text(json.dumps(nb))
    assert tutorial.main(["student", str(tmp_path / "out"), str(src / "a.ipynb"), "--classroom"]) == 0
    copy = json.loads((tmp_path / "out" / "a.ipynb").read_text())
    assert tutorial.CLASSROOM_ON in "".join(copy["cells"][0]["source"])
    assert "classroom mode on" in capsys.readouterr().out
    assert tutorial.main(["student", str(tmp_path / "plain"), str(src / "a.ipynb")]) == 0
    assert tutorial.CLASSROOM_OFF in "".join(json.loads((tmp_path / "plain" / "a.ipynb").read_text())["cells"][0]["source"])


def test_every_classroom_switch_is_the_one_student_copies_turn_on():
    """Notebooks 02-05 have the switch, written exactly as `tutorial.py student --classroom` expects it."""
    for name in EXPECTED[1:5]:
        text = (NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8")
        assert text.count(tutorial.CLASSROOM_OFF) == 1, name


def test_slide_types_follow_the_headings():
    nb = {"cells": [_md("# 02 · Title\ntext"), _code("x = 1"), _md("## 1 · Data"), _md("### EMA"), _md("plain")]}
    tutorial.set_slides(nb)
    assert [c["metadata"]["slideshow"]["slide_type"] for c in nb["cells"]] == ["slide", "-", "slide", "subslide", "-"]


def test_headings_in_the_middle_of_a_cell_open_their_own_slide():
    text = ("Reading the table: 0.52 here.\n<!-- not measured: 0.52 -->\n\n## 3 · Penalty\nText.\n```\n# not a heading\n```\n"
            "### Sub\nMore.")
    nb = {"cells": [_md("# Title"), _md(text), _md("<details>\n\n## inside\n</details>")]}
    for k, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell{k}"
    tutorial.set_slides(nb)
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert sources[1] == "Reading the table: 0.52 here.\n<!-- not measured: 0.52 -->"
    assert sources[2] == "## 3 · Penalty\nText.\n```\n# not a heading\n```\n<!-- not measured: 0.52 -->"
    assert sources[3].startswith("### Sub\nMore.") and sources[4].startswith("<details>")
    assert [c["metadata"]["slideshow"]["slide_type"] for c in nb["cells"]] == ["slide", "-", "slide", "subslide", "-"]
    assert len({c["id"] for c in nb["cells"]}) == len(nb["cells"])


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_exports_as_slides(name, tmp_path):
    """Slide metadata is present (``tutorial.py slides``) and nbconvert turns the notebook into a slideshow."""
    import subprocess

    path = NOTEBOOKS / f"{name}.ipynb"
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert json.dumps(tutorial.set_slides(json.loads(json.dumps(nb)))) == json.dumps(nb), \
        "slide metadata missing or stale: run python3 tutorial.py slides"
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "slides", "--output-dir", str(tmp_path),
                           str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    html = (tmp_path / f"{name}.slides.html").read_text(encoding="utf-8")
    assert html.count("<section") >= sum(c["metadata"]["slideshow"]["slide_type"] == "slide" for c in nb["cells"])
