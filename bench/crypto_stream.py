"""Benchmark: streaming file encryption + decryption against raw AESGCM, in one run.

    python bench/crypto_stream.py [--size-mib N] [--dir PATH]

1. raw:       ``AESGCM.encrypt`` then ``AESGCM.decrypt`` over N 1-MiB chunks in memory (the
              ceiling: no I/O, a fresh nonce per chunk, allocation per call).
2. stream:    ``client.crypto.encrypt_stream`` / ``decrypt_stream`` over file-like objects
              with no storage behind them (a reader refilling from one 1-MiB block, a writer
              that drops the data): the cost of the streaming layer itself. The decrypt input
              is not a real ciphertext (a real one would need N MiB kept somewhere), so its tag
              check fails at the very end by construction; every byte is still decrypted.
3. file→file: plaintext file → blob file → output file through
              ``client.offline.atomic_output`` (temporary file, fsync, rename), the path
              ``e2ee offline decrypt-file`` takes, with the tag verified.

Prints MB/s (10^6 bytes of plaintext per second, encrypt + decrypt = two passes), each ratio to
raw (target ≥ 0.8 for the streaming layer) and the peak RSS above the interpreter's baseline
after imports (target < 64 MB). Files go to ``--dir`` (default /dev/shm when present, so the
disk does not dominate; else the temp dir).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: E402

from client import crypto  # noqa: E402
from client.errors import DecryptionError  # noqa: E402
from client.offline import atomic_output  # noqa: E402

MIB = 1 << 20


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def bench_raw(size_mib: int) -> float:
    key = AESGCM.generate_key(bit_length=128)
    aead = AESGCM(key)
    chunk = os.urandom(MIB)
    start = time.perf_counter()
    for i in range(size_mib):
        nonce = i.to_bytes(12, "big")
        aead.decrypt(nonce, aead.encrypt(nonce, chunk, None), None)
    return time.perf_counter() - start


class PatternReader:
    """``size`` bytes read from one preallocated block: a file with no storage behind it."""

    def __init__(self, size: int) -> None:
        self.left, self.block = size, os.urandom(MIB)

    def readinto(self, buffer: memoryview) -> int:
        n = min(len(buffer), self.left, MIB)
        buffer[:n] = self.block[:n]
        self.left -= n
        return n


class NullWriter:
    def write(self, data: memoryview | bytes) -> int:
        return len(data)


def bench_stream_memory(size_mib: int) -> tuple[float, float]:
    secret = crypto.new_file_secret()
    start = time.perf_counter()
    crypto.encrypt_stream(PatternReader(size_mib * MIB), NullWriter(), secret)
    middle = time.perf_counter()
    try:
        crypto.decrypt_stream(PatternReader(size_mib * MIB + 16), NullWriter(), secret)
    except DecryptionError:
        pass  # expected: see the module docstring
    else:
        raise AssertionError("a random tag verified")
    return middle - start, time.perf_counter() - middle


def write_plaintext(path: Path, size_mib: int) -> None:
    block = os.urandom(MIB)
    with path.open("wb") as handle:
        for _ in range(size_mib):
            handle.write(block)


def bench_files(workdir: Path, size_mib: int) -> tuple[float, float]:
    plain, blob, out = workdir / "plain.bin", workdir / "blob.bin", workdir / "out.bin"
    write_plaintext(plain, size_mib)
    secret = crypto.new_file_secret()
    start = time.perf_counter()
    with plain.open("rb", buffering=0) as src, blob.open("wb", buffering=0) as dst:
        tag = crypto.encrypt_stream(src, dst, secret)
    middle = time.perf_counter()
    with blob.open("rb", buffering=0) as src, atomic_output(out) as dst:
        size = crypto.decrypt_stream(src, dst, secret, expected_tag=tag)
    end = time.perf_counter()
    assert size == size_mib * MIB
    assert out.stat().st_size == size
    for path in (plain, blob, out):
        path.unlink()
    return middle - start, end - middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1 GiB)")
    default_dir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    parser.add_argument("--dir", default=default_dir, help=f"scratch directory ({default_dir})")
    args = parser.parse_args()
    size = args.size_mib * MIB
    baseline = peak_rss_bytes()

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="e2ee-bench-") as scratch:
        bench_raw(min(args.size_mib, 64))  # warm-up
        raw = bench_raw(args.size_mib)
        mem_enc, mem_dec = bench_stream_memory(args.size_mib)
        file_enc, file_dec = bench_files(Path(scratch), args.size_mib)
    peak_above = (peak_rss_bytes() - baseline) / 1e6

    def mbs(seconds: float, passes: int = 2) -> float:
        return passes * size / seconds / 1e6

    raw_mbs = mbs(raw)
    print(f"size                     {args.size_mib} MiB, scratch {args.dir}")
    print(f"raw AESGCM 1 MiB chunks  {raw_mbs:7.0f} MB/s (encrypt+decrypt, in memory)")
    for label, enc, dec in (
        ("streaming layer", mem_enc, mem_dec),
        ("streaming file→file", file_enc, file_dec),
    ):
        total = mbs(enc + dec)
        print(
            f"{label:<24} {total:7.0f} MB/s  ratio {total / raw_mbs:.2f}  "
            f"(encrypt {mbs(enc, 1):.0f} MB/s, decrypt {mbs(dec, 1):.0f} MB/s)"
        )
    print(f"peak RSS above baseline  {peak_above:7.1f} MB (target < 64 MB)")


if __name__ == "__main__":
    main()
