#!/usr/bin/env bash
# Run the whole test suite (README's second command calls this after install.sh).
# Production-topology tests need the machine's PostgreSQL and Redis: start them
# if they are installed but not running.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v pg_ctlcluster >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if command -v redis-server >/dev/null 2>&1 && ! (redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1); then
    redis-server --daemonize yes --port 6379 --save "" || true
fi
exec .venv/bin/python -m pytest "$@"
