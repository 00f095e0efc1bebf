#!/usr/bin/env python3
"""Set up and run the GAN tutorial series with one command (Python 3.10+ standard library only).

    python3 tutorial.py lab      # make .venv if needed, install, open the notebooks in JupyterLab
    python3 tutorial.py test     # make .venv if needed, install, run the whole test suite
    python3 tutorial.py setup [--fresh]   # only (re)install; --fresh deletes .venv first
    python3 tutorial.py set-repo URL [--ref TAG]   # the repository the Colab badges and install cells use
    python3 tutorial.py check-numbers [NOTEBOOK ...]  # prose numbers that no output of their notebook shows
    python3 tutorial.py student OUT_DIR [NOTEBOOK ...] [--classroom]  # student copies: solutions replaced by stubs
    python3 tutorial.py slides [NOTEBOOK ...]   # (re)write the slide metadata from the headings

Extra arguments after ``test`` go to pytest, after ``lab`` to JupyterLab (run as root, ``lab`` adds
``--allow-root``). ``set-repo`` writes URL (a https://github.com/OWNER/NAME address: Colab opens
notebooks from GitHub) and the branch or tag (default ``main``) into ``[project.urls]`` of
pyproject.toml, and rewrites every notebook's Colab badge and install block to match.

``student`` writes a copy of each notebook (default: all) into OUT_DIR with every solution removed:
in code cells the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` (nbgrader's markers, so
nbgrader users can take the notebooks as they are) become ``raise NotImplementedError(...)``; in
markdown cells ``<details><summary>Solution ...</details>`` blocks are dropped; outputs are cleared.
``--classroom`` also turns on each notebook's classroom switch (``CLASSROOM = gan_tutorial.classroom(True)``):
the copies then load the checkpoints shipped with the package instead of training for many minutes.

``slides`` marks each cell for a slideshow (``jupyter nbconvert --to slides``, or RISE in JupyterLab):
a ``#`` or ``##`` heading starts a slide, a ``###`` heading a sub-slide, every other cell continues
the slide it is on.

``check-numbers`` enforces the series' rule for numbers in the text: in a markdown cell every
decimal number (``49.0``) and every percentage (``7.4 %``) is a measured claim and must appear in
an output of the same notebook (the space before ``%`` does not matter). Numbers in code spans,
code blocks and links are skipped; values that are not measured there (settings, literature values,
constants) are listed in the cell, invisibly: ``<!-- not measured: 0.5 0.999 -->``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".gan-tutorial-installed"

# The first lines of every notebook's setup cell, up to its first blank line after ``if IN_COLAB:``.
# It runs only on Colab (nbval and local runs skip it). The package cannot hold this code: on Colab it
# is not installed yet when the cell runs.
INSTALL_BLOCK = '''\
# Colab: install the helper package (torch and the rest are already there). Written by `tutorial.py set-repo`.
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    import importlib, pathlib, subprocess
    REPO, REF = "{url}", "{ref}"
    here = pathlib.Path.cwd()
    clone = next((p for p in (here, *here.parents, pathlib.Path("/content/{name}"))
                  if (p / "pyproject.toml").is_file() and (p / "gan_tutorial").is_dir()), None)
    source = str(clone) if clone else f"git+{{REPO}}@{{REF}}"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], capture_output=True, text=True)
    if pip.returncode != 0:
        raise RuntimeError(f"Could not install gan-tutorial from {{source}}:\\n{{pip.stderr[-1500:]}}\\nFix: check that the "
                           f"runtime is online and that {{REPO}} has the branch or tag {{REF}}; or run "
                           f"`!git clone --branch {{REF}} {{REPO}}` in a new cell (or upload the repository folder "
                           "to /content) and run this cell again: it then installs from that folder.")
    importlib.invalidate_caches()
    print("gan-tutorial installed from", source)
'''


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


# --------------------------------------------------------------------------- repository address
def read_repo(root: Path = ROOT) -> tuple[str, str]:
    """``(url, ref)`` from ``[project.urls]`` of pyproject.toml (``Repository``, ``Notebooks``)."""
    urls = _project_urls((root / "pyproject.toml").read_text(encoding="utf-8"))
    url = urls.get("Repository")
    if not url:
        raise SystemExit("pyproject.toml has no Repository under [project.urls]: run tutorial.py set-repo URL.")
    prefix, notebooks = f"{url}/tree/", urls.get("Notebooks", "")
    ref = notebooks[len(prefix):].rsplit("/notebooks", 1)[0] if notebooks.startswith(prefix) else "main"
    return url, ref


def _project_urls(text: str) -> dict[str, str]:
    section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    return dict(re.findall(r'^\s*"?([\w.-]+)"?\s*=\s*"([^"]*)"', section.group(1) if section else "", re.M))


def check_repo(url: str, ref: str) -> tuple[str, str]:
    """Normalise and check ``url`` (https://github.com/OWNER/NAME) and ``ref``; exit with the fix if wrong."""
    url = url.strip().rstrip("/")
    url = url[:-4] if url.endswith(".git") else url
    if not re.fullmatch(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", url):
        raise SystemExit(f"set-repo: {url!r} is not a GitHub repository address. Colab opens notebooks from "
                         "GitHub only: give it as https://github.com/OWNER/NAME")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./-]*", ref) or ".." in ref or ref.endswith((".", "/")):
        raise SystemExit(f"set-repo: {ref!r} is not a branch or tag name (e.g. main or v1.0).")
    return url, ref


def install_block(url: str, ref: str) -> str:
    """The install block of a setup cell for repository ``url`` at branch or tag ``ref``."""
    return INSTALL_BLOCK.format(url=url, ref=ref, name=url.rsplit("/", 1)[-1])


def badge_url(url: str, ref: str, notebook: str) -> str:
    return f"https://colab.research.google.com/github/{url.split('github.com/', 1)[1]}/blob/{ref}/notebooks/{notebook}"


def _replace_install_block(source: str, block: str) -> str:
    lines = source.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("if IN_COLAB:")), None)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), None) if start is not None else None
    if end is None:
        raise ValueError("no install block (an 'if IN_COLAB:' block followed by a blank line) in the setup cell")
    return block + "".join(lines[end:])


def update_notebook(nb: dict, name: str, url: str, ref: str) -> dict:
    """Point the Colab badge(s) and the install block of notebook ``nb`` (file name ``name``) at ``url``/``ref``."""
    badge = re.compile(r"https://colab\.research\.google\.com/github/[^)\s\"']+?/notebooks/" + re.escape(name))
    setup_done = False
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        new = badge.sub(badge_url(url, ref, name), source) if cell["cell_type"] == "markdown" else source
        if cell["cell_type"] == "code" and not setup_done and "IN_COLAB" in source:
            new, setup_done = _replace_install_block(source, install_block(url, ref)), True
        if new != source:
            cell["source"] = new.splitlines(keepends=True)
    if not setup_done:
        raise ValueError(f"{name}: no setup cell with an IN_COLAB install block")
    return nb


def write_notebook(path: Path, nb: dict) -> None:
    """Write in the layout the notebooks are committed in (one-space indent, UTF-8, final newline), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def set_repo(url: str, ref: str = "main", root: Path = ROOT) -> list[Path]:
    """Write ``url`` and ``ref`` into pyproject.toml and every notebook; return the files changed."""
    url, ref = check_repo(url, ref)
    changed = []
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    lines = {"Repository": url, "Notebooks": f"{url}/tree/{ref}/notebooks"}
    if not re.search(r"^\[project\.urls\]\s*$", text, re.M):
        text = text.replace("\n[project.scripts]", "\n[project.urls]\n\n[project.scripts]", 1)
    for key, value in lines.items():
        section = re.search(r"^\[project\.urls\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
        body = section.group(1)
        if re.search(rf"^{key}\s*=", body, re.M):
            body = re.sub(rf'^{key}\s*=.*$', f'{key} = "{value}"', body, count=1, flags=re.M)
        else:
            body = re.sub(r"\n*\Z", f'\n{key} = "{value}"\n\n', body, count=1)
        text = text[:section.start(1)] + body + text[section.end(1):]
    if text != pyproject.read_text(encoding="utf-8"):
        pyproject.write_text(text, encoding="utf-8")
        changed.append(pyproject)
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        before = path.read_text(encoding="utf-8")
        nb = update_notebook(json.loads(before), path.name, url, ref)
        if json.dumps(nb, indent=1, ensure_ascii=False) + "\n" != before:
            write_notebook(path, nb)
            changed.append(path)
    return changed


def _set_repo_command(args: list[str]) -> int:
    ref = "main"
    if "--ref" in args:
        i = args.index("--ref")
        if i + 1 >= len(args):
            raise SystemExit("set-repo: --ref needs a branch or tag name, e.g. --ref v1.0")
        ref = args[i + 1]
        args = args[:i] + args[i + 2:]
    if len(args) != 1:
        raise SystemExit("usage: python3 tutorial.py set-repo https://github.com/OWNER/NAME [--ref TAG]")
    changed = set_repo(args[0], ref)
    url, ref = read_repo()
    print(f"Repository {url} at {ref}: " + (", ".join(str(p.relative_to(ROOT)) for p in changed) + " updated"
                                             if changed else "everything already points there"))
    return 0


# --------------------------------------------------------------------------- student copies
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = 'raise NotImplementedError("your code here: write it, then run the check below")'
_SOLUTION_MD = re.compile(r"<details>\s*<summary>\s*Solution.*?</details>\s*", re.S | re.I)


def strip_solutions(source: str) -> tuple[str, int]:
    """``source`` with each BEGIN/END SOLUTION block replaced by one stub line; and the block count."""
    out, inside, count = [], False, 0
    for line in source.splitlines(keepends=True):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise ValueError(f"{BEGIN} inside another solution block")
            inside, count = True, count + 1
            out.append(line[:len(line) - len(line.lstrip())] + STUB + "\n")
        elif marker == END:
            if not inside:
                raise ValueError(f"{END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "".join(out), count


CLASSROOM_OFF, CLASSROOM_ON = "CLASSROOM = gan_tutorial.classroom(False)", "CLASSROOM = gan_tutorial.classroom(True)"


def student_copy(nb: dict, classroom: bool = False) -> tuple[dict, int]:
    """A copy of notebook ``nb`` without solutions or outputs; and the number of code stubs.
    ``classroom=True`` also turns the notebook's classroom switch on (shipped checkpoints)."""
    nb, stubs = json.loads(json.dumps(nb)), 0
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code":
            if classroom:
                text = text.replace(CLASSROOM_OFF, CLASSROOM_ON)
            text, n = strip_solutions(text)
            stubs += n
            cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown":
            text = _SOLUTION_MD.sub("", text)
        cell["source"] = text.splitlines(keepends=True)
    return nb, stubs


def _student_command(args: list[str]) -> int:
    classroom = "--classroom" in args
    args = [a for a in args if a != "--classroom"]
    if not args or args[0].startswith("-"):
        print("usage: python3 tutorial.py student OUT_DIR [NOTEBOOK ...] [--classroom]")
        return 2
    out = Path(args[0])
    paths = [Path(a) for a in args[1:]] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if any(out.resolve() == p.resolve().parent for p in paths):
        print(f"OUT_DIR {out} holds the source notebooks: choose another folder, or their solutions would be lost.")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        try:
            copy, stubs = student_copy(json.loads(path.read_text(encoding="utf-8")), classroom=classroom)
        except ValueError as e:
            print(f"{path.name}: {e}. Fix the solution markers in that notebook.")
            return 1
        write_notebook(out / path.name, copy)
        switched = classroom and CLASSROOM_ON in json.dumps(copy)
        print(f"{out / path.name}: {stubs} exercise(s) to write" + (", classroom mode on" if switched else ""))
    return 0


# --------------------------------------------------------------------------- slides
def slide_type(cell: dict) -> str:
    """``slide`` for a cell opening with a # or ## heading, ``subslide`` for ###, else ``-`` (continue)."""
    first = "".join(cell["source"]).lstrip().split("\n", 1)[0]
    if cell["cell_type"] == "markdown" and re.match(r"#{1,2} ", first):
        return "slide"
    if cell["cell_type"] == "markdown" and first.startswith("### "):
        return "subslide"
    return "-"


def split_at_headings(nb: dict) -> dict:
    """Split markdown cells so that every #, ## or ### heading opens a cell (in place): a heading in
    the middle of a cell would otherwise not start a slide. Code blocks and ``<details>`` are never
    split; a cell's ``<!-- not measured: ... -->`` note goes with each of its parts."""
    cells = []
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] != "markdown":
            cells.append(cell)
            continue
        parts, current, fenced, details = [], [], False, 0
        for line in text.split("\n"):
            if re.match(r"#{1,3} ", line) and current and not fenced and not details and "".join(current).strip():
                parts.append(current)
                current = []
            current.append(line)
            fenced ^= line.lstrip().startswith("```")
            details += line.count("<details") - line.count("</details>")
        parts.append(current)
        notes = _EXEMPT.findall(text)
        for k, lines in enumerate(parts):
            piece = "\n".join(lines).strip("\n")
            if len(parts) > 1 and notes and not _EXEMPT.search(piece):
                piece += "\n<!-- not measured: " + " ".join(n.strip() for n in notes) + " -->"
            new = {**json.loads(json.dumps(cell)), "source": [line + "\n" for line in piece.split("\n")]}
            new["source"][-1] = new["source"][-1].rstrip("\n")
            if k and "id" in cell:
                new["id"] = f"{cell['id'][:6]}-{k}"
            cells.append(new)
    nb["cells"] = cells
    return nb


def set_slides(nb: dict) -> dict:
    """``nb`` split at its headings (:func:`split_at_headings`) and every cell's
    ``metadata.slideshow.slide_type`` set by :func:`slide_type` (in place)."""
    split_at_headings(nb)
    for i, cell in enumerate(nb["cells"]):
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": "slide" if i == 0 else slide_type(cell)}
    return nb


def _slides_command(args: list[str]) -> int:
    for path in [Path(a) for a in args] or sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        before = json.dumps(nb)
        if json.dumps(set_slides(nb)) != before:
            write_notebook(path, nb)
        slides = sum(c["metadata"]["slideshow"]["slide_type"] == "slide" for c in nb["cells"])
        print(f"{path.name}: {slides} slides")
    return 0


# --------------------------------------------------------------------------- prose numbers
_CLAIM = re.compile(r"(?<![\w.\-/:])(\d+\.\d+|\d+(?:\.\d+)?\s?%)(?![\w.]?\d)")
_EXEMPT = re.compile(r"<!--\s*not measured:(.*?)-->", re.S)
_SKIP = re.compile(r"```.*?```|`[^`\n]*`|\]\([^)]*\)|https?://\S+|arXiv:\S+|<!--.*?-->", re.S)


def _norm(token: str) -> str:
    return re.sub(r"\s+%", "%", token.strip())


def _output_text(nb: dict) -> str:
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out:
                parts.append("".join(out["text"]))
            for kind, value in out.get("data", {}).items():
                if kind.startswith("text/"):
                    parts.append("".join(value))
    return _norm("\n".join(parts))


def unbacked_numbers(nb: dict) -> list[tuple[int, str, str]]:
    """``(cell index, number, context)`` for each measured-looking number in the markdown of ``nb``
    that none of its outputs shows and the cell does not list as not measured."""
    outputs, found = _output_text(nb), []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        exempt = {_norm(t) for block in _EXEMPT.findall(text) for t in block.split()}
        prose = _SKIP.sub(" ", text)
        for m in _CLAIM.finditer(prose):
            token = _norm(m.group(1))
            if token in exempt or re.search(r"(?<![\d.])" + re.escape(token) + r"(?!\d)", outputs):
                continue
            found.append((i, token, prose[max(0, m.start() - 40):m.end() + 20].replace("\n", " ")))
    return found


def _check_numbers_command(args: list[str]) -> int:
    paths = [Path(a) for a in args] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    bad = 0
    for path in paths:
        for cell, token, context in unbacked_numbers(json.loads(path.read_text(encoding="utf-8"))):
            print(f"{path.name} cell {cell}: {token!r} is in no output: ...{context}...")
            bad += 1
    print(f"{bad} number(s) without an output to back them" if bad else "every prose number is backed by an output")
    return 1 if bad else 0


# --------------------------------------------------------------------------- commands
def main(argv: list[str]) -> int:
    commands = ("lab", "test", "setup", "set-repo", "check-numbers", "student", "slides")
    if not argv or argv[0] in ("-h", "--help", "help") or argv[0] not in commands:
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help", "help") else 2
    command, rest = argv[0], argv[1:]
    if command == "set-repo":
        return _set_repo_command(rest)
    if command == "check-numbers":
        return _check_numbers_command(rest)
    if command == "student":
        return _student_command(rest)
    if command == "slides":
        return _slides_command(rest)
    if command == "setup":
        setup(fresh="--fresh" in rest)
        return 0
    python = setup()
    if command == "test":
        return subprocess.run([str(python), "-m", "pytest", *rest], cwd=ROOT).returncode
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in rest:
        print("Running as root (as in Docker images and cloud notebooks): passing --allow-root to JupyterLab.")
        rest = [*rest, "--allow-root"]
    return subprocess.run([str(python), "-m", "jupyter", "lab", "notebooks", *rest], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
