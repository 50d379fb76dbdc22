"""Options shared by the offline analyses (``backtest``, ``freshness``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads N``: LightGBM threads per fit (default 1, see
    :func:`retrainflow.config.with_fit_threads`)."""
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="LightGBM threads per fit (default 1: on a busy machine OpenMP threads "
        "spin while they wait, which inflates the CPU seconds compared; "
        "0 = the pipeline's own setting)",
    )


def analysis_config(args: argparse.Namespace) -> PipelineConfig:
    """The config of ``args.pipeline`` with ``--threads`` applied.

    Raises:
        UserError: a negative ``--threads``.
    """
    from retrainflow.config import find_config, with_fit_threads
    from retrainflow.exceptions import UserError

    cfg = find_config(args.pipeline)
    if args.threads < 0:
        raise UserError(f"--threads must be >= 0; got {args.threads}")
    return with_fit_threads(cfg, args.threads) if args.threads else cfg
