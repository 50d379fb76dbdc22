"""The artifact store on a local disk and on S3 (moto's server), and the two variables
that move state out of the home: ``RETRAINFLOW_ARTIFACT_ROOT`` and ``RETRAINFLOW_LAKE_URI``.

The S3 cases run against moto's standalone server on 127.0.0.1 (the session fixtures of
``tests/data/test_sources.py``); pyarrow and boto3 find it through ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from retrainflow import artifacts, settings
from retrainflow.artifacts import ArtifactStore, StageDir
from retrainflow.config import PipelineConfig
from retrainflow.exceptions import ConfigError
from tests.data.test_sources import aws_env, s3_endpoint  # noqa: F401 (fixtures)


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")


def keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture
def bucket(
    s3_endpoint: str,  # noqa: F811 (fixture)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[str]:
    """A fresh bucket; pyarrow and boto3 reach moto through ``AWS_ENDPOINT_URL``."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    name = f"rf-art-{uuid.uuid4().hex[:12]}"
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket=name)
    yield name
    for key in keys(s3_endpoint, name):
        client.delete_object(Bucket=name, Key=key)
    client.delete_bucket(Bucket=name)


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An artifact root: a local folder, or a prefix of a fresh bucket."""
    monkeypatch.chdir(tmp_path)  # a stray relative "s3:" folder would land here
    if request.param == "local":
        return str(tmp_path / "artifacts")
    return f"s3://{request.getfixturevalue('bucket')}/some/prefix"


FRAME = pd.DataFrame(
    {
        "ts": pd.to_datetime(["2024-03-01 10:00", "2024-03-02 11:30"]),
        "x": [1.5, -2.0],
        "segment": ["a", "b"],
        "label": [0, 1],
    }
)


# -- the store ------------------------------------------------------------------------------


def test_every_stage_dir_method_round_trips(root: str, tmp_path: Path) -> None:
    store = ArtifactStore(root)
    out = store.stage("synthetic", "scheduled__2024-03-01T00:00:00+00:00", "pull")
    expected = f"{root}/synthetic/scheduled__2024-03-01T00_00_00+00_00/pull"
    assert str(out.path) == expected
    assert (
        str(store.run_dir("synthetic", "scheduled__2024-03-01T00:00:00+00:00"))
        == (expected.rsplit("/", 1)[0])
    )

    written = {
        "m.json": out.write_json("m.json", {"b": [1, 2], "a": float("nan")}),
        "r.txt": out.write_text("r.txt", "héllo\n"),
        "t.parquet": out.write_parquet("t.parquet", FRAME),
        "w.bin": out.write_with("w.bin", lambda p: p.write_bytes(b"\x00binary")),
        "raw.bin": out.write_bytes("raw.bin", b"raw"),
    }
    for name, location in written.items():
        assert str(location) == out.uri(name) == f"{expected}/{name}"
        assert out.file(name) == location
        assert out.exists(name) and artifacts.exists(location)
    assert not out.exists("missing.json")
    assert out.is_dir() and store.run("synthetic", "scheduled__2024-03-01T00:00:00+00:00").is_dir()
    assert not store.run("synthetic", "never").is_dir()

    assert out.read_json("m.json") == {"a": None, "b": [1, 2]}  # strict JSON
    assert out.read_text("r.txt") == "héllo\n"
    assert out.read_bytes("w.bin") == b"\x00binary"
    pd.testing.assert_frame_equal(out.read_parquet("t.parquet"), FRAME)
    pd.testing.assert_frame_equal(artifacts.read_parquet(str(written["t.parquet"])), FRAME)
    assert artifacts.size(written["raw.bin"]) == 3
    with out.local_copy("w.bin") as local:
        assert isinstance(local, Path) and local.name == "w.bin"
        assert local.read_bytes() == b"\x00binary"
    # a run's folder reads nested names
    run = store.run("synthetic", "scheduled__2024-03-01T00:00:00+00:00")
    assert run.read_json("pull/m.json") == {"a": None, "b": [1, 2]}
    # rewriting replaces
    out.write_json("m.json", {"again": True})
    assert out.read_json("m.json") == {"again": True}
    assert not (tmp_path / "s3:").exists()


def test_local_locations_stay_paths(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "art")
    out = store.stage("p", "r", "s")
    assert out.path == tmp_path / "art" / "p" / "r" / "s" and out.path.is_dir()
    assert out.write_json("a.json", {}) == tmp_path / "art" / "p" / "r" / "s" / "a.json"
    assert StageDir(tmp_path).file("x") == tmp_path / "x"
    # file:// is the local disk
    uri_store = ArtifactStore(f"file://{tmp_path}/art")
    assert uri_store.root == tmp_path / "art"
    assert uri_store.stage("p", "r", "s").read_json("a.json") == {}


@pytest.mark.parametrize("rewrite", [False, True])
def test_a_failing_writer_publishes_nothing(root: str, rewrite: bool) -> None:
    out = ArtifactStore(root).stage("synthetic", "r1", "train")
    if rewrite:
        out.write_bytes("model.pkl", b"old")

    def half_then_crash(path: Path) -> None:
        path.write_bytes(b"half a model")
        raise RuntimeError("crashed mid-write")

    with pytest.raises(RuntimeError, match="crashed mid-write"):
        out.write_with("model.pkl", half_then_crash)
    if rewrite:
        assert out.read_bytes("model.pkl") == b"old"
    else:
        assert not out.exists("model.pkl")
    if isinstance(out.path, Path):  # no temporary file left next to it
        assert sorted(p.name for p in out.path.iterdir()) == (["model.pkl"] if rewrite else [])

    mixed = pd.DataFrame({"a": [1, "x"]})  # an object column Parquet cannot store
    with pytest.raises((TypeError, ValueError)):
        out.write_parquet("train.parquet", mixed)
    assert not out.exists("train.parquet")


def test_s3_writes_one_object_each_and_no_local_folder(
    bucket: str,
    s3_endpoint: str,  # noqa: F811 (fixture)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    out = ArtifactStore(f"s3://{bucket}/art/").stage("synthetic", "run:1", "features")
    out.write_parquet("train.parquet", FRAME)
    out.write_with("transformer.pkl", lambda p: p.write_bytes(b"t"))
    with pytest.raises(ZeroDivisionError):
        out.write_with("crash.pkl", lambda p: 1 / 0)
    assert keys(s3_endpoint, bucket) == [
        "art/synthetic/run_1/features/train.parquet",
        "art/synthetic/run_1/features/transformer.pkl",
    ]
    assert list(tmp_path.iterdir()) == []  # the old Path("s3://...") made a folder "s3:" here


def test_a_query_string_or_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match="AWS_"):
        ArtifactStore("s3://bucket/prefix?endpoint_override=localhost:9000")
    with pytest.raises(ConfigError, match="nope://bucket"):
        ArtifactStore("nope://bucket/prefix")


# -- RETRAINFLOW_ARTIFACT_ROOT ------------------------------------------------------------------


def test_artifact_root_variable(
    synthetic_cfg: PipelineConfig,
    home: settings.Paths,
    helpers: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.delenv("RETRAINFLOW_ARTIFACT_ROOT", raising=False)
    assert synthetic_cfg.artifact_root_uri() == str(home.artifacts)

    monkeypatch.setenv("RETRAINFLOW_ARTIFACT_ROOT", "s3://team-bucket/retrainflow/")
    assert synthetic_cfg.artifact_root_uri() == "s3://team-bucket/retrainflow"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RETRAINFLOW_ARTIFACT_ROOT", "shared/art")
    assert synthetic_cfg.artifact_root_uri() == str(tmp_path / "shared" / "art")
    monkeypatch.setenv("RETRAINFLOW_ARTIFACT_ROOT", f"file://{tmp_path}/x")
    assert synthetic_cfg.artifact_root_uri() == str(tmp_path / "x")
    # the YAML's own artifact_root wins
    assert helpers.config_with(artifact_root="/elsewhere").artifact_root_uri() == "/elsewhere"

    for bad, words in (
        ("gs://bucket/x", "unsupported scheme 'gs'"),
        ("s3:///no-bucket", "names no bucket"),
        ("s3://b/p?region=eu-west-1", "query string"),
        ("file://relative/x", "absolute"),
    ):
        monkeypatch.setenv("RETRAINFLOW_ARTIFACT_ROOT", bad)
        with pytest.raises(ConfigError, match="RETRAINFLOW_ARTIFACT_ROOT") as info:
            synthetic_cfg.artifact_root_uri()
        assert words in str(info.value) and bad in str(info.value)


# -- RETRAINFLOW_LAKE_URI ----------------------------------------------------------------------


def test_lake_variable_picks_the_source(
    synthetic_cfg: PipelineConfig,
    home: settings.Paths,
    helpers: SimpleNamespace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    from retrainflow.data.s3 import S3ParquetSource
    from retrainflow.data.sources import ParquetLakeSource, make_source

    monkeypatch.delenv("RETRAINFLOW_LAKE_URI", raising=False)
    source = make_source(synthetic_cfg)
    assert isinstance(source, ParquetLakeSource) and source.root == home.lake / "synthetic"

    monkeypatch.setenv("RETRAINFLOW_LAKE_URI", str(tmp_path / "lake"))
    source = make_source(synthetic_cfg)
    assert isinstance(source, ParquetLakeSource) and source.root == tmp_path / "lake" / "synthetic"

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    monkeypatch.setenv("RETRAINFLOW_LAKE_URI", "s3://data-bucket/lakes/prod/")
    source = make_source(synthetic_cfg)
    assert isinstance(source, S3ParquetSource)
    assert (source.bucket, source.prefix) == ("data-bucket", "lakes/prod/synthetic/")
    assert (source.endpoint_url, source.region) == ("http://127.0.0.1:9", "eu-west-3")
    assert source.uri == "s3://data-bucket/lakes/prod/synthetic"
    with pytest.raises(ConfigError, match="RETRAINFLOW_LAKE_URI"):
        synthetic_cfg.source.resolved_path()  # type: ignore[union-attr]
    monkeypatch.setenv("RETRAINFLOW_LAKE_URI", "s3://data-bucket")
    assert make_source(synthetic_cfg).uri == "s3://data-bucket/synthetic"

    # an absolute path is not under the lake
    absolute = helpers.config_with(source={"kind": "parquet", "path": str(tmp_path / "abs")})
    assert make_source(absolute).root == tmp_path / "abs"  # type: ignore[attr-defined]

    monkeypatch.setenv("RETRAINFLOW_LAKE_URI", "hdfs://namenode/lake")
    with pytest.raises(ConfigError, match="RETRAINFLOW_LAKE_URI='hdfs://namenode/lake'"):
        make_source(synthetic_cfg)
    assert isinstance(make_source(absolute), ParquetLakeSource)  # the variable is not read


# -- one run's first stages on S3 ----------------------------------------------------------------


def test_pull_validate_features_train_on_s3(
    synthetic_cfg: PipelineConfig,
    home: settings.Paths,
    template_home: Path,
    helpers: SimpleNamespace,
    bucket: str,
    s3_endpoint: str,  # noqa: F811 (fixture)
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Lake and artifacts both on S3: the stages read and write nothing local."""
    from retrainflow.registry import Registry
    from retrainflow.stages import features, pull, train, validate

    client = s3_client(s3_endpoint)
    lake = settings.Paths(template_home).lake / "synthetic"
    end = date.fromisoformat(helpers.BASE_END)
    day = end - timedelta(days=40)
    while day < end:
        part = lake / f"date={day.isoformat()}" / "part-0.parquet"
        key = f"lake/synthetic/date={day.isoformat()}/part-0.parquet"
        client.put_object(Bucket=bucket, Key=key, Body=part.read_bytes())
        day += timedelta(days=1)
    shutil.rmtree(home.lake, ignore_errors=True)
    monkeypatch.setenv("RETRAINFLOW_LAKE_URI", f"s3://{bucket}/lake")
    monkeypatch.setenv("RETRAINFLOW_ARTIFACT_ROOT", f"s3://{bucket}/art")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    registry = Registry()
    ctx = helpers.context("on:s3", helpers.BASE_END, "stateless")
    pulled = pull.run(synthetic_cfg, ctx, registry=registry)
    assert pulled.source_uri == f"s3://{bucket}/lake/synthetic"
    assert pulled.train.uri == f"s3://{bucket}/art/synthetic/on_s3/pull/train.parquet"
    assert pulled.train.rows == 400 * synthetic_cfg.training.window_days
    validated = validate.run(synthetic_cfg, pulled)
    assert validated.success and validated.report_uri.startswith(f"s3://{bucket}/art/")
    feats = features.run(synthetic_cfg, pulled, registry=registry)
    trained = train.run(synthetic_cfg, pulled, feats, registry=registry)
    assert trained.model_uri == f"s3://{bucket}/art/synthetic/on_s3/train/model.pkl"
    assert hasattr(train.load_model(trained), "predict")

    assert [k.split("/", 3)[-1] for k in keys(s3_endpoint, bucket) if k.startswith("art/")] == [
        "features/manifest.json",
        "features/train.parquet",
        "features/transformer.pkl",
        "pull/holdout.parquet",
        "pull/manifest.json",
        "pull/report.json",
        "pull/train.parquet",
        "train/manifest.json",
        "train/model.pkl",
        "validate/manifest.json",
        "validate/report.json",
    ]
    run = ArtifactStore(synthetic_cfg.artifact_root_uri()).run("synthetic", "on:s3")
    assert run.read_json("pull/report.json")["success"] is True
    assert list(cwd.iterdir()) == [] and not home.artifacts.exists()
