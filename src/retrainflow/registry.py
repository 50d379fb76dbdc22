"""The one seam to the MLflow model registry.

Every read and write of registered models goes through :class:`Registry`, a
thin layer over :class:`mlflow.MlflowClient`. It owns the rules the platform
promises:

* the alias ``challenger`` points at the newest registered candidate;
* the alias ``champion`` only ever points at a version whose gate passed
  (``gate_passed=true``) — never two champions, never an ungated one;
* every champion change is recorded: each version keeps the full list of the
  periods it served as champion (tag ``champion_periods``, JSON), numbered in
  one sequence across versions, so ``history`` can tell which version served
  when — across any number of rollbacks — and ``rollback`` needs one command;
* "not there" and "could not ask" are different answers: only MLflow's
  ``RESOURCE_DOES_NOT_EXIST`` means a model, version or alias is missing; any
  other MLflow error raises :class:`~retrainflow.exceptions.RegistryUnavailableError`
  (retryable), so an outage never reads as "no champion".

Registries written before ``champion_periods`` existed kept one
``champion_since`` / ``champion_until`` pair per version (overwritten by
rollbacks); they are read as one period per version, ordered by time, and
migrated to ``champion_periods`` on the next champion change.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from retrainflow import settings
from retrainflow.exceptions import RegistryError, RegistryUnavailableError, UserError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from retrainflow.model import TabularModel

log = logging.getLogger(__name__)
T = TypeVar("T")

CHAMPION = "champion"
CHALLENGER = "challenger"
#: Version tag holding the JSON list of the version's champion periods.
PERIODS_TAG = "champion_periods"
#: Tags of registries written before ``champion_periods`` (one period per version).
LEGACY_PERIOD_TAGS = ("champion_since", "champion_until")
#: MLflow's error codes (``MlflowException.error_code``, names of ``mlflow.protos.databricks_pb2``):
#: a missing model or version; and what a missing alias of an existing model gets.
NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
INVALID_PARAMETER = "INVALID_PARAMETER_VALUE"
_PAGE = 1000


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _later(a: str, b: str) -> str:
    """The later of two ISO timestamps (compared as instants, not as text)."""
    return a if datetime.fromisoformat(a) >= datetime.fromisoformat(b) else b


@dataclass(frozen=True)
class ChampionPeriod:
    """One stretch of wall-clock time during which a version was the champion.

    ``seq`` is the period's place in the model's one sequence of champion
    changes (1 = the first champion). Order by ``seq``, never by time: two
    changes within one second carry the same timestamp. ``since <= until``
    always; ``until`` is None while the version still serves.
    """

    seq: int
    version: str
    since: str
    until: str | None
    reason: str
    #: The champion this period replaced.
    previous: str | None
    #: Data time: exclusive end of the data the version was trained on.
    data_end: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stored(self) -> dict[str, Any]:
        """The form kept in the version's ``champion_periods`` tag."""
        return {
            "seq": self.seq,
            "since": self.since,
            "until": self.until,
            "reason": self.reason,
            "previous": self.previous,
        }


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version and its lineage tags."""

    name: str
    version: str
    run_id: str | None
    source: str
    created: int
    tags: dict[str, str] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)

    @property
    def gate_passed(self) -> bool:
        return self.tags.get("gate_passed") == "true"

    @property
    def data_end(self) -> str | None:
        return self.tags.get("data_end")

    @property
    def schema(self) -> dict[str, str] | None:
        raw = self.tags.get("schema")
        return json.loads(raw) if raw else None

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def stored_periods(self) -> list[ChampionPeriod] | None:
        """The periods in the ``champion_periods`` tag (None when the tag is absent)."""
        raw = self.tags.get(PERIODS_TAG)
        if raw is None:
            return None
        try:
            items = json.loads(raw)
            return [
                ChampionPeriod(
                    seq=int(p["seq"]),
                    version=self.version,
                    since=p["since"],
                    until=p.get("until"),
                    reason=p.get("reason", ""),
                    previous=p.get("previous"),
                    data_end=self.data_end,
                )
                for p in items
            ]
        except (ValueError, TypeError, KeyError):
            log.warning(
                "version %s of %s: unreadable %s tag %r; ignored",
                self.version,
                self.name,
                PERIODS_TAG,
                raw[:200],
            )
            return []

    @property
    def served(self) -> bool:
        """Whether the version has ever been champion."""
        return bool(self.stored_periods) or bool(self.tags.get("champion_since"))


def search_literal(value: str) -> str:
    """``value`` as a string literal of MLflow's search syntax (which has no escapes: pick the quote).

    Raises:
        UserError: the value holds both kinds of quote.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise UserError(
        f"{value!r} cannot be searched for in the registry: it holds both kinds of quote."
    )


def _redacted(uri: str) -> str:
    """``uri`` without a password, for messages."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Registry:
    """Registered models of retrainflow pipelines in one MLflow tracking server.

    Args:
        tracking_uri: MLflow tracking/registry URI; defaults to
            :func:`retrainflow.settings.mlflow_tracking_uri`.
    """

    def __init__(self, tracking_uri: str | None = None) -> None:
        self.tracking_uri = tracking_uri or settings.mlflow_tracking_uri()
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            settings.quiet_third_party()
            from mlflow import MlflowClient

            self._client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        return self._client

    # -- errors ------------------------------------------------------------------------
    def _unavailable(self, exc: MlflowException, action: str) -> RegistryUnavailableError:
        code = exc.error_code
        return RegistryUnavailableError(
            f"The MLflow registry at {_redacted(self.tracking_uri)} could not {action}: [{code}] "
            f"{exc.message}. Check that the tracking server is "
            "up and reachable (MLFLOW_TRACKING_URI); the operation can be retried.",
            mlflow_code=code,
            action=action,
        )

    def _call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` with MLflow errors raised as :class:`RegistryUnavailableError`."""
        from mlflow.exceptions import MlflowException

        try:
            return fn(*args, **kwargs)
        except MlflowException as exc:
            raise self._unavailable(exc, action) from exc

    # -- reads -------------------------------------------------------------------------
    def _info(self, mv: Any) -> VersionInfo:
        return VersionInfo(
            name=mv.name,
            version=str(mv.version),
            run_id=mv.run_id,
            source=mv.source,
            created=int(mv.creation_timestamp or 0),
            tags=dict(mv.tags or {}),
            aliases=list(getattr(mv, "aliases", []) or []),
        )

    def _aliases(self, name: str) -> dict[str, str] | None:
        """alias → version of model ``name``; None when the model does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == NOT_FOUND:
                return None
            raise self._unavailable(exc, f"read registered model '{name}'") from exc
        return {alias: str(version) for alias, version in (model.aliases or {}).items()}

    def exists(self, name: str) -> bool:
        """Whether the registered model exists.

        Raises:
            RegistryUnavailableError: the registry could not be asked.
        """
        return self._aliases(name) is not None

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        """The version behind ``alias``, or None when the model or alias does not exist.

        Raises:
            RegistryUnavailableError: the registry could not be asked.
        """
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version_by_alias(name, alias))
        except MlflowException as exc:
            if exc.error_code == NOT_FOUND:
                return None
            # MLflow reports a missing alias of an existing model as INVALID_PARAMETER_VALUE, a
            # code that also means other things: ask the model whether the alias exists.
            if exc.error_code == INVALID_PARAMETER:
                aliases = self._aliases(name)
                if aliases is None or alias not in aliases:
                    return None
            raise self._unavailable(exc, f"read alias '{alias}' of '{name}'") from exc

    def champion(self, name: str) -> VersionInfo | None:
        return self.by_alias(name, CHAMPION)

    def get_version(self, name: str, version: str | int) -> VersionInfo:
        """One version of ``name``.

        Raises:
            UserError: no such model or version.
            RegistryUnavailableError: the registry could not be asked.
        """
        from mlflow.exceptions import MlflowException

        missing = UserError(
            f"Model '{name}' has no version {version}; see `retrainflow history {name}`."
        )
        if not str(version).isdigit():
            raise missing
        try:
            return self._info(self.client.get_model_version(name, str(version)))
        except MlflowException as exc:
            if exc.error_code == NOT_FOUND:
                raise missing from None
            raise self._unavailable(exc, f"read version {version} of '{name}'") from exc

    def _search(self, name: str, tags: dict[str, str] | None = None) -> list[VersionInfo]:
        """Versions of ``name`` whose tags equal ``tags``, oldest first (aliases not filled in)."""
        query = " AND ".join(
            [
                f"name = {search_literal(name)}",
                *(f"tags.`{k}` = {search_literal(v)}" for k, v in (tags or {}).items()),
            ]
        )
        found: list[VersionInfo] = []
        token = None
        while True:
            page = self._call(
                f"search versions of '{name}'",
                self.client.search_model_versions,
                query,
                max_results=_PAGE,
                page_token=token,
            )
            found.extend(self._info(mv) for mv in page)
            token = page.token
            if not token:
                break
        return sorted(found, key=lambda i: int(i.version))

    def _with_aliases(self, infos: list[VersionInfo], aliases: dict[str, str]) -> list[VersionInfo]:
        # search results carry no aliases in some stores: take them from the model.
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(version, []).append(alias)
        return [replace(i, aliases=sorted(by_version.get(i.version, []))) for i in infos]

    def versions(self, name: str) -> list[VersionInfo]:
        """All versions of ``name``, oldest first (empty when the model does not exist)."""
        aliases = self._aliases(name)
        if aliases is None:
            return []
        return self._with_aliases(self._search(name), aliases)

    def find(self, name: str, tags: dict[str, str]) -> list[VersionInfo]:
        """The versions of ``name`` whose tags equal ``tags`` (a registry-side search), oldest first."""
        aliases = self._aliases(name)
        if aliases is None:
            return []
        return self._with_aliases(self._search(name, tags), aliases)

    def find_by_run(self, name: str, retrain_run_id: str) -> VersionInfo | None:
        """The version registered by a retrain run (for idempotent retries)."""
        found = self.find(name, {"retrain_run_id": retrain_run_id})
        return found[-1] if found else None

    def champion_periods(
        self, name: str, versions: list[VersionInfo] | None = None
    ) -> list[ChampionPeriod]:
        """Every period any version of ``name`` served as champion, in order (oldest first).

        Args:
            versions: the model's versions if already read (saves a search).
        """
        return _sequence(self.versions(name) if versions is None else versions)

    def experiment(self, name: str) -> str:
        """The id of MLflow experiment ``name``, created (with retrainflow's artifact
        location) when it does not exist yet. Safe when several processes create it at
        once: the loser of the race finds the winner's experiment.
        """
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        try:
            return str(
                self.client.create_experiment(
                    name, artifact_location=settings.mlflow_artifact_location()
                )
            )
        except MlflowException:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    @contextmanager
    def tracking(self) -> Iterator[None]:
        """Point MLflow's fluent API (runs, ``log_model``, ``models:/`` URIs) here for a block.

        ``mlflow.set_tracking_uri`` is process-global and also exports
        ``MLFLOW_TRACKING_URI``; the caller's setting is restored afterwards, so
        using one registry never redirects another part of the process.
        """
        import mlflow

        settings.quiet_third_party()
        previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        # Public API only: whether anything (a call or the variable) chose a URI, and which.
        previous = mlflow.get_tracking_uri() if mlflow.tracking.is_tracking_uri_set() else None
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield
        finally:
            # A URI that only came from the variable is restored as the variable alone. None
            # ("not set") is accepted at run time (MLflow's own helpers restore it) though not typed.
            mlflow.set_tracking_uri(None if previous == previous_env else previous)  # type: ignore[arg-type]
            if previous_env is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_env

    def load_model(self, name: str, version: str | int) -> TabularModel:
        """The :class:`TabularModel` inside a registered pyfunc version."""
        import mlflow.pyfunc

        with self.tracking():
            loaded = self._call(
                f"load version {version} of '{name}'",
                mlflow.pyfunc.load_model,
                f"models:/{name}/{version}",
            )
        return loaded.unwrap_python_model().model

    # -- writes ------------------------------------------------------------------------
    def register(
        self, name: str, model_uri: str, run_id: str | None, tags: dict[str, str]
    ) -> VersionInfo:
        """Register ``model_uri`` as a new version of ``name`` with lineage ``tags``."""
        if not self.exists(name):
            self._call(
                f"create registered model '{name}'",
                self.client.create_registered_model,
                name,
                description=f"retrainflow pipeline '{name}'",
                tags={"retrainflow": "true"},
            )
        from mlflow.store.artifact.utils.models import _parse_model_id_if_present

        with self.tracking():  # a ``models:/<id>`` source is resolved through MLflow's global URI
            mv = self._call(
                f"register a version of '{name}'",
                self.client.create_model_version,
                name,
                source=model_uri,
                run_id=run_id,
                tags=tags,
                # A tracking server (not a local store) must be told which logged model a
                # ``models:/m-…`` source is, as ``mlflow.register_model`` does.
                model_id=_parse_model_id_if_present(model_uri),
            )
        return self._info(mv)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(
                f"tag version {version} of '{name}'",
                self.client.set_model_version_tag,
                name,
                version,
                key,
                value,
            )

    def _delete_tags(self, name: str, version: str, keys: list[str]) -> None:
        for key in keys:
            self._call(
                f"untag version {version} of '{name}'",
                self.client.delete_model_version_tag,
                name,
                version,
                key,
            )

    def set_challenger(self, name: str, version: str) -> None:
        self._call(
            f"move alias '{CHALLENGER}' of '{name}'",
            self.client.set_registered_model_alias,
            name,
            CHALLENGER,
            version,
        )

    def set_champion(
        self, name: str, version: str, *, reason: str, allow_ungated: bool = False
    ) -> str | None:
        """Move ``champion`` to ``version``; returns the previous champion's version.

        The open period of the previous champion is closed and a new one opened
        for ``version`` (both at the same second, never before the last change),
        each kept in its version's ``champion_periods`` tag; the periods of a
        registry written before that tag existed are migrated on the way.

        Raises:
            RegistryError: when the version's gate did not pass (unless
                ``allow_ungated``, used only by rollback to a former champion).
        """
        target = self.get_version(name, version)
        if not target.gate_passed and not allow_ungated:
            raise RegistryError(
                f"Version {version} of '{name}' did not pass its evaluation gate; "
                "it cannot become champion."
            )
        infos = self.versions(name)
        previous = next((i for i in infos if CHAMPION in i.aliases), None)
        if previous is not None and previous.version == target.version:
            return previous.version
        sequence = _sequence(infos)
        stamp = now_iso()
        if sequence:
            stamp = _later(
                stamp, sequence[-1].since
            )  # a clock behind the last change must not invert
        sequence = [
            p if p.until is not None else replace(p, until=_later(stamp, p.since)) for p in sequence
        ]
        sequence.append(
            ChampionPeriod(
                seq=len(sequence) + 1,
                version=target.version,
                since=stamp,
                until=None,
                reason=reason,
                previous=previous.version if previous else None,
                data_end=target.data_end,
            )
        )
        by_version: dict[str, list[dict[str, Any]]] = {}
        for period in sequence:
            by_version.setdefault(period.version, []).append(period.stored())
        for info in sorted(infos, key=lambda i: i.version == target.version):  # the target last
            periods = by_version.get(info.version)
            if periods is None:
                continue
            stored = info.stored_periods
            if stored is None or [p.stored() for p in stored] != periods:
                self.set_tags(name, info.version, {PERIODS_TAG: json.dumps(periods)})
            legacy = [k for k in LEGACY_PERIOD_TAGS if k in info.tags]
            if legacy:
                self._delete_tags(name, info.version, legacy)
        tags = {"champion_reason": reason}
        if previous is not None:
            tags["previous_champion"] = previous.version
        self.set_tags(name, target.version, tags)
        self._call(
            f"move alias '{CHAMPION}' of '{name}'",
            self.client.set_registered_model_alias,
            name,
            CHAMPION,
            target.version,
        )
        log.info(
            "champion of %s: version %s (was %s): %s",
            name,
            target.version,
            previous.version if previous else None,
            reason,
        )
        return previous.version if previous else None

    def rollback(self, name: str, to: str | None = None) -> tuple[str, str]:
        """Make an earlier version champion again; returns ``(old, new)`` versions.

        Without ``to``, goes back to the champion before the current one.

        Raises:
            RegistryError: no champion, nothing to roll back to, a target that
                is the champion already, or one that never served as champion
                and did not pass its gate.
        """
        current = self.champion(name)
        if current is None:
            raise RegistryError(f"'{name}' has no champion to roll back from.")
        if to is None:
            to = current.tags.get("previous_champion")
            if not to:
                raise RegistryError(
                    f"Champion version {current.version} of '{name}' has no previous champion; "
                    "pass --to VERSION."
                )
        target = self.get_version(name, to)
        if target.version == current.version:
            raise RegistryError(f"Version {to} of '{name}' is the champion already.")
        if not (target.gate_passed or target.served):
            raise RegistryError(
                f"Version {to} of '{name}' never passed its gate nor served as champion."
            )
        self.set_champion(
            name,
            target.version,
            reason=f"rollback from {current.version}",
            allow_ungated=target.served,
        )
        self.set_tags(name, target.version, {"rolled_back_from": current.version})
        return current.version, target.version


def _sequence(infos: list[VersionInfo]) -> list[ChampionPeriod]:
    """The champion periods of these versions (all of one model), in order.

    Periods from ``champion_periods`` tags are ordered by their ``seq``. Versions
    with only the legacy single pair of tags contribute one period each; they
    come first, ordered by ``champion_since``, and as the champion changed
    hands at one instant, each one ends where the next begins (their stored
    ``champion_until`` may belong to an earlier, overwritten period).
    """
    champions = {i.version for i in infos if CHAMPION in i.aliases}
    stored = sorted((p for i in infos for p in (i.stored_periods or [])), key=lambda p: p.seq)
    legacy = sorted(
        (i for i in infos if i.stored_periods is None and i.tags.get("champion_since")),
        key=lambda i: (datetime.fromisoformat(i.tags["champion_since"]), int(i.version)),
    )
    periods: list[ChampionPeriod] = []
    for n, info in enumerate(legacy):
        since = info.tags["champion_since"]
        following = (
            legacy[n + 1].tags["champion_since"]
            if n + 1 < len(legacy)
            else (stored[0].since if stored else None)
        )
        if following is not None:
            until: str | None = _later(following, since)
        elif info.version in champions:
            until = None
        else:
            own = info.tags.get("champion_until")
            until = _later(own, since) if own else None
        periods.append(
            ChampionPeriod(
                seq=0,
                version=info.version,
                since=since,
                until=until,
                reason=info.tags.get("champion_reason", ""),
                previous=info.tags.get("previous_champion") or None,
                data_end=info.data_end,
            )
        )
    periods.extend(stored)
    return [replace(p, seq=n) for n, p in enumerate(periods, start=1)]


HISTORY_FIELDS = (
    "version",
    "created",
    "aliases",
    "mode",
    "requested_mode",
    "mode_reason",
    "warm_method",
    "parent_version",
    "window_start",
    "window_end",
    "data_start",
    "data_end",
    "holdout_start",
    "holdout_end",
    "rows",
    "new_rows",
    "replay_rows",
    "trigger_reason",
    "gate_passed",
    "primary_metric",
    "challenger_metric",
    "champion_metric",
    "champion_at_evaluation",
    "champion_periods",
    "previous_champion",
    "train_cpu_seconds",
    "peak_rss_mb",
    "dag_run_id",
    "retrain_run_id",
    "train_fingerprint",
    "config_fingerprint",
)


_HISTORY_TYPES: dict[str, Any] = {
    "rows": int,
    "new_rows": int,
    "replay_rows": int,
    "challenger_metric": float,
    "champion_metric": float,
    "train_cpu_seconds": float,
    "peak_rss_mb": float,
}


def history(registry: Registry, name: str) -> list[dict[str, Any]]:
    """One row per version, oldest first: lineage, gate result and the periods it served as champion.

    ``champion_periods`` lists the version's periods (``seq``, ``since``,
    ``until``, ``reason``, ``previous``, ``data_end``); ``seq`` places them in
    the model's whole sequence (:meth:`Registry.champion_periods`). ``mode`` is the
    mode the run resolved to (``requested_mode``: what it was asked for, e.g. ``auto``);
    ``holdout_start``/``holdout_end`` the rows the gate scored; ``mlflow_run_id`` the
    MLflow run that logged the model.
    """
    infos = registry.versions(name)
    periods = registry.champion_periods(name, infos)
    rows = []
    for info in infos:
        row: dict[str, Any] = {k: info.tags.get(k) for k in HISTORY_FIELDS}
        for key, cast in _HISTORY_TYPES.items():
            if row.get(key) not in (None, ""):
                row[key] = cast(row[key])
        row.update(
            version=info.version,
            aliases=info.aliases,
            created=datetime.fromtimestamp(info.created / 1000, UTC).isoformat(timespec="seconds"),
            gate_passed=info.gate_passed,
            champion_periods=[p.to_dict() for p in periods if p.version == info.version],
            mlflow_run_id=info.run_id,
        )
        rows.append(row)
    return rows
