"""The S3 client and its error vocabulary (the ground floor: imports only ``mlctl.errors``).

One client recipe (standard AWS credential chain, few retries, short timeouts, path-style
addressing for custom endpoints) and one translation of botocore failures into one-line
:class:`~mlctl.errors.MlctlError`s, shared by the S3 state backend and the S3 providers.

:func:`s3_error` never repeats what botocore or the server put into an exception's text (which
carries endpoint URLs, presigned query strings, object keys and parameter values): it says what
failed in its own words, from the error code, plus the caller's ``what``, which names only
configuration a reviewer can read in the repository (``${VAR}`` is refused in every S3
address: bucket, key, prefix, endpoint_url, s3:// dataset paths).
"""

from __future__ import annotations

import os
import re
from typing import Any

from mlctl.errors import MlctlError

LOST_RACE = {"412", "409", "PreconditionFailed", "ConditionalRequestConflict", "OperationAborted"}
MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}


def s3_client(
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
) -> Any:
    """An S3 client from the standard AWS credential chain (few retries, short timeouts).

    Built on botocore directly (boto3's resource layer is not needed and costs import time).
    """
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    custom = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        s3={"addressing_style": "path"} if custom else None,
        signature_version="s3v4",
    )
    try:
        session = botocore.session.Session(profile=profile)
        return session.create_client(
            "s3",
            region_name=region or session.get_config_variable("region") or "us-east-1",
            endpoint_url=endpoint_url,
            config=config,
        )
    except ProfileNotFound:
        raise MlctlError(f"AWS profile '{profile}' is not configured (~/.aws/config)") from None
    except BotoCoreError as exc:
        raise MlctlError(f"cannot configure AWS: {_described(exc)}") from None


def error_code(exc: BaseException) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return 0
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_missing(exc: BaseException) -> bool:
    return error_code(exc) in MISSING or http_status(exc) == 404


def is_lost_race(exc: BaseException) -> bool:
    return error_code(exc) in LOST_RACE or http_status(exc) in (409, 412)


_AUTH = {
    "InvalidAccessKeyId": "the access key is not known to the server",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "AccessDenied": "access denied",
    "ExpiredToken": "the session token has expired",
    "InvalidToken": "the session token is invalid",
    "AllAccessDisabled": "access to the bucket is disabled",
}


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_WORDS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _described(exc: BaseException) -> str:
    """What kind of failure ``exc`` is, in words, without the values botocore put in its text."""
    name = type(exc).__name__.removesuffix("Error")
    words = _WORDS.sub(" ", name).lower() or "error"
    detail = _QUOTED.sub("…", _URL.sub("<url>", str(exc).splitlines()[0] if str(exc) else ""))
    if not detail or "<url>" in detail or len(detail) > 160:
        return words
    return f"{words}: {detail}"


def s3_error(exc: BaseException, what: str) -> MlctlError:
    """One clear line for a failed S3 call (credentials, network, bucket), never a traceback,
    and never a URL, key or value copied from the exception (see the module docstring)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return MlctlError(
            f"cannot {what}: no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "AWS_PROFILE or the backend's profile)"
        )
    if isinstance(exc, EndpointConnectionError):
        return MlctlError(f"cannot {what}: cannot reach the S3 endpoint (connection failed)")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in _AUTH:
            return MlctlError(f"cannot {what}: {_AUTH[code]} ({code}); check your AWS credentials")
        if code == "NoSuchBucket":
            return MlctlError(f"cannot {what}: the bucket does not exist")
        status = http_status(exc)
        return MlctlError(
            f"cannot {what}: the server answered {code or 'an error'}"
            + (f" (HTTP {status})" if status else "")
        )
    if isinstance(exc, BotoCoreError):
        return MlctlError(f"cannot {what}: {_described(exc)}")
    return MlctlError(f"cannot {what}: {type(exc).__name__}")
