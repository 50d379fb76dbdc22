"""Shared fixtures: isolated homes, the seeded synthetic lake, a trained base.

Every test runs against its own ``RETRAINFLOW_HOME`` (lake, artifacts, MLflow
SQLite store) and the pipeline configs of ``tests/fixtures/pipelines``.

Speed: creating an MLflow SQLite store (schema migrations) costs ~5 s and
seeding the lake ~5 s, so both are done once per session into a template
home, and each test home gets a copy of them (milliseconds). Likewise the
"trained base" (a stateless run, then a warm start, of the ``synthetic``
pipeline) is built once per session; tests that only read it use ``trained``
(the environment points at the shared home for the duration of the test),
tests that change the lake or the registry use ``trained_fork`` (a private
copy of the lake and the registry database).
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from retrainflow import settings
from retrainflow.config import PipelineConfig, find_config, parse_config
from retrainflow.manifest import RunContext

TESTS = Path(__file__).resolve().parent
FIXTURE_CONFIGS = TESTS / "fixtures" / "pipelines"
SYNTHETIC_YAML = FIXTURE_CONFIGS / "synthetic.yaml"
#: The lake holds the synthetic data set up to and including this day.
SEED_UNTIL = date(2023, 4, 30)
#: Window ends of the trained base: a stateless fit, then a warm start of it.
BASE_END = "2023-02-15"
WARM_END = "2023-02-22"


# -- helpers (exposed to tests through fixtures) -------------------------------------------


def point_env(mp: pytest.MonkeyPatch, root: Path) -> settings.Paths:
    """Point retrainflow (and MLflow) at the home ``root``."""
    mp.setenv("RETRAINFLOW_HOME", str(root))
    mp.setenv("RETRAINFLOW_CONFIG_DIR", str(FIXTURE_CONFIGS))
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RETRAINFLOW_MLFLOW_ARTIFACTS"):
        mp.delenv(var, raising=False)
    return settings.paths()


def copy_home(src: Path, dst: Path, *, lake: bool = True) -> None:
    """Copy the MLflow database (and the lake) of the home ``src`` into ``dst``.

    MLflow artifacts are not copied: the database refers to them by absolute
    path in ``src``, which outlives every copy (it is a session fixture).
    """
    src_paths, dst_paths = settings.Paths(src), settings.Paths(dst)
    dst_paths.mlflow_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src_paths.mlflow_db, dst_paths.mlflow_db)
    if lake:
        shutil.copytree(src_paths.lake, dst_paths.lake, dirs_exist_ok=True)


def synthetic_dict() -> dict[str, Any]:
    """The test pipeline's YAML as a plain mapping."""
    return yaml.safe_load(SYNTHETIC_YAML.read_text())


def config_with(changes: dict[str, Any] | None = None, **top: Any) -> PipelineConfig:
    """The synthetic config with dotted-path fields replaced, e.g. ``{"training.params": {}}``."""
    data = synthetic_dict()
    for path, value in {**(changes or {}), **top}.items():
        node = data
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = copy.deepcopy(value)
    return parse_config(data, file=SYNTHETIC_YAML)


def context(run_id: str, window_end: str, mode: str = "auto", **kwargs: Any) -> RunContext:
    return RunContext(
        pipeline="synthetic", run_id=run_id, window_end=window_end, requested_mode=mode, **kwargs
    )


def rewrite_days(
    lake: Path,
    days: list[date],
    change: Callable[[pd.DataFrame], pd.DataFrame],
    time_column: str = "ts",
) -> None:
    """Rewrite the partitions ``days`` of a Parquet lake with ``change(frame)``."""
    from retrainflow.data.sources import ParquetLakeSource

    source = ParquetLakeSource(lake, time_column)
    for day in days:
        frame = source.read_days([day])
        source.write_partition(day, change(frame.copy()))


@dataclass(frozen=True)
class Trained:
    """The trained base: ``stateless`` (version 1) then ``warm`` (version 2, its warm start)."""

    root: Path
    config: PipelineConfig
    stateless: Any  # RunResult
    warm: Any  # RunResult
    #: Raw rows (of days after both windows) and version 1's scores on them before the warm start.
    probe: pd.DataFrame
    parent_scores_before: np.ndarray

    @property
    def paths(self) -> settings.Paths:
        return settings.Paths(self.root)

    def run_dir(self, run_id: str) -> Path:
        return self.paths.artifacts / self.config.name / run_id


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with an initialized (empty) MLflow store and the seeded synthetic lake."""
    from retrainflow.data.seed import seed
    from retrainflow.registry import Registry

    root = tmp_path_factory.mktemp("template_home")
    with pytest.MonkeyPatch.context() as mp:
        point_env(mp, root)
        seed(find_config("synthetic"), until=SEED_UNTIL)
        registry = Registry()
        registry.client.search_experiments()  # creates the tracking tables
        registry.exists("synthetic")  # and the registry's
    return root


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, template_home: Path) -> settings.Paths:
    """A private, empty RETRAINFLOW_HOME in ``tmp_path`` (MLflow: SQLite under it)."""
    copy_home(template_home, tmp_path, lake=False)
    return point_env(monkeypatch, tmp_path)


@pytest.fixture
def synthetic_cfg(home: settings.Paths) -> PipelineConfig:
    return find_config("synthetic")


@pytest.fixture
def seeded(
    home: settings.Paths, synthetic_cfg: PipelineConfig, template_home: Path
) -> PipelineConfig:
    """The home's lake holds the synthetic data set up to SEED_UNTIL (a copy of what
    ``retrainflow.data.seed.seed(cfg, until=SEED_UNTIL)`` wrote into the template)."""
    shutil.copytree(settings.Paths(template_home).lake, home.lake, dirs_exist_ok=True)
    return synthetic_cfg


@pytest.fixture(scope="session")
def trained_base(tmp_path_factory: pytest.TempPathFactory, template_home: Path) -> Trained:
    """Built once: a stateless run (window end BASE_END), then an ``auto`` run (WARM_END)
    that warm-starts it."""
    from retrainflow.data.sources import make_source
    from retrainflow.pipeline import run_all
    from retrainflow.registry import Registry

    root = tmp_path_factory.mktemp("trained_home")
    copy_home(template_home, root)
    with pytest.MonkeyPatch.context() as mp:
        point_env(mp, root)
        cfg = find_config("synthetic")
        stateless = run_all(
            cfg,
            context(
                "base-stateless",
                BASE_END,
                "stateless",
                trigger_reason="schedule",
                dag_run_id="scheduled__2023-02-15T00:00:00+00:00",
            ),
        )
        probe = make_source(cfg).read_window(date(2023, 2, 22), date(2023, 2, 24))
        before = Registry().load_model("synthetic", stateless.promote.version).predict(probe)
        warm = run_all(
            cfg,
            context(
                "base-warm",
                WARM_END,
                "auto",
                trigger_reason="drift",
                dag_run_id="manual__2023-02-22T00:00:00+00:00",
                trigger_details={"psi": 0.3},
            ),
        )
    return Trained(root, cfg, stateless, warm, probe, before)


@pytest.fixture
def trained(trained_base: Trained, monkeypatch: pytest.MonkeyPatch) -> Trained:
    """The shared trained base, read-only: do not change its lake or registry."""
    point_env(monkeypatch, trained_base.root)
    return trained_base


@pytest.fixture
def trained_fork(trained_base: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Trained:
    """A private copy of the trained base (lake + registry) that a test may change."""
    copy_home(trained_base.root, tmp_path)
    point_env(monkeypatch, tmp_path)
    return replace(trained_base, root=tmp_path)


@pytest.fixture(scope="session")
def fork_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[Trained], AbstractContextManager[Trained]]:
    """For module-scoped fixtures: ``with fork_factory(trained_base) as t:`` is a private copy
    of the trained base with the environment pointing at it inside the block."""

    @contextmanager
    def fork(base: Trained) -> Iterator[Trained]:
        root = tmp_path_factory.mktemp("fork")
        copy_home(base.root, root)
        with pytest.MonkeyPatch.context() as mp:
            point_env(mp, root)
            yield replace(base, root=root)

    return fork


@pytest.fixture(scope="session")
def helpers() -> SimpleNamespace:
    """Module-level helpers of this conftest, for test modules."""
    return SimpleNamespace(
        config_with=config_with,
        context=context,
        rewrite_days=rewrite_days,
        synthetic_dict=synthetic_dict,
        point_env=point_env,
        copy_home=copy_home,
        BASE_END=BASE_END,
        WARM_END=WARM_END,
    )
