#!/usr/bin/env bash
# The quality gate, run by scripts/test.sh before the tests (and so by CI):
# lint (ruff: pycodestyle, pyflakes, imports, bugbear, pyupgrade), format check, and
# mypy on src/ with zero errors. Fix locally with:
#   .venv/bin/ruff check --fix . && .venv/bin/ruff format .
set -euo pipefail
cd "$(dirname "$0")/.."
echo "lint: ruff check"
.venv/bin/ruff check .
echo "lint: ruff format --check"
.venv/bin/ruff format --check --quiet . || {
    echo "lint: files above need formatting: .venv/bin/ruff format ." >&2
    exit 1
}
echo "lint: mypy src/retrainflow"
.venv/bin/mypy
