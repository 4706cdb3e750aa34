"""A real S3-compatible server for the tests: versitygw's posix backend.

Built once from the Go module proxy (``go install …@VERSION`` into
``$EXUVIA_STORE_BIN``, default /var/cache/exuvia-store/bin) and cached there;
``./dev.sh test`` builds it before pytest runs. Each server gets a temp
directory, a free port on 127.0.0.1, a random root key pair, and a versioning
directory (object lock needs versioning).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.gobuild import GO, go_env, have_go

MODULE = "github.com/versity/versitygw/cmd/versitygw"
VERSION = "v1.8.0"
BIN_DIR = Path(os.environ.get("EXUVIA_STORE_BIN", "/var/cache/exuvia-store/bin"))


def versitygw_binary() -> Path | None:
    """The cached binary, building it if Go is there; None when Go is absent."""
    binary = BIN_DIR / "versitygw"
    stamp = BIN_DIR / f".versitygw-{VERSION}"
    if binary.is_file() and stamp.exists():
        return binary
    if not have_go():
        return None
    BIN_DIR.mkdir(parents=True, exist_ok=True)
    env = go_env()
    env["GOBIN"] = str(BIN_DIR)
    proc = subprocess.run(
        [GO, "install", f"{MODULE}@{VERSION}"], env=env, capture_output=True, text=True,
        timeout=1200, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"building versitygw failed: {proc.stderr.strip()[-2000:]}")
    stamp.touch()
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class S3Server:
    binary: Path
    workdir: Path
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: "sk-" + secrets.token_hex(20))
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "versitygw.log"

    def start(self) -> None:
        root = self.workdir / "root"
        versions = self.workdir / "versions"
        root.mkdir(parents=True, exist_ok=True)
        versions.mkdir(exist_ok=True)
        iam = self.workdir / "iam"
        iam.mkdir(exist_ok=True)
        if not self.port:
            self.port = free_port()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "ROOT_ACCESS_KEY": self.access_key, "ROOT_SECRET_KEY": self.secret_key}  # fmt: skip
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "--port", f"127.0.0.1:{self.port}", "--quiet", "--keep-alive",
             "--iam-dir", str(iam),
             "posix", "--versioning-dir", str(versions), str(root)],
            env=env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"versitygw exited: {self.log_path.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("versitygw did not listen within 120 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def env(self) -> dict[str, str]:
        """What a client process needs: the AWS chain's environment variables."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"),
        )  # fmt: skip

    def add_user(self, access: str, secret: str, role: str = "user") -> None:
        """A second account (versitygw's own IAM): it owns none of the buckets."""
        subprocess.run(
            [str(self.binary), "admin", "--access", self.access_key, "--secret",
             self.secret_key, "--endpoint-url", self.endpoint, "create-user",
             "--access", access, "--secret", secret, "--role", role],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def make_bucket(self, name: str, lock: bool) -> str:
        c = self.client()
        c.create_bucket(Bucket=name, ObjectLockEnabledForBucket=lock)
        return name


def cleanup(server: S3Server) -> None:
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


def _server_or_skip(tmp: Path) -> S3Server:
    import pytest  # noqa: PLC0415

    try:
        binary = versitygw_binary()
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        pytest.fail(str(err))
    if binary is None:
        reason = "Go is not installed: cannot build versitygw for the evidence-store tests"
        if os.environ.get("EXUVIA_E2E_REQUIRE") == "1":
            pytest.fail(reason + " (EXUVIA_E2E_REQUIRE=1)")
        pytest.skip(reason)
    server = S3Server(binary, tmp)
    server.start()
    return server


def s3_fixture(tmp_path_factory: Any) -> Any:
    """Body of a module-scoped ``s3`` fixture: a started server with buckets
    ``locked`` (object lock on) and ``plain`` (off); the AWS environment set."""
    import pytest  # noqa: PLC0415

    server = _server_or_skip(tmp_path_factory.mktemp("s3"))
    server.make_bucket("locked", lock=True)
    server.make_bucket("plain", lock=False)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in server.env().items():
            mp.setenv(k, v)
        yield server
    cleanup(server)
