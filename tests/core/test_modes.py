"""The one mode resolver (issue 7, finding 1): every rule, for every caller."""

from __future__ import annotations

from datetime import date

import pytest

from retrainflow.core.modes import ChampionFacts, Mode, resolve_mode
from retrainflow.exceptions import ModeError

D = date.fromisoformat


def _champ(**kw) -> ChampionFacts:
    base = {
        "version": "7",
        "estimator": "lightgbm",
        "data_end": D("2023-02-10"),
        "warm_starts_since_full": 0,
    }
    return ChampionFacts(**{**base, **kw})


TRAIN_END = D("2023-03-01")


@pytest.mark.parametrize(
    ("requested", "champion", "kw", "expected"),
    [
        ("auto", None, {}, ("stateless", "no champion yet")),
        ("stateless", _champ(), {}, ("stateless", "requested")),
        ("auto", _champ(), {}, ("warm_start", "champion available")),
        ("auto", _champ(warm_starts_since_full=1), {}, ("warm_start", "warm start 2 of 2")),
        ("auto", _champ(warm_starts_since_full=2), {}, ("stateless", "2 warm starts")),
        ("auto", _champ(warm_starts_since_full=5), {}, ("stateless", "5 warm starts")),
        (
            "auto",
            _champ(warm_starts_since_full=5),
            {"max_warm_starts": 9},
            ("warm_start", "6 of 9"),
        ),
        ("auto", _champ(estimator="random_forest"), {}, ("stateless", "another estimator")),
        ("auto", _champ(data_end=None), {}, ("stateless", "data end is unknown")),
        ("warm_start", _champ(warm_starts_since_full=9), {}, ("warm_start", "requested")),
        ("auto", _champ(), {"schema_change": {"added": ["x"]}}, ("stateless", "schema changed")),
        ("warm_start", _champ(), {"schema_change": {"added": ["x"]}}, ("stateless", "schema")),
        ("auto", _champ(), {"drift_share": 0.9}, ("stateless", "severe drift")),
        ("auto", _champ(), {"new_rows": 10}, ("stateless", "only 10 rows")),
        ("auto", _champ(), {"new_rows": 0}, ("warm_start", "champion available")),
        ("warm_start", _champ(), {"new_rows": 10}, ("warm_start", "requested")),
        # the champion's data reaches past the training end: nothing to continue on
        ("auto", _champ(data_end=D("2023-03-05")), {}, ("stateless", "nothing new")),
        ("auto", _champ(data_end=TRAIN_END), {}, ("stateless", "nothing new")),
    ],
)
def test_resolve_mode(helpers, requested, champion, kw, expected) -> None:
    cfg = helpers.config_with()
    assert cfg.training.warm_start.max_warm_starts == 2
    decision = resolve_mode(cfg, requested, champion, train_end=TRAIN_END, **kw)
    assert decision.mode == expected[0]
    assert isinstance(decision.mode, Mode)
    assert expected[1] in decision.reason


def test_refusals_name_the_problem(helpers) -> None:
    cfg = helpers.config_with()
    with pytest.raises(ModeError, match="Run a stateless retrain first"):
        resolve_mode(cfg, "warm_start", None, train_end=TRAIN_END)
    rf = helpers.config_with({"training.estimator": "random_forest", "training.params": {}})
    with pytest.raises(ModeError, match="cannot warm start"):
        resolve_mode(rf, "warm_start", _champ(), train_end=TRAIN_END)
    assert resolve_mode(rf, "auto", _champ(), train_end=TRAIN_END).mode == "stateless"
    with pytest.raises(ModeError, match="Unknown mode 'sometimes'"):
        resolve_mode(cfg, "sometimes", _champ(), train_end=TRAIN_END)
    with pytest.raises(ModeError, match=r"data up to 2023-03-05 \(exclusive\).*ends 2023-03-01"):
        resolve_mode(cfg, "warm_start", _champ(data_end=D("2023-03-05")), train_end=TRAIN_END)


def test_before_the_data_is_read_auto_stays_auto_unless_a_champion_rule_decides(helpers) -> None:
    """The trigger policy calls the resolver without a training window."""
    cfg = helpers.config_with()
    assert resolve_mode(cfg, "auto", _champ()).mode == Mode.AUTO
    assert resolve_mode(cfg, "auto", None).mode == Mode.STATELESS
    assert resolve_mode(cfg, "auto", _champ(warm_starts_since_full=2)).mode == Mode.STATELESS
    # non-strict: an impossible warm-start request falls back instead of failing the check
    fallback = resolve_mode(cfg, "warm_start", None, strict=False)
    assert fallback.mode == Mode.STATELESS and "no champion" in fallback.reason


def test_the_mode_values_are_one_enum() -> None:
    assert [m.value for m in Mode] == ["stateless", "warm_start", "auto"]
    assert Mode("warm_start") is Mode.WARM_START and Mode.AUTO == "auto"
