"""``python -m tests.hostile.report``: run the hostile-server suite and print a Markdown table
(attack, source, covered by test, detected) for the README.

"detected" is yes when every test of the attack passed, "no (xfail: …)" when a strict xfail
documents a missing defence or a design limit, and "n/a" for attacks that do not apply to this
design (reasons in README.md beside this file).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import textwrap
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree

CATALOGUE = {
    "K1": ("sharee key substitution via server CA", "Share with Care; RFC v2 key discovery"),
    "K2": ("own key material substitution", "Hofmann-Truong (Sync, pCloud)"),
    "K3": ("trust-anchor (server key) swap", "RFC v2 server-key TOFU"),
    "K4": ("silent reset of a known user", "nextcloud server#9083, android#12682"),
    "K5": ("recovery/escrow key injection", "RFC central data recovery"),
    "K6": ("private-key blob tampering / oracle", "MEGA (S&P 2023), Caveat Implementor"),
    "K7": ("KDF parameter downgrade", "Hofmann-Truong (Seafile)"),
    "K8": ("certificate field confusion", "RFC v2 CN rules"),
    "K9": ("RSA padding oracle via wrapped keys", "MEGA GaP-Bleichenbacher"),
    "M1": ("metadata-key injection", "Share with Care (add_metadata)"),
    "M2": ("empty/missing key material", "CVE-2023-28998"),
    "M3": ("forged metadata signed by server cert", "inferred from RFC v2 / desktop source"),
    "M4": ("metadata rollback/replay", "RFC v2 replay scenario"),
    "M5": ("forking views", "RFC v2; SUNDR; KBFS"),
    "M6": ("metadata format downgrade", "Share with Care; desktop source"),
    "M7": ("key-history truncation, old key", "RFC#17"),
    "M8": ("membership tampering", "RFC v2 scenarios; Share with Care"),
    "M9": ("removal without re-keying", "RFC v2; Share with Care"),
    "M10": ("file-drop injection/mis-scoping", "RFC v2 accepted loss; GHSA-p3qw-7gwx-wg24"),
    "M11": ("canonicalisation / parser differentials", "inferred from RFC v2 signing"),
    "M12": ("compression length side channel", "inferred (CRIME/BREACH)"),
    "C1": ("AES-GCM key/nonce reuse", "CVE-2023-28997"),
    "C2": ("malleable ciphertext", "Hofmann-Truong (Icedrive, Seafile)"),
    "C3": ("tag-handling errors", "RFC v1 implementation notes"),
    "C4": ("chunk reorder/truncate/splice", "Hofmann-Truong; Cryptomator UVF"),
    "C5": ("ciphertext swap between files", "Cryptomator #119/#128"),
    "C6": ("single-file rollback", "RFC replay; cryfs #97/#98"),
    "C7": ("file/folder injection, framing", "MEGA; Hofmann-Truong"),
    "C8": ("encrypted folder downgraded to plain", "RFC v2; desktop#1313"),
    "S1": ("name/location tampering", "Hofmann-Truong; Cryptomator #128"),
    "S2": ("attribute tampering", "Hofmann-Truong"),
    "S3": ("grafting sub-folder metadata", "inferred from RFC v2; RFC#41"),
    "S4": ("silent deletion", "RFC v2 deleted flag"),
    "S5": ("lock/counter abuse", "desktop#2593, e2ee#197"),
    "S6": ("size/count/name leakage", "RFC accepted risks; Cryptomator #552"),
    "S7": ("audit-log forgery", "inferred"),
    "X1": ("link-share secret leak", "Hofmann-Truong (Sync)"),
    "X2": ("injected share", "Hofmann-Truong (Sync)"),
    "X3": ("fail-open escape hatches", "iOS #4182; desktop skip flag"),
}
NOT_APPLICABLE = {
    "S7": "the client does not consume the audit log; it is an operator control",
    "X1": "the client creates no link shares with secrets (file-drop tokens are not keys)",
    "X2": "covered by K1/M3: shares reach the client only as signed metadata (TOFU at first)",
}


def main() -> int:
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "hostile.xml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                str(here),
                f"--junitxml={xml}",
            ],
            check=False,
            capture_output=True,
        )
        tree = ElementTree.parse(xml)
    results: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for case in tree.iter("testcase"):
        match = re.match(r"test_([A-Z]\d+)_", case.get("name", ""))
        if not match:
            continue
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "FAILED"
        elif skipped is not None and "xfail" in (skipped.get("type") or ""):
            reason = (skipped.get("message") or "").removeprefix("xfail: ")
            outcome = "xfail: " + textwrap.shorten(reason, 90, placeholder=" …")
        else:
            outcome = "passed" if skipped is None else "skipped"
        results[match.group(1)].append((case.get("name", ""), outcome))
    print("| attack | source | covered by test | detected |")
    print("|---|---|---|---|")
    for key, (name, source) in CATALOGUE.items():
        tests = results.get(key, [])
        covered = ", ".join(sorted({t.split("[")[0] for t, _ in tests})) or "—"
        if not tests:
            detected = f"n/a: {NOT_APPLICABLE.get(key, 'not covered')}"
        elif all(o == "passed" for _, o in tests):
            detected = "yes"
        else:
            bad = sorted({o for _, o in tests if o != "passed"})
            detected = ("partly; " if any(o == "passed" for _, o in tests) else "no; ") + "; ".join(
                bad
            )
        print(f"| {key} {name} | {source} | {covered} | {detected} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
