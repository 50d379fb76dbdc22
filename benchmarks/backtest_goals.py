"""Judge a backtest's comparisons against the project's continual-training goals.

A backtest (``retrainflow backtest``) reports ratios only: how many times less
training CPU and memory each warm-start strategy used than stateless on full
history, how far its metric is behind the best stateless strategy, and what
share of the oracle's gain each trigger policy got for what share of its
retrains. Whether those ratios are *good enough* is the project's judgement, and
it lives here, not in the product:

* warm start: >= 45x less training CPU, >= 10x less training memory, and at most
  0.5 points (x 0.01) of the primary metric behind the best stateless strategy (for a
  metric not on a 0-1 scale, such as an MAE: at most 0.5 % of the best value);
* policy: >= 95 % of the oracle's gain over static with <= 20 % of its retrains.

Usage::

    python benchmarks/backtest_goals.py PATH/TO/backtest.json [--json OUT]

prints one table per goal and writes ``benchmarks/results/backtest_goals.json``.
``retrainflow backtest`` ends by printing this command for its ``backtest.json``
(it prints no verdict itself: these are the project's development goals).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table, write_json  # noqa: E402

#: The goals (issue 4 of the project).
GOALS: dict[str, float] = {
    "cpu_x_less": 45.0,
    "mem_x_less": 10.0,
    "points_behind_best": 0.5,
    "gain_share": 0.95,
    "retrain_share": 0.2,
}


def _behind(row: dict[str, Any]) -> float:
    """How far behind the best stateless strategy: percentage points for a 0-1 metric
    (ROC AUC...), else percent of the best value (an MAE in hundreds has no "points")."""
    points = row.get("points_behind_best")
    return float(points if points is not None else row["pct_behind_best"])


def judge(comparisons: dict[str, Any], goals: dict[str, float] | None = None) -> dict[str, Any]:
    """The comparisons with a ``*_met`` flag per goal and row, best rows first.

    Args:
        comparisons: ``BacktestResult.comparisons()`` (or the ``comparisons`` key of
            ``backtest.json``).
        goals: Thresholds (default :data:`GOALS`).
    """
    g = {**GOALS, **(goals or {})}
    warm = []
    for row in comparisons.get("warm_start", []):
        cpu, mem = row.get("cpu_x_less"), row.get("mem_x_less")
        warm.append(
            {
                **row,
                "cpu_met": cpu is not None and cpu >= g["cpu_x_less"],
                "mem_met": mem is not None and mem >= g["mem_x_less"],
                "metric_met": _behind(row) <= g["points_behind_best"],
            }
        )
    warm.sort(key=lambda r: (-(r["cpu_met"] + r["mem_met"] + r["metric_met"]), _behind(r)))
    policy = []
    for row in comparisons.get("policy", []):
        share = row.get("gain_share")
        policy.append(
            {
                **row,
                "gain_met": share is not None and share >= g["gain_share"],
                "retrains_met": row["retrain_share"] <= g["retrain_share"],
            }
        )
    policy.sort(key=lambda r: -(r["gain_share"] or 0.0))
    return {
        "goals": g,
        "references": comparisons.get("references", {}),
        "warm_start": warm,
        "policy": policy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backtest_json", type=Path, help="a backtest.json of retrainflow backtest")
    parser.add_argument("--json", type=Path, help="output file (default: benchmarks/results/)")
    args = parser.parse_args(argv)
    data = json.loads(args.backtest_json.read_text())
    if "comparisons" not in data:
        print(
            f"{args.backtest_json}: no 'comparisons' (a backtest.json of schema >= 3 is "
            "needed; re-run the backtest)",
            file=sys.stderr,
        )
        return 1
    verdict = judge(data["comparisons"])
    g = verdict["goals"]
    refs = verdict["references"]
    if verdict["warm_start"]:
        cols = [
            "strategy",
            "cpu_x_less",
            "mem_x_less",
            "points_behind_best",
            "pct_behind_best",
            "cpu_met",
            "mem_met",
            "metric_met",
        ]
        print_table(
            cols,
            [[r[c] for c in cols] for r in verdict["warm_start"]],
            digits=2,
            title=f"warm-start goal (vs {refs.get('stateless_full')}; metric vs "
            f"{refs.get('best_stateless')}): >= {g['cpu_x_less']:g}x less CPU, "
            f">= {g['mem_x_less']:g}x less memory, <= "
            f"{g['points_behind_best']:g} points behind (percent of the best value for "
            "metrics not on a 0-1 scale)",
        )
    if verdict["policy"]:
        cols = [
            "strategy",
            "gain_points",
            "gain_share",
            "retrains",
            "retrain_share",
            "gain_met",
            "retrains_met",
        ]
        print_table(
            cols,
            [[r[c] for c in cols] for r in verdict["policy"]],
            digits=3,
            title=f"policy goal: >= {g['gain_share']:.0%} of the oracle's gain, "
            f"<= {g['retrain_share']:.0%} of its retrains",
        )
    out = write_json(
        "backtest_goals", {"source": str(args.backtest_json), **verdict}, path=args.json
    )
    print(f"json: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
