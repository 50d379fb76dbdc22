"""The artifact store: where stages write their outputs, on a local disk or on S3.

Layout: ``<artifact_root>/<pipeline>/<run_id>/<stage>/<file>``; the root is a local
path or a URI (``s3://bucket/prefix``, ``file:///abs/path``), from the pipeline's
``artifact_root`` or ``RETRAINFLOW_ARTIFACT_ROOT`` (see :mod:`retrainflow.settings`).

Every write is write-then-publish, so a crashed task never leaves a half-written
file behind, and re-running a stage for the same run id overwrites the same
names: tasks are idempotent and retries are safe.

* Local (a plain path or ``file://``): a temporary file in the same directory, then
  ``os.replace``.
* Remote (``s3://``): the whole payload is produced first (bytes in memory; a
  writer that needs a path writes a local temporary file, read back whole), then
  sent through one output stream that is closed only after everything was written.
  With ``allow_delayed_open`` pyarrow sends a payload below its part size (10 MiB)
  as one ``PutObject`` on close, a larger one as a multipart upload that S3 publishes
  only on ``CompleteMultipartUpload``; either way readers see the old object or the
  new one. An exception before the upload (a failing writer) publishes nothing.

Why ``pyarrow.fs`` rather than fsspec: pyarrow is already a dependency (Parquet),
its ``S3FileSystem`` is in the same wheel and reads the standard ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_DEFAULT_REGION`` variables,
while fsspec's S3 needs s3fs and aiobotocore, which pins botocore narrowly against
the boto3 and MLflow pins. Options of the S3 client come from those environment
variables; a root URI takes no query string.

Manifests record file locations as strings (``str(path)`` locally, the URI on S3);
:func:`read_bytes`, :func:`read_parquet`, :func:`exists` and :func:`local_copy` read
any of them. All the store's code is here.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainflow.jsonsafe import json_safe

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow.fs as pafs

#: A file or folder of the store: a :class:`~pathlib.Path` on the local disk, a
#: ``scheme://`` URI string elsewhere (a plain string path is local too).
Location = Path | str

_SAFE = re.compile(r"[^A-Za-z0-9_.=+-]")
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://")
#: Environment variables that configure pyarrow's S3 client (part of the cache key).
_AWS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
)


def safe_name(text: str) -> str:
    """A path-safe version of a run id (Airflow run ids contain ':' and '+')."""
    return _SAFE.sub("_", text)


def is_uri(location: Location) -> bool:
    """Whether ``location`` is a ``scheme://`` URI (a :class:`Path` never is)."""
    return isinstance(location, str) and _URI.match(location) is not None


def join(location: Location, *parts: str) -> Location:
    """``location`` / ``parts``: a :class:`Path` for a local location, a URI string otherwise."""
    if is_uri(location):
        return "/".join([str(location).rstrip("/"), *(p.strip("/") for p in parts)])
    return Path(location).joinpath(*parts)


def filesystem(location: Location) -> tuple[pafs.FileSystem, str]:
    """The pyarrow file system holding ``location``, and its path on that file system.

    A plain path (``str`` or :class:`Path`) is on the local file system, unchanged;
    ``file:///abs`` too; ``s3://bucket/key`` is ``bucket/key`` on an ``S3FileSystem``
    configured from the ``AWS_*`` environment variables.

    Raises:
        ConfigError: an unsupported scheme, a query string, or a URI pyarrow refuses.
    """
    import pyarrow.fs as pafs

    if not is_uri(location):
        return pafs.LocalFileSystem(), str(location)
    uri = str(location)
    scheme, rest = uri.split("://", 1)
    if "?" in rest or "#" in rest:
        from retrainflow.exceptions import ConfigError

        raise ConfigError(
            f"The storage location {uri!r} has a query string: give S3 options through the "
            "AWS_* environment variables (AWS_ENDPOINT_URL, AWS_DEFAULT_REGION, ...) instead."
        )
    bucket, _, key = rest.partition("/")
    env = tuple(os.environ.get(v) for v in _AWS_ENV)
    fs = _filesystem_of(f"{scheme.lower()}://{bucket}", env)
    path = f"{bucket}/{key}".rstrip("/") if scheme.lower() != "file" else f"/{key}".rstrip("/")
    return fs, path or "/"


@lru_cache(maxsize=16)
def _filesystem_of(root: str, env: tuple[str | None, ...]) -> pafs.FileSystem:
    """One file system per (scheme and bucket, AWS environment): creating one costs ~10 ms."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    scheme = root.split("://", 1)[0]
    if scheme == "file":
        return pafs.LocalFileSystem()
    uri = root
    if scheme == "s3":
        # One PutObject per small object (see the module docstring); the region from the
        # environment spares a HeadBucket request to find it.
        query = ["allow_delayed_open=true"]
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            query.append(f"region={region}")
        uri = f"{root}?{'&'.join(query)}"
    try:
        fs, _ = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowException, OSError, ValueError) as exc:
        from retrainflow.exceptions import ConfigError

        raise ConfigError(f"Cannot use {root!r} as a storage location: {exc}") from None
    return fs


def _remote(location: Location) -> tuple[pafs.FileSystem, str] | None:
    """The file system and path of a remote ``location``; ``None`` when it is local."""
    if not is_uri(location):
        return None
    import pyarrow.fs as pafs

    fs, path = filesystem(location)
    return None if isinstance(fs, pafs.LocalFileSystem) else (fs, path)


def _local_path(location: Location) -> Path:
    """The :class:`Path` of a local location (``file://`` URIs included)."""
    return Path(filesystem(location)[1]) if is_uri(location) else Path(location)


# -- reading any location ------------------------------------------------------------------


def read_bytes(location: Location) -> bytes:
    """The content of a file.

    Raises:
        FileNotFoundError: there is no such file.
    """
    remote = _remote(location)
    if remote is None:
        return _local_path(location).read_bytes()
    fs, path = remote
    with fs.open_input_stream(path) as stream:
        data: bytes = stream.read()
    return data


def read_text(location: Location) -> str:
    return read_bytes(location).decode("utf-8")


def read_json(location: Location) -> Any:
    return json.loads(read_bytes(location))


def read_parquet(location: Location) -> pd.DataFrame:
    """A Parquet file as a frame (the same dtypes wherever it is stored)."""
    import pandas as pd

    remote = _remote(location)
    if remote is None:
        return pd.read_parquet(_local_path(location))
    fs, path = remote
    return pd.read_parquet(path, filesystem=fs)


def exists(location: Location) -> bool:
    """Whether ``location`` is a file."""
    remote = _remote(location)
    if remote is None:
        return _local_path(location).is_file()
    import pyarrow.fs as pafs

    fs, path = remote
    return bool(fs.get_file_info(path).type == pafs.FileType.File)


def is_dir(location: Location) -> bool:
    """Whether ``location`` is a folder (on S3: a prefix some object is under)."""
    remote = _remote(location)
    if remote is None:
        return _local_path(location).is_dir()
    import pyarrow.fs as pafs

    fs, path = remote
    return bool(fs.get_file_info(path).type == pafs.FileType.Directory)


def size(location: Location) -> int:
    """The size of a file in bytes.

    Raises:
        FileNotFoundError: there is no such file.
    """
    remote = _remote(location)
    if remote is None:
        return _local_path(location).stat().st_size
    import pyarrow.fs as pafs

    fs, path = remote
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File or info.size is None:
        raise FileNotFoundError(f"No such file: {location}")
    return int(info.size)


@contextmanager
def local_copy(location: Location) -> Iterator[Path]:
    """A local path with the content of ``location`` (for libraries that read a path).

    The file itself when it is local; else a copy with the same name in a temporary
    folder, removed on exit.
    """
    if _remote(location) is None:
        yield _local_path(location)
        return
    name = str(location).rstrip("/").rsplit("/", 1)[-1]
    folder = Path(tempfile.mkdtemp(prefix="retrainflow-"))
    try:
        copy = folder / name
        copy.write_bytes(read_bytes(location))
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- writing any location ------------------------------------------------------------------


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it into place on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _publish(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Send ``data`` whole through one stream; S3 publishes the object when it is closed."""
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def write_bytes(location: Location, data: bytes) -> Location:
    """Replace the file ``location`` with ``data`` (atomically); returns ``location``."""
    remote = _remote(location)
    if remote is None:
        with atomic_path(_local_path(location)) as tmp:
            tmp.write_bytes(data)
    else:
        _publish(*remote, data)
    return location


def write_with(location: Location, writer: Callable[[Path], object]) -> Location:
    """Write the file ``location`` with ``writer(tmp_path)`` (atomically); returns ``location``.

    On S3 the writer writes a local temporary file, which is uploaded once it returns:
    a writer that raises publishes nothing.
    """
    remote = _remote(location)
    if remote is None:
        with atomic_path(_local_path(location)) as tmp:
            writer(tmp)
        return location
    name = str(location).rstrip("/").rsplit("/", 1)[-1]
    folder = Path(tempfile.mkdtemp(prefix="retrainflow-"))
    try:
        tmp = folder / name
        writer(tmp)
        data = tmp.read_bytes()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _publish(*remote, data)
    return location


# -- the store -----------------------------------------------------------------------------


def _json_bytes(payload: Any) -> bytes:
    """Strict JSON (see :func:`~retrainflow.jsonsafe.json_safe`), UTF-8."""
    text = json.dumps(json_safe(payload), indent=2, sort_keys=True, allow_nan=False)
    return text.encode("utf-8")


@dataclass(frozen=True)
class StageDir:
    """The output folder of one stage of one run: a local directory or an S3 prefix.

    Names may contain ``/`` (``"pull/manifest.json"`` from a run's folder). Writers
    return the written file's location: a :class:`~pathlib.Path` for a local folder,
    the URI for a remote one (manifests store ``str()`` of it).
    """

    path: Location

    def file(self, name: str) -> Location:
        """The location of ``name`` (a :class:`Path` locally, else a URI)."""
        return join(self.path, name)

    def uri(self, name: str) -> str:
        """The location of ``name`` as a string, for manifests and messages."""
        return str(self.file(name))

    # writing

    def write_bytes(self, name: str, data: bytes) -> Location:
        return write_bytes(self.file(name), data)

    def write_json(self, name: str, payload: Any) -> Location:
        """Write ``payload`` as strict JSON (see :func:`~retrainflow.jsonsafe.json_safe`)."""
        return write_bytes(self.file(name), _json_bytes(payload))

    def write_text(self, name: str, text: str) -> Location:
        return write_bytes(self.file(name), text.encode("utf-8"))

    def write_parquet(self, name: str, frame: pd.DataFrame) -> Location:
        target = self.file(name)
        remote = _remote(target)
        if remote is None:
            with atomic_path(_local_path(target)) as tmp:
                frame.to_parquet(tmp, index=False)
            return target
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        _publish(*remote, buffer.getvalue())
        return target

    def write_with(self, name: str, writer: Callable[[Path], object]) -> Location:
        """Atomically write ``name`` with ``writer(tmp_path)`` (a local path, also on S3)."""
        return write_with(self.file(name), writer)

    # reading

    def read_bytes(self, name: str) -> bytes:
        return read_bytes(self.file(name))

    def read_text(self, name: str) -> str:
        return read_text(self.file(name))

    def read_json(self, name: str) -> Any:
        return read_json(self.file(name))

    def read_parquet(self, name: str) -> pd.DataFrame:
        return read_parquet(self.file(name))

    def exists(self, name: str) -> bool:
        """Whether the file ``name`` exists."""
        return exists(self.file(name))

    def is_dir(self) -> bool:
        """Whether the folder exists (has been written to)."""
        return is_dir(self.path)

    def local_copy(self, name: str) -> AbstractContextManager[Path]:
        """``with stage.local_copy(name) as path:`` a local path of ``name`` (:func:`local_copy`)."""
        return local_copy(self.file(name))


class ArtifactStore:
    """The artifact store rooted at ``root``: a local path or a URI (``s3://bucket/prefix``)."""

    def __init__(self, root: str | Path) -> None:
        # A bad URI fails here, naming it (no request, unless pyarrow must look up the
        # bucket's region: AWS_DEFAULT_REGION unset); file:// becomes a Path.
        self.root: Location = root if _remote(root) is not None else _local_path(root)

    def location(self, *parts: str) -> Location:
        """``<root>/<parts...>``."""
        return join(self.root, *parts)

    def stage(self, pipeline: str, run_id: str, stage: str) -> StageDir:
        """The output folder of ``stage`` of ``run_id`` (created on a local disk)."""
        path = self.location(pipeline, safe_name(run_id), stage)
        if isinstance(path, Path):
            path.mkdir(parents=True, exist_ok=True)
        return StageDir(path)

    def run(self, pipeline: str, run_id: str) -> StageDir:
        """The folder of one run, for reading (``run.read_json("pull/report.json")``); not created."""
        return StageDir(self.run_dir(pipeline, run_id))

    def run_dir(self, pipeline: str, run_id: str) -> Location:
        return self.location(pipeline, safe_name(run_id))
