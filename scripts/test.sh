#!/usr/bin/env bash
# Run the quality gate and the whole test suite (README's second command calls this
# after install.sh).
# The SQL source tests (tests/data/test_sources.py) use the machine's PostgreSQL:
# start it if it is installed but not running (they skip, saying why, without it).
# The topology tests (tests/topology, marker `topology`) also use that PostgreSQL (two fresh
# databases) and start their own redis-server (the machine's Redis installation, on a free
# port) and moto's S3 server: nothing else is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
# The quality gate first (lint, format, types); RETRAINFLOW_SKIP_LINT=1 skips it locally.
if [ "${RETRAINFLOW_SKIP_LINT:-0}" != "1" ]; then
    ./scripts/lint.sh
fi
exec .venv/bin/python -m pytest "$@"
