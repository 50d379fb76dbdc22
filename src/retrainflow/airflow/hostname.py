"""The host name a task instance records: which Celery worker ran it.

Airflow stores ``socket.getfqdn()`` as a task instance's ``hostname``. Several Celery
workers on one host (the topology test, or a big machine) would all record the same
name, so a stack's workers set ``AIRFLOW__CORE__HOSTNAME_CALLABLE`` to :func:`hostname`
and ``RETRAINFLOW_WORKER_NAME`` to their component name: the grid and the REST API then
say ``worker-2@<host>``, the name Celery itself gives the worker. Import-light on purpose:
Airflow calls it in every task process.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """``<worker>@<fqdn>`` inside a named worker, else the fully qualified domain name."""
    fqdn = socket.getfqdn()
    worker = os.environ.get("RETRAINFLOW_WORKER_NAME")
    return f"{worker}@{fqdn}" if worker else fqdn
