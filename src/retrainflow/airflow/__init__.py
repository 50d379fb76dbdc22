"""Airflow integration: the embedded local stack and a REST API v2 client."""
