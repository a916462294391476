"""Make lava-nc 0.10 importable on Python 3.11 without touching site-packages.

lava 0.10 declares eight dataclass fields in ``lava/magma/compiler/var_model.py``
as ``x: ByteEncoder = ByteEncoder()``. Python 3.11 rejects unhashable dataclass
defaults (``ValueError: mutable default ... use default_factory``), which breaks
77 of lava's modules on import. :func:`install` registers an import hook that
loads that one module from its original source with those defaults rewritten to
``field(default_factory=ByteEncoder)``; nothing is written to disk. Call it (or
:func:`import_lava`) before importing anything from ``lava``.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import re
import sys

TARGET = "lava.magma.compiler.var_model"
_DEFAULT = re.compile(r"^(\s+\w+: ByteEncoder) = ByteEncoder\(\)\s*$", re.MULTILINE)


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    """Loads ``var_model`` from source with the mutable dataclass defaults replaced; never writes bytecode."""

    def get_code(self, fullname):
        source = self.get_data(self.path).decode("utf-8")
        patched = _DEFAULT.sub(r"\1 = _dc_field(default_factory=ByteEncoder)", source)
        patched = patched.replace("from __future__ import annotations\n",
                                  "from __future__ import annotations\nfrom dataclasses import field as _dc_field\n", 1)
        return compile(patched, self.path, "exec", dont_inherit=True)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        sys.meta_path.remove(self)  # find the real file with the ordinary finders
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return spec
        return importlib.util.spec_from_file_location(fullname, spec.origin,
                                                      loader=_PatchedLoader(fullname, spec.origin))


def needed() -> bool:
    """True on Python >= 3.11, where lava 0.10's ``var_model`` does not import as shipped."""
    return sys.version_info >= (3, 11)


def install() -> None:
    """Register the import hook (idempotent). Must run before ``lava.magma.compiler.var_model`` is imported.

    Lava also calls ``multiprocessing.set_start_method('fork')`` unforced when its runtime is first
    imported, which raises if anything chose a start method before; a chosen 'fork' is cleared so that
    call succeeds (any other method is left alone and Lava's own error stands).
    """
    if "lava.magma.runtime.message_infrastructure.multiprocessing" not in sys.modules:
        import multiprocessing.context as mp_context

        if mp_context._default_context._actual_context is mp_context._concrete_contexts.get("fork"):
            mp_context._default_context._actual_context = None
    if not needed() or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())


def import_lava():
    """Install the fix and import ``lava``; a clear ``RuntimeError`` when lava is not installed or broken."""
    install()
    try:
        import lava.magma.compiler.var_model  # noqa: F401
        import lava.proc.lif.process  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"lava-nc is not importable ({exc}); install it with `make install` "
                           "(lava-nc==0.10.0, see the Makefile)") from None
    import lava

    return lava


def available() -> bool:
    """Whether lava can be imported (with the fix)."""
    try:
        import_lava()
    except RuntimeError:
        return False
    return True
