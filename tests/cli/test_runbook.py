"""The runbook commands ``status``, ``trigger`` and ``approve`` (and the trigger form).

Fast tests run the commands in-process with the real REST client against the fake Airflow
API of ``tests/airflow/test_rest_client.py``, extended here with the human-in-the-loop
endpoints, and a small fake registry; the offline parts of ``status`` (champion, ledger,
next check) against a real registry. ``test_trigger_then_approve_on_a_live_stack`` (slow)
does it all once through a real stack: trigger without a window end, the run's approval
task, ``approve``, ``status``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from retrainflow.airflow.rest import AirflowClient
from retrainflow.cli import runbook_cmds
from retrainflow.cli.main import main
from retrainflow.config import parse_config
from retrainflow.exceptions import StackError, UserError
from retrainflow.registry import CHALLENGER, CHAMPION, VersionInfo
from tests.airflow.test_rest_client import PASSWORD, USER, FakeAirflow, _make_handler

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
NOW = datetime(2026, 3, 4, 10, 30, tzinfo=UTC)


def _cfg(**changes: Any):
    data = yaml.safe_load((FIXTURES / "synthetic.yaml").read_text())
    for key, value in changes.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return parse_config(data, file=FIXTURES / "synthetic.yaml")


def _version(
    version: str, *, gate: bool = True, metric: float = 0.8, aliases=(), **tags: str
) -> VersionInfo:
    base = {
        "gate_passed": "true" if gate else "false",
        "primary_metric": "roc_auc",
        "challenger_metric": str(metric),
        "dag_run_id": f"run{version}",
        "mode": "stateless",
    }
    return VersionInfo(
        "synthetic", version, None, "", 1767225600000, {**base, **tags}, list(aliases)
    )


class FakeRegistry:
    """Champion and challenger aliases; an approval (``approved``) crowns the challenger."""

    def __init__(self, champion: VersionInfo | None, challenger: VersionInfo | None) -> None:
        self.champion_info, self.challenger_info = champion, challenger
        self.approved = False

    def champion(self, name: str) -> VersionInfo | None:
        return self.challenger_info if self.approved else self.champion_info

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        return self.challenger_info if alias == CHALLENGER else self.champion(name)


# -- a fake Airflow API with human-in-the-loop requests ---------------------------------------


@dataclass
class Hitl:
    """Waiting approval requests by run id (``version``: what that run's promote returned)."""

    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    answers: list[tuple[str, Any]] = field(default_factory=list)
    monitor_dag: dict[str, Any] = field(default_factory=dict)
    on_answer: Any = None

    def add(self, run_id: str, version: str, created: datetime | None = None) -> None:
        self.requests[run_id] = {
            "version": version,
            "created_at": (created or datetime(2026, 1, 1, tzinfo=UTC)).isoformat(),
            "answered": False,
        }


def _handler(state: FakeAirflow, hitl: Hitl) -> type:
    base = _make_handler(state)

    class Handler(base):  # type: ignore[misc, valid-type]
        def _route(self, method: str) -> None:
            parts = urlsplit(self.path)
            segs = [unquote(s) for s in parts.path.strip("/").split("/")]
            if segs[-1:] == ["hitlDetails"] or "xcomEntries" in segs:
                state.raw_paths.append(self.path)
                if not self._authorized():
                    return None
                return self._hitl(method, segs[2:], parse_qs(parts.query))
            if segs[2:] == ["dags", "monitor__synthetic"] and method == "GET":
                state.raw_paths.append(self.path)
                if self._authorized():
                    self._send(200, {"dag_id": "monitor__synthetic", **hitl.monitor_dag})
                return None
            return super()._route(method)

        def _hitl(self, method: str, segs: list[str], query: dict[str, list[str]]) -> None:
            dag_id, run_id = segs[1], segs[3]
            if "xcomEntries" in segs:  # .../taskInstances/promote/xcomEntries/return_value
                req = hitl.requests.get(run_id)
                if req is None or segs[5] != "promote":
                    return self._send(404, {"detail": "XCom not found"})
                return self._send(200, {"value": {"version": req["version"]}})
            if method == "GET":
                assert query.get("task_id") == ["approve_champion"]
                assert query.get("response_received") == ["false"]
                details = [
                    {
                        "subject": "Promote?",
                        "options": ["Approve", "Reject"],
                        "created_at": req["created_at"],
                        "response_received": False,
                        "task_instance": {
                            "dag_id": dag_id,
                            "dag_run_id": rid,
                            "task_id": "approve_champion",
                            "map_index": -1,
                            "state": "awaiting_input",
                        },
                    }
                    for rid, req in hitl.requests.items()
                    if not req["answered"] and run_id in ("~", rid)
                ]
                return self._send(200, {"hitl_details": details, "total_entries": len(details)})
            # PATCH .../taskInstances/approve_champion/-1/hitlDetails
            body = self._body()
            req = hitl.requests.get(run_id)
            if req is None:
                return self._send(404, {"detail": "no HITL detail"})
            if req["answered"]:
                return self._send(409, {"detail": "already updated"})
            assert segs[5:7] == ["approve_champion", "-1"]
            req["answered"] = True
            hitl.answers.append((run_id, body))
            if hitl.on_answer:
                hitl.on_answer()
            return self._send(
                200,
                {
                    "responded_by": {"id": USER, "name": USER},
                    "responded_at": NOW.isoformat(),
                    "chosen_options": body["chosen_options"],
                    "params_input": {},
                },
            )

    return Handler


@dataclass
class Api:
    fake: FakeAirflow
    hitl: Hitl
    client: AirflowClient


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The fake API, and ``trigger`` / ``approve`` pointed at it as at a running stack."""
    state, hitl = FakeAirflow(), Hitl()
    state.dags = {"retrain__synthetic": False, "monitor__synthetic": True}
    state.run_polls_until_success = 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, hitl))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    client = AirflowClient(state.url, USER, PASSWORD, timeout=5)
    scfg = SimpleNamespace(airflow_url=state.url, airflow_home=None)
    monkeypatch.setattr(runbook_cmds, "api_client", lambda command: (scfg, client))
    monkeypatch.setattr(runbook_cmds, "APPROVAL_SETTLE_SECONDS", 0.0)
    try:
        yield Api(state, hitl, client)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config dir with ``synthetic`` (promotion: manual) in a fresh home."""
    d = tmp_path / "config"
    d.mkdir()
    data = yaml.safe_load((FIXTURES / "synthetic.yaml").read_text())
    data["promotion"] = "manual"
    (d / "synthetic.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(d))
    monkeypatch.setenv("RETRAINFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return d


def _use_registry(monkeypatch: pytest.MonkeyPatch, registry: FakeRegistry) -> None:
    import retrainflow.registry

    monkeypatch.setattr(retrainflow.registry, "Registry", lambda *a, **k: registry)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the trigger form ---------------------------------------------------------------------------


def test_the_form_shows_what_a_person_sets_and_accepts_an_empty_form_and_the_monitor() -> None:
    from airflow.sdk.definitions.param import ParamsDict

    from retrainflow.airflow.dag_factory import TRIGGER_SECTION, retrain_params

    params = retrain_params(_cfg())
    front = [k for k, p in params.items() if "section" not in p.schema]
    assert front == ["mode", "reason", "window_end"]
    assert {params[k].schema["section"] for k in ("reason_codes", "details")} == {TRIGGER_SECTION}
    assert params["window_end"].value is None and "newest data" in params["window_end"].description
    # The UI's default (nothing filled in) is valid ...
    assert ParamsDict(retrain_params(_cfg())).validate()["window_end"] is None
    # ... and so is the conf the monitor sends over REST (stages/monitor.py).
    monitor_conf = {
        "mode": "auto",
        "reason": "monitor: drift",
        "reason_codes": ["drift"],
        "window_end": "2023-04-01",
        "details": {"monitor_run_id": "m1", "drift_share": 0.6, "drifted_columns": ["x1"]},
    }
    form = ParamsDict(retrain_params(_cfg()))
    form.update(monitor_conf)
    assert form.validate() == monitor_conf


# -- status: the offline parts ----------------------------------------------------------------


def test_champion_since_its_open_period_and_a_challenger_that_waits() -> None:
    periods = json.dumps(
        [
            {"seq": 1, "since": "2026-01-01T00:00:00+00:00", "until": "2026-01-05T00:00:00+00:00"},
            {"seq": 3, "since": "2026-02-01T08:00:00+00:00", "until": None},
        ]
    )
    champ = _version("1", metric=0.81, champion_periods=periods)
    view = runbook_cmds.champion_view(champ)
    assert (view["version"], view["metric"], view["value"]) == ("1", "roc_auc", 0.81)
    assert view["since"] == "2026-02-01T08:00:00+00:00"
    assert runbook_cmds.champion_view(None) is None
    chal = _version("2", metric=0.83)
    assert runbook_cmds.challenger_view(champ, champ) is None  # the champion is no challenger
    waiting = runbook_cmds.challenger_view(chal, champ, {"2": "run2"})
    assert waiting["awaiting_approval_run"] == "run2" and waiting["gate_passed"] is True
    assert runbook_cmds.challenger_view(chal, champ)["awaiting_approval_run"] is None


def test_last_check_reads_the_ledger(tmp_path: Path) -> None:
    from retrainflow.monitoring.ledger import CheckLedger, LedgerEntry
    from retrainflow.policy import CheckResult

    cfg = _cfg(artifact_root=str(tmp_path / "artifacts"))
    assert runbook_cmds.last_check(cfg) is None
    ledger = CheckLedger(cfg.artifact_root_uri(), cfg.name)
    for n, trigger in enumerate((False, True)):
        ledger.record(
            LedgerEntry(
                run_id=f"m{n}",
                check=CheckResult(
                    f"2026-03-0{n + 1}T00:05:00+00:00", 2000, 1500, 0.6, ["x1"], True, False, 0.7
                ),
                decision={
                    "trigger": trigger,
                    "reasons": ["drift"] if trigger else [],
                    "blocked_by": [],
                    "mode": "auto",
                    "mode_reason": "champion available",
                    "details": {},
                },
                triggered_run_id="flight1" if trigger else None,
                triggered_at=None,
            )
        )
    last = runbook_cmds.last_check(cfg)
    assert last["run_id"] == "m1" and last["trigger"] is True
    assert last["decision"].startswith("TRIGGER retrain (drift)")
    assert last["triggered_run_id"] == "flight1"


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("@daily", "2026-03-05T00:00:00+00:00"),
        ("@hourly", "2026-03-04T11:00:00+00:00"),
        ("@weekly", "2026-03-08T00:00:00+00:00"),  # Sunday
        ("15 6 * * 1-5", "2026-03-05T06:15:00+00:00"),
        (None, None),
    ],
)
def test_next_check_from_the_schedule(schedule: str | None, expected: str | None) -> None:
    at, note = runbook_cmds.next_from_schedule(schedule, NOW)
    assert at == expected
    assert note == ("none (triggered)" if schedule is None else f"{schedule}, computed")


def test_next_check_prefers_the_api_and_says_paused_or_disabled() -> None:
    cfg = _cfg(**{"monitoring.schedule": "@daily"})
    api_dag = {"is_paused": False, "next_dagrun_run_after": "2026-03-05T00:00:00Z"}
    assert runbook_cmds.next_check(cfg, api_dag, NOW)["source"] == "api"
    assert runbook_cmds.next_check(cfg, api_dag, NOW)["at"] == "2026-03-05T00:00:00Z"
    paused = runbook_cmds.next_check(cfg, {"is_paused": True}, NOW)
    assert paused["at"] is None and "paused" in paused["note"]
    offline = runbook_cmds.next_check(cfg, None, NOW)
    assert (offline["source"], offline["at"]) == ("schedule", "2026-03-05T00:00:00+00:00")
    off = runbook_cmds.next_check(_cfg(**{"monitoring.enabled": False}), None, NOW)
    assert off["note"] == "monitoring disabled"


def test_status_offline_shows_the_registry_and_exits_1(
    trained_fork, capsys: pytest.CaptureFixture[str]
) -> None:
    from retrainflow.registry import Registry

    champion = Registry().champion("synthetic")
    code, out, _ = _run(capsys, "status", "synthetic")
    assert code == 1  # the stack is down: as before, exit 1
    assert "is not running. Start it with `retrainflow up`" in out
    assert f"champion    v{champion.version}  roc_auc " in out
    assert "last check  none yet" in out and "next check  none (triggered)" in out
    assert "last retrain runs: shown while the stack is up" in out
    code, out, _ = _run(capsys, "status", "--json")
    data = json.loads(out)
    assert code == 1 and data["healthy"] is False and data["api"] is False
    [item] = [p for p in data["pipelines"] if p["pipeline"] == "synthetic"]
    assert item["champion"]["version"] == champion.version and item["retrain_runs"] is None
    assert {"components", "address"} <= set(data)


def test_status_names_an_invalid_config_and_shows_the_others(
    configs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (configs / "broken.yaml").write_text("name: broken\n")
    _use_registry(monkeypatch, FakeRegistry(None, None))
    code, out, _ = _run(capsys, "status")
    assert code == 1
    assert "broken: invalid config" in out and "synthetic  (promotion: manual)" in out


def test_status_with_the_api_lists_runs_and_the_challenger_waiting(
    api: Api, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _cfg(promotion="manual", **{"monitoring.schedule": "@daily"})
    api.client.trigger_dag_run("retrain__synthetic", {"reason": "hotfix"}, run_id="run2")
    api.hitl.add("run2", "2")
    api.hitl.monitor_dag.update(is_paused=False, next_dagrun_run_after="2026-03-05T00:00:00Z")
    reg = FakeRegistry(_version("1", aliases=[CHAMPION]), _version("2", aliases=[CHALLENGER]))
    item = runbook_cmds.pipeline_status(cfg, registry=reg, client=api.client, runs=5, now=NOW)
    assert item["errors"] == {}
    assert [(r["run_id"], r["state"], r["reason"]) for r in item["retrain_runs"]] == [
        ("run2", "queued", "hotfix")
    ]
    assert item["challenger"]["awaiting_approval_run"] == "run2"
    assert item["next_check"] == {"at": "2026-03-05T00:00:00Z", "source": "api", "note": "@daily"}
    runbook_cmds.show_pipeline(item, api=True)
    out = capsys.readouterr().out
    assert "waits for approval (run run2): `retrainflow approve synthetic 2`" in out
    assert "next check  2026-03-05 00:00 UTC (@daily)" in out
    assert "run2" in out and "hotfix" in out


# -- trigger ------------------------------------------------------------------------------------


def test_trigger_goes_through_the_monitors_trigger_and_prints_the_run(
    api: Api, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api.fake.dags["retrain__synthetic"] = True  # paused: unpaused, as `retrain` does
    code, out, err = _run(
        capsys, "trigger", "synthetic", "--reason", "hotfix", "--mode", "stateless"
    )
    assert code == 0, err
    [(dag_id, run_id)] = list(api.fake.runs)
    assert dag_id == "retrain__synthetic" and run_id.startswith("cli__synthetic__")
    # No window end: the run resolves it (up to the newest data), as the UI's empty form.
    assert api.fake.runs[(dag_id, run_id)]["conf"] == {"reason": "hotfix", "mode": "stateless"}
    assert f"triggered retrain__synthetic run {run_id}" in out
    assert f"{api.fake.url}/dags/retrain__synthetic/runs/{run_id}" in out
    assert api.fake.dags["retrain__synthetic"] is False and "unpaused retrain__synthetic" in err


def test_trigger_wait_json_follows_the_run(
    api: Api, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys,
        "trigger",
        "synthetic",
        "--reason",
        "r",
        "--window-end",
        "2023-02-15",
        "--wait",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["state"] == "success" and data["conf"]["window_end"] == "2023-02-15"
    assert data["task_states"] == {"t1": "success"}
    assert "tasks done" in err  # the progress line


def test_trigger_and_approve_need_the_stack(configs: Path) -> None:
    with pytest.raises(StackError, match="is not running.*`retrainflow up` first"):
        runbook_cmds.api_client("trigger")


def test_bad_window_end_is_refused_by_the_parser(configs: Path) -> None:
    with pytest.raises(SystemExit):
        main(["trigger", "synthetic", "--reason", "x", "--window-end", "2023-02-30"])


# -- approve ------------------------------------------------------------------------------------


def test_approve_answers_the_waiting_request_and_follows_the_run(
    api: Api, configs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = FakeRegistry(_version("1"), _version("2"))
    _use_registry(monkeypatch, reg)
    api.client.trigger_dag_run("retrain__synthetic", {}, run_id="run2")
    api.hitl.add("run1", "1")  # an older request of another version: left alone
    api.hitl.add("run2", "2")
    api.hitl.on_answer = lambda: setattr(reg, "approved", True)
    code, out, err = _run(capsys, "approve", "synthetic", "2")
    assert code == 0, out + err
    assert api.hitl.answers == [("run2", {"chosen_options": ["Approve"], "params_input": {}})]
    assert "approved version 2 of 'synthetic' (run run2, as admin)" in out
    assert "version 2 is the champion of 'synthetic' now" in out
    assert api.hitl.requests["run1"]["answered"] is False


@pytest.mark.parametrize(
    ("promotion", "champion", "challenger", "version", "message"),
    [
        ("auto", "1", "2", "2", "promotes automatically"),
        (
            "manual",
            "1",
            "2",
            "3",
            r"Version 3 is not the challenger .*\(the challenger is version 2\)",
        ),
        ("manual", "2", "2", "2", "already the champion"),
        ("manual", "1", None, "2", "there is no challenger"),
        ("manual", "1", "2-failed", "2", "failed its evaluation gate"),
    ],
)
def test_approve_refuses_what_cannot_be_approved(
    promotion: str, champion: str, challenger: str | None, version: str, message: str
) -> None:
    chal = None
    if challenger:
        chal = _version(challenger.split("-")[0], gate=not challenger.endswith("failed"))
    reg = FakeRegistry(_version(champion), chal)
    with pytest.raises(UserError, match=message):
        runbook_cmds.waiting_challenger(_cfg(promotion=promotion), version, reg)


def test_approve_says_which_run_waits_when_the_version_does_not(
    api: Api, configs: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_registry(monkeypatch, FakeRegistry(_version("1"), _version("2")))
    api.hitl.add("run3", "3")
    code, _, err = _run(capsys, "approve", "synthetic", "2")
    assert code == 1 and api.hitl.answers == []
    assert "No run of retrain__synthetic waits for an approval of version 2" in err
    assert "waiting: run run3 (version 3)" in err


def test_approve_waits_out_a_request_just_made(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(runbook_cmds.time, "sleep", slept.append)
    runbook_cmds._settle((datetime.now(UTC) - timedelta(seconds=4)).isoformat())
    assert len(slept) == 1 and 5 < slept[0] <= 6.5
    runbook_cmds._settle("2020-01-01T00:00:00Z")
    assert len(slept) == 1


# -- live: one stack -----------------------------------------------------------------------------


@pytest.mark.slow
def test_trigger_then_approve_on_a_live_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``trigger`` without a window end trains up to the newest data (2023-02-14 seeded: window
    end 2023-02-15), waits at the approval; ``status`` shows it; ``approve`` crowns it."""
    from retrainflow.airflow.cli_runs import _saved_output
    from retrainflow.config import find_config
    from retrainflow.data.seed import seed
    from retrainflow.registry import Registry
    from tests.airflow.live import running_stack, wait_for

    home, config_dir = tmp_path / "home", tmp_path / "config"
    config_dir.mkdir()
    manual = yaml.safe_load((FIXTURES / "synthetic.yaml").read_text())
    manual.update(name="synthmanual", promotion="manual")
    (config_dir / "synthmanual.yaml").write_text(yaml.safe_dump(manual))
    monkeypatch.setenv("RETRAINFLOW_HOME", str(home))
    monkeypatch.setenv("RETRAINFLOW_CONFIG_DIR", str(config_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    seed(find_config("synthmanual"), date(2023, 2, 14))
    dag_id = "retrain__synthmanual"
    with running_stack([dag_id]) as live:
        code, out, err = _run(
            capsys,
            "trigger",
            "synthmanual",
            "--reason",
            "runbook",
            "--mode",
            "stateless",
            "--wait",
            "--json",
            "--timeout",
            "600",
        )
        assert code == 0, out + err
        data = json.loads(out)
        assert data["state"] == "awaiting_approval", data
        assert "window_end" not in data["conf"]
        run_id = data["run_id"]
        pulled = _saved_output(dag_id, run_id, "pull")
        assert pulled["context"]["window_end"] == "2023-02-15"
        assert pulled["context"]["window_end_from"] == "newest_data"
        # Answer only once the scheduler saw the parked worker exit (see test_retrain_e2e).
        log = live.stack.log_dir / "scheduler.log"
        wait_for(
            "the scheduler to see the parked approval task",
            lambda: (
                log.is_file()
                and any(
                    "TaskInstance Finished" in line
                    and "task_id=approve_champion" in line
                    and f"run_id={run_id}" in line
                    and "state=awaiting_input" in line
                    for line in log.read_text(errors="replace").splitlines()
                )
            ),
            timeout=120,
        )
        version = data["promote"]["version"]
        code, out, err = _run(capsys, "status", "synthmanual", "--json")
        item = json.loads(out)["pipelines"][0]
        assert item["champion"] is None
        assert item["challenger"]["awaiting_approval_run"] == run_id
        assert item["retrain_runs"][0]["run_id"] == run_id
        assert item["next_check"]["note"] == "none (triggered)"
        code, out, err = _run(capsys, "approve", "synthmanual", version, "--timeout", "300")
        assert code == 0, out + err
        champion = Registry().champion("synthmanual")
        assert champion is not None and champion.version == version
        assert champion.tags["window_end_from"] == "newest_data"
        assert champion.tags["holdout_end"] == "2023-02-15"
        code, out, err = _run(capsys, "approve", "synthmanual", version)
        assert code == 1 and "already the champion" in err
