"""The one seam to the MLflow model registry.

Every read and write of registered models goes through :class:`Registry`, a
thin layer over :class:`mlflow.MlflowClient`. It owns the rules the platform
promises:

* the alias ``challenger`` points at the newest registered candidate;
* the alias ``champion`` only ever points at a version whose gate passed
  (``gate_passed=true``) — never two champions, never an ungated one;
* each champion change is recorded in version tags (``champion_since``,
  ``champion_until``, ``previous_champion``), so ``history`` can tell which
  version served when and ``rollback`` needs one command.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from retrainflow import settings
from retrainflow.exceptions import RegistryError, UserError

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from retrainflow.model import TabularModel

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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

            self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return self._client

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

    def exists(self, name: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
            return True
        except MlflowException:
            return False

    def by_alias(self, name: str, alias: str) -> VersionInfo | None:
        """The version behind ``alias``, or None when the model or alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version_by_alias(name, alias))
        except MlflowException:
            return None

    def champion(self, name: str) -> VersionInfo | None:
        return self.by_alias(name, CHAMPION)

    def get_version(self, name: str, version: str | int) -> VersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            return self._info(self.client.get_model_version(name, str(version)))
        except MlflowException:
            raise UserError(
                f"Model '{name}' has no version {version}; see `retrainflow history {name}`."
            ) from None

    def versions(self, name: str) -> list[VersionInfo]:
        """All versions of ``name``, oldest first (empty when the model does not exist)."""
        if not self.exists(name):
            return []
        found = self.client.search_model_versions(f"name = '{name}'", max_results=10_000)
        infos = [self._info(mv) for mv in found]
        # search results carry no aliases in some stores: take them from the model.
        aliases: dict[str, list[str]] = {}
        for alias, version in (self.client.get_registered_model(name).aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        infos = [
            VersionInfo(**{**i.__dict__, "aliases": sorted(aliases.get(i.version, []))}) for i in infos
        ]
        return sorted(infos, key=lambda i: int(i.version))

    def find_by_run(self, name: str, retrain_run_id: str) -> VersionInfo | None:
        """The version registered by a retrain run (for idempotent retries)."""
        for info in self.versions(name):
            if info.tags.get("retrain_run_id") == retrain_run_id:
                return info
        return None

    @contextmanager
    def tracking(self) -> Iterator[None]:
        """Point MLflow's fluent API (runs, ``log_model``, ``models:/`` URIs) here for a block.

        ``mlflow.set_tracking_uri`` is process-global and also exports
        ``MLFLOW_TRACKING_URI``; the caller's setting is restored afterwards, so
        using one registry never redirects another part of the process.
        """
        import mlflow
        from mlflow.tracking._tracking_service import utils as tracking_utils

        settings.quiet_third_party()
        previous = getattr(tracking_utils, "_tracking_uri", None)
        previous_env = os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(self.tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(previous)
            if previous_env is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_env

    def load_model(self, name: str, version: str | int) -> TabularModel:
        """The :class:`TabularModel` inside a registered pyfunc version."""
        import mlflow.pyfunc

        with self.tracking():
            loaded = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        return loaded.unwrap_python_model().model

    # -- writes ------------------------------------------------------------------------
    def register(self, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> VersionInfo:
        """Register ``model_uri`` as a new version of ``name`` with lineage ``tags``."""
        if not self.exists(name):
            self.client.create_registered_model(
                name, description=f"retrainflow pipeline '{name}'", tags={"retrainflow": "true"}
            )
        with self.tracking():  # a ``models:/<id>`` source is resolved through MLflow's global URI
            mv = self.client.create_model_version(name, source=model_uri, run_id=run_id, tags=tags)
        return self._info(mv)

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, version, key, value)

    def set_challenger(self, name: str, version: str) -> None:
        self.client.set_registered_model_alias(name, CHALLENGER, version)

    def set_champion(self, name: str, version: str, *, reason: str, allow_ungated: bool = False) -> str | None:
        """Move ``champion`` to ``version``; returns the previous champion's version.

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
        previous = self.champion(name)
        if previous is not None and previous.version == target.version:
            return previous.version
        stamp = now_iso()
        if previous is not None:
            self.set_tags(name, previous.version, {"champion_until": stamp})
        tags = {"champion_since": stamp, "champion_reason": reason}
        if previous is not None:
            tags["previous_champion"] = previous.version
        self.set_tags(name, target.version, tags)
        self.client.set_registered_model_alias(name, CHAMPION, target.version)
        log.info("champion of %s: version %s (was %s): %s", name, target.version,
                 previous.version if previous else None, reason)
        return previous.version if previous else None

    def rollback(self, name: str, to: str | None = None) -> tuple[str, str]:
        """Make an earlier version champion again; returns ``(old, new)`` versions.

        Without ``to``, goes back to the champion before the current one.

        Raises:
            RegistryError: no champion, nothing to roll back to, or a target
                that never served as champion and did not pass its gate.
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
        served = "champion_since" in target.tags
        if not (target.gate_passed or served):
            raise RegistryError(
                f"Version {to} of '{name}' never passed its gate nor served as champion."
            )
        self.set_champion(name, target.version, reason=f"rollback from {current.version}",
                          allow_ungated=served)
        self.set_tags(name, target.version, {"rolled_back_from": current.version})
        return current.version, target.version


HISTORY_FIELDS = (
    "version", "created", "aliases", "mode", "warm_method", "parent_version", "window_start",
    "window_end", "data_start", "data_end", "rows", "new_rows", "replay_rows", "trigger_reason",
    "gate_passed", "primary_metric", "challenger_metric", "champion_metric", "champion_since", "champion_until",
    "previous_champion", "train_cpu_seconds", "peak_rss_mb", "dag_run_id", "train_fingerprint",
)


_HISTORY_TYPES: dict[str, Any] = {
    "rows": int, "new_rows": int, "replay_rows": int, "challenger_metric": float,
    "champion_metric": float, "train_cpu_seconds": float, "peak_rss_mb": float,
}


def history(registry: Registry, name: str) -> list[dict[str, Any]]:
    """One row per version, oldest first: lineage, gate result and when it served as champion."""
    rows = []
    for info in registry.versions(name):
        row: dict[str, Any] = {k: info.tags.get(k) for k in HISTORY_FIELDS}
        for key, cast in _HISTORY_TYPES.items():
            if row.get(key) not in (None, ""):
                row[key] = cast(row[key])
        row.update(version=info.version, aliases=info.aliases,
                   created=datetime.fromtimestamp(info.created / 1000, UTC).isoformat(timespec="seconds"),
                   gate_passed=info.gate_passed)
        rows.append(row)
    return rows
