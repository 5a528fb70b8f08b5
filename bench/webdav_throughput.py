"""Upload and download throughput of our WebDAV stack versus a plain WsgiDAV file server.

    python bench/webdav_throughput.py [--size-mib 1024] [--rounds 3] [--client curl|httpx]

Both servers run under gunicorn on loopback in the same run: ours is `server.wsgi:application`
(Basic auth, node rows, blob store with fsync) from tests.live.LiveStack; the reference is
WsgiDAV's FilesystemProvider with block_size 1 MiB and no authentication. Rounds alternate
between the two servers; the medians are printed in MB/s (10^6 bytes) with the ratio
ours / plain. Target: >= 0.7 both ways.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.live import LiveStack, free_port  # noqa: E402

BLOCK = 1 << 20
USER, PASSWORD = "bench", "bench password 1234"


def plain_app():  # type: ignore[no-untyped-def]
    """gunicorn factory for the reference server: `webdav_throughput:plain_app()`."""
    from wsgidav.wsgidav_app import WsgiDAVApp

    return WsgiDAVApp({
        "provider_mapping": {"/": os.environ["BENCH_PLAIN_ROOT"]},
        "simple_dc": {"user_mapping": {"*": True}},  # anonymous
        "block_size": BLOCK,
        "dir_browser": {"enable": False},
        "verbose": 1,
        "logging": {"enable": False},
    })


@contextlib.contextmanager
def plain_server(root: Path) -> Iterator[str]:
    port = free_port()
    log = open(root.parent / "plain-gunicorn.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "webdav_throughput:plain_app()", "--chdir",
         str(Path(__file__).parent), "--bind", f"127.0.0.1:{port}", "--workers", "2",
         "--worker-class", "gthread", "--threads", "4", "--timeout", "300"],
        env={**os.environ, "BENCH_PLAIN_ROOT": str(root)}, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.request("PROPFIND", url + "/", headers={"Depth": "0"}).status_code == 207:
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("plain WsgiDAV server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def make_source(path: Path, size: int) -> None:
    block = os.urandom(BLOCK)
    with open(path, "wb") as out:
        for _ in range(size // BLOCK):
            out.write(block)
        out.write(block[: size % BLOCK])


class Client:
    def __init__(self, kind: str, source: Path, size: int) -> None:
        self.kind, self.source, self.size = kind, source, size

    def upload(self, url: str, auth: tuple[str, str] | None) -> float:
        start = time.perf_counter()
        if self.kind == "curl":
            cmd = ["curl", "-sS", "-f", "-o", "/dev/null", "-T", str(self.source), url]
            if auth:
                cmd[1:1] = ["-u", f"{auth[0]}:{auth[1]}"]
            subprocess.run(cmd, check=True)
        else:
            def body() -> Iterator[bytes]:
                with open(self.source, "rb") as f:
                    while chunk := f.read(BLOCK):
                        yield chunk

            response = httpx.put(url, content=body(), auth=auth, timeout=600,
                                 headers={"Content-Length": str(self.size)})
            response.raise_for_status()
        return self.size / (time.perf_counter() - start) / 1e6

    def download(self, url: str, auth: tuple[str, str] | None) -> float:
        start = time.perf_counter()
        if self.kind == "curl":
            cmd = ["curl", "-sS", "-f", "-o", "/dev/null", url]
            if auth:
                cmd[1:1] = ["-u", f"{auth[0]}:{auth[1]}"]
            subprocess.run(cmd, check=True)
            received = self.size
        else:
            received = 0
            with httpx.stream("GET", url, auth=auth, timeout=600) as response:
                response.raise_for_status()
                for chunk in response.iter_bytes(BLOCK):
                    received += len(chunk)
        assert received == self.size, received
        return self.size / (time.perf_counter() - start) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", choices=["curl", "httpx"],
                        default="curl" if shutil.which("curl") else "httpx")
    parser.add_argument("--min-ratio", type=float, default=None,
                        help="exit 1 if either ratio is below this")
    args = parser.parse_args()
    size = args.size_mib * BLOCK

    work = Path(tempfile.mkdtemp(prefix="e2ee-bench-"))
    try:
        source = work / "source.bin"
        make_source(source, size)
        plain_root = work / "plain"
        plain_root.mkdir()
        client = Client(args.client, source, size)
        results: dict[str, dict[str, list[float]]] = {
            "ours": {"up": [], "down": []}, "plain": {"up": [], "down": []}}

        with LiveStack.start(data_dir=work / "stack") as stack, plain_server(plain_root) as plain:
            stack.create_user(USER, PASSWORD)
            ours_url = stack.url(f"/remote.php/dav/files/{USER}")
            targets = {"plain": (plain, None), "ours": (ours_url, (USER, PASSWORD))}
            for round_no in range(args.rounds):
                order = ["plain", "ours"] if round_no % 2 == 0 else ["ours", "plain"]
                for name in order:
                    base, auth = targets[name]
                    url = f"{base}/round-{round_no}.bin"
                    results[name]["up"].append(client.upload(url, auth))
                    results[name]["down"].append(client.download(url, auth))
                    httpx.delete(url, auth=auth, timeout=60).raise_for_status()
                print(f"round {round_no + 1}/{args.rounds}: " + ", ".join(
                    f"{n} up {results[n]['up'][-1]:,.0f} down {results[n]['down'][-1]:,.0f}"
                    for n in ("ours", "plain")), flush=True)

        med = {n: {d: statistics.median(v) for d, v in r.items()} for n, r in results.items()}
        ratio = {d: med["ours"][d] / med["plain"][d] for d in ("up", "down")}
        print(f"\n{args.size_mib} MiB, {args.rounds} rounds, client {args.client}, medians (MB/s):")
        print(f"{'':8}{'upload':>12}{'download':>12}")
        for name in ("ours", "plain"):
            print(f"{name:8}{med[name]['up']:>12,.0f}{med[name]['down']:>12,.0f}")
        print(f"{'ratio':8}{ratio['up']:>12.2f}{ratio['down']:>12.2f}   (target >= 0.7)")
        if args.min_ratio is not None and min(ratio.values()) < args.min_ratio:
            return 1
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
