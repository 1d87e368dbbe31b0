"""Verification and decryption of a recorded session.

Both walk the chunk objects once, in object order, and authenticate each
chunk under its epoch's data key before trusting anything in its header.
`verify` collects every problem with a specific code and message;
`decrypt_segments` yields the plaintext of authentic chunks in sequence order
and, unless told to skip damage, stops at the first problem.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_common.api import Seal
from lucid_common.evidence import key_id, seal_signed_by
from lucid_recorder.sealing.compression import decompress
from lucid_recorder.sealing.container import (
    GENESIS,
    ChunkHeader,
    chunk_digest,
    open_sealed,
    signed_part,
)
from lucid_recorder.sealing.errors import (
    AuthenticationError,
    ChunkFormatError,
    DecompressionError,
    IntegrityError,
    SealingError,
    UnwrapError,
)
from lucid_recorder.sealing.keys import (
    KeyRecord,
    WrapSession,
    fingerprint,
    short_fingerprint,
    unwrap_data_key,
)
from lucid_recorder.sealing.manifest import (
    MANIFEST_FORMAT_V1,
    Gap,
    Manifest,
    SessionIdentity,
    derive_gaps,
)
from lucid_recorder.sealing.sealer import ChunkInfo


class ProblemCode(StrEnum):
    INCOMPLETE = "incomplete"  # no final manifest: recorder died, or still running
    MANIFEST_SESSION = "manifest-session"  # manifest is for another session
    MANIFEST_INVALID = "manifest-invalid"  # manifest contradicts itself
    MANIFEST_MISMATCH = "manifest-mismatch"  # a chunk differs from the manifest's record
    WRONG_KEY = "wrong-key"  # the private key given is not the recording's recipient
    MALFORMED = "malformed"  # not a parseable chunk
    TRUNCATED = "truncated"  # shorter or longer than its header says
    AUTH_FAILED = "auth-failed"  # AES-GCM rejected it: bytes were modified
    DECOMPRESS_FAILED = "decompress-failed"  # authentic, yet its payload is broken
    FOREIGN_SESSION = "foreign-session"  # a chunk of another session
    KEY_CONFLICT = "key-conflict"  # two different data keys claim one epoch
    MISPLACED = "misplaced"  # stored under another sequence number: swapped/renamed
    DUPLICATE = "duplicate"  # a second copy of a chunk: replayed
    MISSING = "missing"  # a sequence number with no chunk
    CHAIN_BROKEN = "chain-broken"  # previous-hash mismatch: substituted or reordered
    EPOCH_REGRESSION = "epoch-regression"  # key epoch went backwards
    UNEXPECTED = "unexpected-chunk"  # beyond the final manifest's chunk count
    STRAY_OBJECT = "stray-object"  # an object name Lucid never writes under chunks/
    REWRITTEN = "rewritten"  # an earlier version differs or is hidden (versioned buckets)
    UNREADABLE = "unreadable"  # listed, but reading it failed
    BAD_SIGNATURE = "bad-signature"  # a format 2 chunk whose run signature fails
    MANIFEST_FORGED = "manifest-forged"  # manifest not signed by the run that claims it
    # Against the operator's seal (--operator-key):
    NO_SEAL = "no-seal"  # nothing the operator signed vouches for the recording
    SEAL_FORGED = "seal-forged"  # a seal object the operator did not sign
    SEAL_SESSION = "seal-session"  # a seal of another session
    ROLLBACK = "rollback"  # the bucket's seals are older than the anchor
    UNCOUNTERSIGNED = "not-countersigned"  # chunks signed by a key the operator never saw
    TAIL_CUT = "tail-cut"  # fewer chunks than the operator sealed
    TAIL_REPLACED = "tail-replaced"  # the chain does not reach the head the operator sealed


# What the one-line summary names first when several problems were found: the finding
# that explains the others (a cut tail also leaves the manifest unsigned, say).
HEADLINE_ORDER = (
    ProblemCode.ROLLBACK, ProblemCode.SEAL_FORGED, ProblemCode.SEAL_SESSION, ProblemCode.NO_SEAL,
    ProblemCode.FOREIGN_SESSION, ProblemCode.MANIFEST_SESSION, ProblemCode.UNCOUNTERSIGNED,
    ProblemCode.TAIL_REPLACED, ProblemCode.TAIL_CUT, ProblemCode.MANIFEST_INVALID,
    ProblemCode.MANIFEST_FORGED, ProblemCode.REWRITTEN, ProblemCode.STRAY_OBJECT,
)


@dataclass(frozen=True)
class Problem:
    chunk: int | None  # object sequence number the problem is about, if any
    code: ProblemCode
    message: str


@dataclass(frozen=True)
class Segment:
    """The plaintext of one authentic chunk."""

    seq: int
    epoch: int
    start_ns: int
    end_ns: int
    plaintext: bytes
    # True when the previous sequence number was not yielded, or the recorder
    # declared a gap (restart, dropped data) before this chunk.
    gap_before: bool


@dataclass
class EpochInfo:
    """One recorder run as the chunks show it."""

    epoch: int
    signing_key: str | None  # base64 raw ed25519, None for format 1
    chunks: int = 0
    countersigned: bool | None = None  # None: no operator seal was checked


@dataclass
class Trust:
    """What vouches for a recording from outside the bucket (docs/storage.md, "Seals").

    `seals` are the seal objects found in the bucket, by object name (raw bytes, or the
    one-line reason they could not be read or parsed); `anchor` is a seal exported from
    the session's status. Both are checked against `operator_key`.
    """

    operator_key: Ed25519PublicKey
    seals: Sequence[tuple[str, Seal | str]] = ()
    anchor: Seal | None = None


@dataclass
class VerifyReport:
    session_uid: str
    namespace: str | None = None
    name: str | None = None
    complete: bool = False
    chunks_expected: int = 0
    chunks_authentic: int = 0
    plaintext_bytes: int = 0
    sealed_bytes: int = 0
    formats: set[int] = field(default_factory=set)
    started_at: str | None = None  # wall clock of session time 0 (from the manifest)
    first_start_ns: int | None = None  # session time, ns
    last_end_ns: int | None = None
    epochs: dict[int, EpochInfo] = field(default_factory=dict)
    operator_key_id: str | None = None
    seal: Seal | None = None  # the seal the verdict rests on
    seal_source: str | None = None
    seals_in_bucket: int = 0
    retention: dict[str, Any] | None = None  # filled in by the CLI from the store
    problems: list[Problem] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything the recorder sealed is here, authentic, in order, and finalized.

        Declared gaps do not make a session fail: the recorder said so itself.
        """
        return not self.problems

    @property
    def anchored(self) -> bool:
        """Checked against a seal the operator signed."""
        return self.seal is not None

    def codes(self) -> list[ProblemCode]:
        return [p.code for p in self.problems]

    def headline(self) -> Problem | None:
        """The problem a one-line summary should name."""
        if not self.problems:
            return None
        rank = {code: i for i, code in enumerate(HEADLINE_ORDER)}
        return min(self.problems, key=lambda p: rank.get(p.code, len(rank)))

    def identity(self) -> str:
        if self.namespace and self.name:
            return f"{self.namespace}/{self.name}/{self.session_uid}"
        return self.session_uid

    def verdict(self) -> str:
        if not self.ok:
            return f"FAILED ({len(self.problems)} problems)"
        if self.anchored:
            return "OK, countersigned by the operator"
        if self.operator_key_id is None and 2 in self.formats:
            return "OK as far as the bucket shows (not checked against the operator's seal: " \
                   "give --operator-key)"
        return "OK"

    def lines(self) -> list[str]:
        state = "OK" if self.ok else f"FAILED ({len(self.problems)} problems)"
        out = [
            f"session {self.session_uid}: {state}; "
            f"{'complete' if self.complete else 'INCOMPLETE'}; "
            f"{self.chunks_authentic}/{self.chunks_expected} chunks authentic; "
            f"{self.plaintext_bytes} plaintext bytes"
        ]
        for p in self.problems:
            where = f"chunk {p.chunk}" if p.chunk is not None else "session"
            out.append(f"problem [{where}] {p.code}: {p.message}")
        out.extend(f"gap: {gap.describe()}" for gap in self.gaps)
        return out

    def audit_lines(self) -> list[str]:
        """The readable audit report: what an auditor attaches to a case."""
        span = "no chunks"
        if self.first_start_ns is not None and self.last_end_ns is not None:
            span = (f"session time {self.first_start_ns / 1e9:.3f}s to "
                    f"{self.last_end_ns / 1e9:.3f}s "
                    f"({(self.last_end_ns - self.first_start_ns) / 1e9:.3f}s)")
            if self.started_at:
                span += f", session started {self.started_at}"
        out = [
            f"session:    {self.identity()}",
            f"time range: {span}",
            f"chunks:     {self.chunks_authentic} authentic of {self.chunks_expected}; "
            f"{self.sealed_bytes} bytes stored, {self.plaintext_bytes} bytes of recording; "
            f"format {'/'.join(str(v) for v in sorted(self.formats)) or '-'}",
            f"gaps:       {len(self.gaps) or 'none'}",
        ]
        out.extend(f"  - {gap.describe()}" for gap in self.gaps)
        out.append("signing keys:")
        for info in sorted(self.epochs.values(), key=lambda e: e.epoch):
            key = (f"run key {_short_b64(info.signing_key)}" if info.signing_key
                   else "unsigned (format 1)")
            vouched = {None: "", True: ", countersigned by the operator",
                       False: ", NOT countersigned"}[info.countersigned]
            out.append(f"  - epoch {info.epoch}: {key}, {info.chunks} chunks{vouched}")
        if self.seal is not None:
            s = self.seal
            out.append(f"operator:   key {(self.operator_key_id or '')[:16]}; seal #{s.counter} "
                       f"({s.state}{', final' if s.final else ''}, {s.chunks} chunks, sealed "
                       f"{s.sealed_at}) from {self.seal_source}; {self.seals_in_bucket} seals "
                       "in the bucket")
        elif self.operator_key_id is not None:
            out.append(f"operator:   key {self.operator_key_id[:16]}; no valid seal")
        else:
            # Without the operator's key nothing outside the bucket vouches for it: say so
            # where the auditor reads the verdict, not only in the docs.
            out.append("operator:   not checked (no --operator-key): anyone who can write "
                       "the bucket and knows the recipient public key could have made or "
                       "rewritten this recording; pass --operator-key to rule that out")
        out.append(f"retention:  {_retention_text(self.retention)}")
        out.append(f"verdict:    {self.verdict()}")
        for p in self.problems:
            where = f"chunk {p.chunk}" if p.chunk is not None else "session"
            out.append(f"  - [{where}] {p.code}: {p.message}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessionUid": self.session_uid,
            "namespace": self.namespace,
            "name": self.name,
            "ok": self.ok,
            "verdict": self.verdict(),
            "complete": self.complete,
            "chunksExpected": self.chunks_expected,
            "chunksAuthentic": self.chunks_authentic,
            "plaintextBytes": self.plaintext_bytes,
            "sealedBytes": self.sealed_bytes,
            "formats": sorted(self.formats),
            "timeRange": {"sessionStartedAt": self.started_at,
                          "firstStartNs": self.first_start_ns, "lastEndNs": self.last_end_ns,
                          "timebase": "nanoseconds of session time"},
            "signingKeys": [
                {"epoch": e.epoch, "publicKey": e.signing_key, "chunks": e.chunks,
                 "countersigned": e.countersigned}
                for e in sorted(self.epochs.values(), key=lambda e: e.epoch)],
            "operator": {
                "keyId": self.operator_key_id,
                "seal": (self.seal.model_dump(mode="json", by_alias=True, exclude_none=True)
                         if self.seal is not None else None),
                "sealSource": self.seal_source,
                "sealsInBucket": self.seals_in_bucket,
            },
            "retention": self.retention,
            "problems": [{"chunk": p.chunk, "code": str(p.code), "message": p.message}
                         for p in self.problems],
            "gaps": [g.model_dump(mode="json", by_alias=True) for g in self.gaps],
        }


def _short_b64(value: str) -> str:
    return base64.b64decode(value).hex()[:16]


def _retention_text(retention: dict[str, Any] | None) -> str:
    if not retention:
        return "not read"
    if retention.get("until") is None:
        return f"none ({retention.get('note', 'no object lock retention on the objects')})"
    text = f"{retention['mode']} until {retention['until']} (earliest of {retention['objects']} " \
           "objects)"
    if retention.get("without"):
        text += f"; {retention['without']} objects have none"
    return text


@dataclass(frozen=True)
class _Authentic:
    obj: int
    sha256: bytes
    header: ChunkHeader


def _ranges(missing_from: int, present: Sequence[int], end: int) -> Iterator[tuple[int, int]]:
    """Holes [a, b] in 0..end-1 given the sorted present sequence numbers: O(len(present))."""
    at = missing_from
    for seq in present:
        if seq >= end:
            break
        if seq > at:
            yield at, seq - 1
        at = max(at, seq + 1)
    if at < end:
        yield at, end - 1


class _Walk:
    """One pass over a session's chunk objects; shared by verify and decrypt.

    In strict mode the first problem raises IntegrityError instead of being
    collected; checks that need the whole session run only in `finish`.
    """

    def __init__(
        self,
        manifest: Manifest | None,
        chunks: Mapping[int, bytes],
        private_key: X25519PrivateKey,
        session_uid: str | None,
        *,
        strict: bool,
        session: SessionIdentity | None = None,
        trust: Trust | None = None,
    ) -> None:
        uid = (session.uid if session is not None and session.uid else None) or session_uid \
            or (manifest.session.uid if manifest is not None else None)
        if uid is None:
            raise ValueError("without a manifest, the session UID must be given")
        self.uid = uid
        # Who the recording must belong to: what the auditor asked for, else what the
        # manifest says (format 2 chunks carry namespace and name; format 1 only the UID).
        self.named_by_auditor = session is not None and bool(session.namespace)
        named = session if session is not None and session.namespace else (
            manifest.session if manifest is not None else None)
        self.namespace = named.namespace if named is not None else None
        self.name = named.name if named is not None else None
        self.manifest = manifest
        self.chunks = chunks
        self.private_key = private_key
        self.my_fpr = fingerprint(private_key.public_key())
        self.strict = strict
        self.trust = trust
        self.report = VerifyReport(session_uid=uid, namespace=self.namespace, name=self.name)
        if manifest is not None:
            self.report.started_at = manifest.started_at.isoformat().replace("+00:00", "Z")
        self._unwrapped: dict[tuple[KeyRecord, WrapSession], bytes | None] = {}
        self._manifest_keys = manifest.key_records() if manifest is not None else {}
        self._epoch_keys: dict[int, KeyRecord] = dict(self._manifest_keys)
        self.wrong_recipient: dict[int, bytes] = {}  # object -> recipient it names
        self.placed: dict[int, _Authentic] = {}  # header seq == object seq
        self.misplaced: list[_Authentic] = []
        self._chain_checked: set[int] = set()
        self._last_yielded: _Authentic | None = None

    def problem(self, chunk: int | None, code: ProblemCode, message: str) -> None:
        self.report.problems.append(Problem(chunk, code, message))
        if self.strict:
            raise IntegrityError(f"{code}: {message}")

    def wrong_key_message(self, named: bytes) -> str:
        return (f"the recording is encrypted to recipient {short_fingerprint(named)}, but the "
                f"private key given belongs to {short_fingerprint(self.my_fpr)}")

    def expected(self) -> str:
        if self.namespace and self.name:
            return f"{self.namespace}/{self.name}/{self.uid}"
        return self.uid

    # -- one object --------------------------------------------------------------

    def _data_key(self, record: KeyRecord, session: WrapSession) -> bytes | None:
        cache_key = (record, session)
        if cache_key not in self._unwrapped:
            try:
                self._unwrapped[cache_key] = unwrap_data_key(record, self.private_key, session)
            except UnwrapError:
                self._unwrapped[cache_key] = None
        return self._unwrapped[cache_key]

    def _foreign(self, header: ChunkHeader) -> bool:
        if header.session_uid != self.uid:
            return True
        return header.signed and self.namespace is not None and (
            header.namespace != self.namespace or header.name != self.name)

    def _authenticate(self, obj: int, sealed: bytes) -> tuple[ChunkHeader, bytes] | None:
        try:
            header = ChunkHeader.decode(sealed)
        except ChunkFormatError as exc:
            self.problem(obj, ProblemCode.MALFORMED, f"object {obj} is not a valid chunk: {exc}")
            return None
        if len(sealed) != header.sealed_len:
            how = "truncated" if len(sealed) < header.sealed_len else "extended"
            self.problem(obj, ProblemCode.TRUNCATED,
                         f"chunk {obj} is {len(sealed)} bytes but its header says "
                         f"{header.sealed_len}: {how}")
            return None
        if header.signed:
            body, signature = signed_part(sealed, header)
            try:
                Ed25519PublicKey.from_public_bytes(header.key.signer).verify(
                    signature, chunk_digest(body))
            except (InvalidSignature, ValueError):
                self.problem(obj, ProblemCode.BAD_SIGNATURE,
                             f"chunk {obj}'s signature does not verify under the run key its "
                             "header names: its bytes were modified or it was forged")
                return None
        if header.key.recipient_fingerprint != self.my_fpr:
            self._other_recipient(obj, header)
            return None
        # Unwrap under the session the header claims: an authentic chunk of another
        # session then opens, and is reported as exactly that.
        claimed = WrapSession(header.session_uid, header.namespace, header.name)
        data_key = self._data_key(header.key, claimed)
        if data_key is None:
            self.problem(obj, ProblemCode.AUTH_FAILED,
                         f"chunk {obj} failed authentication: its data key does not open "
                         "(key record modified, or its session/epoch fields altered)")
            return None
        try:
            payload = open_sealed(sealed, data_key, header)
        except AuthenticationError:
            self.problem(obj, ProblemCode.AUTH_FAILED,
                         f"chunk {obj} failed authentication: its bytes were modified")
            return None
        try:
            plaintext = decompress(payload, header.codec, header.plaintext_len)
        except DecompressionError as exc:
            self.problem(obj, ProblemCode.DECOMPRESS_FAILED,
                         f"chunk {obj} is authentic but does not decompress: {exc}")
            return None
        if self._foreign(header):
            if header.signed:
                theirs = f"{header.namespace}/{header.name}/{header.session_uid}"
                self.problem(obj, ProblemCode.FOREIGN_SESSION,
                             f"chunk {obj} is chunk {header.seq} of session {theirs}, not of "
                             f"{self.expected()}: moved or replayed from another session")
            else:
                self.problem(obj, ProblemCode.FOREIGN_SESSION,
                             f"chunk {obj} is chunk {header.seq} of session "
                             f"{header.session_uid}, not of {self.uid}: replayed from another "
                             "session")
            return None
        return header, plaintext

    def _other_recipient(self, obj: int, header: ChunkHeader) -> None:
        if self._foreign(header):
            self.problem(obj, ProblemCode.FOREIGN_SESSION,
                         f"chunk {obj} claims session {header.session_uid}, not {self.uid}, and "
                         "is encrypted to another recipient: replayed from another session")
        elif self.strict and not (self.placed or self.misplaced):
            # Nothing of this session opened yet: by far most likely the wrong key file.
            raise UnwrapError(self.wrong_key_message(header.key.recipient_fingerprint))
        elif self.strict:
            self.problem(obj, ProblemCode.AUTH_FAILED,
                         f"chunk {obj} names another recipient than the rest of the session: "
                         "its header was modified")
        else:
            # Decided in finish(): a whole recording for another key is the
            # wrong key; one odd chunk among good ones is a modified header.
            self.wrong_recipient[obj] = header.key.recipient_fingerprint

    def _check_epoch_key(self, obj: int, header: ChunkHeader) -> bool:
        known = self._epoch_keys.setdefault(header.epoch, header.key)
        if known == header.key:
            return True
        source = "the manifest" if header.epoch in self._manifest_keys else "earlier chunks"
        if dataclasses.replace(known, signer=header.key.signer) == header.key:
            self.problem(obj, ProblemCode.KEY_CONFLICT,
                         f"chunk {obj} is signed by another run key for epoch {header.epoch} "
                         f"than {source} names: one of them was forged")
            return False
        self.problem(obj, ProblemCode.KEY_CONFLICT,
                     f"chunk {obj} was sealed under another data key for epoch {header.epoch} "
                     f"than {source}: forged, or written by a second recorder")
        return False

    def _find(self, seq: int) -> _Authentic | None:
        return self.placed.get(seq) or next(
            (m for m in self.misplaced if m.header.seq == seq), None)

    def _check_chain(self, item: _Authentic) -> None:
        seq = item.header.seq
        if seq == 0:
            self._chain_checked.add(seq)
            if item.header.prev_sha256 != GENESIS:
                self.problem(item.obj, ProblemCode.CHAIN_BROKEN,
                             "chunk 0 does not start a chain: it was taken from later in a "
                             "recording")
            return
        prev = self._find(seq - 1)
        if prev is None:
            return  # missing or damaged predecessor: reported on its own; maybe found later
        self._chain_checked.add(seq)
        if item.header.prev_sha256 != prev.sha256:
            self.problem(item.obj, ProblemCode.CHAIN_BROKEN,
                         f"chunk {seq} does not follow chunk {seq - 1} (previous-hash "
                         "mismatch): a chunk was substituted or the chunks were reordered")
        elif item.header.epoch < prev.header.epoch:
            self.problem(item.obj, ProblemCode.EPOCH_REGRESSION,
                         f"chunk {seq} has key epoch {item.header.epoch}, older than chunk "
                         f"{seq - 1}'s epoch {prev.header.epoch}")

    def _classify_misplaced(self, item: _Authentic) -> None:
        seq = item.header.seq
        twin = self.placed.get(seq)
        if twin is not None and twin.sha256 == item.sha256:
            self.problem(item.obj, ProblemCode.DUPLICATE,
                         f"object {item.obj} is a replayed copy of chunk {seq}")
        elif twin is not None:
            self.problem(item.obj, ProblemCode.DUPLICATE,
                         f"object {item.obj} holds a second, different chunk {seq}: two "
                         "recorders, or a forgery")
        else:
            self.problem(item.obj, ProblemCode.MISPLACED,
                         f"object {item.obj} holds chunk {seq}: chunks were swapped or renamed")

    def read(self, obj: int) -> bytes | None:
        """The object's bytes; a failed read is one problem, and the walk goes on."""
        try:
            return self.chunks[obj]
        except (KeyError, OSError, SealingError) as exc:
            self.problem(obj, ProblemCode.UNREADABLE,
                         f"object {obj} is listed but could not be read: "
                         f"{exc if not isinstance(exc, KeyError) else 'it disappeared'}")
            return None

    def visit(self, obj: int, sealed: bytes) -> Segment | None:
        opened = self._authenticate(obj, sealed)
        if opened is None:
            return None
        header, plaintext = opened
        if not self._check_epoch_key(obj, header):
            return None
        item = _Authentic(obj, hashlib.sha256(sealed).digest(), header)
        self.report.chunks_authentic += 1
        self.report.formats.add(header.version)
        info = self.report.epochs.setdefault(header.epoch, EpochInfo(
            header.epoch, base64.b64encode(header.key.signer).decode()
            if header.key.signer else None))
        info.chunks += 1
        if header.seq != obj:
            self.misplaced.append(item)
            if self.strict:
                self._classify_misplaced(item)
            return None
        self.placed[obj] = item
        self.report.plaintext_bytes += header.plaintext_len
        self.report.sealed_bytes += header.sealed_len
        r = self.report
        r.first_start_ns = header.start_ns if r.first_start_ns is None else \
            min(r.first_start_ns, header.start_ns)
        r.last_end_ns = header.end_ns if r.last_end_ns is None else \
            max(r.last_end_ns, header.end_ns)
        self._check_chain(item)
        last = self._last_yielded
        gap = header.dropped_before or (
            obj != 0 if last is None
            else last.header.seq != obj - 1 or last.header.epoch != header.epoch)
        self._last_yielded = item
        return Segment(obj, header.epoch, header.start_ns, header.end_ns, plaintext, gap)

    # -- whole session ---------------------------------------------------------

    def check_manifest(self, unread: str | None = None) -> None:
        m = self.manifest
        if m is None:
            if unread is not None:
                self.problem(None, ProblemCode.MANIFEST_INVALID, unread)
                return
            self.problem(None, ProblemCode.INCOMPLETE,
                         "no manifest: the session was never finalized (recorder killed, node "
                         "lost, still recording) or manifest.json was deleted")
            return
        ms = m.session
        if self.named_by_auditor and (ms.uid, ms.namespace, ms.name) != (
                self.uid, self.namespace, self.name):
            self.problem(None, ProblemCode.MANIFEST_SESSION,
                         f"manifest belongs to session {ms.namespace}/{ms.name}/{ms.uid}, not "
                         f"{self.expected()}")
        elif ms.uid != self.uid:
            self.problem(None, ProblemCode.MANIFEST_SESSION,
                         f"manifest belongs to session {ms.uid}, not {self.uid}")
        if bytes.fromhex(m.recipient_fingerprint) != self.my_fpr:
            self.problem(None, ProblemCode.WRONG_KEY,
                         self.wrong_key_message(bytes.fromhex(m.recipient_fingerprint)))
        seqs = [c.seq for c in m.chunks]
        if m.totals.chunks != len(seqs):
            self.problem(None, ProblemCode.MANIFEST_INVALID,
                         f"manifest claims {m.totals.chunks} chunks but lists {len(seqs)}: "
                         "edited")
        elif (seqs != list(range(len(seqs)))
                or m.totals.sealed_bytes != sum(c.sealed_bytes for c in m.chunks)
                or m.totals.plaintext_bytes != sum(c.plaintext_bytes for c in m.chunks)):
            self.problem(None, ProblemCode.MANIFEST_INVALID,
                         "manifest's chunk list is not 0..N-1 or disagrees with its totals")
        self._check_manifest_signature(m)
        if not m.complete:
            self.problem(None, ProblemCode.INCOMPLETE,
                         f"manifest is not final (complete: false, last updated "
                         f"{m.updated_at.isoformat()}, lists {len(m.chunks)} chunks): the "
                         "recorder did not finish the session")

    def _check_manifest_signature(self, m: Manifest) -> None:
        signed_keys = {e: k.signer for e, k in self._manifest_keys.items() if k.signer}
        if m.format == MANIFEST_FORMAT_V1 and not signed_keys:
            return  # a format 1 recording: the chunks decide (checked in finish)
        sig = m.signature
        signer = signed_keys.get(sig.epoch) if sig is not None else None
        if sig is None or signer is None or not m.signed_by(signer):
            who = f"the run of key epoch {sig.epoch}" if sig is not None else "any run"
            self.problem(None, ProblemCode.MANIFEST_FORGED,
                         f"manifest.json is not signed by {who} of this recording: it was "
                         "rebuilt or edited by someone who cannot sign as the recorder")

    def finish(self) -> None:
        m = self.manifest
        for item in self.misplaced:
            self._classify_misplaced(item)
        for item in [*self.placed.values(), *self.misplaced]:
            if item.header.seq not in self._chain_checked:
                self._check_chain(item)
        self._report_wrong_recipient()
        if m is not None and m.format == MANIFEST_FORMAT_V1 and 2 in self.report.formats:
            self.problem(None, ProblemCode.MANIFEST_FORGED,
                         "manifest.json is an unsigned format 1 manifest, but the chunks are "
                         "format 2: it was rebuilt by someone who cannot sign as the recorder")
        complete = m is not None and m.complete
        authentic = set(self.placed) | {i.header.seq for i in self.misplaced}
        present = sorted(set(self.chunks) | authentic)
        highest = present[-1] if present else -1
        if m is not None:
            highest = max(highest, len(m.chunks) - 1)
        expected = len(m.chunks) if complete and m is not None else highest + 1
        seal = self._check_seals()
        if seal is not None and (seal.final or seal.chunks > expected):
            expected = seal.chunks if seal.final else max(expected, seal.chunks)
        self.report.chunks_expected = expected
        # Holes as ranges: the work is bounded by the objects listed, not by the
        # highest sequence number someone could put in an object name.
        for first, last in _ranges(0, present, expected):
            if seal is not None and seal.chunks and last >= seal.chunks - 1 >= first \
                    and last == expected - 1:
                continue  # the cut tail is reported against the seal, precisely
            if first == last:
                self.problem(first, ProblemCode.MISSING, f"chunk {first} missing")
            else:
                self.problem(first, ProblemCode.MISSING,
                             f"chunks {first}..{last} missing ({last - first + 1} chunks)")
        if complete or (seal is not None and seal.final):
            for obj in present:
                if obj >= expected and obj in self.chunks:
                    what = (f"the final manifest of {expected} chunks" if complete and m and
                            len(m.chunks) == expected else
                            f"the operator's final seal of {expected} chunks")
                    self.problem(obj, ProblemCode.UNEXPECTED,
                                 f"object {obj} is not in {what}: added after the session "
                                 "was finalized")
        if seal is not None:
            self._check_against_seal(seal)
        if m is not None:
            self._cross_check_manifest(m)
        self.report.complete = complete
        self.report.gaps = derive_gaps(
            ChunkInfo(i.header.seq, i.header.epoch, i.header.start_ns, i.header.end_ns,
                      i.header.plaintext_len, i.header.sealed_len, i.sha256.hex(),
                      i.header.dropped_before)
            for i in self.placed.values())

    # -- the operator's seal ---------------------------------------------------------

    def _seal_session_ok(self, seal: Seal) -> bool:
        s = seal.session
        if s.uid != self.uid:
            return False
        return self.namespace is None or (s.namespace == self.namespace and s.name == self.name)

    def _check_seals(self) -> Seal | None:
        """The newest seal the operator signed, from the bucket or the anchor."""
        trust = self.trust
        if trust is None:
            return None
        operator = key_id(trust.operator_key)
        self.report.operator_key_id = operator
        newest: tuple[Seal, str] | None = None
        for where, item in trust.seals:
            if isinstance(item, str):
                self.problem(None, ProblemCode.SEAL_FORGED, f"seal object {where}: {item}")
                continue
            self.report.seals_in_bucket += 1
            if not seal_signed_by(item, trust.operator_key):
                self.problem(None, ProblemCode.SEAL_FORGED,
                             f"seal object {where} is not signed by the operator key "
                             f"{operator[:16]}: forged or altered")
                continue
            if not self._seal_session_ok(item):
                s = item.session
                self.problem(None, ProblemCode.SEAL_SESSION,
                             f"seal object {where} is the operator's seal of session "
                             f"{s.namespace}/{s.name}/{s.uid}, not of {self.expected()}: moved "
                             "from another session")
                continue
            if newest is None or item.counter > newest[0].counter:
                newest = (item, where)
        anchor = trust.anchor
        if anchor is not None:
            if not seal_signed_by(anchor, trust.operator_key):
                self.problem(None, ProblemCode.SEAL_FORGED,
                             f"the anchor given is not signed by the operator key "
                             f"{operator[:16]}")
                anchor = None
            elif not self._seal_session_ok(anchor):
                s = anchor.session
                self.problem(None, ProblemCode.SEAL_SESSION,
                             f"the anchor given is the seal of session "
                             f"{s.namespace}/{s.name}/{s.uid}, not of {self.expected()}")
                anchor = None
        if anchor is not None:
            if newest is None or newest[0].counter < anchor.counter:
                bucket = ("holds no seal" if newest is None else
                          f"holds seal #{newest[0].counter} at most ({newest[0].state}, "
                          f"{newest[0].chunks} chunks)")
                if newest is not None or anchor.counter > 1:
                    self.problem(None, ProblemCode.ROLLBACK,
                                 f"the anchor is seal #{anchor.counter} ({anchor.state}, "
                                 f"{anchor.chunks} chunks), but the bucket {bucket}: its "
                                 "seals were deleted or rolled back")
                newest = (anchor, "the anchor")
        if newest is None:
            self.problem(None, ProblemCode.NO_SEAL,
                         f"no seal signed by the operator key {operator[:16]} in the bucket or "
                         "given as --anchor: nothing outside the bucket vouches for this "
                         "recording")
            return None
        self.report.seal, self.report.seal_source = newest
        return newest[0]

    def _check_against_seal(self, seal: Seal) -> None:
        vouched = {k.epoch: k.public_key for k in seal.signing_keys}
        for info in sorted(self.report.epochs.values(), key=lambda e: e.epoch):
            info.countersigned = info.signing_key is not None and \
                vouched.get(info.epoch) == info.signing_key
            if not info.countersigned:
                first = min((i.obj for i in [*self.placed.values(), *self.misplaced]
                             if i.header.epoch == info.epoch), default=None)
                what = (f"run key {_short_b64(info.signing_key)}" if info.signing_key
                        else "no run key (format 1)")
                self.problem(first, ProblemCode.UNCOUNTERSIGNED,
                             f"{info.chunks} chunks of key epoch {info.epoch} (from chunk "
                             f"{first}) are signed by {what}, which the operator never "
                             f"countersigned (seal #{seal.counter}): written by someone other "
                             "than the session's recorder")
        if seal.chunks == 0:
            return
        last = seal.chunks - 1
        item = self.placed.get(last)
        stored = sorted(self.placed)
        if item is None:
            top = stored[-1] if stored else None
            held = f"the bucket holds authentic chunks up to {top}" if top is not None else \
                "the bucket holds no authentic chunk"
            self.problem(last, ProblemCode.TAIL_CUT,
                         f"the operator's seal #{seal.counter} ({seal.state}"
                         f"{', final' if seal.final else ''}) covers {seal.chunks} chunks, but "
                         f"{held}: the tail was cut")
        elif seal.chain_head is not None and item.sha256.hex() != seal.chain_head:
            self.problem(last, ProblemCode.TAIL_REPLACED,
                         f"chunk {last} is not the chunk the operator sealed (seal "
                         f"#{seal.counter}, chain head {seal.chain_head[:16]}): the recording "
                         "was rewritten from some chunk on")

    def _report_wrong_recipient(self) -> None:
        if not self.wrong_recipient:
            return
        if not (self.placed or self.misplaced):
            if ProblemCode.WRONG_KEY not in self.report.codes():
                named = next(iter(self.wrong_recipient.values()))
                self.problem(None, ProblemCode.WRONG_KEY, self.wrong_key_message(named))
            return
        for obj in sorted(self.wrong_recipient):
            self.problem(obj, ProblemCode.AUTH_FAILED,
                         f"chunk {obj} names another recipient than the rest of the session: "
                         "its header was modified")

    def _cross_check_manifest(self, m: Manifest) -> None:
        for entry in m.chunks:
            actual = self.placed.get(entry.seq)
            if actual is None:
                continue
            if (actual.sha256.hex() != entry.sha256
                    or actual.header.sealed_len != entry.sealed_bytes
                    or actual.header.epoch != entry.epoch):
                self.problem(entry.seq, ProblemCode.MANIFEST_MISMATCH,
                             f"chunk {entry.seq} differs from the manifest's record of it "
                             "(sha256/size/epoch): the chunk or the manifest was replaced")
        if m.complete and m.chunks:
            last = self.placed.get(len(m.chunks) - 1)
            if last is not None and m.last_chunk_sha256 != last.sha256.hex():
                self.problem(last.obj, ProblemCode.MANIFEST_MISMATCH,
                             "manifest's lastChunkSha256 is not the last chunk's hash")


def verify(
    manifest: Manifest | None,
    chunks: Mapping[int, bytes],
    private_key: X25519PrivateKey,
    *,
    session_uid: str | None = None,
    session: SessionIdentity | None = None,
    trust: Trust | None = None,
    manifest_unread: str | None = None,
    stray: Sequence[str] = (),
    rewritten: Sequence[str] = (),
) -> VerifyReport:
    """Check a session: `chunks` maps the sequence number in each object's name to its bytes.

    `session` (or just `session_uid`) is the session the auditor asks about: the
    manifest, every chunk and every seal must belong to it. `trust` checks the
    recording against the operator's seals. `manifest_unread` says why a manifest
    that exists was not read (too large, not JSON); `stray` lists object names under
    chunks/ that are not chunk names; `rewritten` describes objects of a versioned bucket
    whose earlier versions differ from the latest or are hidden by a delete marker.
    Objects are read once each, in order, so a lazy Mapping over the store works.
    """
    return verify_and_decrypt(manifest, chunks, private_key, session_uid=session_uid,
                              session=session, trust=trust, manifest_unread=manifest_unread,
                              stray=stray, rewritten=rewritten)


def verify_and_decrypt(
    manifest: Manifest | None,
    chunks: Mapping[int, bytes],
    private_key: X25519PrivateKey,
    *,
    session_uid: str | None = None,
    sink: Callable[[Segment], None] | None = None,
    session: SessionIdentity | None = None,
    trust: Trust | None = None,
    manifest_unread: str | None = None,
    stray: Sequence[str] = (),
    rewritten: Sequence[str] = (),
) -> VerifyReport:
    """`verify`, handing each authentic, correctly placed chunk's plaintext to `sink`.

    One pass for forensic export: the segments are written as they are
    checked, and the report says which of them (if any) are suspect.
    """
    walk = _Walk(manifest, chunks, private_key, session_uid, strict=False, session=session,
                 trust=trust)
    walk.check_manifest(manifest_unread)
    for name in stray:
        walk.problem(None, ProblemCode.STRAY_OBJECT,
                     f"object {name} is not a chunk name Lucid writes (<seq, at least 8 ASCII "
                     "digits, no extra leading zeros>.lrec): not read")
    for what in rewritten:
        walk.problem(None, ProblemCode.REWRITTEN, what)
    for obj in sorted(chunks):
        sealed = walk.read(obj)
        if sealed is None:
            continue
        segment = walk.visit(obj, sealed)
        if segment is not None and sink is not None:
            sink(segment)
    walk.finish()
    return walk.report


def decrypt_segments(
    manifest: Manifest | None,
    chunks: Mapping[int, bytes],
    private_key: X25519PrivateKey,
    *,
    session_uid: str | None = None,
    skip_damaged: bool = False,
    session: SessionIdentity | None = None,
) -> Iterator[Segment]:
    """Plaintext of the session's authentic chunks in sequence order.

    Strict by default: raises IntegrityError at the first chunk that is not
    authentic, in place, of this session and chained to its predecessor, and
    UnwrapError when the private key is not the recording's recipient.
    Missing chunks and an unfinished session do not stop playback (they show
    as `gap_before`); `verify` gives the full report. With skip_damaged,
    damaged chunks are left out instead of raising.
    """
    walk = _Walk(manifest, chunks, private_key, session_uid, strict=not skip_damaged,
                 session=session)
    if manifest is not None and bytes.fromhex(manifest.recipient_fingerprint) != walk.my_fpr:
        raise UnwrapError(walk.wrong_key_message(bytes.fromhex(manifest.recipient_fingerprint)))
    for obj in sorted(chunks):
        segment = walk.visit(obj, chunks[obj])
        if segment is not None:
            yield segment
    if not (walk.placed or walk.misplaced) and walk.wrong_recipient:
        raise UnwrapError(walk.wrong_key_message(next(iter(walk.wrong_recipient.values()))))
