"""Which of loadgen's modules run compiled (mypyc), and the pure-Python fallback.

Why: the venue and the codecs are bound by the interpreter (perf: libpython 88% of the venue's
CPU, ~120 Python calls a request, no hot spot), so the install compiles their modules with
mypyc, from the same sources, where it can (setup.py; issue 14). The compiled modules are
extension files beside their sources, and Python's import takes an extension before a source.

The fallback is the sources themselves. They are imported instead, all of them together
(compiled modules reach each other's classes directly, so a mix would not work), when:
- LOADGEN_PURE_PYTHON=1 is set (tests run both ways with it);
- a module of the set has no extension (the install did not compile: no C compiler, or
  LOADGEN_PURE_PYTHON=1 at install time);
- a source changed after its extension was built (a developer's edit, a checkout), which the
  build's hashes of the sources tell. Running stale compiled code would test what is no longer
  there; `pip install -e .` compiles again.

This module imports nothing of loadgen's and no third-party package: setup.py reads COMPILED
from it before anything is installed.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

PURE_ENV = "LOADGEN_PURE_PYTHON"
HASHES_NAME = "_native_sources.json"  # written by setup.py beside this file: module -> sha256

# The venue's request path and the codecs both sides share (profiled under `bench venue`), and
# the generator's per-request path (perf of `bench traders`): order flow, pacing, outcomes,
# conformance, the recorder, the clients above net.py, and the traders' desk. Not the modules
# that Locust or the tests reach into: net.py (its waits and stamps), users/base.py (a Locust
# User), recording.py (Locust's hooks).
COMPILED: tuple[str, ...] = (
    "loadgen.ratelimit",
    "loadgen.clients.dispatch",
    "loadgen.clients.fix",
    "loadgen.clients.http",
    "loadgen.clients.rest",
    "loadgen.clients.ws",
    "loadgen.conformance",
    "loadgen.outcome",
    "loadgen.flow.draws",
    "loadgen.flow.market",
    "loadgen.flow.mix",
    "loadgen.flow.model",
    "loadgen.flow.orders",
    "loadgen.flow.pacing",
    "loadgen.metrics.hdrcodec",
    "loadgen.metrics.hist",
    "loadgen.metrics.recorder",
    "loadgen.users.desk",
    "loadgen.protocol.assets",
    "loadgen.protocol.operations",
    "loadgen.protocol.book",
    "loadgen.protocol.clock",
    "loadgen.protocol.errors",
    "loadgen.protocol.fix",
    "loadgen.protocol.fixsession",
    "loadgen.protocol.ids",
    "loadgen.protocol.jsonbound",
    "loadgen.protocol.messages",
    "loadgen.protocol.numbers",
    "loadgen.protocol.orderkinds",
    "loadgen.protocol.rest",
    "loadgen.protocol.ws",
    "loadgen.protocol.wsframe",
    "loadgen.venue.accounts",
    "loadgen.venue.book",
    "loadgen.venue.channels",
    "loadgen.venue.conn",
    "loadgen.venue.engine",
    "loadgen.venue.fix_server",
    "loadgen.venue.marketdata",
    "loadgen.venue.pairs",
    "loadgen.venue.rest_api",
    "loadgen.venue.rest_server",
    "loadgen.venue.tape",
    "loadgen.venue.triggers",
    "loadgen.venue.ws_api",
    "loadgen.venue.ws_server",
)

ROOT = Path(__file__).resolve().parent.parent  # the folder holding the `loadgen` package


def source_path(module: str, root: Path = ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def source_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extension_paths(module: str, root: Path = ROOT) -> list[Path]:
    """Where a build may put the module's extension, beside its source (one per suffix)."""
    source = source_path(module, root)
    return [source.with_suffix(suffix) for suffix in importlib.machinery.EXTENSION_SUFFIXES]


def _extension(module: str, root: Path) -> Path | None:
    return next((p for p in extension_paths(module, root) if p.exists()), None)


def why_pure(root: Path = ROOT) -> str:
    """Why this process runs the sources ('' when it runs the compiled modules); `root` holds
    the `loadgen` package."""
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV} is set"
    missing = [m for m in COMPILED if _extension(m, root) is None]
    if missing:
        return f"not compiled ({len(missing)} of {len(COMPILED)} modules have no extension)"
    try:
        built = json.loads((root / "loadgen" / HASHES_NAME).read_text())
    except (OSError, ValueError):
        return f"the build's source hashes ({HASHES_NAME}) are missing"
    stale = [m for m in COMPILED if built.get(m) != source_hash(source_path(m, root))]
    if stale:
        return f"{stale[0]} changed since it was compiled (`pip install -e .` compiles again)"
    return ""


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the modules of COMPILED as their .py sources, passing over their extensions."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, source_path(fullname))


_reason: str | None = None  # set by choose(): '' compiled, else why the sources run


def choose() -> str:
    """Decide once, at `import loadgen`, before any module of the set is imported; returns
    why the sources run ('' when compiled). A changed source is said on stderr."""
    global _reason
    if _reason is None:
        _reason = why_pure()
        if _reason:
            sys.meta_path.insert(0, _SourceFirst())
            if "changed since" in _reason:
                print(f"loadgen: running pure Python: {_reason}", file=sys.stderr)
    return _reason


def running() -> str:
    """'compiled (mypyc)' or 'pure Python (why)', for `loadgen bench` and `bench venue`."""
    reason = choose()
    return f"pure Python ({reason})" if reason else "compiled (mypyc)"
