"""The retraining loop's rules, each written once.

The DAG stages (:mod:`retrainflow.stages`), the backtest
(:mod:`retrainflow.backtest`) and the freshness analysis
(:mod:`retrainflow.freshness`) all call these modules; none of them re-implements
a rule. What a backtest recommends is therefore what the DAG runs.

========================  ==========================================================
module                    rule
========================  ==========================================================
:mod:`.modes`             which mode (``auto`` -> stateless / warm start) and why
:mod:`.windows`           which days: training window, holdout, warm-start rows,
                          replay range, the monitoring check's windows
:mod:`.training`          how to fit and continue (transformer, estimator, warm-start
                          methods, parameters) and the replay sample
:mod:`.metrics`           how to score and gate (metrics, direction, slices, guardrails,
                          floors)
:mod:`.monitoring`        is there drift / a drop (the check), and what the trigger
                          policy (:mod:`retrainflow.policy`) decides from it
:mod:`.schema`            what "the schema" is and how two schemas differ
========================  ==========================================================

Imports go one way: ``stages`` / ``backtest`` / ``freshness`` -> ``core`` ->
(``config``, ``features``, ``model``, ``policy``, ``monitoring.drift``) -> libraries.
``core`` never imports a stage, the backtest, Airflow or the registry.
"""
