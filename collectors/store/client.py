"""The one module that calls boto3: a session from the usual AWS chain, and
botocore's errors translated into one-line :class:`StoreError`s.

Credentials come from the environment, the shared config and credentials
files, or ``--aws-profile``; they are never printed, logged or written anywhere by
exuvia (the error texts below name the operation, bucket and key only).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from forensics.errors import OutputError

T = TypeVar("T")

#: error codes meaning "who you are" is the problem
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId": "the access key is not known to the store",
    "SignatureDoesNotMatch": "the secret key does not match the access key",
    "ExpiredToken": "the credentials have expired",
    "TokenRefreshRequired": "the credentials have expired",
    "InvalidToken": "the session token is invalid",
    "AuthorizationHeaderMalformed": "the credentials are malformed",
}


#: botocore's RuntimeError when a refresh (credential_process, a role, SSO) gives
#: credentials whose expiry is already past (botocore/credentials.py)
_STILL_EXPIRED = "refreshed credentials are still expired"


def expired_credentials(what: str, profile: str | None) -> StoreError:
    """One line naming the profile (never a key) for credentials past their expiry."""
    source = f"profile {profile!r}" if profile else "the AWS chain"
    return StoreError(
        f"{what}: the credentials have expired ({source} gave credentials whose "
        "expiration is past, also when asked again); renew them and try again"
    )


class StoreError(OutputError):
    """The store refused or could not be reached; the text is one line."""


class StoreUnreachable(StoreError):
    """The network or the server failed (after botocore's own retries)."""


class KeyExists(StoreError):
    """Evidence is never overwritten."""


def _code(err: Any) -> str:
    return str(getattr(err, "response", {}).get("Error", {}).get("Code", ""))


def _status(err: Any) -> int:
    meta = getattr(err, "response", {}).get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode") or 0)


def translate(err: Exception, what: str) -> StoreError:
    """One line for any botocore/boto3 error; ``what`` names the operation and object."""
    import botocore.exceptions as bex  # noqa: PLC0415 - boto3 only when a store is used

    if isinstance(err, StoreError):
        return err
    if isinstance(err, bex.NoCredentialsError):
        return StoreError(
            f"{what}: no AWS credentials found (environment, shared credentials file, "
            "or --aws-profile)"
        )
    if isinstance(err, bex.ProfileNotFound):
        return StoreError(f"{what}: {err}")
    if isinstance(err, (bex.EndpointConnectionError, bex.ConnectionClosedError,
                        bex.ReadTimeoutError, bex.ConnectTimeoutError)):  # fmt: skip
        return StoreUnreachable(f"{what}: the store cannot be reached ({type(err).__name__})")
    if isinstance(err, bex.ClientError):
        code, status = _code(err), _status(err)
        if code in _CREDENTIAL_CODES:
            return StoreError(f"{what}: {_CREDENTIAL_CODES[code]} ({code})")
        if code in ("NoSuchBucket",):
            return StoreError(f"{what}: the bucket does not exist")
        if code in ("NoSuchKey", "NotFound", "404") or status == 404:
            return StoreError(f"{what}: no such object")
        if code in ("AccessDenied", "Forbidden", "AllAccessDisabled") or status == 403:
            return StoreError(f"{what}: access denied by the store")
        if code in ("PreconditionFailed", "ConditionalRequestConflict") or status == 412:
            return KeyExists(f"{what}: the key already exists; refusing to overwrite evidence")
        if status >= 500:
            return StoreUnreachable(f"{what}: the store failed (HTTP {status} {code})")
        return StoreError(f"{what}: the store refused ({code or status})")
    if isinstance(err, bex.BotoCoreError):
        return StoreError(f"{what}: {type(err).__name__}")
    if isinstance(err, RuntimeError) and _STILL_EXPIRED in str(err):
        return expired_credentials(what, None)
    return StoreError(f"{what}: {type(err).__name__}: {err}")


#: the operations whose body exuvia always sends with its SHA-256 (x-amz-checksum-sha256)
_CHECKSUMMED_OPS = ("UploadPart", "PutObject")
_CHECKSUM_HEADER = "x-amz-checksum-sha256"


def _unsigned_if_checksummed(request: Any, **_: Any) -> None:
    """botocore's ``before-sign`` event for an upload whose body carries its SHA-256.

    Over plain http botocore's S3 signer hashes the whole body for SigV4
    (``X-Amz-Content-SHA256``) although the request already carries the same
    digest in ``x-amz-checksum-sha256``, a header SigV4 signs like every other.
    For such a request only, this turns on botocore's own
    ``s3={"payload_signing_enabled": False}`` (what it does by itself over https
    for a checksummed upload): the payload is sent as ``UNSIGNED-PAYLOAD`` and the
    store verifies the body against the signed checksum, refusing it (BadDigest)
    when a byte differs — one SHA-256 per part on each side instead of two. A
    request without that header (the completion's part list, deletes) stays signed
    with its payload hash."""
    if _CHECKSUM_HEADER not in request.headers:
        return
    config = request.context.get("client_config")
    if config is None:
        return
    s3 = dict(getattr(config, "s3", None) or {})
    if s3.get("payload_signing_enabled") is False:
        return
    from botocore.config import Config  # noqa: PLC0415

    s3["payload_signing_enabled"] = False
    request.context["client_config"] = config.merge(Config(s3=s3))


class Store:
    """A bucket-agnostic S3 client; every method raises StoreError only."""

    def __init__(
        self,
        endpoint_url: str | None = None,
        profile: str | None = None,
        max_attempts: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        try:
            import boto3  # noqa: PLC0415
            from botocore.config import Config  # noqa: PLC0415

            session = boto3.Session(profile_name=profile)
            creds = session.get_credentials()
            if creds is None:
                raise StoreError(
                    "no AWS credentials found (environment, shared credentials file, "
                    "or --aws-profile)"
                )
            _refuse_expired(creds, profile or os.environ.get("AWS_PROFILE"))
            config = Config(
                retries={"max_attempts": max_attempts, "mode": "standard"},
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                # a part's SHA-256 is sent and checked explicitly; nothing implicit
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                s3={"addressing_style": "path"},
            )
            self.client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
            for op in _CHECKSUMMED_OPS:
                self.client.meta.events.register(f"before-sign.s3.{op}", _unsigned_if_checksummed)
        except StoreError:
            raise
        except Exception as err:  # noqa: BLE001 - a bad profile or endpoint: one line
            raise translate(err, "opening the store") from None
        self.endpoint = endpoint_url

    def call(self, what: str, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(**kwargs)
        except Exception as err:  # noqa: BLE001 - translated into one line
            raise translate(err, what) from None

    def exists(self, bucket: str, key: str) -> bool:
        import botocore.exceptions as bex  # noqa: PLC0415

        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except bex.ClientError as err:
            if _status(err) == 404 or _code(err) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise translate(err, f"checking s3://{bucket}/{key}") from None
        except Exception as err:  # noqa: BLE001
            raise translate(err, f"checking s3://{bucket}/{key}") from None
        return True

    def bucket_lock_enabled(self, bucket: str) -> bool:
        import botocore.exceptions as bex  # noqa: PLC0415

        what = f"bucket {bucket}"
        try:
            conf = self.client.get_object_lock_configuration(Bucket=bucket)
        except bex.ClientError as err:
            if _code(err) == "NoSuchBucket":
                raise StoreError(f"bucket {bucket}: the bucket does not exist") from None
            if "ObjectLockConfigurationNotFound" in _code(err):
                return False
            raise translate(err, what) from None
        except Exception as err:  # noqa: BLE001
            raise translate(err, what) from None
        enabled: object = conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled")
        return enabled == "Enabled"

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.call(f"listing s3://{bucket}/{prefix}", self.client.list_objects_v2,
                             **kwargs)  # fmt: skip
            keys += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return keys
            token = page.get("NextContinuationToken")

    @contextlib.contextmanager
    def body(self, bucket: str, key: str) -> Iterator[Any]:
        """The object's body as a stream (closed afterwards)."""
        what = f"reading s3://{bucket}/{key}"
        resp = self.call(what, self.client.get_object, Bucket=bucket, Key=key)
        stream = resp["Body"]
        try:
            yield _TranslatingBody(stream, what)
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    def head(self, bucket: str, key: str) -> dict[str, Any]:
        out: dict[str, Any] = self.call(f"reading s3://{bucket}/{key}", self.client.head_object,
                                        Bucket=bucket, Key=key)  # fmt: skip
        return out


def _refuse_expired(creds: Any, profile: str | None) -> None:
    """Expired credentials are refused when the store is opened, before any
    request (and so before anything is captured or pushed): the signer's first
    ``get_frozen_credentials`` would refresh credentials whose expiry is past
    (a ``credential_process``, an assumed role, SSO) and raise botocore's bare
    RuntimeError from inside the first request; asking here does the same
    refresh, once, and turns it into one line."""
    try:
        creds.get_frozen_credentials()
    except RuntimeError as err:
        if _STILL_EXPIRED not in str(err):
            raise
        raise expired_credentials("opening the store", profile) from None


class _TranslatingBody:
    """A streaming body whose read errors are StoreErrors."""

    def __init__(self, stream: Any, what: str) -> None:
        self._s = stream
        self._what = what

    def read(self, n: int = -1) -> bytes:
        try:
            data: bytes = self._s.read(n if n >= 0 else None)
        except Exception as err:  # noqa: BLE001
            raise translate(err, self._what) from None
        return data
