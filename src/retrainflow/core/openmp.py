"""OpenMP's settings for LightGBM's fits, in a module light enough for any entry point.

The CLI, the preloading scheduler and the Airflow stack's environment set them before
anything loads LightGBM; importing :mod:`retrainflow.core.training` (numpy, the model
classes) for that added ~0.3 s to every ``retrainflow`` command, ``--help`` included.
:mod:`retrainflow.core.training` re-exports both names.
"""

from __future__ import annotations

import os
import sys

__all__ = ["OPENMP_ENV", "prepare_openmp"]

#: The OpenMP setting under which LightGBM fits (:func:`prepare_openmp`): a waiting
#: thread sleeps instead of spinning. OpenMP (libgomp) reads it once, when LightGBM's
#: library is loaded, so it must be in the environment before ``import lightgbm``
#: (the Airflow stack's and the CLI's environment; this module sets it when it can).
OPENMP_ENV: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}


def prepare_openmp() -> str:
    """Put :data:`OPENMP_ENV` into the environment if LightGBM is not loaded yet; returns
    the wait policy LightGBM's OpenMP runs with (as far as this process can tell).

    A value already in the environment is kept (an operator's choice wins). Once
    LightGBM is imported, OpenMP has read its settings: then nothing is changed, and
    the answer is the inherited value, or ``"default"`` (libgomp: spin a while, then
    sleep) when none was set.
    """
    name = "OMP_WAIT_POLICY"
    if "lightgbm" not in sys.modules:
        for key, value in OPENMP_ENV.items():
            os.environ.setdefault(key, value)
    return os.environ.get(name, "").upper() or "default"
