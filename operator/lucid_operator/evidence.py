"""What the operator countersigns, and when (pure: no I/O).

The recorder reports its run's signing key and the stored chain head in
status.pipeline, through the Kubernetes API, which a bucket writer cannot reach.
The operator turns what it saw into a `Seal` (lucid_common.evidence): every run key
so far, the chunk count and chain head, the phase. It seals again when a new run key
appears (at once: the run's chunks are vouched for only once its key is), when the
session ends (the final seal), and while the chain grows, at most every checkpoint
interval. docs/storage.md, "Seals", has the reasoning.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from lucid_common import contract
from lucid_common.api import Seal, SealSession, SigningKey
from lucid_operator.conditions import TERMINAL_PHASES, Phase, rfc3339


@dataclass(frozen=True)
class Facts:
    """What a seal would say now, before its counter, time and signature."""

    signing_keys: tuple[SigningKey, ...]
    chunks: int
    chain_head: str | None
    state: str
    final: bool
    recorder_finalized: bool
    # A recorder reported fewer chunks, or another key for a countersigned epoch, than
    # sealed before: the stored recording changed behind the recorder's back.
    conflict: str | None = None


def current_seal(session: dict[str, Any]) -> Seal | None:
    raw = ((session.get("status") or {}).get("evidence") or {}).get("seal")
    if not raw:
        return None
    try:
        return Seal.model_validate(raw)
    except ValidationError:
        return None  # not ours to trust; the next seal replaces it


def facts(session: dict[str, Any], previous: Seal | None) -> Facts:
    status = session.get("status") or {}
    pipeline = status.get("pipeline") or {}
    phase = status.get("phase") or Phase.PENDING.value
    keys = {k.epoch: k for k in (previous.signing_keys if previous else [])}
    conflict = None
    reported = pipeline.get("signingKey")
    if reported:
        key = SigningKey.model_validate(reported)
        known = keys.get(key.epoch)
        if known is None:
            keys[key.epoch] = key
        elif known.public_key != key.public_key:
            conflict = (f"the recorder reports run key {key.public_key[:12]}… for key epoch "
                        f"{key.epoch}, which the operator countersigned with another key")
    head = pipeline.get("chainHead") or {}
    chunks, sha = int(head.get("chunks") or 0), head.get("sha256")
    if previous is not None and chunks < previous.chunks:
        conflict = conflict or (
            f"the recorder reports {chunks} stored chunks, but the operator sealed "
            f"{previous.chunks} before: the stored recording lost its tail")
        chunks, sha = previous.chunks, previous.chain_head
    return Facts(
        signing_keys=tuple(keys[e] for e in sorted(keys)),
        chunks=chunks,
        chain_head=sha if chunks else None,
        state=phase,
        final=phase in {p.value for p in TERMINAL_PHASES},
        recorder_finalized=pipeline.get("state") == contract.PIPELINE_FINALIZED,
        conflict=conflict,
    )


SEAL = "seal"  # a new seal is due
STORE = "store"  # the last seal still has to go into the bucket


def due(session: dict[str, Any], now: dt.datetime, checkpoint_seconds: float) -> str | None:
    """SEAL, STORE or None: what the operator owes this session's evidence now."""
    evidence = (session.get("status") or {}).get("evidence") or {}
    previous = current_seal(session)
    pending_copy = STORE if previous is not None and evidence.get("message") else None
    if previous is not None and previous.final:
        return pending_copy  # nothing follows a final seal
    now_facts = facts(session, previous)
    if previous is None:
        return SEAL if now_facts.signing_keys or now_facts.chunks or now_facts.final else None
    if now_facts.final or now_facts.signing_keys != tuple(previous.signing_keys):
        return SEAL
    if (now_facts.chunks, now_facts.chain_head) == (previous.chunks, previous.chain_head):
        return pending_copy
    sealed_at = dt.datetime.fromisoformat(previous.sealed_at.replace("Z", "+00:00"))
    if (now - sealed_at).total_seconds() >= checkpoint_seconds:
        return SEAL
    return pending_copy


def next_seal(session: dict[str, Any], now: dt.datetime) -> tuple[Seal, Facts]:
    """The unsigned seal that follows the current one (counter + 1)."""
    meta = session["metadata"]
    previous = current_seal(session)
    seen = facts(session, previous)
    seal = Seal(
        session=SealSession(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"]),
        counter=(previous.counter if previous else 0) + 1,
        state=seen.state,
        final=seen.final,
        recorder_finalized=seen.recorder_finalized,
        signing_keys=list(seen.signing_keys),
        chunks=seen.chunks,
        chain_head=seen.chain_head,
        sealed_at=rfc3339(now),
    )
    return seal, seen


def seal_stays_in_status(seal: Seal) -> bool:
    """Nothing was stored (no run key, no chunk): no bucket copy is needed, or possible."""
    return not seal.signing_keys and seal.chunks == 0
