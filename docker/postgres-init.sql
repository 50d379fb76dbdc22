-- Second database on the same server: MLflow's tracking + registry store.
CREATE DATABASE mlflow OWNER airflow;
