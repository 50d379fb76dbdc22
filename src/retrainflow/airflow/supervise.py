"""The stack's supervisor: restarts a component that died, loudly, and records health.

``retrainflow up`` starts it in its own session after the stack is healthy
(``python -m retrainflow.airflow.supervise <home>/run/supervisor.json``). Every
``interval`` seconds it looks at each component's pid file:

* a component whose process is gone is logged as an ERROR (``<home>/logs/supervisor.log``),
  the orphaned workers of its process group are stopped (a crashed scheduler's
  LocalExecutor workers ignore SIGTERM) and it is started again with the same command and
  environment ``up`` used;
* a component that died ``max_restarts`` times within ``window`` seconds is not restarted
  again ("gave up"): something is wrong that a restart does not fix; ``retrainflow status``
  says so and names its log.

After each round it writes ``<home>/run/health.json`` (atomically): per component whether
it is alive, its pid, its restarts and the last exit code the supervisor saw.
``retrainflow status`` reads it; ``retrainflow down`` stops the supervisor first, so that
nothing is restarted while the stack stops.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from retrainflow.airflow import stack
from retrainflow.artifacts import atomic_path

log = logging.getLogger("retrainflow.supervisor")

#: The fields of :class:`~retrainflow.airflow.stack.StackConfig` the supervisor rebuilds.
_CONFIG_FIELDS = (
    "home",
    "airflow_home",
    "dags_folder",
    "plugins_folder",
    "api_port",
    "mlflow_port",
    "host",
    "parallelism",
    "sql_alchemy_conn",
    "executor",
    "celery_workers",
    "mlflow_tracking_uri",
    "with_mlflow_server",
    "with_triggerer",
    "preload_task_libraries",
    "scheduler_idle_sleep",
)


@dataclass
class ComponentHealth:
    """What the supervisor knows about one component."""

    alive: bool = False
    pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    last_restart: str | None = None
    gave_up: bool = False
    recent: deque[float] = field(default_factory=deque, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("recent")
        return data


def config_file(cfg: stack.StackConfig) -> Path:
    """``<home>/run/supervisor.json``: the stack configuration the supervisor restarts with."""
    return cfg.run_dir / "supervisor.json"


def health_file(cfg: stack.StackConfig) -> Path:
    """``<home>/run/health.json``: the supervisor's last look at every component."""
    return cfg.run_dir / "health.json"


def save_config(cfg: stack.StackConfig) -> Path:
    """Write the configuration for the supervisor (mode 0600: a database URL may hold a password)."""
    data = {
        name: (str(v) if isinstance(v := getattr(cfg, name), Path) else v)
        for name in _CONFIG_FIELDS
    }
    path = config_file(cfg)
    with atomic_path(path) as tmp:  # mkstemp: created 0600
        tmp.write_text(json.dumps(data, indent=2))
    return path


def load_config(path: Path) -> stack.StackConfig:
    data = json.loads(path.read_text())
    return stack.StackConfig(**{k: data[k] for k in _CONFIG_FIELDS if k in data})


def read_health(cfg: stack.StackConfig) -> dict[str, Any] | None:
    """The supervisor's last record, or ``None`` if it never wrote one."""
    try:
        return json.loads(health_file(cfg).read_text())
    except (OSError, ValueError):
        return None


class Supervisor:
    """Watches and restarts the components of one stack (see the module docstring)."""

    def __init__(
        self,
        cfg: stack.StackConfig,
        *,
        interval: float = 5,
        max_restarts: int = 5,
        window: float = 600,
    ) -> None:
        self.cfg = cfg
        self.interval = interval
        self.max_restarts = max_restarts
        self.window = window
        self.health = {c: ComponentHealth() for c in cfg.components()}
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = False

    def stop(self, *_: Any) -> None:
        self._stopping = True

    def check_once(self) -> None:
        """One round: restart what died (within the budget), then write ``health.json``."""
        now = time.monotonic()
        for component, health in self.health.items():
            child = self._children.get(component)
            if child is not None and child.poll() is not None:  # reap our own child
                health.last_exit = child.returncode
                del self._children[component]
            pid = stack._read_pid(self.cfg, component)
            health.alive, health.pid = pid is not None, pid
            if pid is not None or health.gave_up:
                continue
            while health.recent and now - health.recent[0] > self.window:
                health.recent.popleft()
            if len(health.recent) >= self.max_restarts:
                health.gave_up = True
                log.error(
                    "%s died %d times within %.0f s: not restarting it again. Read %s, fix the "
                    "cause, then run `retrainflow down` and `retrainflow up`.",
                    component,
                    len(health.recent),
                    self.window,
                    stack._log_file(self.cfg, component),
                )
                continue
            self._restart(component, health, now)
        self._write_health()

    def _restart(self, component: str, health: ComponentHealth, now: float) -> None:
        exit_note = f" (exit code {health.last_exit})" if health.last_exit is not None else ""
        log.error(
            "%s is not running%s; restarting it (restart %d). Its log: %s",
            component,
            exit_note,
            health.restarts + 1,
            stack._log_file(self.cfg, component),
        )
        orphan = stack._orphaned_group(self.cfg, component)
        if orphan is not None:  # e.g. a crashed scheduler's LocalExecutor workers
            log.error("stopping what is left of %s's process group %d", component, orphan)
            stack._terminate(orphan, grace=10)
        try:
            proc = stack._launch(self.cfg, component, stack._process_env(self.cfg))
        except OSError as exc:
            log.error("could not start %s: %s", component, exc)
            return
        self._children[component] = proc
        if component == "api-server":
            stack.warm_execution_api(self.cfg, timeout=120)
        health.restarts += 1
        health.recent.append(now)
        health.last_restart = datetime.now(UTC).isoformat(timespec="seconds")
        health.alive, health.pid = True, proc.pid

    def _write_health(self) -> None:
        record = {
            "updated": datetime.now(UTC).isoformat(timespec="seconds"),
            "supervisor_pid": os.getpid(),
            "components": {c: h.to_dict() for c, h in self.health.items()},
        }
        with atomic_path(health_file(self.cfg)) as tmp:
            tmp.write_text(json.dumps(record, indent=2) + "\n")

    def run(self) -> None:
        log.warning(
            "supervising %s of %s every %.0f s",
            ", ".join(self.health),
            self.cfg.home,
            self.interval,
        )
        while not self._stopping:
            self.check_once()
            deadline = time.monotonic() + self.interval
            while not self._stopping and time.monotonic() < deadline:
                time.sleep(0.2)
        log.warning("supervisor stops (the stack is being stopped)")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m retrainflow.airflow.supervise <home>/run/supervisor.json")
        return 2
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = load_config(Path(args[0]))
    interval = float(os.environ.get("RETRAINFLOW_SUPERVISOR_INTERVAL", "5"))
    sup = Supervisor(cfg, interval=interval)
    signal.signal(signal.SIGTERM, sup.stop)
    signal.signal(signal.SIGINT, sup.stop)
    sup.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
