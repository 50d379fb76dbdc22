"""Day-partitioned Parquet in an S3 bucket (or any S3-compatible store).

The layout is the one of :class:`~retrainflow.data.sources.ParquetLakeSource`
under a key prefix: ``s3://<bucket>/<prefix>/date=YYYY-MM-DD/part-0.parquet``.
Credentials come from the standard AWS chain (environment, shared config,
instance profile); ``endpoint_url`` points the client at MinIO, moto or another
S3-compatible server.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrainflow.data.sources import (
    PART_FILE,
    PARTITION_RE,
    RESERVED_PREFIXES,
    Part,
    Source,
    parquet_bytes,
    parse_partition,
    partition_name,
    read_parquet,
)
from retrainflow.exceptions import DataError

if TYPE_CHECKING:
    import pandas as pd

_KEY_DAY_RE = re.compile(r"^(date=[^/]*)/([^/]+)$")

#: S3 error codes that mean "this bucket does not exist".
_NO_BUCKET_CODES = frozenset({"NoSuchBucket", "404", "NotFound"})
#: S3 error codes that mean "the credentials may not touch this bucket".
_DENIED_CODES = frozenset(
    {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
)


def _normalize_prefix(prefix: str) -> str:
    """``prefix`` without a leading slash and with exactly one trailing slash (or empty)."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


class S3ParquetSource(Source):
    """Parquet partitions ``<prefix>/date=YYYY-MM-DD/part-0.parquet`` in an S3 bucket.

    Each partition is written with a single ``PutObject``, so readers see either
    the old or the new file, never a partial one.
    """

    #: Keys per ``ListObjectsV2`` page (S3's maximum is 1000); lowered in tests.
    list_page_size: int = 1000

    def __init__(
        self,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        region: str,
        time_column: str,
    ) -> None:
        """Describe the bucket; no request is made until data is listed, read or written.

        Args:
            bucket: Name of the bucket.
            prefix: Key prefix of the partitions (``""`` for the bucket root); leading
                and trailing slashes are ignored.
            endpoint_url: URL of an S3-compatible endpoint; ``None`` means AWS.
            region: Region name used to sign requests.
            time_column: Column whose calendar day partitions the rows.
        """
        super().__init__(time_column)
        self.bucket = bucket
        self.prefix = _normalize_prefix(prefix)
        self.endpoint_url = endpoint_url
        self.region = region
        self._client: Any = None

    # -- plumbing -----------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """``s3://bucket/prefix`` (without a trailing slash)."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def client(self) -> Any:
        """The boto3 S3 client, created on first use."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            # Path-style addressing: S3-compatible servers on an IP or localhost cannot serve
            # virtual-host buckets.
            config = Config(
                s3={"addressing_style": "path"} if self.endpoint_url else {},
                retries={"mode": "standard", "max_attempts": 3},
                # An endpoint that swallows packets fails a task in ~30 s, not botocore's
                # 60 s per attempt; a partition of a few MB reads well within 60 s.
                connect_timeout=10,
                read_timeout=60,
            )
            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
            )
        return self._client

    def _object_uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _partition_prefix(self, day: date) -> str:
        return f"{self.prefix}{partition_name(day)}/"

    def _translate(self, exc: Exception, action: str) -> DataError:
        """A :class:`DataError` for a boto3/botocore failure while doing ``action``.

        Args:
            exc: The exception boto3 raised.
            action: What was being done, e.g. ``"list s3://b/p"``.

        Returns:
            The error to raise in its place.
        """
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _NO_BUCKET_CODES:
                return DataError(
                    f"The S3 bucket '{self.bucket}' does not exist{where}. Create it or fix "
                    f"'source.bucket' in the pipeline config.",
                    bucket=self.bucket,
                )
            if code in _DENIED_CODES:
                return DataError(
                    f"Access to the S3 bucket '{self.bucket}'{where} was denied ({code}) while "
                    f"trying to {action}. Check the AWS credentials.",
                    bucket=self.bucket,
                )
            return DataError(f"S3 refused to {action} ({code}: {exc}).", bucket=self.bucket)
        if isinstance(exc, NoCredentialsError):
            return DataError(
                f"No AWS credentials found to {action}. Set AWS_ACCESS_KEY_ID / "
                f"AWS_SECRET_ACCESS_KEY or configure a profile.",
                bucket=self.bucket,
            )
        if isinstance(exc, EndpointConnectionError):
            return DataError(
                f"Cannot reach the S3 endpoint{where or ' of AWS'} to {action}: {exc}",
                bucket=self.bucket,
            )
        return DataError(f"Cannot {action}: {type(exc).__name__}: {exc}", bucket=self.bucket)

    def _list_keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` (paginated).

        Raises:
            DataError: The bucket is missing, access is denied or the endpoint is unreachable.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        keys: list[str] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(
                Bucket=self.bucket,
                Prefix=prefix,
                PaginationConfig={"PageSize": self.list_page_size},
            ):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, f"list {self._object_uri(prefix)}") from exc
        return keys

    def _parquet_keys_by_day(self) -> dict[date, list[str]]:
        """Parquet object keys of every partition, sorted within each day.

        Raises:
            InvalidPartitionError: A ``date=...`` prefix is not a valid date.
        """
        out: dict[date, list[str]] = {}
        for key in self._list_keys(f"{self.prefix}date="):
            m = _KEY_DAY_RE.match(key[len(self.prefix) :])
            if m and m.group(2).endswith(".parquet"):
                day = parse_partition(m.group(1), self.uri)
                assert day is not None  # the key starts with date=
                out.setdefault(day, []).append(key)
        return {day: sorted(keys) for day, keys in out.items()}

    # -- Source API ---------------------------------------------------------------------------

    def partitions(self) -> list[date]:
        """The days that hold at least one Parquet object, sorted.

        Returns:
            Sorted days; empty when the prefix holds no partitions.

        Raises:
            DataError: The bucket does not exist or cannot be listed.
        """
        return sorted(self._parquet_keys_by_day())

    def read_days(self, days: list[date]) -> pd.DataFrame:
        """Rows of ``days``, concatenated in the order given.

        Args:
            days: Days to read; days without objects contribute no rows.

        Returns:
            The rows, with the dtypes stored in the Parquet files; an empty frame
            when no object was found.

        Raises:
            CorruptDataError: An object is not readable Parquet (names its ``s3://`` URI).
            DataError: The bucket cannot be listed or an object cannot be fetched.
        """
        import pandas as pd

        frames = [part.frame for part in self.read_parts(days)]
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)

    def read_parts(self, days: list[date]) -> list[Part]:
        """Each Parquet object of ``days``, in day and key order.

        Raises:
            CorruptDataError: An object is not readable Parquet (names its ``s3://`` URI).
            DataError: The bucket cannot be listed or an object cannot be fetched.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        by_day = self._parquet_keys_by_day()
        parts = []
        for day in days:
            for key in by_day.get(day, []):
                uri = self._object_uri(key)
                try:
                    body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                except (ClientError, BotoCoreError) as exc:
                    raise self._translate(exc, f"read {uri}") from exc
                parts.append(Part(day, uri, read_parquet(body, uri=uri, day=day)))
        return parts

    def unknown_entries(self) -> list[str]:
        """Keys under the prefix that are neither ``date=YYYY-MM-DD/*.parquet`` nor reserved.

        Raises:
            DataError: The bucket cannot be listed.
        """
        out: set[str] = set()
        for key in self._list_keys(self.prefix):
            parts = key[len(self.prefix) :].split("/")
            if not parts[0] or parts[0].startswith(RESERVED_PREFIXES):
                continue
            if not PARTITION_RE.match(parts[0]) or len(parts) == 1:
                out.add(parts[0] + ("/" if len(parts) > 1 else ""))
            elif len(parts) > 2:
                out.add(f"{parts[0]}/{parts[1]}/")
            elif parts[1] and not (  # "": a console's folder marker
                parts[1].startswith(RESERVED_PREFIXES) or parts[1].endswith(".parquet")
            ):
                out.add(f"{parts[0]}/{parts[1]}")
        return sorted(out)

    def write_partition(self, day: date, frame: pd.DataFrame) -> None:
        """Write (or replace) one day as ``date=YYYY-MM-DD/part-0.parquet``.

        The new object is put in one request (atomic); any other object left in the
        partition (e.g. ``part-1.parquet`` from another writer) is deleted afterwards
        so the partition holds exactly ``frame``.

        Args:
            day: The partition's day.
            frame: Its rows.

        Raises:
            DataError: The bucket is missing or the object cannot be written.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = self._partition_prefix(day)
        key = f"{prefix}{PART_FILE}"
        data = parquet_bytes(frame)
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, f"write {self._object_uri(key)}") from exc
        self._delete_others(prefix, key)

    def write_partition_file(self, day: date, path: Path) -> None:
        """Upload the local Parquet file ``path`` as the day's only object, then delete it.

        Large files go up in parts; S3 shows the object only once the upload is
        complete, so readers see either the old or the new partition.

        Raises:
            DataError: The bucket is missing or the object cannot be written.
        """
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = self._partition_prefix(day)
        key = f"{prefix}{PART_FILE}"
        try:
            self.client.upload_file(str(path), self.bucket, key)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._translate(exc, f"write {self._object_uri(key)}") from exc
        self._delete_others(prefix, key)
        path.unlink()

    def _delete_others(self, prefix: str, key: str) -> None:
        """Delete every object under ``prefix`` except ``key``."""
        from botocore.exceptions import BotoCoreError, ClientError

        stale = [k for k in self._list_keys(prefix) if k != key]
        for start in range(0, len(stale), 1000):  # DeleteObjects takes at most 1000 keys
            batch = stale[start : start + 1000]
            try:
                self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            except (ClientError, BotoCoreError) as exc:
                raise self._translate(exc, f"clean up {self._object_uri(prefix)}") from exc
