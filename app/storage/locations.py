"""``s3://bucket/key`` locations, and whether the S3 client will find credentials; nothing here
imports boto3 (the gunicorn master checks the configuration before its workers patch ssl)."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` → (bucket, prefix ending in ``/`` or empty); ValueError says why not."""
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"expected s3://bucket/prefix, got {url!r}")
    if not BUCKET.match(parts.netloc or ""):
        raise ValueError(f"{parts.netloc!r} is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
    if parts.query or parts.fragment:
        raise ValueError(f"an S3 location takes no query or fragment, got {url!r}")
    prefix = parts.path.strip("/")
    return parts.netloc, f"{prefix}/" if prefix else ""


def has_credentials(env: Mapping[str, str]) -> bool:
    """Does the environment give the S3 client credentials: keys, a profile or shared
    credentials file, a web identity (EKS) or a container endpoint (ECS)?"""
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if any(env.get(name) for name in ("AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                                      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")):
        return True
    shared = env.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.expanduser("~/.aws/credentials")
    return Path(shared).is_file()
