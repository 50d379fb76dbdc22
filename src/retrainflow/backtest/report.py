"""Backtest output: ``backtest.json``, the two plots and the MLflow run."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from retrainflow.artifacts import Location
    from retrainflow.backtest.result import BacktestResult
    from retrainflow.config import PipelineConfig


def save(result: BacktestResult, out_dir: Path | str) -> dict[str, Location]:
    """Write ``backtest.json``, ``metric_over_time.png`` and ``cumulative_compute.png``
    into ``out_dir`` (a local folder, or an ``s3://`` URI: see :mod:`retrainflow.artifacts`).

    Returns:
        ``{"json": ..., "metric_png": ..., "compute_png": ...}``: Paths, or URIs on S3.
    """
    from retrainflow.artifacts import StageDir, is_uri

    out = StageDir(out_dir if is_uri(out_dir) else Path(out_dir))
    if isinstance(out.path, Path):
        out.path.mkdir(parents=True, exist_ok=True)
    paths = {"json": out.write_json("backtest.json", result.to_dict())}
    paths["metric_png"] = out.write_with(
        "metric_over_time.png", lambda p: _plot(result, p, "metric")
    )
    paths["compute_png"] = out.write_with(
        "cumulative_compute.png", lambda p: _plot(result, p, "compute")
    )
    return paths


def _plot(result: BacktestResult, path: Path, what: Literal["metric", "compute"]) -> None:
    """One line per strategy: the batch metric, or cumulative train + monitor CPU seconds.

    With many batches the metric is drawn as a centred rolling mean over about a
    twentieth of the run (said in the title): single days of real data are too noisy
    to tell fifteen lines apart.
    """
    from matplotlib import colormaps
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    from retrainflow.reports import agg_figure

    fig = agg_figure()
    ax = fig.add_subplot()
    colors = colormaps["tab20"].colors  # type: ignore[attr-defined]
    n_batches = len(result.steps_of(result.strategy_names[0])) if result.strategy_names else 0
    smooth = max(1, n_batches // 20) if n_batches > 60 else 1
    for k, name in enumerate(result.strategy_names):
        steps = result.steps_of(name)
        x = [date.fromisoformat(s.batch_start) for s in steps]
        if what == "metric":
            y = [np.nan if s.metric is None else s.metric for s in steps]
            if smooth > 1:
                import pandas as pd

                y = pd.Series(y).rolling(smooth, center=True, min_periods=1).mean().tolist()
        else:
            y = [s.cumulative_cpu_seconds for s in steps]
        style = "--" if name in ("static", "oracle") else "-"
        ax.plot(
            np.array(x, dtype="datetime64[D]"),
            y,
            style,
            label=name,
            linewidth=1.2,
            color=colors[(2 * k) % 20 + (k // 10) % 2],
            marker="." if len(x) < 60 else None,
        )
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    if what == "metric":
        ax.set_ylabel(f"{result.primary_metric} on the next batch")
        ax.set_title(
            f"{result.pipeline}: forward-in-time {result.primary_metric} "
            f"({result.batch_days}-day batches"
            + (f"; rolling mean of {smooth} batches)" if smooth > 1 else ")")
        )
    else:
        ax.set_ylabel("cumulative CPU seconds (train + monitor)")
        ax.set_yscale("log")
        ax.set_title(f"{result.pipeline}: cumulative compute per strategy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")


def log_to_mlflow(
    config: PipelineConfig, result: BacktestResult, paths: Mapping[str, Location]
) -> str:
    """One run in experiment ``<pipeline>-backtest``: summary metrics and the saved files.

    Returns:
        The MLflow run id.
    """
    from retrainflow.reports import log_report_to_mlflow

    metrics = {
        f"{row['strategy']}.{key}": row[key]
        for row in result.summary()
        for key in ("mean_metric", "last_metric", "train_cpu_s", "train_mem_mb", "retrains")
    }
    return log_report_to_mlflow(
        f"{config.name}-backtest",
        f"backtest {result.start}..{result.end}",
        paths.values(),
        metrics=metrics,
        artifact_path="backtest",
        tags={"batch_days": str(result.batch_days), "strategies": ",".join(result.strategy_names)},
    )
