"""Backtest strategies: configurations of the shared step logic, not code paths.

==============  ===============================================================
kind            what happens at a retrain step
==============  ===============================================================
``static``      trained once (warm-up window), never again
``stateless``   a new model on the last ``window_days`` (``None`` = all history)
``oracle``      ``stateless`` at every batch: the expensive upper reference
``warm_start``  the strategy's model continued on the rows since its data end
                (plus a replay sample), with ``warm_method``
``hybrid``      mode ``auto`` (:func:`retrainflow.core.modes.resolve_mode`, the pull
                stage's rule): warm starts, and a stateless fit when the resolver says
                so (after ``full_refit_every`` consecutive warm starts, too few new rows...)
``policy``      a monitoring check at every batch (:mod:`retrainflow.core.monitoring`);
                the trigger policy says when to retrain and in which mode (as configured)
==============  ===============================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args

from retrainflow.config import LIGHTGBM_WARM_METHODS
from retrainflow.core.modes import WARM_STARTABLE
from retrainflow.exceptions import UserError
from retrainflow.manifest import Manifest

if TYPE_CHECKING:
    from retrainflow.config import PipelineConfig

Kind = Literal["static", "stateless", "warm_start", "hybrid", "policy", "oracle"]
WarmMethod = Literal["append", "refit", "refit_append", "bounded"]  # config.WarmStartConfig.method
ReplaySource = Literal["window", "reservoir"]

#: Kinds that continue a fitted model (need a warm-startable estimator).
WARM_KINDS = frozenset({"warm_start", "hybrid"})

#: Days per batch of ``retrainflow backtest`` and :func:`~retrainflow.backtest.run_backtest`
#: by default: weekly. Daily batches (``batch_days=1``) replay a daily cadence (a daily
#: oracle, a daily monitoring check) at about seven times the cost.
DEFAULT_BATCH_DAYS = 7

#: LightGBM strategies known but left out of a default run: each was behind ``warm_refit``
#: on the metric at more training CPU on flights and flights3m (benchmarks/README.md), and
#: together they were ~40 % of a weekly flights replay's CPU. Name them (``--strategies``)
#: or ask for ``all``.
EXTRA_STRATEGIES = frozenset({"warm_replay", "warm_reservoir", "warm_refit_append"})


@dataclass(frozen=True)
class Strategy(Manifest):
    """One retraining strategy: a configuration of the shared step logic.

    Attributes:
        name: Unique name (a column of the summary and a line in the plots).
        kind: ``static``, ``stateless``, ``warm_start``, ``hybrid``, ``policy`` or ``oracle``.
        window_days: Days of a stateless fit (the warm-up fit too); ``None`` = all history.
        retrain_every: Retrain at every this many batches (``oracle``: always 1; ``static``
            and ``policy`` ignore it).
        warm_method: ``append``, ``refit``, ``refit_append`` or ``bounded`` (see module doc).
        replay_fraction: Older rows added to a warm start, as a fraction of its new rows.
        replay_days: ``replay_source: window``: days before the parent's data end to sample.
        replay_source: ``window`` (the pull stage's replay) or ``reservoir``.
        reservoir_rows: Size of the reservoir sample of all rows seen so far.
        decay_rate: ``refit``: weight of the old leaf values (0 = new rows only).
        num_boost_round: Trees added per ``append``; ``None`` = ``training.warm_start``'s.
        max_trees: ``bounded``: trees kept after a warm start; ``None`` = ``n_estimators``.
        full_refit_every: ``hybrid`` and ``policy`` in ``auto`` mode: a stateless fit after
            this many consecutive warm starts; ``None`` = ``training.warm_start.max_warm_starts``.
        gate: Hold out ``evaluation.holdout_days`` before each retrain and promote the new
            model only when it passes :func:`~retrainflow.stages.evaluate.gate` against the
            current one (as the retrain DAG does). The first model is always kept.
        policy: ``policy`` kind: overrides of the pipeline's ``monitoring.policy`` (e.g.
            ``{"cooldown_hours": 168}``), so several trigger policies compare in one run.
        description: One line for people.
    """

    name: str
    kind: Kind
    window_days: int | None = None
    retrain_every: int = 1
    warm_method: WarmMethod = "append"
    replay_fraction: float = 0.0
    replay_days: int = 60
    replay_source: ReplaySource = "window"
    reservoir_rows: int = 20_000
    decay_rate: float = 0.9
    num_boost_round: int | None = None
    max_trees: int | None = None
    full_refit_every: int | None = None
    gate: bool = False
    policy: dict[str, Any] | None = None
    description: str = ""

    strict: ClassVar[bool] = True

    def __post_init__(self) -> None:
        def bad(msg: str) -> ValueError:
            return ValueError(f"strategy {self.name!r}: {msg}")

        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise bad("name must be letters, digits, '_' or '-'")
        for attr, typ in (
            ("kind", Kind),
            ("warm_method", WarmMethod),
            ("replay_source", ReplaySource),
        ):
            if getattr(self, attr) not in get_args(typ):
                raise bad(
                    f"{attr} must be one of {list(get_args(typ))}; got {getattr(self, attr)!r}"
                )
        if self.window_days is not None and self.window_days < 1:
            raise bad("window_days must be >= 1 or None")
        if self.retrain_every < 1:
            raise bad("retrain_every must be >= 1")
        if not 0 <= self.replay_fraction <= 10:
            raise bad("replay_fraction must be within [0, 10]")
        if self.replay_days < 1 or self.reservoir_rows < 1:
            raise bad("replay_days and reservoir_rows must be >= 1")
        if not 0 <= self.decay_rate <= 1:
            raise bad("decay_rate must be within [0, 1]")
        if self.policy is not None and self.kind != "policy":
            raise bad("policy overrides need kind 'policy'")
        for attr in ("num_boost_round", "max_trees", "full_refit_every"):
            value = getattr(self, attr)
            if value is not None and value < (0 if attr == "full_refit_every" else 1):
                raise bad(f"{attr} must be positive")

    @classmethod
    def from_spec(cls, spec: Strategy | Mapping[str, Any]) -> Strategy:
        """A strategy from a mapping of its fields (unknown keys refused), or itself.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        if isinstance(spec, Strategy):
            return spec
        try:
            return cls.from_dict(dict(spec))
        except TypeError as exc:  # a required field is missing
            raise ValueError(f"strategy spec {dict(spec)!r}: {exc}") from None

    @property
    def warm(self) -> bool:
        """Whether this strategy continues fitted models (``warm_start``/``hybrid``)."""
        return self.kind in WARM_KINDS

    def replay_key(self) -> tuple[Any, ...]:
        """Equal for strategies whose replays are identical step by step, so one replay
        serves both.

        An ``oracle`` is a ``stateless`` strategy retrained at every batch: with weekly
        batches the default ``oracle`` and ``stateless_window`` are the same fits. Names
        and descriptions do not count, except where the name seeds the strategy's random
        draws (a replay sample: ``replay_fraction > 0``).
        """
        spec = self.to_dict()
        spec.pop("description")
        if self.kind == "oracle":
            spec.update(kind="stateless", retrain_every=1)
        if self.replay_fraction == 0:
            spec.pop("name")
        return tuple(sorted((k, repr(v)) for k, v in spec.items()))


def default_strategies(
    config: PipelineConfig, *, batch_days: int = DEFAULT_BATCH_DAYS, extras: bool = False
) -> list[Strategy]:
    """The strategies compared by default, sized from the pipeline's config.

    Periodic strategies retrain weekly whatever the batch size (every ``round(7 /
    batch_days)`` batches, at least 1: every 7 days for daily and weekly batches, every
    ``batch_days`` days for longer ones); their descriptions say the cadence in days. The
    oracle retrains and ``policy`` checks at every batch, so their cadence *is* the batch
    size: with weekly batches the oracle is the same fits as ``stateless_window`` (the
    engine replays them once) and the policy checks weekly; daily batches give the daily
    oracle and the monitoring DAG's daily check. Warm-start strategies are left out for
    estimators that cannot continue a fitted model, and the LightGBM-only methods for
    other estimators. For LightGBM, the :data:`EXTRA_STRATEGIES` come only with
    ``extras``.

    Args:
        config: The pipeline.
        batch_days: Days per batch (sets the weekly cadence in batches).
        extras: Include the :data:`EXTRA_STRATEGIES`.

    Returns:
        The strategies, in a stable order.
    """
    tr, ws = config.training, config.training.warm_start
    window = tr.window_days
    weekly = max(1, round(7 / batch_days))
    replay = ws.replay_fraction or 0.2
    every = f"every {weekly * batch_days} days"
    per_batch = "every day" if batch_days == 1 else f"every batch ({batch_days} days)"
    # hybrid and policy replay what the DAGs do: the pipeline's own warm-start method.
    as_configured: dict[str, Any] = {
        "warm_method": ws.method,
        "decay_rate": ws.decay_rate,
        "max_trees": ws.max_trees,
    }
    out = [
        Strategy(
            "static",
            "static",
            window_days=window,
            description=f"one fit on the first {window} days, never retrained",
        ),
        Strategy(
            "stateless_full",
            "stateless",
            window_days=None,
            retrain_every=weekly,
            description=f"stateless on all history, {every}",
        ),
        Strategy(
            "stateless_window",
            "stateless",
            window_days=window,
            retrain_every=weekly,
            description=f"stateless on the last {window} days, {every}",
        ),
    ]
    if tr.estimator in WARM_STARTABLE:
        out += [
            Strategy(
                "warm_append",
                "warm_start",
                window_days=window,
                retrain_every=weekly,
                description=f"naive warm start: trees appended on new rows only, {every}",
            ),
            Strategy(
                "warm_replay",
                "warm_start",
                window_days=window,
                retrain_every=weekly,
                replay_fraction=replay,
                replay_days=ws.replay_days,
                description=f"append on new rows + {replay:.0%} replay of the last "
                f"{ws.replay_days} days, {every}",
            ),
        ]
        if tr.estimator == "lightgbm":
            out += [
                Strategy(
                    "warm_reservoir",
                    "warm_start",
                    window_days=window,
                    retrain_every=weekly,
                    replay_fraction=max(replay, 0.5),
                    replay_source="reservoir",
                    description=f"append on new rows + replay from a reservoir sample, {every}",
                ),
                # decay 0.8: best of 0.2/0.5/0.8 on flights (weekly), where it matched the
                # 60-day stateless refit's ROC AUC at ~1/9 of its CPU.
                Strategy(
                    "warm_refit",
                    "warm_start",
                    window_days=window,
                    retrain_every=weekly,
                    warm_method="refit",
                    decay_rate=0.8,
                    description=f"leaf values refitted on new rows (decay 0.8), {every}",
                ),
                Strategy(
                    "warm_refit_append",
                    "warm_start",
                    window_days=window,
                    retrain_every=weekly,
                    warm_method="refit_append",
                    decay_rate=0.5,
                    replay_fraction=replay,
                    replay_days=ws.replay_days,
                    description=f"refit leaves (decay 0.5) + append on new rows with "
                    f"replay, {every}",
                ),
                Strategy(
                    "warm_bounded",
                    "warm_start",
                    window_days=window,
                    retrain_every=weekly,
                    warm_method="bounded",
                    decay_rate=0.5,
                    replay_fraction=replay,
                    replay_days=ws.replay_days,
                    description=f"append, keep the from-scratch trees and the newest "
                    f"(n_estimators in all), refit leaves, {every}",
                ),
            ]
        out.append(
            Strategy(
                "hybrid",
                "hybrid",
                window_days=window,
                retrain_every=weekly,
                replay_fraction=replay,
                replay_days=ws.replay_days,
                **as_configured,
                description=f"warm start with replay, full refit after "
                f"{ws.max_warm_starts} warm starts, {every} (mode auto)",
            )
        )
    out += [
        Strategy(
            "policy",
            "policy",
            window_days=window,
            gate=True,
            replay_fraction=ws.replay_fraction,
            replay_days=ws.replay_days,
            **as_configured,
            description=f"monitoring check {per_batch}; the trigger policy decides "
            "(mode as configured, gated)",
        ),
        Strategy(
            "oracle",
            "oracle",
            window_days=window,
            retrain_every=1,
            description=f"stateless on the last {window} days {per_batch}"
            + (" (= stateless_window at this batch size)" if weekly == 1 else ""),
        ),
    ]
    if extras or tr.estimator != "lightgbm":
        return out
    return [s for s in out if s.name not in EXTRA_STRATEGIES]


def select_strategies(
    config: PipelineConfig,
    names: Iterable[str] | None,
    *,
    batch_days: int = DEFAULT_BATCH_DAYS,
) -> list[Strategy]:
    """The known strategies called ``names``, in the given order: the default set for
    ``None``, every known strategy (extras included) for ``["all"]``.

    Raises:
        UserError: an unknown name (the message lists the known ones).
    """
    known = {s.name: s for s in default_strategies(config, batch_days=batch_days, extras=True)}
    if names is None:
        return default_strategies(config, batch_days=batch_days)
    names = list(names)
    if names == ["all"]:
        return list(known.values())
    out = []
    for name in names:
        if name not in known:
            raise UserError(
                f"Unknown backtest strategy '{name}' for '{config.name}'; "
                f"known: {', '.join(known)} (or all)."
            )
        out.append(known[name])
    return out


def load_strategies(path: Path | str) -> list[Strategy]:
    """Strategies from a YAML (or JSON) file: a list of specs, or ``{strategies: [...]}``.

    Each spec holds :class:`Strategy` fields, e.g. a second trigger policy::

        - {name: policy_weekly_cap, kind: policy, gate: true, policy: {max_retrains_per_week: 1}}

    Raises:
        UserError: unreadable file, wrong layout or an invalid spec (named).
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"Cannot read the strategy file {path}: {exc}") from None
    if isinstance(data, dict) and set(data) == {"strategies"}:
        data = data["strategies"]
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise UserError(
            f"{path}: expected a list of strategy mappings "
            f"(or {{strategies: [...]}}); got {type(data).__name__}"
        )
    out = []
    for i, spec in enumerate(data):
        try:
            out.append(Strategy.from_spec(spec))
        except ValueError as exc:
            raise UserError(f"{path}: strategy #{i + 1}: {exc}") from None
    return out


def strategy_config(config: PipelineConfig, s: Strategy) -> PipelineConfig:
    """The pipeline config a strategy runs with: ``config`` plus its ``full_refit_every``
    (as ``training.warm_start.max_warm_starts``) and ``policy`` overrides, validated.

    The strategy is thereby a variant of the pipeline's config, run through the same
    core functions (:mod:`retrainflow.core`) as the DAG.

    Raises:
        UserError: an invalid policy override (named).
    """
    if s.full_refit_every is not None:
        ws = config.training.warm_start.model_copy(update={"max_warm_starts": s.full_refit_every})
        config = config.model_copy(
            update={"training": config.training.model_copy(update={"warm_start": ws})}
        )
    if not s.policy:
        return config
    from pydantic import ValidationError

    base = config.monitoring.policy
    try:
        policy = type(base).model_validate({**base.model_dump(), **s.policy})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise UserError(f"strategy '{s.name}': policy override {where}: {first['msg']}") from None
    return config.model_copy(
        update={"monitoring": config.monitoring.model_copy(update={"policy": policy})}
    )


def check_strategies(config: PipelineConfig, strategies: Iterable[Strategy]) -> None:
    """Refuse strategies that cannot run on this pipeline.

    Raises:
        UserError: no strategy, duplicate names, or a warm start the estimator cannot do.
    """
    strats = list(strategies)
    names = [s.name for s in strats]
    if not strats or len(set(names)) != len(names):
        raise UserError(f"Backtest strategies must be non-empty with unique names; got {names}.")
    estimator = config.training.estimator
    for s in strats:
        if s.warm and estimator not in WARM_STARTABLE:
            raise UserError(
                f"Strategy '{s.name}' warm-starts, which estimator '{estimator}' "
                f"of '{config.name}' cannot."
            )
        if s.warm and s.warm_method in LIGHTGBM_WARM_METHODS and estimator != "lightgbm":
            raise UserError(
                f"Strategy '{s.name}': warm method '{s.warm_method}' needs "
                f"lightgbm; '{config.name}' uses '{estimator}'."
            )
