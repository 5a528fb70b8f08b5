"""The hash chain: each event's hash covers its fields and the previous event's hash.

hash_n = SHA-256( prev_hash ‖ canonical JSON of event n's fields ), prev_hash_1 = 64 zeros.
Editing a row breaks its hash, deleting one leaves a gap in `seq` and a dangling prev_hash,
reordering breaks the links: `audit_verify` names the first event where any of that shows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

GENESIS = "0" * 64


def event_hash(
    *,
    prev_hash: str,
    seq: int,
    created_at: datetime,
    actor: str,
    action: str,
    target: str,
    source_address: str | None,
    outcome: str,
    details: dict[str, Any],
) -> str:
    body = json.dumps(
        {
            "seq": seq,
            "created_at": created_at.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "source_address": source_address,
            "outcome": outcome,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(prev_hash.encode() + body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str
