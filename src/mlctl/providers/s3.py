"""The S3 provider: model artifacts in a bucket, and datasets read from ``s3://`` paths.

Artifacts are stored under ``s3://<bucket>/<prefix>/<env>/<MODEL>/<RUN_ID>/model.joblib``
(the run ID, unique per training, names the version's folder: the version number is given
only at registration, after the upload). Every upload sends its sha256 as
``ChecksumSHA256``, so the server verifies the bytes it received and keeps the checksum;
:meth:`S3ArtifactStore.health` compares that checksum (a HEAD, no download) with the state.
:meth:`S3ArtifactStore.fetch` downloads into a local cache keyed by sha256
(``<repo>/.mlctl/cache/sha256/ab/abcd...``), verifies the bytes, and only then hands out the
path: nothing unverified is ever loaded, and a cached artifact is never downloaded twice.

Datasets at ``s3://bucket/key``: :func:`s3_fingerprint` is a HEAD (ETag and size), never a
download, so ``plan`` stays cheap; :func:`s3_download` fetches the object for training and
data checks into a cache keyed by its ETag. Only buckets the configuration names (an S3
provider, the S3 state backend) may be read.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import IO, Any

from mlctl.errors import MlctlError
from mlctl.files import CHUNK, atomic_target, sha256_file
from mlctl.providers.base import ArtifactHealth, refuse_unless_intact
from mlctl.s3client import is_lost_race, is_missing, s3_client, s3_error
from mlctl.state.document import Artifact


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; MlctlError when malformed."""
    if not url.startswith("s3://"):
        raise MlctlError(f"{url} is not an s3:// URL")
    bucket, _, key = url[5:].partition("/")
    if not bucket or not key:
        raise MlctlError(f"{url} must look like s3://bucket/key")
    return bucket, key


def _b64_sha256(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def _hex_sha256(b64: str) -> str | None:
    try:
        return base64.b64decode(b64).hex()
    except (ValueError, TypeError):
        return None


class S3ArtifactStore:
    """Artifacts in a bucket (``providers/<name>.yaml: {type: s3, bucket, prefix, endpoint_url}``)."""

    def __init__(
        self,
        repo: Path,
        bucket: str,
        prefix: str,
        environment: str,
        *,
        cache_root: Path | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        client: Any = None,
    ) -> None:
        self.repo = repo
        self.bucket = bucket
        self.prefix = "/".join(p for p in (prefix.strip("/"), environment) if p)
        self.environment = environment
        self.cache = cache_root if cache_root is not None else repo / ".mlctl" / "cache" / "sha256"
        self.region = region
        self.endpoint_url = endpoint_url
        self.profile = profile
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client(region=self.region, endpoint_url=self.endpoint_url, profile=self.profile)
        return self._client

    def _key_of(self, uri: str) -> str:
        bucket, key = split_s3_url(uri)
        if bucket != self.bucket:
            raise MlctlError(f"artifact {uri} is not in this store's bucket {self.bucket}")
        return key

    def put(self, source: Path, key: str) -> Artifact:
        """Upload ``source`` to ``<prefix>/<env>/<key>``; the server verifies its sha256."""
        with source.open("rb") as body:
            return self._upload(body, key, sha256_file(source), source.stat().st_size)

    def put_bytes(self, data: bytes, key: str) -> Artifact:
        """Upload ``data`` (a small plain object) like :meth:`put`: one PUT, whole or not at all."""
        return self._upload(data, key, hashlib.sha256(data).hexdigest(), len(data))

    def _upload(self, body: IO[bytes] | bytes, key: str, digest: str, size: int) -> Artifact:
        from botocore.exceptions import BotoCoreError, ClientError

        object_key = self.object_key(key)
        uri = f"s3://{self.bucket}/{object_key}"
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=object_key,
                Body=body,
                ChecksumSHA256=_b64_sha256(digest),
                Metadata={"sha256": digest},
            )
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, f"upload artifact {uri}") from None
        return Artifact(uri=uri, sha256=digest, size=size)

    def object_key(self, key: str) -> str:
        """The bucket key of a store-relative ``key`` (under the store's prefix)."""
        return f"{self.prefix}/{key}" if self.prefix else key

    def get_bytes(self, key: str) -> bytes | None:
        """The plain object stored under ``key`` (manifests, results), or None if absent."""
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"read s3://{self.bucket}/{self.object_key(key)}"
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
            data: bytes = response["Body"].read()
            return data
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise s3_error(exc, where) from None
        except BotoCoreError as exc:
            raise s3_error(exc, where) from None

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; an absent object is not an error."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except (ClientError, BotoCoreError) as exc:
            raise s3_error(exc, f"delete s3://{self.bucket}/{self.object_key(key)}") from None

    def _head(self, uri: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = self.client.head_object(
                Bucket=self.bucket, Key=self._key_of(uri), ChecksumMode="ENABLED"
            )
            return response
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise s3_error(exc, f"check artifact {uri}") from None
        except BotoCoreError as exc:
            raise s3_error(exc, f"check artifact {uri}") from None

    def health(self, artifact: Artifact, *, deep: bool = False) -> ArtifactHealth:
        """A HEAD: missing, or tampered when size or the stored sha256 differ from state.

        The checksum a HEAD returns was computed and verified by the server at upload, so it
        changes with any overwrite; when the server keeps none, ``deep`` downloads and hashes
        the bytes (into the cache, so a later fetch is free), otherwise the sha256 metadata
        written at upload is compared. An object with neither was not written by mlctl.
        """
        head = self._head(artifact.uri)
        if head is None:
            return "missing"
        if int(head.get("ContentLength", -1)) != artifact.size:
            return "tampered"
        stored = head.get("ChecksumSHA256")
        hex_digest = _hex_sha256(stored) if stored and "-" not in stored else None
        if hex_digest is None and deep:
            try:
                self.fetch(artifact)
            except MlctlError:
                return "tampered"
            return "ok"
        if hex_digest is None:
            hex_digest = head.get("Metadata", {}).get("sha256")
        # mlctl always uploads with both a checksum and sha256 metadata: an object carrying
        # neither was overwritten by something else.
        if hex_digest is None or hex_digest != artifact.sha256:
            return "tampered"
        return "ok"

    def cached_path(self, sha256: str) -> Path:
        return self.cache / sha256[:2] / sha256

    def fetch(self, artifact: Artifact) -> Path:
        """The artifact's verified local copy (downloaded once, cached by sha256)."""
        from botocore.exceptions import BotoCoreError, ClientError

        target = self.cached_path(artifact.sha256)
        if target.is_file() and sha256_file(target) == artifact.sha256:
            return target
        with atomic_target(target) as out:  # raising inside leaves no file at target
            digest = hashlib.sha256()
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key_of(artifact.uri))
                for chunk in response["Body"].iter_chunks(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            except ClientError as exc:
                if is_missing(exc):
                    refuse_unless_intact(artifact, "missing")
                raise s3_error(exc, f"download artifact {artifact.uri}") from None
            except BotoCoreError as exc:
                raise s3_error(exc, f"download artifact {artifact.uri}") from None
            refuse_unless_intact(artifact, "ok" if digest.hexdigest() == artifact.sha256 else "tampered")
        return target


# -- datasets at s3:// -----------------------------------------------------------------------


def s3_fingerprint(client: Any, url: str) -> str | None:
    """``s3etag:<etag>:<size>`` of an object from a HEAD, or None when it does not exist."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_url(url)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_missing(exc):
            return None
        raise s3_error(exc, f"read {url}") from None
    except BotoCoreError as exc:
        raise s3_error(exc, f"read {url}") from None
    return f"s3etag:{str(head.get('ETag', '')).strip(chr(34))}:{int(head.get('ContentLength', 0))}"


def s3_download(client: Any, url: str, cache: Path) -> Path:
    """A local copy of ``url`` for reading (cached under ``cache`` by ETag); MlctlError if absent."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = split_s3_url(url)
    fingerprint = s3_fingerprint(client, url)
    if fingerprint is None:
        raise MlctlError(f"data file not found: {url}")
    name = hashlib.sha256(f"{url}\0{fingerprint}".encode()).hexdigest()
    suffix = "".join(Path(key).suffixes[-2:])
    target = cache / f"{name}{suffix}"
    if target.is_file():
        return target
    try:
        with atomic_target(target) as out:
            # IfMatch: the bytes read are the ones the fingerprint (the version identity) names.
            etag = '"' + fingerprint.split(":")[1] + '"'
            response = client.get_object(Bucket=bucket, Key=key, IfMatch=etag)
            for chunk in response["Body"].iter_chunks(CHUNK):
                out.write(chunk)
    except (ClientError, BotoCoreError) as exc:
        if is_lost_race(exc):
            raise MlctlError(f"{url} changed while it was being read; run the command again") from None
        raise s3_error(exc, f"download {url}") from None
    return target
