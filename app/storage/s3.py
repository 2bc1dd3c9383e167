"""Objects in S3-compatible storage (Amazon S3, Cloudflare R2, Backblaze B2, SeaweedFS, ...).

boto3 does the control calls (HEAD, uploads, health) and signs each ranged GET as a presigned
URL; the GET itself is ``fetch.get`` so its body can be spliced to the client. Endpoint, region
and credentials come from the client's standard environment (``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``); under gevent its
sockets (urllib3's) are cooperative.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from . import fetch
from .errors import ObjectChanged, StoreError, StoreUnavailable
from .locations import parse_url
from .objects import ObjectInfo, Progress
from .sources import EmptySource, Source

PRESIGN_SECONDS = 300  # a GET starts at once; the URL never leaves this process
PROBE_TIMEOUT = 2.0
SHA256_META = "sha256"  # x-amz-meta-sha256: the whole file's digest (a multipart ChecksumSHA256 is not)
# parts of 16 MiB (S3 allows 10,000 parts: 156 GiB; a bigger file takes bigger parts, see _transfer_config)
PART_SIZE, MAX_PARTS = 16 << 20, 10_000


def client(region: str, timeout: float = 30, attempts: int = 3) -> Any:
    """An S3 client with short timeouts; checksums only where the API requires them (R2, B2 and
    SeaweedFS refuse some of the newer default ones)."""
    config = BotoConfig(
        region_name=region,
        signature_version="s3v4",
        connect_timeout=min(5, timeout),
        read_timeout=timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", config=config)


def _failure(exc: Exception, what: str) -> Exception:
    """The error an operator or client sees for a failed control call."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = exc.response.get("Error", {}).get("Code", "")
        if status == 404 or code in ("NoSuchKey", "NotFound", "NoSuchBucket"):
            return StoreError(f"{what}: no such object.")
        if status == 403:
            return StoreError(f"{what}: access denied (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")
        if status is not None and status < 500:
            return StoreError(f"{what}: the store refused it ({code or status}).")
    return StoreUnavailable(f"The file store is unavailable ({what}: {type(exc).__name__}).")


def _transfer_config(size: int) -> TransferConfig:
    """Multipart above one part, in parts small enough to retry and few enough for S3's limit."""
    part = max(PART_SIZE, -(-size // MAX_PARTS))
    return TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)


class _Hashing:
    """A file read once, in order, hashed as the upload reads it (no ``seek``: boto3 reads it
    sequentially)."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        block = self.fh.read(size)
        self.digest.update(block)
        return block


class S3Store:
    kind = "s3"

    def __init__(self, url: str, region: str) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.client = client(region)
        self.probe = client(region, timeout=PROBE_TIMEOUT, attempts=1)  # /healthz answers within seconds

    def _split(self, location: str) -> tuple[str, str]:
        bucket, key = parse_url(location)
        return bucket, key.rstrip("/")

    def location(self, given: str) -> str:
        """``s3://bucket/key`` as given, or a key under FILES_URL's prefix."""
        if "://" not in given:
            given = f"s3://{self.bucket}/{self.prefix}{given.lstrip('/')}"
        try:
            bucket, key = self._split(given)
        except ValueError as exc:
            raise StoreError(f"Not an object location: {exc}.") from exc
        if not key:
            raise StoreError(f"{given} names a bucket, not an object.")
        return f"s3://{bucket}/{key}"

    def describe(self, location: str) -> ObjectInfo:
        bucket, key = self._split(location)
        try:
            head = self.client.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _failure(exc, location) from exc
        return ObjectInfo(location, head["ContentLength"], head["LastModified"], head["ETag"],
                          head.get("Metadata", {}).get(SHA256_META))

    def open(self, location: str, start: int, end: int, etag: str | None) -> Source:
        if start >= end:
            return EmptySource()
        bucket, key = self._split(location)
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGN_SECONDS)
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if etag:
            headers["If-Match"] = etag
        reply = fetch.get(url, headers)
        if reply.status in (404, 412, 416):
            raise ObjectChanged("The stored object was deleted or replaced since it was registered.")
        if reply.body is None:
            raise StoreUnavailable(f"The file store answered {reply.status} to a read.")
        span = reply.headers.get("content-range", "")
        if reply.status != 206 or not span.startswith(f"bytes {start}-{end - 1}/"):
            reply.body.close()
            raise StoreUnavailable(f"The file store answered a range read with {reply.status} {span!r}.")
        return reply.body

    def upload(self, path: str, name: str, progress: Progress) -> ObjectInfo:
        """Hash ``path``, then upload it with the digest in its metadata, hashing what is sent:
        metadata is fixed when an upload starts, and a file changed meanwhile is not kept."""
        location = self.location(name)
        bucket, key = self._split(location)
        try:
            self.describe(location)
        except StoreError:
            pass
        else:
            raise StoreError(f"{location} already exists; register it with files add.")
        expected, size = hashlib.sha256(), os.path.getsize(path)
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                expected.update(block)
        sha256 = expected.hexdigest()
        with open(path, "rb") as fh:
            reader = _Hashing(fh)
            try:
                self.client.upload_fileobj(reader, bucket, key, Config=_transfer_config(size), Callback=progress,
                                           ExtraArgs={"Metadata": {SHA256_META: sha256}})
            except (ClientError, BotoCoreError) as exc:
                raise _failure(exc, location) from exc
        if reader.digest.hexdigest() != sha256:
            self.client.delete_object(Bucket=bucket, Key=key)
            raise StoreError(f"{path} changed while it was uploaded; nothing was kept.")
        return self.describe(location)

    def check(self) -> None:
        try:
            self.probe.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StoreUnavailable(f"The file store does not answer: {type(exc).__name__}.") from exc
