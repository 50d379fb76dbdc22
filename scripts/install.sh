#!/usr/bin/env bash
# Install retrainflow and every pinned dependency (requirements.lock) into .venv.
# Needs only Python 3.11 and the package registry: no constraint-file download.
set -euo pipefail
cd "$(dirname "$0")/.."
export UV_PYTHON_DOWNLOADS=never
if ! command -v uv >/dev/null 2>&1 && [ ! -x .venv/bin/uv ]; then
    python3 -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
fi
UV=$(command -v uv || echo .venv/bin/uv)
PY=${RETRAINFLOW_PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x .venv/bin/python ] || "$UV" venv --quiet --python "$PY" .venv
"$UV" pip install --quiet --python .venv/bin/python -r requirements.lock
"$UV" pip install --quiet --python .venv/bin/python --no-deps -e .
echo "installed: $(.venv/bin/retrainflow --help >/dev/null && echo retrainflow) into .venv"
