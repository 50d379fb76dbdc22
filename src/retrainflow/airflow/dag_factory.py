"""Build the Airflow DAGs of every pipeline config (the only Airflow-facing DAG code).

``dags/retrainflow_dags.py`` calls :func:`build_dags`. Parsing a DAG file must
stay cheap and side-effect free: this module imports only the Task SDK, the
config loader and, for ``promotion: manual``, the standard provider's
``ApprovalOperator``; every heavy import (pandas, LightGBM, MLflow, Great
Expectations) happens inside the task at run time, in the library.

Per pipeline config, ``retrain__<pipeline>``::

    pull → validate → features → train → evaluate → promote
                                                      └→ needs_approval → approve_champion → crown
                                                         (only with ``promotion: manual``)

``monitor__<pipeline>`` (unless ``monitoring.enabled`` is false): one ``check`` task —
drift and performance, the trigger policy, and a retrain started over REST. A config
that does not load becomes ``invalid_config__<file>``, whose one task fails with the
error, so the UI shows what is wrong while the valid pipelines keep their DAGs.

Each task body is one library call that takes and returns small JSON
manifests through XCom. User errors (bad data, bad conf, impossible mode) fail
the task without retries (:class:`AirflowFailException`); other errors are retried
only by the tasks that do I/O against other services: ``pull`` (twice), ``features``,
``train``, ``evaluate`` and ``promote`` (twice: the MLflow registry may be briefly
unreachable or its database locked — a retried promote closes the MLflow run a killed
attempt left open and registers at most once) and the monitor's ``check`` (once; of the
REST API's errors, only 5xx answers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from retrainflow import config as config_mod
from retrainflow import settings
from retrainflow.core.modes import Mode
from retrainflow.exceptions import ConfigError, UserError

log = logging.getLogger(__name__)

#: Scheduled runs don't backfill history: data arrives daily; one run per interval from now.
START_DATE = datetime(2024, 1, 1)


#: Retries of the tasks that talk to the MLflow registry (transient errors only: user
#: errors fail fast through :func:`_user_errors_fail_fast`).
_REGISTRY_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay": timedelta(seconds=15),
    "retry_exponential_backoff": True,
}


#: Each stage's manifest is one XCom (``return_value``). Airflow infers ``multiple_outputs``
#: from a ``dict`` return annotation and would also push every key as an XCom of its own:
#: 10–12 more execution-API writes per task (~0.3–0.5 s of each task's end), read by nothing.
_ONE_XCOM: dict[str, Any] = {"multiple_outputs": False}


def _user_errors_fail_fast(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn retrainflow user errors into non-retryable task failures with the message.

    Any error of the task first leaves ``error.json`` in its stage's folder of the run
    (:func:`_save_error`): the run's page in the UI shows it, also when the stage failed
    before writing anything (a refused conf, an unreachable registry).
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from retrainflow import settings

        settings.quiet_third_party()
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            _save_error(fn.__name__, exc)
            raise AirflowFailException(f"[{exc.code}] {exc.message}") from exc
        except Exception as exc:
            _save_error(fn.__name__, exc)
            raise

    return wrapper


#: Tasks whose stage folder has another name than the task.
_STAGE_OF_TASK = {"check": "monitor"}


def error_record(task_id: str, exc: BaseException, ti: Any = None) -> dict[str, Any]:
    """What ``error.json`` holds: ``code`` and ``message`` (of the retrainflow error, also
    when wrapped in an ``AirflowFailException``), ``task``, ``attempt`` and ``will_retry``
    (whether Airflow retries the task after this attempt)."""
    from retrainflow.exceptions import RetrainflowError

    cause = exc if isinstance(exc, RetrainflowError) else exc.__cause__
    if isinstance(cause, RetrainflowError):
        record: dict[str, Any] = cause.to_dict()  # code, message, details
    else:
        record = {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}"}
    attempt = getattr(ti, "try_number", None)
    max_tries = getattr(ti, "max_tries", None)
    retryable = not isinstance(exc, (UserError, AirflowFailException))
    return {
        **record,
        "error_type": type(cause if isinstance(cause, RetrainflowError) else exc).__name__,
        "task": task_id,
        "attempt": attempt,
        "will_retry": bool(
            retryable
            and isinstance(attempt, int)
            and isinstance(max_tries, int)
            and attempt <= max_tries
        ),
    }


def _save_error(task_id: str, exc: BaseException) -> None:
    """Write :func:`error_record` to ``<run>/<stage>/error.json``; never raises (the task's
    own error is the one that matters)."""
    try:
        from retrainflow.artifacts import ArtifactStore

        ctx = get_current_context()
        run, ti = ctx["dag_run"], ctx.get("ti")
        cfg = config_mod.find_config(str(run.dag_id).split("__", 1)[1])
        stage = ArtifactStore(cfg.artifact_root_uri()).stage(
            cfg.name, run.run_id, _STAGE_OF_TASK.get(task_id, task_id)
        )
        stage.write_json("error.json", error_record(task_id, exc, ti))
    except Exception:  # noqa: BLE001 - a report of the error must not replace the error
        log.warning("could not save the error of task %s", task_id, exc_info=True)


def _common(kind: str, name: str) -> dict[str, Any]:
    """DAG arguments shared by every retrainflow DAG."""
    return {
        "start_date": START_DATE,
        "catchup": False,
        "max_active_runs": 1,
        "tags": ["retrainflow", kind, name],
        "default_args": {"retries": 0, "owner": "retrainflow"},
    }


def _run_conf() -> tuple[Any, dict[str, Any], Any]:
    """(dag run, its conf merged over the DAG params, the date to fall back on) of the current task."""
    ctx = get_current_context()
    run = ctx["dag_run"]
    conf = {**(ctx.get("params") or {}), **(run.conf or {})}
    fallback = getattr(run, "logical_date", None) or getattr(run, "run_after", None)
    return run, conf, fallback


def _deps(cfg: config_mod.PipelineConfig) -> dict[str, Any]:
    from retrainflow.artifacts import ArtifactStore
    from retrainflow.registry import Registry

    return {"registry": Registry(), "store": ArtifactStore(cfg.artifact_root_uri())}


#: The trigger form's collapsed section of the params a trigger sets, not a person: the
#: monitoring DAG passes them over REST (``reason_codes``, ``details``). Airflow 3.3's form
#: shows params without a ``section`` under "Run Parameters" (open) and each named section
#: as a collapsed accordion item.
TRIGGER_SECTION = "Set by the monitor (leave as is)"


def retrain_params(cfg: config_mod.PipelineConfig) -> dict[str, Param]:
    """The params of ``retrain__<name>``: in front what a person sets (mode, reason, window
    end); the monitor's ``reason_codes`` and ``details`` in :data:`TRIGGER_SECTION`.

    An empty form is a valid run: the window end then resolves as
    :func:`retrainflow.runs.build_context` says (up to the newest data for a manual run).
    """
    return {
        "mode": Param(
            str(cfg.training.mode),
            type="string",
            enum=[m.value for m in Mode],
            title="Training mode",
            description="auto: warm start when possible, stateless otherwise",
        ),
        "reason": Param(
            "manual", type="string", title="Reason", description="Why this run was started"
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Window end",
            description="Exclusive end of the data window (YYYY-MM-DD). Empty: up to the "
            "newest data in the source (manual runs); a scheduled run uses its logical date",
        ),
        "reason_codes": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Reason codes",
            section=TRIGGER_SECTION,
            description="The trigger policy's reason codes (set by monitor__" + cfg.name + ")",
        ),
        "details": Param(
            {},
            type="object",
            title="Trigger details",
            section=TRIGGER_SECTION,
            description="Recorded with the run (drift summary, report...; set by the monitor)",
        ),
    }


def build_retrain_dag(cfg: config_mod.PipelineConfig) -> DAG:
    """The ``retrain__<name>`` DAG of one pipeline config."""
    from retrainflow.manifest import (
        FeaturesManifest,
        PromoteManifest,
        PullManifest,
        TrainManifest,
        Verdict,
    )

    name = cfg.name
    with DAG(
        dag_id=cfg.retrain_dag_id,
        description=f"Retrain '{name}': pull → validate → features → train → evaluate → promote",
        schedule=cfg.schedule,
        **_common("retrain", name),
        params=retrain_params(cfg),
        doc_md=f"Retraining pipeline **{name}** from `{name}.yaml`. {cfg.description}",
        render_template_as_native_obj=True,
    ) as dag:

        @task(
            retries=2,
            retry_delay=timedelta(seconds=20),
            retry_exponential_backoff=True,
            **_ONE_XCOM,
        )
        @_user_errors_fail_fast
        def pull() -> dict[str, Any]:
            from retrainflow.runs import build_context
            from retrainflow.stages import pull as stage

            run, conf, fallback = _run_conf()
            run_ctx = build_context(
                name,
                cfg.training.mode,
                conf,
                run_id=run.run_id,
                fallback_end=fallback,
                run_type=getattr(run, "run_type", None),
                newest_end=lambda: stage.newest_window_end(cfg),
            )
            return stage.run(cfg, run_ctx, **_deps(cfg)).to_dict()

        @task(**_ONE_XCOM)
        @_user_errors_fail_fast
        def validate(pulled: dict[str, Any]) -> dict[str, Any]:
            from retrainflow.stages import validate as stage

            return stage.run(
                cfg, PullManifest.from_dict(pulled), store=_deps(cfg)["store"]
            ).to_dict()

        @task(**_REGISTRY_RETRIES, **_ONE_XCOM)
        @_user_errors_fail_fast
        def features(pulled: dict[str, Any], _validated: dict[str, Any]) -> dict[str, Any]:
            from retrainflow.stages import features as stage

            return stage.run(cfg, PullManifest.from_dict(pulled), **_deps(cfg)).to_dict()

        # Fits go to their own Celery queue (workers sized for them); the rest to `default`.
        @task(**_REGISTRY_RETRIES, **_ONE_XCOM, queue=settings.training_queue())
        @_user_errors_fail_fast
        def train(pulled: dict[str, Any], feats: dict[str, Any]) -> dict[str, Any]:
            from retrainflow.stages import train as stage

            return stage.run(
                cfg, PullManifest.from_dict(pulled), FeaturesManifest.from_dict(feats), **_deps(cfg)
            ).to_dict()

        @task(**_REGISTRY_RETRIES, **_ONE_XCOM)
        @_user_errors_fail_fast
        def evaluate(pulled: dict[str, Any], trained: dict[str, Any]) -> dict[str, Any]:
            from retrainflow.stages import evaluate as stage

            return stage.run(
                cfg, PullManifest.from_dict(pulled), TrainManifest.from_dict(trained), **_deps(cfg)
            ).to_dict()

        @task(**_REGISTRY_RETRIES, **_ONE_XCOM)
        @_user_errors_fail_fast
        def promote(
            pulled: dict[str, Any],
            feats: dict[str, Any],
            trained: dict[str, Any],
            verdict: dict[str, Any],
        ) -> dict[str, Any]:
            from retrainflow.stages import promote as stage

            return stage.run(
                cfg,
                PullManifest.from_dict(pulled),
                FeaturesManifest.from_dict(feats),
                TrainManifest.from_dict(trained),
                Verdict.from_dict(verdict),
                **_deps(cfg),
            ).to_dict()

        p = pull()
        v = validate(p)
        f = features(p, v)
        t = train(p, f)
        e = evaluate(p, t)
        promoted = promote(p, f, t, e)

        if cfg.promotion == "manual":
            from airflow.providers.standard.operators.hitl import ApprovalOperator

            @task.short_circuit
            def needs_approval(promoted: dict[str, Any]) -> bool:
                return bool(promoted["awaiting_approval"])

            approval = ApprovalOperator(
                task_id="approve_champion",
                subject=f"Promote the new '{name}' model to champion?",
                body=(
                    "The challenger passed the evaluation gate. Approve to move the `champion` "
                    "alias to it; reject to keep the current champion. Details: "
                    "{{ ti.xcom_pull(task_ids='evaluate') }}"
                ),
            )

            @task(**_ONE_XCOM)
            @_user_errors_fail_fast
            def crown(promoted: dict[str, Any]) -> dict[str, Any]:
                from retrainflow.stages import promote as stage

                answer = get_current_context()["ti"].xcom_pull(task_ids="approve_champion") or {}
                user = answer.get("responded_by_user") or {}
                approver = user.get("name") or user.get("id") or "airflow-ui"
                return stage.approve(
                    cfg,
                    PromoteManifest.from_dict(promoted),
                    registry=_deps(cfg)["registry"],
                    approver=approver,
                ).to_dict()

            needs_approval(promoted) >> approval >> crown(promoted)
    return dag


def build_monitor_dag(cfg: config_mod.PipelineConfig) -> DAG:
    """The ``monitor__<name>`` DAG: Evidently drift/performance check + trigger policy.

    One task, one library call (:func:`retrainflow.stages.monitor.run`); a positive
    decision starts ``retrain__<name>`` through the REST API with the connection
    ``retrainflow_api``. Retrying is safe: the retrain run id derives from this
    run's id, so a second attempt finds it (409) instead of starting another.
    """
    name = cfg.name
    with DAG(
        dag_id=cfg.monitor_dag_id,
        description=f"Monitor '{name}': drift and performance (Evidently) → trigger policy → retrain",
        schedule=cfg.monitoring.schedule,
        **_common("monitor", name),
        params={
            "check_date": Param(
                None,
                type=["null", "string"],
                format="date",
                description="Exclusive end of the checked window (YYYY-MM-DD); "
                "empty = the run's logical date",
            ),
            "on_demand": Param(
                False, type="boolean", description="Retrain now, whatever the rules say"
            ),
            "trigger": Param(True, type="boolean", description="False: decide but start nothing"),
            "api_conn_id": Param(
                "retrainflow_api",
                type="string",
                description="Airflow connection with the REST API's URL and credentials",
            ),
        },
        doc_md=f"Monitoring of **{name}**: see `monitoring:` in `{name}.yaml`.",
    ) as dag:

        @task(retries=1, retry_delay=timedelta(seconds=30), **_ONE_XCOM)
        @_user_errors_fail_fast
        def check() -> dict[str, Any]:
            from retrainflow.airflow.trigger import RetrainTrigger
            from retrainflow.exceptions import AirflowApiError
            from retrainflow.stages import monitor as stage

            run, conf, fallback = _run_conf()
            day = conf.get("check_date") or fallback.date().isoformat()
            mctx = stage.MonitorContext(
                pipeline=name,
                run_id=run.run_id,
                check_date=str(day),
                on_demand=bool(conf.get("on_demand")),
                trigger_enabled=bool(conf.get("trigger", True)),
            )
            conn_id = conf.get("api_conn_id") or "retrainflow_api"
            trigger = (
                RetrainTrigger.from_connection(cfg.retrain_dag_id, conn_id)
                if mctx.trigger_enabled
                else None
            )
            try:
                return stage.run(cfg, mctx, trigger=trigger, **_deps(cfg)).to_dict()
            except AirflowApiError as exc:
                if exc.status is None or 400 <= exc.status < 500:
                    raise AirflowFailException(f"[{exc.code}] {exc.message}") from exc
                raise

        check()
    return dag


def build_invalid_config_dag(path: Path, error: ConfigError) -> DAG:
    """A DAG that shows (and fails with) a config error, so the UI tells what is wrong.

    Valid pipelines keep their DAGs: one bad YAML file does not hide the others.
    """
    with DAG(
        dag_id=f"invalid_config__{path.stem}",
        description=f"{path.name} is invalid: {error.message}"[:1000],
        schedule=None,
        start_date=START_DATE,
        catchup=False,
        tags=["retrainflow", "invalid-config"],
        doc_md=f"**{path.name} is invalid.**\n\n```\n{error.message}\n```\n\n"
        "Fix the file; check with `retrainflow validate-config`.",
    ) as dag:

        @task(task_id="explain")
        def explain() -> None:
            raise AirflowFailException(error.message)

        explain()
    return dag


def build_dags(config_dir: Path | None = None) -> dict[str, DAG]:
    """Every pipeline's DAGs, keyed by DAG id (for ``globals().update(...)`` in a DAG file)."""
    dags: dict[str, DAG] = {}
    for path in config_mod.config_paths(config_dir):
        try:
            cfg = config_mod.load_config(path)
        except ConfigError as exc:
            log.error("%s", exc.message)
            dag = build_invalid_config_dag(path, exc)
        else:
            dag = build_retrain_dag(cfg)
            if cfg.monitoring.enabled:
                monitor = build_monitor_dag(cfg)
                dags[monitor.dag_id] = monitor
        dags[dag.dag_id] = dag
    return dags
