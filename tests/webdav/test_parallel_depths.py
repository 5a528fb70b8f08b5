"""Parallel uploads at different depths of one tree must not deadlock on PostgreSQL: every write
locks its folder's ancestors in one order (root first) before it propagates etags and sizes."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import require
from tests.live import LiveStack

FILES_PER_WORKER = 12
WORKERS = 8


@pytest.mark.postgres
@pytest.mark.e2e
def test_parallel_puts_at_different_depths():
    require(os.environ.get("DATABASE_URL", "").startswith("postgres"), "PostgreSQL (DATABASE_URL)")
    with LiveStack.start(workers=2, threads=8) as stack:
        stack.create_user("alice", "a long password for alice")
        auth = ("alice", stack.create_app_password("alice"))
        base = "/remote.php/dav/files/alice"
        with httpx.Client(base_url=stack.base_url, auth=auth, timeout=60) as client:
            for path in ("a", "a/b", "a/b/c"):
                assert client.request("MKCOL", f"{base}/{path}").status_code == 201

        def upload(worker: int) -> list[int]:
            folder = ("a", "a/b", "a/b/c")[worker % 3]
            with httpx.Client(base_url=stack.base_url, auth=auth, timeout=60) as client:
                return [
                    client.put(f"{base}/{folder}/w{worker}-{n}", content=b"x" * 1000).status_code
                    for n in range(FILES_PER_WORKER)
                ]

        with ThreadPoolExecutor(WORKERS) as pool:
            statuses = [s for batch in pool.map(upload, range(WORKERS)) for s in batch]
        assert statuses == [201] * (WORKERS * FILES_PER_WORKER), stack.log_text()[-3000:]
        sizes = stack.query(
            "select name, size from files_node where name in ('a', 'b', 'c') order by name"
        )
        per_folder = FILES_PER_WORKER * 1000
        counts = [len(range(w, WORKERS, 3)) for w in range(3)]  # workers per folder
        assert sizes == [
            ("a", per_folder * WORKERS),
            ("b", per_folder * (counts[1] + counts[2])),
            ("c", per_folder * counts[2]),
        ]
