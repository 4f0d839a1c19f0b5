"""results/<run-id>/: windows appended as they close, readable after any kind of death.

- meta.json: what ran (profile, loop model, start), written whole through a rename;
- windows.jsonl: one JSON line per closed window and source process, appended and flushed
  as each arrives, so a run killed with SIGKILL leaves every second up to its last; a line
  cut short by the kill is skipped by the reader;
- incidents.jsonl: what happened to the run itself (a worker lost, a worker's last windows
  missing, a lost worker's keys cancelled), one JSON line each, as it happens;
- latency.hlog: the same service-time histograms in HdrHistogram's interval log format, one
  line per cell and window tagged with the cell (protocol/op/outcome), for HdrHistogram's
  own tools (HistogramLogProcessor, HdrHistogram plotters).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from loadgen.metrics.recorder import Window, merge

META = "meta.json"
RUN_META = "run.json"  # what `loadgen run` adds: the profile as run, CPU, the venue's last words
WINDOWS = "windows.jsonl"
INCIDENTS = "incidents.jsonl"
HLOG = "latency.hlog"


# Exit code of a Locust process that stopped because it could not write its results (sysexits'
# EX_CANTCREAT); `loadgen run` names the problem from it.
EXIT_RESULTS_UNWRITABLE = 73
# A run needs this much free space to start at all; past the start a full disk is caught as it
# happens (a run writes ~25 KB/s of windows and histograms at a few hundred requests/s).
MIN_FREE_BYTES = 1024 * 1024


class ResultsWriteError(OSError):
    """The results folder cannot be written (full, read-only, gone): named, with the folder."""

    def __init__(self, where: Path, exc: OSError) -> None:
        why = exc.strerror or str(exc)
        super().__init__(exc.errno, f"cannot write the results to {where}: {why}")
        self.where = where

    def __str__(self) -> str:
        return str(self.strerror)


def free_bytes(path: Path) -> int:
    """Space free to this user on path's file system (OSError when it cannot be read)."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def check_writable(run_dir: Path) -> None:
    """Before a run: the folder can be created and written, with MIN_FREE_BYTES free."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-check"
        probe.write_bytes(b"x")
        probe.unlink()
        free = free_bytes(run_dir)
    except OSError as exc:
        raise ResultsWriteError(run_dir, exc) from exc
    if free < MIN_FREE_BYTES:
        raise ResultsWriteError(
            run_dir,
            OSError(28, f"only {free // 1024} KiB free; a run needs {MIN_FREE_BYTES // 1024} KiB"),
        )


def write_json(path: Path, data: Any) -> None:
    """Write whole or not at all: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise ResultsWriteError(path.parent, exc) from exc


def encoded_problem(record: Any) -> str:
    """What keeps `record` from being an encoded Window ('' when nothing), checked without
    decoding a histogram: its second, its cells, each cell's count and service latencies."""
    if not isinstance(record, dict) or type(record.get("t")) is not int:
        return "no whole second 't'"
    for name, kind in (("late", int), ("users", int), ("offered", (int, float))):
        if type(record.get(name)) not in (kind if isinstance(kind, tuple) else (kind,)):
            return f"no {name!r}"
    cells = record.get("cells")
    if not isinstance(cells, dict):
        return "no 'cells'"
    for key, cell in cells.items():
        service = cell.get("service") if isinstance(cell, dict) else None
        if not isinstance(key, str) or key.count("/") < 2:
            return f"cell {key!r} is not protocol/op/outcome"
        if not isinstance(cell.get("n"), int) or not isinstance(service, dict):
            return f"cell {key!r} has no count or no service latencies"
        if not isinstance(service.get("hdr"), str) or not all(
            type(service.get(k)) is int for k in ("min", "max")
        ):
            return f"cell {key!r}: its service latencies have no histogram, min or max"
    return ""


class ResultsWriter:
    """Every write names its failure: ResultsWriteError, from the start on."""

    def __init__(self, run_dir: Path, meta: dict[str, Any]) -> None:
        self.dir = run_dir
        self.start = float(meta.setdefault("start", time.time()))
        self.meta = meta
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / META, meta)
            self._windows: IO[str] = open(run_dir / WINDOWS, "a", encoding="utf-8")  # noqa: SIM115
            self._hlog: IO[str] = open(run_dir / HLOG, "a", encoding="utf-8")  # noqa: SIM115
            if self._hlog.tell() == 0:
                self._hlog.write(
                    "#[Histogram log format version 1.3]\n"
                    f"#[StartTime: {self.start:.3f} (seconds since epoch)]\n"
                    f"#[BaseTime: {self.start:.3f} (seconds since epoch)]\n"
                    '"StartTimestamp","Interval_Length","Interval_Max",'
                    '"Interval_Compressed_Histogram"\n'
                )
        except ResultsWriteError:
            raise
        except OSError as exc:
            raise ResultsWriteError(run_dir, exc) from exc

    def append(self, window: Window, source: str = "local") -> None:
        try:
            self._append(window, source)
        except OSError as exc:
            raise ResultsWriteError(self.dir, exc) from exc

    def append_encoded(self, record: dict[str, Any], source: str) -> None:
        """A window as its worker encoded it (Window.encode()), written as it came: no
        histogram is decoded and encoded again, which is most of what a window costs the
        master (bench master). ValueError, naming what is wrong, for a record that is not one."""
        problem = encoded_problem(record)
        if problem:
            raise ValueError(f"a window from {source} is malformed: {problem}")
        try:
            self._write(dict(record), source)
        except OSError as exc:
            raise ResultsWriteError(self.dir, exc) from exc

    def _append(self, window: Window, source: str) -> None:
        self._write(window.encode(), source)

    def _write(self, record: dict[str, Any], source: str) -> None:
        record["source"] = source
        self._windows.write(json.dumps(record, separators=(",", ":")) + "\n")
        begin = max(0.0, record["t"] - 1 - self.start)
        for key, cell in sorted(record["cells"].items()):
            service = cell["service"]
            # Interval_Max in the log's unit convention: values are us, the max is given in ms
            self._hlog.write(
                f"Tag={key},{begin:.3f},1.000,{service['max'] / 1000:.3f},{service['hdr']}\n"
            )
        self._windows.flush()
        self._hlog.flush()

    def incident(self, kind: str, text: str) -> None:
        try:
            with open(self.dir / INCIDENTS, "a", encoding="utf-8") as fh:
                fh.write(
                    json.dumps({"t": round(time.time(), 3), "kind": kind, "text": text}) + "\n"
                )
        except OSError as exc:
            raise ResultsWriteError(self.dir, exc) from exc

    def ended(self) -> None:
        """The load is over (test stop): meta.json says when; later seconds are no part of it."""
        self.meta["stopped"] = time.time()
        write_json(self.dir / META, self.meta)

    def close(self) -> None:
        for fh in (self._windows, self._hlog):
            with contextlib.suppress(OSError):  # what could not be written was reported already
                fh.close()


def read_meta(run_dir: Path) -> dict[str, Any]:
    """meta.json (from Locust) with run.json (from `loadgen run`) over it, where present."""
    meta: dict[str, Any] = {}
    for name in (META, RUN_META):
        path = run_dir / name
        if path.exists():
            meta.update(json.loads(path.read_text()))
    return meta


def read_incidents(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / INCIDENTS
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # cut short by a kill
    return out


def complete_lines(path: Path, offset: int) -> tuple[list[bytes], int]:
    """The whole lines appended to `path` since byte `offset`, and the offset past them (a
    line still being written is left for the next call): for readers that follow a run."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        chunk = fh.read()
    end = chunk.rfind(b"\n") + 1
    return chunk[:end].splitlines(), offset + end


def read_raw(run_dir: Path) -> Iterator[tuple[str, Window]]:
    """(source, window) per complete line; a line cut short by a kill is skipped."""
    path = run_dir / WINDOWS
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # the writer died mid-line
            try:
                data = json.loads(line)
                window = Window.decode(data)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # not a window (HdrCodecError is a ValueError): one line, not the run
            yield str(data.get("source", "")), window


def read_windows(run_dir: Path) -> list[Window]:
    """The run's windows, every source merged, one per second in time order."""
    return merge(w for _, w in read_raw(run_dir))
