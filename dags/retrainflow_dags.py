"""Every pipeline's DAGs, built by the library from the pipeline YAML files.

:func:`retrainflow.airflow.dag_factory.build_dags` reads ``config/pipelines/*.yaml``
(or ``$RETRAINFLOW_CONFIG_DIR``) and makes, per file, ``retrain__<pipeline>`` and
``monitor__<pipeline>`` (unless ``monitoring.enabled`` is false) — or, for an
invalid file, ``invalid_config__<file>``, whose one task fails with the config
error. A new pipeline is a new YAML file, no Python. Parsing this file reads the
YAML files only: no data, database or MLflow access at parse time.
"""

from retrainflow.airflow.dag_factory import build_dags

globals().update(build_dags())
