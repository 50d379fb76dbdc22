"""Helpers shared by the benchmarks: terminal tables, machine info, JSON results.

Every benchmark prints its tables with :func:`print_table` and writes its
numbers with :func:`write_json` to ``benchmarks/results/<name>.json``
(git-ignored), together with :func:`machine_info` so that results from
different machines can be told apart.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO_ROOT = BENCH_DIR.parent

#: Distributions whose versions go into every result file.
VERSIONED = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "mlflow",
    "mlflow-skinny",
    "lightgbm",
    "scikit-learn",
    "great-expectations",
    "pandas",
    "pyarrow",
    "numpy",
    "retrainflow",
)


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def progress(message: str) -> None:
    """One timestamped progress line on stderr (so stdout keeps only the tables)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def package_versions(names: Iterable[str] = VERSIONED) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when absent)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict[str, Any]:
    """CPU count (usable and total), CPU model, memory, OS, Python and library versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    try:
        import psutil

        mem_mb: float | None = round(psutil.virtual_memory().total / 2**20)
    except ImportError:
        mem_mb = None
    return {
        "nproc": usable,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_mib": mem_mb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "packages": package_versions(),
    }


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the checkout, if it is one."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell: floats rounded, ``None``/NaN as ``-``, booleans as yes/no."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    return str(value)


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    digits: int = 1,
    title: str | None = None,
) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [[fmt(v, digits) for v in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
        for i, h in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(widths[0]) if i == 0 else v.rjust(widths[i]) for i, v in enumerate(values)]
        return "  ".join(parts).rstrip()

    out = []
    if title:
        out.append(title)
    out.append(line([str(h) for h in headers]))
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def format_markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, digits: int = 1
) -> str:
    """The same table as GitHub Markdown (for pasting into a README)."""
    cells = [[fmt(v, digits) for v in row] for row in rows]
    out = [
        "| " + " | ".join(str(h) for h in headers) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
    ]
    out.extend("| " + " | ".join(r) + " |" for r in cells)
    return "\n".join(out)


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    digits: int = 1,
    title: str | None = None,
) -> None:
    """Print :func:`format_table` to stdout, followed by a blank line."""
    print(format_table(headers, rows, digits=digits, title=title))
    print(flush=True)


def _default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)


def _clean(value: Any) -> Any:
    """NaN/inf floats become ``None`` (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(name: str, payload: dict[str, Any], *, path: Path | None = None) -> Path:
    """Write ``payload`` to ``benchmarks/results/<name>.json`` (or ``path``); returns the path."""
    target = path or RESULTS_DIR / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=2, default=_default, allow_nan=False) + "\n")
    tmp.replace(target)
    return target


def median(values: Sequence[float | None]) -> float | None:
    """Median of the non-``None`` values (``None`` when there are none)."""
    clean = sorted(v for v in values if v is not None)
    if not clean:
        return None
    mid = len(clean) // 2
    return clean[mid] if len(clean) % 2 else (clean[mid - 1] + clean[mid]) / 2


def load_average() -> list[float]:
    """1/5/15-minute load averages: other work on the machine skews every timing."""
    return [round(x, 2) for x in os.getloadavg()]


def usable_cpus() -> int:
    """CPUs this process may run on (the affinity mask where there is one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_ts(value: str | None) -> datetime | None:
    """An ISO timestamp (as the REST API returns them); naive ones are taken as UTC."""
    if not value:
        return None
    ts = datetime.fromisoformat(str(value))
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def seconds_between(a: datetime | None, b: datetime | None) -> float | None:
    """``b - a`` in seconds (``None`` when either is missing)."""
    return None if a is None or b is None else round((b - a).total_seconds(), 3)
