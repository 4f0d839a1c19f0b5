"""Build: the modules in loadgen/native.py's COMPILED are compiled with mypyc (issue 14).

pyproject.toml holds everything else. The compile is optional: LOADGEN_PURE_PYTHON=1 at install
time skips it, and a module that fails to build is left to run from its source. Beside the
extensions the build writes the hashes of the sources they came from, so that an edited source
runs as itself, never as its stale compiled form (loadgen/native.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("_loadgen_native", HERE / "loadgen" / "native.py")
assert _spec is not None and _spec.loader is not None
native = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(native)


def remove_build(root: Path) -> None:
    """Take away what an earlier build left under `root`: the hashes, every listed module's
    extension and the shared library. A module that fails to build this time, or a build
    skipped, must not leave the last build's extension to pass for the sources."""
    (root / "loadgen" / native.HASHES_NAME).unlink(missing_ok=True)
    for module in native.COMPILED:
        for path in native.extension_paths(module, root):
            path.unlink(missing_ok=True)
    for shared in root.glob("*__mypyc.*"):
        shared.unlink()


def ext_modules() -> list[Any]:
    if os.environ.get(native.PURE_ENV, "") not in ("", "0"):
        print(f"loadgen: {native.PURE_ENV} is set: not compiling")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("loadgen: mypyc is not installed: not compiling")
        return []
    paths = [str(native.source_path(m, Path(".")).as_posix()) for m in native.COMPILED]
    # The build runs before the dependencies are installed (pip's isolated build), and a
    # developer's build beside them must not differ: what they export is typed Any here
    # (--no-site-packages: mypy does not look for them), alike in every build.
    try:
        extensions = mypycify(
            ["--ignore-missing-imports", "--no-site-packages", *paths], opt_level="3"
        )
    except SystemExit:  # mypyc refuses a module that does not type-check: say so, run sources
        print("loadgen: mypyc found type errors (above): not compiling", file=sys.stderr)
        return []
    for ext in extensions:
        ext.optional = True  # no C compiler: install anyway, run the sources
    return extensions


class BuildExt(build_ext):
    """build_ext, then the sources' hashes beside the extensions once every one was built."""

    def run(self) -> None:
        for root in (HERE, Path(self.build_lib)):
            remove_build(root)
        super().run()
        if not self.extensions:
            return
        if not all(Path(self.get_ext_fullpath(e.name)).exists() for e in self.extensions):
            print("loadgen: some modules did not compile: the sources will run")
            return
        hashes = {m: native.source_hash(native.source_path(m, HERE)) for m in native.COMPILED}
        package = HERE / "loadgen" if self.inplace else Path(self.build_lib) / "loadgen"
        package.mkdir(parents=True, exist_ok=True)
        (package / native.HASHES_NAME).write_text(json.dumps(hashes, indent=1) + "\n")


EXTENSIONS = ext_modules()
if not EXTENSIONS:  # skipped: an earlier build's extensions must not run for the sources
    remove_build(HERE)
setup(ext_modules=EXTENSIONS, cmdclass={"build_ext": BuildExt})
