"""The compiled modules and their pure-Python fallback (loadgen/native.py, setup.py).

Which of the two runs is decided at `import loadgen`; these tests ask a fresh interpreter, since
this one has decided already. The behaviour of the sources themselves is tested by .ci/run,
which runs the venue's and the codecs' tests a second time with LOADGEN_PURE_PYTHON=1.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from loadgen import native

SHOW = (
    "import importlib, json, loadgen.native as n\n"
    "files = {m: importlib.import_module(m).__file__ for m in n.COMPILED}\n"
    "print(json.dumps({'running': n.running(), 'files': files}))\n"
)


def _ask(pure: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k != native.PURE_ENV}
    if pure:
        env[native.PURE_ENV] = "1"
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    return json.loads(out.stdout)


def _has_c_compiler() -> bool:
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) is not None


def test_asked_for_the_sources_every_module_runs_from_its_source() -> None:
    seen = _ask(pure=True)
    assert seen["running"] == f"pure Python ({native.PURE_ENV} is set)"
    assert all(f.endswith(".py") for f in seen["files"].values()), seen["files"]


@pytest.mark.skipif(not _has_c_compiler(), reason="no C compiler: the install runs the sources")
def test_the_install_compiled_every_module() -> None:
    # Fails where the build did not compile (mypyc absent, a type error in a module of the set)
    # or a source changed after it: `pip install -e .` compiles again.
    seen = _ask(pure=False)
    assert seen["running"] == "compiled (mypyc)"
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    assert all(f.endswith(suffixes) for f in seen["files"].values()), seen["files"]


@pytest.fixture
def built_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package tree as the build leaves it: each module's source and extension, and the
    hashes of the sources."""
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    hashes = {}
    for module in native.COMPILED:
        source = native.source_path(module, tmp_path)
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(f"NAME = {module!r}\n")
        source.with_suffix(suffix).write_bytes(b"")
        hashes[module] = native.source_hash(source)
    (tmp_path / "loadgen" / native.HASHES_NAME).write_text(json.dumps(hashes))
    return tmp_path


def test_a_tree_as_built_runs_compiled(built_tree: Path) -> None:
    assert native.why_pure(built_tree) == ""


def test_a_source_changed_after_the_build_runs_as_source(built_tree: Path) -> None:
    source = native.source_path("loadgen.venue.engine", built_tree)
    source.write_text(source.read_text() + "CHANGED = True\n")
    assert native.why_pure(built_tree) == (
        "loadgen.venue.engine changed since it was compiled (`pip install -e .` compiles again)"
    )


def test_a_module_left_uncompiled_runs_every_source(built_tree: Path) -> None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    native.source_path("loadgen.ratelimit", built_tree).with_suffix(suffix).unlink()
    assert native.why_pure(built_tree) == (
        f"not compiled (1 of {len(native.COMPILED)} modules have no extension)"
    )


def test_without_the_build_hashes_the_sources_run(built_tree: Path) -> None:
    (built_tree / "loadgen" / native.HASHES_NAME).unlink()
    assert "source hashes" in native.why_pure(built_tree)


def test_the_setting_wins_over_a_good_build(
    built_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.why_pure(built_tree) == f"{native.PURE_ENV} is set"
