"""Moving sealed chunks from the spool to the store, and publishing the manifest.

Blocking calls, meant for a worker thread of the store stage. Chunks go up
strictly in sequence order and the drain stops at the first chunk that
cannot be uploaded, so the store always holds a gap-free prefix of what was
sealed: after node loss a new pod continues after the last stored chunk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from lucid_recorder.sealing.keys import fingerprint
from lucid_recorder.sealing.manifest import Manifest, build_manifest
from lucid_recorder.sealing.sealer import ChunkInfo, Sealer
from lucid_recorder.storage.errors import SpoolError, TransientStorageError
from lucid_recorder.storage.journal import SessionState
from lucid_recorder.storage.recovery import StoredSession, recover_state
from lucid_recorder.storage.retry import RetryPolicy, retry_call
from lucid_recorder.storage.spool import Spool
from lucid_recorder.storage.store import ObjectStore

OnRetry = Callable[[int, BaseException, float], None]
Retryable = Callable[[BaseException], bool]
Deadline = float | Callable[[], float | None] | None


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TransientStorageError)


@dataclass(frozen=True)
class DrainResult:
    uploaded: int
    uploaded_bytes: int
    remaining: int


def upload_pending(
    spool: Spool,
    store: ObjectStore,
    policy: RetryPolicy,
    *,
    deadline: Deadline = None,
    on_retry: OnRetry | None = None,
    on_uploaded: Callable[[ChunkInfo | None, float], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    retryable: Retryable = _transient,
) -> DrainResult:
    """Upload every pending chunk, lowest seq first; each leaves the spool once acknowledged.

    Errors `retryable` accepts (transient ones by default) are retried per `policy`
    until `deadline`; typed permanent errors (auth, bucket, permission) propagate.
    `on_uploaded(info, seconds)` reports each upload's latency, `stop()` is checked
    between chunks.
    """
    uploaded = uploaded_bytes = 0
    pending = spool.pending()
    for index, chunk in enumerate(pending):
        if stop():
            return DrainResult(uploaded, uploaded_bytes, len(pending) - index)
        data = spool.read(chunk.seq)
        info = spool.info(chunk.seq)
        began = time.monotonic()
        retry_call(partial(store.put_chunk, chunk.seq, data, info), policy,
                   deadline=deadline, on_retry=on_retry, sleep=sleep, retryable=retryable)
        # An unreadable header (never expected) has no journal record: the ack
        # then names what was sent.
        spool.acknowledge(chunk.seq, info.sha256 if info else hashlib.sha256(data).hexdigest())
        uploaded += 1
        uploaded_bytes += len(data)
        if on_uploaded is not None:
            on_uploaded(info, time.monotonic() - began)
    return DrainResult(uploaded, uploaded_bytes, 0)


def manifest_of(
    state: SessionState, recipient: X25519PublicKey, *, complete: bool, now: dt.datetime,
    sealer: Sealer | None = None,
) -> Manifest:
    """The manifest of what the spool knows; signed by `sealer`'s run when given."""
    if state.session is None:
        raise SpoolError("spool has no session record")
    return build_manifest(
        state.session, fingerprint(recipient), list(state.chunks.values()),
        state.keys.values(), started_at=state.started_at or now, now=now, complete=complete,
        signer=sealer.signer if sealer is not None else None,
        epoch=sealer.epoch if sealer is not None else 0,
    )


def publish_manifest(
    spool: Spool,
    store: ObjectStore,
    recipient: X25519PublicKey,
    policy: RetryPolicy,
    *,
    complete: bool,
    deadline: Deadline = None,
    on_retry: OnRetry | None = None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    sleep: Callable[[float], None] = time.sleep,
    retryable: Retryable = _transient,
    sealer: Sealer,
) -> Manifest:
    """Write manifest.json; the final one (complete) only once every chunk is stored.

    Intermediate manifests (complete: false) let people and a recovering
    pod see progress; they never replace a final one, since the spool
    refuses further work once finalized. `sealer`'s run signs it.
    """
    state = spool.state
    if state.finalized and not complete:
        raise SpoolError("session already finalized; not writing an intermediate manifest")
    if complete and spool.pending():
        raise SpoolError(
            f"{len(spool.pending())} chunks are not uploaded yet; the final manifest is "
            "written last"
        )
    manifest = manifest_of(state, recipient, complete=complete, now=now(), sealer=sealer)
    retry_call(lambda: store.put_manifest(manifest), policy, deadline=deadline,
               on_retry=on_retry, sleep=sleep, retryable=retryable)
    if complete:
        spool.mark_finalized()
    return manifest


def resume(spool: Spool, store: ObjectStore | None, recipient: X25519PublicKey,
           stored: StoredSession | None = None) -> Sealer:
    """A Sealer for a new key epoch that continues what the spool (or store) holds.

    Same spool after a restart: the journal gives the chain head and epochs.
    Empty spool (new pod, e.g. after node loss): what earlier pods stored is adopted
    first, so nothing stored is overwritten. `stored` says what that is when the store
    may not be read (the operator's resume point); otherwise the store is asked. Call
    upload_pending() before recording: leftover chunks of the old epoch go up first.
    """
    state = spool.state
    source = stored if stored is not None else store
    if state.empty and source is not None:
        remote = recover_state(source, spool.session)
        if not remote.empty:
            spool.adopt(list(remote.chunks.values()), remote.keys, remote.started_at)
            state = spool.state
    if state.finalized:
        raise SpoolError("session already finalized; nothing more may be recorded")
    session = spool.session
    sealer = Sealer(recipient, session.uid, epoch=state.next_epoch,
                    next_seq=state.next_seq, prev_sha256=state.prev_sha256,
                    namespace=session.namespace, name=session.name)
    spool.begin_epoch(sealer.key_record)
    return sealer
