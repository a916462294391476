"""Regenerate the API reference in docs/api/ from the docstrings: ``python docs/api/generate.py``.

One page per package (``neurons``, ``synapses``, ``neuro`` and each of its subpackages,
``deployment``): for each module its docstring's first paragraph, then every public class
and function defined there with its signature and the first paragraph of its docstring.
Sources are read with ``ast`` (nothing is imported). ``--check`` exits 1 when a page is stale.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent
PACKAGES = ["neurons", "synapses", "neuro", "neuro.builders", "neuro.compat", "neuro.data", "neuro.hlop",
            "neuro.lnp", "neuro.training", "deployment"]


def first_paragraph(node) -> str:
    doc = ast.get_docstring(node) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def signature(fn) -> str:
    args = ast.unparse(fn.args)
    returns = f" -> {ast.unparse(fn.returns)}" if fn.returns is not None else ""
    return f"{fn.name}({args}){returns}"


def module_section(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text())
    lines = [f"## `{name}`", "", first_paragraph(tree) or "(no module docstring)", ""]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("_"):
            lines.append(f"* `{signature(node)}`: {first_paragraph(node) or '(no docstring)'}")
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            lines.append(f"* class `{node.name}`: {first_paragraph(node) or '(no docstring)'}")
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("_"):
                    lines.append(f"  * `{signature(item)}`: {first_paragraph(item) or '(no docstring)'}")
    return lines + [""]


def page(package: str) -> str:
    folder = ROOT / package.replace(".", "/")
    modules = [folder / "__init__.py"] + sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    lines = [f"# `{package}` API", "", "Generated from the docstrings by `docs/api/generate.py`; do not edit.", ""]
    for path in modules:
        name = package if path.name == "__init__.py" else f"{package}.{path.stem}"
        lines += module_section(path, name)
    return "\n".join(lines).rstrip() + "\n"


def pages() -> dict[str, str]:
    out = {f"{p}.md": page(p) for p in PACKAGES}
    index = ["# API reference", "", "Generated from the docstrings by `docs/api/generate.py` (one page per package).",
             ""] + [f"* [`{p}`]({p}.md)" for p in PACKAGES]
    out["README.md"] = "\n".join(index) + "\n"
    return out


def main(argv=None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for name, text in pages().items():
        path = OUT / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not check:
            path.write_text(text)
    if check and stale:
        print(f"docs/api is stale ({', '.join(stale)}): run python docs/api/generate.py")
        return 1
    print(f"docs/api: {len(pages())} pages, {len(stale)} {'stale' if check else 'written'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
