"""The artifact store: where stages write their outputs.

Layout: ``<artifact_root>/<pipeline>/<run_id>/<stage>/<file>``. Every write is
atomic (a temporary file in the same directory, then ``os.replace``), so a
crashed task never leaves a half-written file behind, and re-running a stage
for the same run id overwrites the same paths: tasks are idempotent and
retries are safe.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainflow.jsonsafe import json_safe

if TYPE_CHECKING:
    import pandas as pd

_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]")


def safe_name(text: str) -> str:
    """A path-safe version of a run id (Airflow run ids contain ':' and '+')."""
    return _SAFE.sub("_", text)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it into place on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@dataclass(frozen=True)
class StageDir:
    """The output directory of one stage of one run."""

    path: Path

    def file(self, name: str) -> Path:
        return self.path / name

    def write_json(self, name: str, payload: Any) -> Path:
        """Write ``payload`` as strict JSON (see :func:`~retrainflow.jsonsafe.json_safe`)."""
        target = self.file(name)
        text = json.dumps(json_safe(payload), indent=2, sort_keys=True, allow_nan=False)
        with atomic_path(target) as tmp:
            tmp.write_text(text)
        return target

    def read_json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    def write_text(self, name: str, text: str) -> Path:
        target = self.file(name)
        with atomic_path(target) as tmp:
            tmp.write_text(text)
        return target

    def write_parquet(self, name: str, frame: pd.DataFrame) -> Path:
        target = self.file(name)
        with atomic_path(target) as tmp:
            frame.to_parquet(tmp, index=False)
        return target

    def write_with(self, name: str, writer: Callable[[Path], object]) -> Path:
        """Atomically write ``name`` with ``writer(tmp_path)``."""
        target = self.file(name)
        with atomic_path(target) as tmp:
            writer(tmp)
        return target


class ArtifactStore:
    """Local-filesystem artifact store rooted at ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def stage(self, pipeline: str, run_id: str, stage: str) -> StageDir:
        path = self.root / pipeline / safe_name(run_id) / stage
        path.mkdir(parents=True, exist_ok=True)
        return StageDir(path)

    def run_dir(self, pipeline: str, run_id: str) -> Path:
        return self.root / pipeline / safe_name(run_id)
