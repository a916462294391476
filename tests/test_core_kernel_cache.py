"""Numba's cache is keyed by every kernel file's source, so a changed inlined function is never run stale."""

from pathlib import Path

from neurons import kernel_cache


def _tree(root: Path, lif_body: str):
    for pkg in kernel_cache.PACKAGES:
        (root / pkg).mkdir(parents=True, exist_ok=True)
    (root / "neurons" / "lif.py").write_text(f"from numba import njit\n@njit\ndef f(x):\n    return {lif_body}\n")
    (root / "neuro" / "simulator.py").write_text("from numba import njit\n@njit(cache=True)\ndef g(x):\n    return x\n")
    (root / "neuro" / "plots.py").write_text("def plot():\n    pass\n")


def test_the_hash_follows_a_kernel_that_another_file_inlines_and_ignores_other_files(tmp_path):
    _tree(tmp_path, "x + 1")
    before = kernel_cache.source_hash(tmp_path)
    assert [p.name for p in kernel_cache.kernel_sources(tmp_path)] == ["simulator.py", "lif.py"]
    (tmp_path / "neuro" / "plots.py").write_text("def plot():\n    return 1\n")
    assert kernel_cache.source_hash(tmp_path) == before  # no kernel changed: the compiled cache stays valid
    _tree(tmp_path, "x + 2")  # simulator.py unchanged, but what it would inline changed
    assert kernel_cache.source_hash(tmp_path) != before


def test_the_cache_lives_under_the_hash_and_a_users_numba_cache_dir_wins(monkeypatch, tmp_path):
    from numba.core import config

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)
    folder = kernel_cache.configure()
    assert folder.parent == tmp_path / "neuro" / "numba" and config.CACHE_DIR == str(folder)
    assert folder.name == kernel_cache.source_hash(Path(kernel_cache.__file__).resolve().parent.parent)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert kernel_cache.configure() is None
