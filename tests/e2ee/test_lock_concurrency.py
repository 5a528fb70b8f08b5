"""Many lockers hammer one folder through gunicorn (2 workers × 4 threads) on PostgreSQL, from
threads and from separate processes: one holder at a time, no lost metadata update, counters
strictly increasing."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time

import httpx
import pytest

from tests.conftest import require
from tests.e2ee.helpers import API, E2EE_HEADERS
from tests.live import LiveStack

ROUNDS_PER_LOCKER = 6
THREADS = 6
PROCESSES = 3
DEADLINE_SECONDS = 120


def _document(counter: int, writer: str) -> str:
    return json.dumps(
        {
            "metadata": {"ciphertext": writer, "nonce": "bg==", "authenticationTag": "dA=="},
            "users": [],
            "version": "2.0",
            "counter": counter,
        }
    )


def _locker(
    base_url: str,
    auth: tuple[str, str],
    folder: int,
    name: str,
    holder: dict | None = None,
    guard: threading.Lock | None = None,
) -> list[int]:
    """Commit ROUNDS_PER_LOCKER metadata updates, each under its own lock; returns the counters."""
    committed: list[int] = []
    deadline = time.monotonic() + DEADLINE_SECONDS
    with httpx.Client(base_url=base_url, auth=auth, headers=E2EE_HEADERS, timeout=30) as client:
        while len(committed) < ROUNDS_PER_LOCKER and time.monotonic() < deadline:
            current = json.loads(
                client.get(f"{API}/meta-data/{folder}?format=json").json()["ocs"]["data"][
                    "meta-data"
                ]
            )["counter"]
            response = client.post(
                f"{API}/lock/{folder}?format=json", headers={"X-NC-E2EE-COUNTER": str(current + 1)}
            )
            if response.status_code in (412, 423):
                continue
            assert response.status_code == 200, response.text
            token = response.json()["ocs"]["data"]["e2e-token"]
            if holder is not None:
                with guard:
                    assert holder["who"] is None, f"{name} got a lock {holder['who']} holds"
                    holder["who"] = name
            put = client.put(
                f"{API}/meta-data/{folder}?format=json",
                headers={"e2e-token": token, "X-NC-E2EE-SIGNATURE": "c2ln"},
                data={"metaData": _document(current + 1, name)},
            )
            assert put.status_code == 200, put.text
            if holder is not None:
                with guard:
                    holder["who"] = None  # before the unlock: nobody can hold it before then
            assert (
                client.delete(
                    f"{API}/lock/{folder}?format=json", headers={"e2e-token": token}
                ).status_code
                == 200
            )
            committed.append(current + 1)
    return committed


def _process_locker(args: tuple) -> list[int]:
    return _locker(*args)


@pytest.mark.postgres
@pytest.mark.e2e
def test_parallel_lockers_from_threads_and_processes():
    require(os.environ.get("DATABASE_URL", "").startswith("postgres"), "PostgreSQL (DATABASE_URL)")
    with LiveStack.start(workers=2, threads=4) as stack:
        stack.create_user("alice", "a long password for alice")
        auth = ("alice", stack.create_app_password("alice"))
        with httpx.Client(
            base_url=stack.base_url, auth=auth, headers=E2EE_HEADERS, timeout=30
        ) as c:
            folder = int(
                c.request("MKCOL", "/remote.php/dav/files/alice/Hot").headers["OC-FileId"][:8]
            )
            assert c.put(f"{API}/encrypted/{folder}?format=json").status_code == 200
            token = c.post(
                f"{API}/lock/{folder}?format=json", headers={"X-NC-E2EE-COUNTER": "1"}
            ).json()["ocs"]["data"]["e2e-token"]
            assert (
                c.post(
                    f"{API}/meta-data/{folder}?format=json",
                    headers={"e2e-token": token, "X-NC-E2EE-SIGNATURE": "c2ln"},
                    data={"metaData": _document(0, "init")},
                ).status_code
                == 200
            )
            assert (
                c.delete(
                    f"{API}/lock/{folder}?format=json", headers={"e2e-token": token}
                ).status_code
                == 200
            )

        holder: dict = {"who": None}
        guard = threading.Lock()
        results: dict[str, list[int]] = {}
        errors: list[BaseException] = []

        def run(name: str) -> None:
            try:
                results[name] = _locker(stack.base_url, auth, folder, name, holder, guard)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(f"thread-{i}",)) for i in range(THREADS)]
        context = multiprocessing.get_context("spawn")
        with context.Pool(PROCESSES) as pool:
            pending = pool.map_async(
                _process_locker,
                [(stack.base_url, auth, folder, f"proc-{i}") for i in range(PROCESSES)],
            )
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            process_results = pending.get(timeout=DEADLINE_SECONDS + 30)
        assert not errors, errors

        all_counters = [c for counters in results.values() for c in counters]
        all_counters += [c for counters in process_results for c in counters]
        expected = (THREADS + PROCESSES) * ROUNDS_PER_LOCKER
        assert len(all_counters) == expected, "some lockers did not finish in time"
        assert sorted(all_counters) == list(range(1, expected + 1)), "a counter was used twice"
        for counters in [*results.values(), *process_results]:
            assert counters == sorted(counters) and len(set(counters)) == len(counters)
        with httpx.Client(base_url=stack.base_url, auth=auth, headers=E2EE_HEADERS) as c:
            final = json.loads(
                c.get(f"{API}/meta-data/{folder}?format=json").json()["ocs"]["data"]["meta-data"]
            )
        assert final["counter"] == expected, "a metadata update was lost"
        stored = stack.query("select counter from e2ee_foldermetadata where node_id = %s", [folder])
        assert stored == [(expected,)]
