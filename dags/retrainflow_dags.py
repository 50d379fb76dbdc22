"""One ``retrain__<pipeline>`` DAG per ``config/pipelines/*.yaml`` (built by the library).

A new pipeline is a new YAML file, no Python. Parsing this file reads the YAML
files only: no data, database or MLflow access at parse time.
"""

from retrainflow.airflow.dag_factory import build_dags

globals().update(build_dags())
