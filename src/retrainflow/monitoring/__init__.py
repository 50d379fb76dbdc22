"""Monitoring of a deployed champion: feature, prediction and target drift and live performance.

:mod:`retrainflow.monitoring.drift` computes them with Evidently 0.7; the
``monitor__<pipeline>`` DAG turns its small, JSON-safe summary into a retrain
decision.
"""
