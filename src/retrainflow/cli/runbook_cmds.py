"""Runbook commands: ``status``, ``trigger``, ``approve`` — what an operator runs day to day.

``status [PIPELINE]``
    The stack's components (process, health, restarts) and, per pipeline (all, or the one
    named): the champion (its gate metric, since when), a challenger if there is one (and
    whether it waits for approval), the last retrain runs (state, mode, when; read over the
    REST API, so only while the stack is up), the last monitoring check and its decision
    (the check ledger), and the next scheduled check (the API's ``next_dagrun_run_after``
    while the stack is up, else computed from the monitor's schedule). Exit code: 0 when
    every stack component runs and is healthy, 1 when the stack is down or a component is
    not healthy — the pipelines are shown either way.

``trigger PIPELINE --reason TEXT``
    Starts ``retrain__PIPELINE`` through the REST API with the very trigger the monitoring
    DAG uses (:class:`~retrainflow.airflow.trigger.RetrainTrigger`), prints the run id and
    its address in the UI; ``--wait`` follows it with the progress line of
    ``retrainflow retrain``. Without ``--window-end`` the run trains up to the newest data
    in the source (:func:`retrainflow.runs.build_context`). Exit code 0 when the run was
    started (with ``--wait``: when it succeeded or waits for an approval), else 1.

``approve PIPELINE VERSION``
    With ``promotion: manual``, a version that passed its gate waits as ``challenger`` while
    its run's ``approve_champion`` task (Airflow's ``ApprovalOperator``) asks a person; this
    answers "Approve" through the REST API's human-in-the-loop endpoint, as the button in
    the UI does, and follows the run until ``crown`` made the version champion. Refused,
    with the reason, when the pipeline promotes automatically, the version is not the
    waiting challenger, or no run waits for its approval. Exit code 0 when approved, else 1.

``trigger`` and ``approve`` need the stack (``retrainflow up``); every command has ``--json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any

from retrainflow.cli.output import add_timeout_arg, fmt, print_json, print_table
from retrainflow.core.modes import Mode

#: The task of ``retrain__<pipeline>`` that waits for a person (``promotion: manual``).
APPROVAL_TASK = "approve_champion"
APPROVE = "Approve"
#: Task-instance states of a HITL task that waits for its answer (3.3 parks it; before, it
#: deferred to the triggerer).
WAITING_STATES = ("awaiting_input", "deferred")
#: An answer sent within this many seconds of the request can race Airflow 3.3's parking of
#: the task (the resumed task is then failed as "killed externally"): wait out the rest.
APPROVAL_SETTLE_SECONDS = 10.0
#: Retrain runs ``status`` lists per pipeline.
DEFAULT_RUNS = 5
#: Airflow's schedule presets as cron (Airflow's own table).
CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
}
_EXIT_CODES = "exit code 0: every stack component healthy; 1: the stack is down or unhealthy"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="the stack's health and, per pipeline, champion, challenger, last retrain runs, "
        f"last check and next check ({_EXIT_CODES})",
        description="The stack's components and, per pipeline, the champion, a challenger, "
        "the last retrain runs (while the stack is up), the last monitoring check and the "
        f"next one. {_EXIT_CODES}; the pipelines are shown either way.",
    )
    p.add_argument("pipeline", nargs="?", help="only this pipeline (default: all)")
    p.add_argument(
        "--runs",
        type=int,
        default=DEFAULT_RUNS,
        metavar="N",
        help="retrain runs to list per pipeline (default %(default)s)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=status_cmd)

    p = sub.add_parser(
        "trigger",
        help="start retrain__PIPELINE through the stack's REST API, as the monitor does; "
        "prints the run id and its address in the UI",
    )
    p.add_argument("pipeline")
    p.add_argument("--reason", required=True, help="why: recorded with the run and the version")
    p.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=None,
        help="default: the pipeline's training.mode",
    )
    p.add_argument(
        "--window-end",
        type=_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="exclusive end of the data window (default: up to the newest data in the source)",
    )
    p.add_argument("--wait", action="store_true", help="follow the run until it ends")
    add_timeout_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=trigger_cmd)

    p = sub.add_parser(
        "approve",
        help="promotion: manual — approve the challenger VERSION that waits for it "
        "(answers the run's approve_champion task), making it champion",
    )
    p.add_argument("pipeline")
    p.add_argument("version", help="the waiting challenger's version (as in `retrainflow status`)")
    p.add_argument(
        "--no-wait", action="store_true", help="answer, but do not follow the run to its end"
    )
    add_timeout_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=approve_cmd)


def _date(text: str) -> str:
    from datetime import date

    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _when(value: Any) -> str | None:
    """An ISO time as ``YYYY-MM-DD HH:MM UTC`` (a date stays a date); None stays None."""
    if not value:
        return None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if len(str(value)) == 10:  # a date
        return str(value)
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%d %H:%M UTC")


# -- the stack ---------------------------------------------------------------------------------


def api_client(command: str) -> tuple[Any, Any]:
    """``(stack config, REST client)`` of this home's running stack.

    Raises:
        StackError: the stack is not running (or only partly): start it with ``retrainflow up``.
    """
    from retrainflow.airflow import stack
    from retrainflow.airflow.cli_runs import stack_is_up
    from retrainflow.airflow.rest import AirflowClient
    from retrainflow.exceptions import StackError

    scfg = stack.StackConfig()
    if not stack_is_up(scfg):
        raise StackError(
            f"The stack of {scfg.home} is not running, and `retrainflow {command}` goes "
            "through its REST API. Start it with `retrainflow up` first."
        )
    return scfg, AirflowClient(scfg.airflow_url, *stack.admin_credentials(scfg))


def _stack_client(scfg: Any) -> Any | None:
    """The REST client when the stack is up, else None (``status`` reads what it can offline)."""
    from retrainflow.airflow import stack
    from retrainflow.airflow.cli_runs import stack_is_up
    from retrainflow.airflow.rest import AirflowClient
    from retrainflow.exceptions import RetrainflowError

    try:
        if not stack_is_up(scfg):
            return None
        return AirflowClient(scfg.airflow_url, *stack.admin_credentials(scfg), timeout=10)
    except RetrainflowError:
        return None


def stack_summary(health: dict[str, dict[str, Any]]) -> tuple[bool, bool, list[str]]:
    """``(up, healthy, components not healthy)`` of :func:`retrainflow.airflow.stack.health`."""
    components = {c: h for c, h in health.items() if c != "supervisor"}
    up = any(h["process"] == "running" for h in components.values())
    ok = up and all(
        h["process"] == "running" and h["api"] in ("healthy", "unknown") and not h["gave_up"]
        for h in components.values()
    )
    bad = [c for c, h in components.items() if h["process"] != "running" or h["api"] == "unhealthy"]
    return up, ok, bad


# -- status: what is known of one pipeline ----------------------------------------------------


def _version_view(info: Any) -> dict[str, Any]:
    tags = info.tags
    metric = tags.get("challenger_metric")  # the version's own metric at its gate
    try:
        value: float | None = float(metric) if metric not in (None, "") else None
    except ValueError:
        value = None
    return {
        "version": info.version,
        "metric": tags.get("primary_metric") or None,
        "value": value,
        "gate_passed": info.gate_passed,
        "created": datetime.fromtimestamp(info.created / 1000, UTC).isoformat(timespec="seconds"),
        "dag_run_id": tags.get("dag_run_id") or None,
        "trigger_reason": tags.get("trigger_reason") or None,
        "mode": tags.get("mode") or None,
        "data_end": tags.get("data_end") or None,
    }


def champion_view(champion: Any) -> dict[str, Any] | None:
    """The champion's version, gate metric and since when it serves (its open period)."""
    if champion is None:
        return None
    periods = champion.stored_periods or []
    current = [p for p in periods if p.until is None] or periods
    since = current[-1].since if current else champion.tags.get("champion_since")
    return {**_version_view(champion), "since": since}


def challenger_view(
    challenger: Any, champion: Any, awaiting: dict[str, str] | None = None
) -> dict[str, Any] | None:
    """The challenger when it is not the champion: metric, gate, and the run waiting for its
    approval (``awaiting``: version -> run id, from :func:`awaiting_approval`)."""
    if challenger is None or (champion is not None and challenger.version == champion.version):
        return None
    run = (awaiting or {}).get(challenger.version)
    return {**_version_view(challenger), "awaiting_approval_run": run}


def last_check(cfg: Any) -> dict[str, Any] | None:
    """The last monitoring check of the check ledger and its decision."""
    from retrainflow.monitoring.ledger import CheckLedger
    from retrainflow.policy import Decision

    entries = CheckLedger(cfg.artifact_root_uri(), cfg.name).entries()
    if not entries:
        return None
    entry = entries[-1]
    decision = entry.decision or {}
    try:
        summary = Decision.from_dict(decision).explain().splitlines()[0]
    except (TypeError, ValueError, KeyError):
        summary = "retrain" if decision.get("trigger") else "no retrain"
    return {
        "run_id": entry.run_id,
        "checked_at": entry.check.checked_at,
        "trigger": bool(decision.get("trigger")),
        "reasons": list(decision.get("reasons") or []),
        "blocked_by": list(decision.get("blocked_by") or []),
        "decision": summary,
        "triggered_run_id": entry.triggered_run_id,
        "drift_share": entry.check.drift_share,
        "metric": entry.check.metric,
    }


def next_from_schedule(schedule: str | None, now: datetime) -> tuple[str | None, str]:
    """When a DAG with ``schedule`` next runs after ``now`` (UTC, as Airflow's default time
    zone), as ``(ISO time or None, note)``; a DAG runs at the end of its interval, which is
    the next time its cron fires."""
    if schedule is None:
        return None, "none (triggered)"
    if schedule == "@once":
        return None, "once, at its first unpause"
    if schedule == "@continuous":
        return None, "continuous"
    from croniter import croniter

    cron = CRON_PRESETS.get(schedule, schedule)
    base = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    nxt = croniter(cron, base.astimezone(UTC)).get_next(datetime)
    return nxt.isoformat(), f"{schedule}, computed"


def next_check(cfg: Any, dag: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The monitor DAG's next scheduled check: from the REST API's DAG (``dag``, when the
    stack is up and has parsed it), else computed from ``monitoring.schedule``."""
    schedule = cfg.monitoring.schedule
    if not cfg.monitoring.enabled:
        return {"at": None, "source": "config", "note": "monitoring disabled"}
    if schedule is None:
        return {"at": None, "source": "config", "note": "none (triggered)"}
    if dag is not None:
        if dag.get("is_paused"):
            return {
                "at": None,
                "source": "api",
                "note": f"paused: no check until {cfg.monitor_dag_id} is unpaused",
            }
        at = dag.get("next_dagrun_run_after") or dag.get("next_dagrun_data_interval_end")
        if at:
            return {"at": at, "source": "api", "note": dag.get("timetable_summary") or schedule}
    at, note = next_from_schedule(schedule, now)
    return {"at": at, "source": "schedule", "note": note}


def awaiting_approval(client: Any, dag_id: str) -> dict[str, str]:
    """Version -> run id of the runs whose approval task waits for a person."""
    out: dict[str, str] = {}
    for detail in client.hitl_details(dag_id, task_id=APPROVAL_TASK, waiting=True):
        run_id = (detail.get("task_instance") or {}).get("dag_run_id")
        version = _run_version(client, dag_id, run_id) if run_id else None
        if version is not None and run_id:
            out.setdefault(version, str(run_id))
    return out


def _run_version(client: Any, dag_id: str, run_id: str) -> str | None:
    """The version a retrain run registered (or reused): its ``promote`` output."""
    from retrainflow.airflow.cli_runs import _saved_output
    from retrainflow.exceptions import AirflowApiError

    try:
        promoted = client.get_xcom(dag_id, run_id, "promote")
    except AirflowApiError:
        promoted = None
    promoted = promoted or _saved_output(dag_id, run_id, "promote") or {}
    version = promoted.get("version") if isinstance(promoted, dict) else None
    return str(version) if version is not None else None


def retrain_runs(client: Any, cfg: Any, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` retrain runs over REST: state, mode (as resolved by pull, else as
    requested), reason, window end and when."""
    from retrainflow.airflow.cli_runs import _saved_output

    rows = []
    for run in client.list_dag_runs(cfg.retrain_dag_id, limit=limit):
        conf = run.get("conf") or {}
        pulled = _saved_output(cfg.retrain_dag_id, run["dag_run_id"], "pull") or {}
        ctx = pulled.get("context") or {}
        mode = pulled.get("mode") or (f"{conf['mode']} (requested)" if conf.get("mode") else None)
        rows.append(
            {
                "run_id": run["dag_run_id"],
                "state": run.get("state"),
                "mode": mode,
                "reason": conf.get("reason"),
                "window_end": ctx.get("window_end") or conf.get("window_end"),
                "started": run.get("start_date") or run.get("queued_at") or run.get("run_after"),
                "ended": run.get("end_date"),
                "run_type": run.get("run_type"),
            }
        )
    return rows


def pipeline_status(
    cfg: Any, *, registry: Any, client: Any | None, runs: int, now: datetime
) -> dict[str, Any]:
    """Everything ``status`` shows of one pipeline; a part that cannot be read says why
    (``errors``) instead of failing the others."""
    from retrainflow.exceptions import AirflowApiError, RetrainflowError
    from retrainflow.registry import CHALLENGER

    out: dict[str, Any] = {
        "pipeline": cfg.name,
        "promotion": cfg.promotion,
        "champion": None,
        "challenger": None,
        "retrain_runs": None,
        "last_check": None,
        "next_check": None,
        "errors": {},
    }
    awaiting: dict[str, str] = {}
    monitor_dag = None
    if client is not None:
        try:
            out["retrain_runs"] = retrain_runs(client, cfg, runs)
            if cfg.promotion == "manual":
                awaiting = awaiting_approval(client, cfg.retrain_dag_id)
        except AirflowApiError as exc:
            out["errors"]["retrain_runs"] = exc.message
        if cfg.monitoring.enabled:
            try:
                monitor_dag = client.request(
                    "GET", f"/api/v2/dags/{cfg.monitor_dag_id}", ok_404=True
                )
            except AirflowApiError as exc:
                out["errors"]["next_check"] = exc.message
    try:
        name = cfg.registered_model_name
        champion = registry.champion(name)
        out["champion"] = champion_view(champion)
        out["challenger"] = challenger_view(registry.by_alias(name, CHALLENGER), champion, awaiting)
    except RetrainflowError as exc:
        out["errors"]["registry"] = exc.message
    try:
        out["last_check"] = last_check(cfg)
    except (RetrainflowError, OSError, ValueError) as exc:
        out["errors"]["last_check"] = str(getattr(exc, "message", exc))
    out["next_check"] = next_check(cfg, monitor_dag, now)
    return out


def _configs(name: str | None) -> list[tuple[str, Any]]:
    """``(name, config or the ConfigError)`` of the pipeline named, or of every config."""
    from retrainflow import config as config_mod
    from retrainflow.exceptions import ConfigError

    if name:
        return [(name, config_mod.find_config(name))]
    out: list[tuple[str, Any]] = []
    for path in config_mod.config_paths():
        try:
            out.append((path.stem, config_mod.load_config(path)))
        except ConfigError as exc:
            out.append((path.stem, exc))
    return out


class _Reading:
    """``reading pipelines [####----] 2/5 name`` on a terminal's stderr while status reads."""

    def __init__(self, total: int) -> None:
        from retrainflow.cli.output import StreamProgress

        self.progress = StreamProgress(sys.stderr)
        self.total = total

    def step(self, done: int, name: str) -> None:
        if self.progress.tty and self.total > 1:
            bar = self.progress.bar(done / self.total)
            self.progress.show(f"reading pipelines {bar} {done}/{self.total} {name}")

    def close(self) -> None:
        if self.progress.tty and self.total > 1:  # clear the line: the tables follow
            self.progress.stream.write("\r\033[K")
            self.progress.stream.flush()


def status_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow import stack
    from retrainflow.cli.stack_cmds import stack_config
    from retrainflow.exceptions import ConfigError
    from retrainflow.registry import Registry

    scfg = stack_config()
    health = stack.health(scfg)
    up, ok, bad = stack_summary(health)
    configs = _configs(args.pipeline)
    client = _stack_client(scfg) if up else None
    registry = Registry()
    now = datetime.now(UTC)
    pipelines = []
    reading = _Reading(len(configs))
    try:
        for n, (name, cfg) in enumerate(configs):
            reading.step(n, name)
            if isinstance(cfg, ConfigError):
                pipelines.append({"pipeline": name, "invalid_config": cfg.message})
                continue
            pipelines.append(
                pipeline_status(cfg, registry=registry, client=client, runs=args.runs, now=now)
            )
    finally:
        reading.close()
    if args.json:
        print_json(
            {
                "healthy": ok,
                "address": scfg.airflow_url,
                "components": health,
                "api": client is not None,
                "pipelines": pipelines,
            }
        )
        return 0 if ok else 1
    if up:
        from retrainflow.cli.stack_cmds import _print_health

        print(f"Stack at {scfg.airflow_url} ({scfg.home})")
        _print_health(health)
        if not ok:
            print(
                f"Not healthy: {', '.join(bad)}. Logs: {scfg.log_dir}. "
                "`retrainflow up` starts what is missing."
            )
    else:
        print(f"The stack of {scfg.home} is not running. Start it with `retrainflow up`.")
    for item in pipelines:
        print()
        show_pipeline(item, api=client is not None)
    if not pipelines:
        print("\nNo pipelines yet: `retrainflow init` writes one.")
    return 0 if ok else 1


def _metric(view: dict[str, Any]) -> str:
    if view.get("metric") is None:
        return ""
    value = "undefined" if view.get("value") is None else f"{view['value']:.4f}"
    return f"  {view['metric']} {value}"


def show_pipeline(item: dict[str, Any], *, api: bool) -> None:
    """One pipeline's block of ``status``."""
    if "invalid_config" in item:
        print(f"{item['pipeline']}: invalid config")
        print(f"  {item['invalid_config']}")
        return
    print(f"{item['pipeline']}  (promotion: {item['promotion']})")
    errors = item.get("errors") or {}
    champ = item["champion"]
    if champ is not None:
        line = f"v{champ['version']}{_metric(champ)}, since {_when(champ['since']) or '?'}"
    else:
        line = errors.get("registry") or "none yet (`retrainflow retrain` trains one)"
    lines = [("champion", line)]
    chal = item["challenger"]
    if chal is not None:
        state = "gate passed" if chal["gate_passed"] else "gate failed"
        if chal.get("awaiting_approval_run"):
            state = (
                f"waits for approval (run {chal['awaiting_approval_run']}): "
                f"`retrainflow approve {item['pipeline']} {chal['version']}`"
            )
        lines.append(("challenger", f"v{chal['version']}{_metric(chal)}, {state}"))
    check = item["last_check"]
    if check is not None:
        started = f" -> {check['triggered_run_id']}" if check.get("triggered_run_id") else ""
        lines.append(("last check", f"{_when(check['checked_at'])}: {check['decision']}{started}"))
    elif errors.get("last_check"):
        lines.append(("last check", f"unreadable: {errors['last_check']}"))
    else:
        lines.append(("last check", "none yet"))
    nxt = item["next_check"] or {}
    at = _when(nxt.get("at"))
    lines.append(("next check", f"{at} ({nxt['note']})" if at else str(nxt.get("note"))))
    width = max(len(k) for k, _ in lines)
    for key, value in lines:
        print(f"  {key.ljust(width)}  {value}")
    runs = item["retrain_runs"]
    if runs:
        print("  last retrain runs:")
        rows = [{**r, "started": _when(r["started"])} for r in runs]
        _indented(rows, ["run_id", "state", "mode", "reason", "window_end", "started"])
    elif runs is not None:
        print("  last retrain runs: none")
    elif errors.get("retrain_runs"):
        print(f"  last retrain runs: unreadable: {errors['retrain_runs']}")
    elif not api:
        print("  last retrain runs: shown while the stack is up (`retrainflow up`)")


def _indented(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """:func:`print_table`, indented by four spaces."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        print_table(rows, columns)
    for line in buf.getvalue().splitlines():
        print(f"    {line}".rstrip())


# -- trigger -----------------------------------------------------------------------------------


def _approval_waits(tis: list[dict[str, Any]]) -> bool:
    return any(
        ti.get("task_id") == APPROVAL_TASK and ti.get("state") in WAITING_STATES for ti in tis
    )


def trigger_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow.cli_runs import DAG_PARSE_TIMEOUT, cli_run_id, run_url
    from retrainflow.airflow.trigger import RetrainTrigger
    from retrainflow.config import find_config

    cfg = find_config(args.pipeline)
    scfg, client = api_client("trigger")
    dag_id = cfg.retrain_dag_id
    dag = client.wait_for_dag(dag_id, timeout=DAG_PARSE_TIMEOUT)
    if dag.get("is_paused"):  # as `retrainflow retrain` does: a paused DAG never starts it
        client.set_paused(dag_id, False)
        schedule = dag.get("timetable_summary")
        active = f"; its schedule ({schedule}) is active from now on" if schedule else ""
        _say(f"unpaused {dag_id} (it was paused, and the run could not start){active}")
    conf: dict[str, Any] = {"reason": args.reason}
    if args.mode:
        conf["mode"] = args.mode
    if args.window_end:
        conf["window_end"] = args.window_end
    trigger = RetrainTrigger(client, dag_id)
    active_runs = trigger.active_runs()
    run_id = cli_run_id(cfg.name)
    if trigger.trigger(run_id, conf) == "exists":  # another run in the same millisecond
        run_id = cli_run_id(cfg.name)
        trigger.trigger(run_id, conf)
    url = run_url(scfg.airflow_url, dag_id, run_id)
    payload: dict[str, Any] = {
        "pipeline": cfg.name,
        "dag_id": dag_id,
        "run_id": run_id,
        "url": url,
        "conf": conf,
        "queued_behind": active_runs,
    }
    if not args.json:
        print(f"triggered {dag_id} run {run_id}")
        print(f"  {url}")
        if active_runs:
            print(f"  it starts after {', '.join(active_runs)} (one retrain at a time)")
    if not args.wait:
        if args.json:
            print_json({**payload, "state": "queued"})
        return 0
    return _follow(cfg, scfg, client, run_id, url, args, payload)


def _follow(
    cfg: Any, scfg: Any, client: Any, run_id: str, url: str, args: Any, payload: dict[str, Any]
) -> int:
    """``trigger --wait``: the progress line until the run ends or waits for approval."""
    from retrainflow.airflow.cli_runs import _wait, result_from_rest
    from retrainflow.cli.model_cmds import show_retrain
    from retrainflow.cli.output import explain_failed_run

    dag_id = cfg.retrain_dag_id
    try:
        run, tis = _wait(client, dag_id, run_id, args.timeout, url, until=_approval_waits)
    except KeyboardInterrupt:
        _say(f"interrupted: run {run_id} of {dag_id} goes on in the stack: {url}")
        raise
    state = str(run.get("state"))
    waiting = state not in ("success", "failed") and _approval_waits(tis)
    result = result_from_rest(client, dag_id, run_id, state, tis, scfg, url)
    version = (result.outputs.get("promote") or {}).get("version")
    if args.json:
        print_json(
            {
                **payload,
                "state": "awaiting_approval" if waiting else state,
                "task_states": result.task_states,
                "promote": result.outputs.get("promote"),
                "evaluate": result.outputs.get("evaluate"),
            }
        )
    else:
        print()
        show_retrain(result)
        if waiting:
            print(
                f"\nversion {version} waits for approval: `retrainflow approve {cfg.name} "
                f"{version}` (or Approve in the UI: {url})"
            )
        elif state != "success":
            explain_failed_run(result, "retrain")
    return 0 if state == "success" or waiting else 1


# -- approve -----------------------------------------------------------------------------------


def waiting_challenger(cfg: Any, version: str, registry: Any) -> Any:
    """The challenger ``version`` of a ``promotion: manual`` pipeline, if it can be approved.

    Raises:
        UserError: the pipeline promotes automatically; ``version`` is the champion, not the
            challenger, or failed its gate.
    """
    from retrainflow.exceptions import UserError
    from retrainflow.registry import CHALLENGER

    name = cfg.registered_model_name
    if cfg.promotion != "manual":
        raise UserError(
            f"'{cfg.name}' promotes automatically (promotion: auto): a version that passes its "
            "gate becomes champion at once, so nothing waits for approval. Approval is for "
            "pipelines with promotion: manual.",
            pipeline=cfg.name,
        )
    champion = registry.champion(name)
    challenger = registry.by_alias(name, CHALLENGER)
    if champion is not None and champion.version == version:
        raise UserError(
            f"Version {version} is already the champion of '{cfg.name}': nothing to approve.",
            pipeline=cfg.name,
        )
    if challenger is None or challenger.version != version:
        which = (
            f"the challenger is version {challenger.version}"
            if challenger is not None
            else "there is no challenger"
        )
        raise UserError(
            f"Version {version} is not the challenger of '{cfg.name}' waiting for approval "
            f"({which}). `retrainflow status {cfg.name}` shows what waits.",
            pipeline=cfg.name,
        )
    if not challenger.gate_passed:
        raise UserError(
            f"Version {version} of '{cfg.name}' failed its evaluation gate and cannot become "
            f"champion; `retrainflow history {cfg.name}` shows why.",
            pipeline=cfg.name,
        )
    return challenger


def _settle(created_at: Any) -> None:
    """Wait until :data:`APPROVAL_SETTLE_SECONDS` after the request was made."""
    try:
        created = datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    except ValueError:
        return
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    left = APPROVAL_SETTLE_SECONDS - (datetime.now(UTC) - created).total_seconds()
    if left > 0:
        _say(
            f"the approval was requested {APPROVAL_SETTLE_SECONDS - left:.0f} s ago: answering in {left:.0f} s"
        )
        time.sleep(left)


def approve_cmd(args: argparse.Namespace) -> int:
    from retrainflow.airflow.cli_runs import _wait, run_url
    from retrainflow.config import find_config
    from retrainflow.exceptions import AirflowApiError, UserError
    from retrainflow.registry import Registry

    cfg = find_config(args.pipeline)
    version = str(args.version).removeprefix("v")
    registry = Registry()
    waiting_challenger(cfg, version, registry)
    scfg, client = api_client("approve")
    dag_id = cfg.retrain_dag_id
    requests = client.hitl_details(dag_id, task_id=APPROVAL_TASK, waiting=True)
    found, others = None, []
    for detail in requests:
        run_id = (detail.get("task_instance") or {}).get("dag_run_id")
        run_version = _run_version(client, dag_id, run_id) if run_id else None
        if run_version == version and found is None:
            found = detail
        else:
            others.append(f"run {run_id} (version {run_version or '?'})")
    if found is None:
        also = f"; waiting: {', '.join(others)}" if others else ""
        raise UserError(
            f"No run of {dag_id} waits for an approval of version {version}{also}. Its run may "
            "have been answered (approved or rejected) already, or have failed: "
            f"`retrainflow status {cfg.name}`.",
            pipeline=cfg.name,
        )
    ti = found["task_instance"]
    run_id = ti["dag_run_id"]
    url = run_url(scfg.airflow_url, dag_id, run_id)
    _settle(found.get("created_at"))
    try:
        answer = client.answer_hitl(
            dag_id, run_id, APPROVAL_TASK, [APPROVE], map_index=int(ti.get("map_index", -1))
        )
    except AirflowApiError as exc:
        if exc.status == 409:
            raise UserError(
                f"The approval of version {version} (run {run_id}) was answered already: {url}",
                pipeline=cfg.name,
            ) from None
        raise
    who = ((answer or {}).get("responded_by") or {}).get("name") or "you"
    payload: dict[str, Any] = {
        "pipeline": cfg.name,
        "version": version,
        "run_id": run_id,
        "url": url,
        "approved_by": who,
    }
    if not args.json:
        print(f"approved version {version} of '{cfg.name}' (run {run_id}, as {who})")
        print(f"  {url}")
    if args.no_wait:
        if args.json:
            print_json({**payload, "state": "approved"})
        return 0
    try:
        run, _ = _wait(client, dag_id, run_id, args.timeout, url)
    except KeyboardInterrupt:
        _say(f"interrupted: run {run_id} goes on in the stack: {url}")
        raise
    state = str(run.get("state"))
    champion = registry.champion(cfg.registered_model_name)
    crowned = champion is not None and champion.version == version
    if args.json:
        print_json({**payload, "state": state, "champion": champion and champion.version})
    elif crowned:
        print(f"version {version} is the champion of '{cfg.name}' now")
    else:
        print(
            f"run {run_id} ended {state}; the champion is "
            f"{fmt(champion and champion.version)}: see {url}"
        )
    return 0 if state == "success" and crowned else 1
