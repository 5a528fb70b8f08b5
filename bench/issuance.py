"""Benchmark: certificate issuance web -> Redis -> Celery worker -> SoftHSM, next to raw SoftHSM
signatures in the same run.

    python bench/issuance.py [--users N] [--clients C] [--raw N]

Sets up a fresh SoftHSM token (random PINs, SOFTHSM2_CONF in a temp dir), a live stack
(gunicorn, its own database: PostgreSQL when DATABASE_URL names one, else SQLite), the CA made
with `manage.py ca init --backend pkcs11`, and one signing worker (`-Q hsm -c 1`) on the Redis
at REDIS_URL. Then:

1. raw:      RSA-2048 PKCS#1 v1.5 / SHA-256 signatures per second through `Pkcs11Signer` (one
             session, one thread: what the worker's signer can do at most);
2. issuance: N users, C concurrent clients each POSTing a CSR to `public-key` over HTTP; per
             request latency (sent -> certificate received) and certificates per second
             (wall clock from first send to last answer). Keys and CSRs are made beforehand.

3. where the time goes: CPU seconds each process group used during the timed run (from
             /proc), per issuance: web (gunicorn), worker (celery), PostgreSQL backends of the
             stack's database, Redis (shared with anything else using it), this client; and
             what the whole machine did meanwhile (other work on it steals from the stack).

Targets (issue 5): p50 under 50 ms and at least 100 issuances/s with one worker.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

from hsm.pkcs11 import Pkcs11Config, Pkcs11Signer  # noqa: E402
from tests.certificates.workers import signing_stack  # noqa: E402
from tests.e2ee.helpers import API, E2EE_HEADERS, make_csr, make_key  # noqa: E402
from tests.softhsm import softhsm_token  # noqa: E402


def _csr(uid: str) -> str:
    return make_csr(uid, make_key())


def raw_signatures(hsm, seconds: float = 2.0) -> float:
    config = Pkcs11Config(
        module=hsm.module,
        token_label=hsm.token_label,
        pin_file=hsm.pin_file,
        key_label="raw-" + secrets.token_hex(4),
    )
    signer = Pkcs11Signer.create(config)
    key = signer.private_key()
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        key.sign(b"tbs-%d" % count, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    rate = count / (time.perf_counter() - started)
    signer.close()
    return rate


_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def process_tree(root: int) -> list[int]:
    parents = {pid: int(f[1]) for pid in _pids() if (f := _stat(pid)) is not None}
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += frontier
    return tree


def pids_matching(text: str) -> list[int]:
    found = []
    for pid in _pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(pid)
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime + stime of all its threads
    return total / _TICK


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all cores) since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / _TICK  # minus idle and iowait


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--pool", default="prefork", help="the worker's Celery pool")
    args = parser.parse_args()

    hsm_gen = softhsm_token(Path(tempfile.mkdtemp(prefix="bench-softhsm-")))
    hsm = next(hsm_gen)
    total = args.users + args.warmup
    uids = [f"bench{i:05d}" for i in range(total)]
    started = time.perf_counter()
    with get_context("fork").Pool(os.cpu_count() or 2) as pool:
        csrs = dict(zip(uids, pool.map(_csr, uids), strict=True))
    print(f"prepared {total} keys and CSRs in {time.perf_counter() - started:.1f} s")

    raw = raw_signatures(hsm)
    with signing_stack(hsm, timeout=30.0, workers=2, threads=max(8, args.clients)) as stack:
        database = "PostgreSQL" if stack.stack.database.is_postgres else "SQLite"
        stack.create_users(uids)
        stack.worker.pool = args.pool
        stack.worker.start()
        local = threading.local()

        def post(uid: str) -> float:
            # One keep-alive connection per client thread, as a real client keeps one (a new
            # httpx.Client per request cost this process ~25 ms CPU: an SSL context each).
            if not hasattr(local, "client"):
                local.client = httpx.Client(base_url=stack.stack.base_url, timeout=60)
            sent = time.perf_counter()
            response = local.client.post(
                f"{API}/public-key?format=json",
                headers=E2EE_HEADERS,
                auth=(uid, stack.passwords[uid]),
                data={"csr": csrs[uid]},
            )
            elapsed = time.perf_counter() - sent
            assert response.status_code == 200, response.text
            return elapsed

        database_name = stack.stack.database.url.rsplit("/", 1)[-1]
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(post, uids[: args.warmup]))
            assert stack.stack.process is not None and stack.worker.process is not None
            groups = {
                "web (gunicorn)": process_tree(stack.stack.process.pid),
                "worker (celery)": process_tree(stack.worker.process.pid),
                "PostgreSQL backends": pids_matching(f" {database_name} "),
                "Redis (shared)": pids_matching("redis-server"),
                "bench client": [os.getpid()],
            }
            before = {name: cpu_seconds(pids) for name, pids in groups.items()}
            busy_before = machine_busy()
            started = time.perf_counter()
            latencies = list(pool.map(post, uids[args.warmup :]))
            wall = time.perf_counter() - started
            groups["PostgreSQL backends"] = sorted(
                set(groups["PostgreSQL backends"]) | set(pids_matching(f" {database_name} "))
            )
            spent = {
                name: cpu_seconds(pids) - before.get(name, 0.0) for name, pids in groups.items()
            }
            busy = machine_busy() - busy_before
        issued = stack.stack.query(
            "SELECT count(*) FROM certificates_certificateorder WHERE status = 'issued'"
        )[0][0]
        assert issued == total, issued
        runtimes = [
            float(m) for m in re.findall(r"succeeded in ([0-9.]+)s", stack.worker.log_text())
        ]

    rate = args.users / wall
    p50 = statistics.median(latencies) * 1000
    p99 = percentile(latencies, 99) * 1000
    print(
        f"database {database}, broker Redis, 1 worker (-c 1 -P {args.pool}), {args.clients} clients"
    )
    print(f"raw SoftHSM RSA-2048 signatures:   {raw:8.0f} /s")
    print(f"issuance web->Redis->worker->HSM:  {rate:8.1f} certificates/s ({args.users} users)")
    print(f"issuance latency:                  p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(f"issuance / raw signing rate:       {rate / raw:.3f}")
    if runtimes:
        task = statistics.median(runtimes) * 1000
        print(f"worker task runtime (Celery log):  p50 {task:.1f} ms")
    print(f"CPU per issuance, ms (wall {wall * 1000 / args.users:.2f} ms per issuance):")
    for name, seconds in spent.items():
        print(f"  {name:22s} {seconds * 1000 / args.users:7.2f}")
    accounted = sum(spent.values())
    machine = f"{busy * 1000 / args.users:7.2f} (of {os.cpu_count()} cores)"
    print(f"  {'machine, all processes':22s} {machine}")
    print(f"  {'not the stack':22s} {(busy - accounted) * 1000 / args.users:7.2f}")
    targets = p50 < 50 and rate >= 100
    print(f"targets (p50 < 50 ms, >= 100/s):   {'met' if targets else 'NOT met'}")


if __name__ == "__main__":
    main()
