"""Docs that run: every code block of README.md and docs/*.md is executed (or parsed) here.

Rules, by the block's language tag:

* ``python``: executed; the blocks of one page share a namespace, in order, in a temporary folder
  with ``configs/`` and ``benchmarks/`` linked in.
* ``bash`` / ``sh``: executed by bash there (``neuro`` and ``.venv/bin/neuro`` become
  ``python -m neuro.cli`` of this interpreter and checkout; ``python`` this interpreter).
* ``yaml`` / ``toml``: parsed.
* ``text``: not code (equations, printed output, synopses); not run.

A block right after ``<!-- not-run: reason -->`` is skipped (commands that take minutes or need
real datasets); one after ``<!-- docs-test: quick OLD => NEW; ... -->`` runs with those
replacements (a shortened run), unless ``NEURO_DOCS_FULL=1`` asks for the blocks as written.
An untagged block fails: every block says what it is. Relative links in the pages must exist.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "api").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
MARK = re.compile(r"<!--\s*(not-run|docs-test:\s*quick)\s*:?\s*(.*?)-->\s*$", re.S)
RUN = {"python", "bash", "sh"}
PARSE = {"yaml": yaml.safe_load, "toml": tomllib.loads}
FULL = os.environ.get("NEURO_DOCS_FULL") == "1"


def blocks(page: Path):
    """``(line, language, code, marker kind, marker text)`` of every fenced block of ``page``."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        out.append((line, m.group(1).strip(), m.group(2), mark.group(1).split(":")[0] if mark else None,
                    mark.group(2).strip() if mark else ""))
    return out


def _quick(code: str, spec: str, where: str) -> str:
    for pair in filter(None, (p.strip() for p in spec.split(";"))):
        old, new = (s.strip() for s in pair.split("=>"))
        if old not in code:
            raise AssertionError(f"{where}: quick replacement {old!r} not found in the block")
        code = code.replace(old, new)
    return code


def _shell(code: str) -> str:
    py = sys.executable
    code = re.sub(r"(^|&& |\| )(\.venv/bin/)?neuro ", rf"\1{py} -m neuro.cli ", code, flags=re.M)
    return re.sub(r"(^|&& )(\.venv/bin/)?python ", rf"\1{py} ", code, flags=re.M)


RAN: dict[str, int] = {}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_code_runs(page, tmp_path, monkeypatch):
    for folder in ("configs", "benchmarks"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for line, lang, code, mark, spec in blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if not lang:
            pytest.fail(f"{where}: untagged code block; tag it python, bash, yaml, toml or text")
        if lang == "text" or mark == "not-run":
            continue
        if mark == "docs-test" and not FULL:
            code = _quick(code, spec, where)
        if lang in PARSE:
            PARSE[lang](code)
        elif lang == "python":
            exec(compile(code, where, "exec"), namespace)
        elif lang in RUN:
            done = subprocess.run(["bash", "-e", "-c", _shell(code)], capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (f"{where}: exit {done.returncode}\n{done.stdout[-2000:]}\n"
                                          f"{done.stderr[-3000:]}")
        else:
            pytest.fail(f"{where}: unknown block language {lang!r}")
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
    """The count of executed or parsed blocks (and of the skipped ones), printed with ``-s``."""
    counts = {"run": 0, "not-run": 0, "text": 0}
    for page in PAGES:
        for _, lang, _, mark, _ in blocks(page):
            counts["text" if lang == "text" else "not-run" if mark == "not-run" else "run"] += 1
    print(f"docs blocks: {counts}")
    assert counts["run"] >= 28


def test_api_reference_is_current():
    """docs/api/*.md equal what docs/api/generate.py makes of the docstrings now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_api", ROOT / "docs" / "api" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert generate.main(["--check"]) == 0, "docs/api is stale: run python docs/api/generate.py"
    assert "fit_model(" in (ROOT / "docs" / "api" / "neuro.training.md").read_text()
