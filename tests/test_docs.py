"""Docs that run: every code block of README.md and docs/*.md is executed (or parsed) here.

Rules, by the block's language tag:

* ``python``: executed; the blocks of one page share a namespace, in order, in a temporary folder.
* ``bash`` / ``sh``: executed by ``bash -e`` in that folder, as written. The folder holds links to this
  checkout's ``configs/``, ``benchmarks/``, ``tests/``, ``Makefile`` and ``setup.cfg``, and a
  ``.venv/bin/`` (also first on ``PATH``) whose ``python``, ``neuro``, ``pip`` and ``torchrun`` are this
  interpreter (``-m neuro.cli``, ``-m pip``, ``-m torch.distributed.run``) with this checkout on
  ``PYTHONPATH`` (appended to a ``PYTHONPATH=...`` that the block sets).
* ``yaml`` / ``toml``: parsed.
* ``text``: not code (equations, printed output, synopses); not run.

HTML comments on the lines right above a block direct the test (several may stand there):

* ``<!-- docs-test: quick OLD => NEW; OLD2 => NEW2 -->``: the block runs with these replacements,
  visible in the page's source: fewer seeds, epochs, samples, trials, smaller sizes. Every OLD must
  occur in the block. **``NEURO_DOCS_FULL=1`` runs the blocks as written instead** (full length:
  hours, and ``pip install`` lines really install).
* ``<!-- docs-test: placeholder OLD => NEW -->``: replacements made in quick and full runs alike, for
  the names that stand for the reader's own (``CONFIG`` -> a file the setup wrote).
* ``<!-- docs-test: setup COMMAND -->``: a bash command run first (quick and full runs alike), for
  what the reader has and the test does not: a saved network standing for "your file", trained runs,
  a small config.
* ``<!-- not-run: reason -->``: skipped. None is left (``test_how_many_blocks_run``).

The shortening is a visible rewrite rather than a "quick" variable read by the CLI and the scripts: they
carry no test-only mode (no one gets a shortened run by accident), and each shortening stands next to
the block it shortens. Commands run with ``OMP_NUM_THREADS=1`` unless it is set.

Package installs: the quick form of ``pip install X`` is ``pip install --dry-run X`` (pip resolves X
against the package index, which must be reachable, and changes no environment); an install into a
folder of the temporary directory (``--target``) runs for real. Benchmark peers that the project's own
install lacks (brian2: the ``[bench]`` extra; spikingjelly, norse: ``make bench-deps``) are skipped
by the benchmark scripts with a printed reason, and their neuro side runs. ``make`` targets run as
``make -n`` (printed, not executed: they would install into the real ``.venv``).

An untagged block fails: every block says what it is. Relative links in the pages must exist.
Run with ``-s`` to see each block's wall time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "api").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
COMMENT = re.compile(r"\s*<!--(.*)-->\s*")
DIRECTIVE = re.compile(r"\s*(not-run|docs-test:\s*(?:quick|placeholder|setup))\s*:?\s*(.*?)\s*", re.S)
RUN = {"python", "bash", "sh"}
PARSE = {"yaml": yaml.safe_load, "toml": tomllib.loads}
FULL = os.environ.get("NEURO_DOCS_FULL") == "1"
LINKED = ("configs", "benchmarks", "tests", "Makefile", "setup.cfg")
#: ``.venv/bin/NAME`` in a page's folder runs this interpreter with these arguments first.
TOOLS = {"python": "", "neuro": "-m neuro.cli", "pip": "-m pip", "torchrun": "-m torch.distributed.run"}


def directives(text: str, start: int) -> list[tuple[str, str]]:
    """``(kind, text)`` of the HTML comments on the lines right above offset ``start``, top to bottom;
    kind ``not-run``, ``quick``, ``placeholder`` or ``setup``. A comment there that is no directive fails."""
    out = []
    for line in reversed(text[:start].rstrip("\n").split("\n")):
        comment = COMMENT.fullmatch(line)
        if not comment:
            break
        directive = DIRECTIVE.fullmatch(comment.group(1))
        if not directive:
            raise AssertionError(f"the comment right above a code block is no directive: {line.strip()!r}")
        out.insert(0, (directive.group(1).split(":")[-1].strip(), directive.group(2)))
    return out


def blocks(page: Path):
    """``(line, language, code, directives)`` of every fenced block of ``page``."""
    text = page.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1).strip(), m.group(2), directives(text, m.start()))
            for m in FENCE.finditer(text)]


def _replace(code: str, spec: str, where: str) -> str:
    """``code`` with the replacements ``OLD => NEW; ...`` of ``spec``; each OLD must occur."""
    for pair in filter(None, (p.strip() for p in spec.split(";"))):
        old, new = (s.strip() for s in pair.split("=>"))
        if old not in code:
            raise AssertionError(f"{where}: quick replacement {old!r} not found in the block")
        code = code.replace(old, new)
    return code


def _tools(folder: Path) -> Path:
    """``folder/.venv/bin`` holding ``python``, ``neuro``, ``pip`` and ``torchrun`` of this interpreter."""
    bin_dir = folder / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, args in TOOLS.items():
        tool = bin_dir / name
        tool.write_text(f'#!/bin/sh\nexport PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{ROOT}"\n'
                        f'exec "{sys.executable}" {args} "$@"\n')
        tool.chmod(0o755)
    return bin_dir


def _bash(code: str, where: str) -> None:
    done = subprocess.run(["bash", "-e", "-c", code], capture_output=True, text=True, timeout=None if FULL else 300)
    assert done.returncode == 0, f"{where}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"


RAN: dict[str, int] = {}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch):
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("PATH", f"{_tools(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One OpenMP thread per command, as tests/conftest.py sets for torch here: torch's default of one per
    # core waits for busy cores (a 1-epoch `neuro train` took 31 s instead of 16 s at load 4 on 2 cores).
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for line, lang, code, marks in blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if not lang:
            pytest.fail(f"{where}: untagged code block; tag it python, bash, yaml, toml or text")
        if lang == "text" or any(kind == "not-run" for kind, _ in marks):
            continue
        start = time.perf_counter()
        for kind, text in marks:
            if kind == "setup":
                _bash(text, f"{where} (setup)")
            elif kind == "placeholder" or (kind == "quick" and not FULL):
                code = _replace(code, text, where)
        if lang in PARSE:
            PARSE[lang](code)
        elif lang == "python":
            exec(compile(code, where, "exec"), namespace)
        elif lang in RUN:
            _bash(code, where)
        else:
            pytest.fail(f"{where}: unknown block language {lang!r}")
        print(f"{where}: {lang} block {time.perf_counter() - start:.1f} s")
        ran += 1
    RAN[str(page.relative_to(ROOT))] = ran


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_exist(page):
    text = FENCE.sub("", page.read_text())
    missing = [t for t, _ in LINK.findall(text) if "://" not in t and not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)}: links to missing files {missing}"


def test_docs_paths_named_in_the_cli_exist():
    named = set()
    for path in (ROOT / "neuro").rglob("*.py"):
        named |= set(re.findall(r"\b(docs/[\w./-]+\.md)", path.read_text()))
    assert named and all((ROOT / n).exists() for n in named), sorted(n for n in named if not (ROOT / n).exists())


def test_how_many_blocks_run():
    """Every block is executed or parsed, except ``text`` ones; none is skipped. Printed with ``-s``."""
    counts = {"run": 0, "parsed": 0, "text": 0, "not-run": 0}
    skipped = []
    for page in PAGES:
        for line, lang, _, marks in blocks(page):
            if any(kind == "not-run" for kind, _ in marks):
                counts["not-run"] += 1
                skipped.append(f"{page.relative_to(ROOT)}:{line}")
            else:
                counts["text" if lang == "text" else "parsed" if lang in PARSE else "run"] += 1
    print(f"docs blocks: {counts}")
    assert not skipped, f"blocks marked not-run: {skipped}"
    assert counts["run"] >= 49 and counts["parsed"] >= 2, counts


def test_api_reference_is_current():
    """docs/api/*.md equal what docs/api/generate.py makes of the docstrings now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_api", ROOT / "docs" / "api" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.main(["--check"]) == 0, "docs/api is stale: run python docs/api/generate.py"
    assert "fit_model(" in (ROOT / "docs" / "api" / "neuro.training.md").read_text()
