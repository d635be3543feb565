"""The S3 client and its error vocabulary (the ground floor: imports only ``mlctl.errors``).

One client recipe (standard AWS credential chain, few retries, short timeouts, path-style
addressing for custom endpoints) and one translation of botocore failures into one-line
:class:`~mlctl.errors.MlctlError`s, shared by the S3 state backend and the S3 providers.
"""

from __future__ import annotations

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

    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        s3={"addressing_style": "path"} if endpoint_url else None,
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
        raise MlctlError(f"cannot configure AWS: {exc}") from None


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


def s3_error(exc: BaseException, what: str) -> MlctlError:
    """One clear line for a failed S3 call (credentials, network, bucket), never a traceback."""
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
        return MlctlError(f"cannot {what}: cannot reach the S3 endpoint ({exc})")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if code in _AUTH:
            return MlctlError(f"cannot {what}: {_AUTH[code]} ({code}); check your AWS credentials")
        if code == "NoSuchBucket":
            return MlctlError(f"cannot {what}: the bucket does not exist")
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        return MlctlError(f"cannot {what}: {code or http_status(exc)} {message}".rstrip())
    if isinstance(exc, BotoCoreError):
        return MlctlError(f"cannot {what}: {exc}")
    return MlctlError(f"cannot {what}: {type(exc).__name__}: {exc}")
