"""Small helpers shared by the offline analyses (``backtest``, ``freshness``).

An analysis writes one JSON document and a few PNG plots into a folder, and may
log them to MLflow as one run of the experiment ``<pipeline>-<analysis>``:

* :func:`default_out_dir` — ``<artifact_root>/<pipeline>/<analysis>__<time>/<analysis>``
  (through the :class:`~retrainflow.artifacts.ArtifactStore`: local, or ``s3://``);
* :func:`agg_figure` — a matplotlib figure on the Agg canvas (no display, no global
  ``pyplot`` state, safe in threads and in Airflow workers);
* :func:`log_report_to_mlflow` — one MLflow run with metrics, tags and the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from retrainflow.artifacts import Location
    from retrainflow.config import PipelineConfig

__all__ = ["agg_figure", "default_out_dir", "log_report_to_mlflow"]


def default_out_dir(
    config: PipelineConfig, analysis: str, *, now: datetime | None = None
) -> Location:
    """The output folder of one run of ``analysis`` (created when local; a URI on S3).

    Args:
        config: The pipeline (its ``artifact_root``).
        analysis: ``backtest``, ``freshness``...: the run id's prefix and the stage folder.
        now: The run's time (default: now, UTC).

    Returns:
        ``<artifact_root>/<pipeline>/<analysis>__<YYYYmmddTHHMMSSZ>/<analysis>``.
    """
    from retrainflow.artifacts import ArtifactStore

    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    store = ArtifactStore(config.artifact_root_uri())
    return store.stage(config.name, f"{analysis}__{stamp}", analysis).path


def agg_figure(width: float = 11, height: float = 5.5, dpi: int = 110) -> Figure:
    """A new figure drawn by the Agg backend (call ``fig.savefig(path, format="png")``)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def log_report_to_mlflow(
    experiment: str,
    run_name: str,
    files: Iterable[Path | str],
    *,
    metrics: Mapping[str, float | None] | None = None,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, str] | None = None,
    artifact_path: str | None = None,
) -> str:
    """Log one run into ``experiment`` (created if needed) on the project's MLflow.

    MLflow is pointed at the project's tracking server for the call only
    (:meth:`~retrainflow.registry.Registry.tracking`): the caller's tracking URI is kept.

    Args:
        experiment: Experiment name, e.g. ``flights-freshness``.
        run_name: The run's name.
        files: Files logged as artifacts (local paths, or URIs of the artifact store).
        metrics: Metrics to log; ``None`` values are left out.
        params: Parameters to log (stringified by MLflow).
        tags: Run tags.
        artifact_path: Folder of the artifacts inside the run (default: the top).

    Returns:
        The MLflow run id.
    """
    import mlflow

    from retrainflow.artifacts import local_copy
    from retrainflow.registry import Registry

    registry = Registry()
    with registry.tracking():
        with mlflow.start_run(
            experiment_id=registry.experiment(experiment),
            run_name=run_name,
            tags=dict(tags or {}),
        ) as run:
            values = {k: float(v) for k, v in (metrics or {}).items() if v is not None}
            if values:
                mlflow.log_metrics(values)
            if params:
                mlflow.log_params(dict(params))
            for path in files:
                with local_copy(path) as local:
                    mlflow.log_artifact(str(local), artifact_path=artifact_path)
            return str(run.info.run_id)
