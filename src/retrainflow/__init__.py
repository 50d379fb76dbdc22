"""retrainflow: continual training for tabular models, orchestrated by Apache Airflow.

Nothing heavy is imported here: the CLI, DAG files and tests import only the
modules they need, so that ``import retrainflow`` stays cheap.
"""

__version__ = "0.1.0"
