"""Manifests: the small JSON documents stages hand to each other.

Stages never pass DataFrames; they pass URIs, ids and metrics. Each manifest
is a frozen dataclass that round-trips through ``to_dict`` / ``from_dict``
(which is what travels over Airflow's XCom).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self

from retrainflow.jsonsafe import json_safe


@dataclass(frozen=True)
class Manifest:
    """Base class: JSON round-trip for flat and nested dataclass manifests.

    Subclasses name their nested manifest fields in ``nested`` (a field holding
    one manifest or a list of them), and set ``strict`` to refuse unknown keys.
    """

    nested: ClassVar[dict[str, type[Manifest]]] = {}
    strict: ClassVar[bool] = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe dict (NaN becomes None, as JSON and XCom need; see :func:`json_safe`)."""
        return json_safe(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`.

        Raises:
            TypeError: ``data`` is not a dict.
            ValueError: unknown keys, for ``strict`` manifests.
        """
        if not isinstance(data, dict):
            raise TypeError(f"{cls.__name__}.from_dict needs a dict; got {type(data).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown and cls.strict:
            raise ValueError(f"unknown key(s) for {cls.__name__}: {unknown}")
        kwargs = {}
        for name in names & set(data):
            value, sub = data[name], cls.nested.get(name)
            if sub is not None and isinstance(value, dict):
                value = sub.from_dict(value)
            elif sub is not None and isinstance(value, list):
                value = [v if isinstance(v, sub) else sub.from_dict(v) for v in value]
            kwargs[name] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class RunContext(Manifest):
    """Who asked for this run and for which point in time."""

    pipeline: str
    run_id: str
    #: Exclusive end of the data window (ISO date): data of this day is not used.
    window_end: str
    #: ``stateless`` | ``warm_start`` | ``auto`` (as requested).
    requested_mode: str = "auto"
    trigger_reason: str = "manual"
    dag_run_id: str | None = None
    #: Optional structured details from the trigger (reason codes, drift summary...).
    trigger_details: dict[str, Any] = field(default_factory=dict)
    #: How ``window_end`` was chosen (:func:`retrainflow.runs.build_context`): ``request`` (the
    #: conf named it), ``logical_date`` (a scheduled run), ``newest_data`` (a manual run without
    #: one: the day after the newest data in the source).
    window_end_from: str = "request"


@dataclass(frozen=True)
class DatasetRef(Manifest):
    """One materialized dataset of a run."""

    uri: str
    rows: int
    start: str
    end: str
    fingerprint: str


@dataclass(frozen=True)
class PullManifest(Manifest):
    """Output of the pull stage: what will be trained on and held out."""

    nested: ClassVar[dict[str, type[Manifest]]] = {
        "context": RunContext,
        "train": DatasetRef,
        "holdout": DatasetRef,
    }

    context: RunContext
    #: Resolved mode: ``stateless`` or ``warm_start``.
    mode: str
    mode_reason: str
    parent_version: str | None
    train: DatasetRef
    holdout: DatasetRef
    new_rows: int
    replay_rows: int
    schema: dict[str, str]
    schema_change: dict[str, Any] | None
    warm_starts_since_full: int
    source_uri: str
    report_uri: str
    #: What the data contract saw (:class:`retrainflow.data.contract.Findings`): warnings,
    #: duplicates dropped, unlabelled rows excluded, per dataset.
    contract: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidateManifest(Manifest):
    success: bool
    report_uri: str
    failures: int
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FeaturesManifest(Manifest):
    transformer_uri: str
    train_uri: str
    feature_names: list[str]
    categorical_features: list[str]
    #: True when the parent's fitted transformer was reused unchanged (warm start).
    frozen: bool
    rows: int


@dataclass(frozen=True)
class TrainManifest(Manifest):
    model_uri: str
    estimator: str
    mode: str
    rows: int
    train_cpu_seconds: float
    train_wall_seconds: float
    peak_rss_mb: float
    train_frame_mb: float
    model_size_kb: float
    params: dict[str, Any] = field(default_factory=dict)
    #: Process RSS (MiB) when fitting started, training frame already loaded;
    #: ``peak_rss_mb - start_rss_mb`` is what the fit itself added.
    start_rss_mb: float = 0.0
    #: LightGBM threads of the fit (None: another estimator), and why: ``configured (...)``
    #: or ``auto: ...`` (:func:`retrainflow.core.training.fit_threads`).
    fit_threads: int | None = None
    fit_threads_reason: str = ""
    #: OpenMP's wait policy in the fitting process (``PASSIVE``, ``default``...).
    omp_wait_policy: str = ""
    #: Usable CPUs; busy CPUs (this fit included) and 1/5/15-minute load averages as the
    #: ``auto`` choice saw them (None / empty for a configured number).
    cpus: int | None = None
    busy_cpus: float | None = None
    load_average: list[float] = field(default_factory=list)
    #: Where the fit ran: ``local`` or ``dask`` (``training.engine``; a warm start is always
    #: ``local``), and why (:func:`retrainflow.core.training.choose_engine`).
    engine: str = "local"
    engine_reason: str = ""
    #: ``dask``: the scheduler's address (no credentials), the workers that held rows and
    #: fitted, the lake partitions (days) of the rows and the Dask partitions they were
    #: grouped into; CPU, wall and memory above are the train task's own (the workers'
    #: are not measured).
    dask_address: str | None = None
    dask_workers: int | None = None
    dask_partitions: int | None = None
    dask_chunks: int | None = None


@dataclass(frozen=True)
class Verdict(Manifest):
    """The gate's decision: promote reads only this."""

    passed: bool
    reasons: list[str]
    primary_metric: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    champion_version: str | None
    thresholds: dict[str, Any]
    slices: dict[str, Any]
    rows: int
    report_uri: str


@dataclass(frozen=True)
class PromoteManifest(Manifest):
    version: str
    run_id: str
    champion: bool
    champion_version: str | None
    previous_champion: str | None
    awaiting_approval: bool
    model_uri: str
    #: True when an identical earlier version (same mode, training data and model configuration;
    #: same parent for a warm start) was reused instead of registering a new one;
    #: ``reused_reason`` says which and why (see ``stages.promote.identical_version``).
    reused: bool = False
    reused_reason: str | None = None
