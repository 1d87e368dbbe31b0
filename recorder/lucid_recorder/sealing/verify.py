"""Verification and decryption of a recorded session.

Both walk the chunk objects once, in object order, and authenticate each
chunk under its epoch's data key before trusting anything in its header.
`verify` collects every problem with a specific code and message;
`decrypt_segments` yields the plaintext of authentic chunks in sequence order
and, unless told to skip damage, stops at the first problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.sealing.compression import decompress
from lucid_recorder.sealing.container import GENESIS, ChunkHeader, open_sealed
from lucid_recorder.sealing.errors import (
    AuthenticationError,
    ChunkFormatError,
    DecompressionError,
    IntegrityError,
    UnwrapError,
)
from lucid_recorder.sealing.keys import KeyRecord, fingerprint, short_fingerprint, unwrap_data_key
from lucid_recorder.sealing.manifest import Gap, Manifest, derive_gaps
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
class VerifyReport:
    session_uid: str
    complete: bool = False
    chunks_expected: int = 0
    chunks_authentic: int = 0
    plaintext_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Everything the recorder sealed is here, authentic, in order, and finalized.

        Declared gaps do not make a session fail: the recorder said so itself.
        """
        return not self.problems

    def codes(self) -> list[ProblemCode]:
        return [p.code for p in self.problems]

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "sessionUid": self.session_uid,
            "ok": self.ok,
            "complete": self.complete,
            "chunksExpected": self.chunks_expected,
            "chunksAuthentic": self.chunks_authentic,
            "plaintextBytes": self.plaintext_bytes,
            "problems": [{"chunk": p.chunk, "code": str(p.code), "message": p.message}
                         for p in self.problems],
            "gaps": [g.model_dump(mode="json", by_alias=True) for g in self.gaps],
        }


@dataclass(frozen=True)
class _Authentic:
    obj: int
    sha256: bytes
    header: ChunkHeader


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
    ) -> None:
        uid = session_uid or (manifest.session.uid if manifest is not None else None)
        if uid is None:
            raise ValueError("without a manifest, the session UID must be given")
        self.uid = uid
        self.manifest = manifest
        self.chunks = chunks
        self.private_key = private_key
        self.my_fpr = fingerprint(private_key.public_key())
        self.strict = strict
        self.report = VerifyReport(session_uid=uid)
        self._unwrapped: dict[tuple[KeyRecord, str], bytes | None] = {}
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

    # -- one object --------------------------------------------------------------

    def _data_key(self, record: KeyRecord, uid: str) -> bytes | None:
        cache_key = (record, uid)
        if cache_key not in self._unwrapped:
            try:
                self._unwrapped[cache_key] = unwrap_data_key(record, self.private_key, uid)
            except UnwrapError:
                self._unwrapped[cache_key] = None
        return self._unwrapped[cache_key]

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
        if header.key.recipient_fingerprint != self.my_fpr:
            self._other_recipient(obj, header)
            return None
        # Unwrap under the UID the header claims: an authentic chunk of another
        # session then opens, and is reported as exactly that.
        data_key = self._data_key(header.key, header.session_uid)
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
        if header.session_uid != self.uid:
            self.problem(obj, ProblemCode.FOREIGN_SESSION,
                         f"chunk {obj} is chunk {header.seq} of session {header.session_uid}, "
                         f"not of {self.uid}: replayed from another session")
            return None
        return header, plaintext

    def _other_recipient(self, obj: int, header: ChunkHeader) -> None:
        if header.session_uid != self.uid:
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

    def visit(self, obj: int, sealed: bytes) -> Segment | None:
        opened = self._authenticate(obj, sealed)
        if opened is None:
            return None
        header, plaintext = opened
        if not self._check_epoch_key(obj, header):
            return None
        item = _Authentic(obj, hashlib.sha256(sealed).digest(), header)
        self.report.chunks_authentic += 1
        if header.seq != obj:
            self.misplaced.append(item)
            if self.strict:
                self._classify_misplaced(item)
            return None
        self.placed[obj] = item
        self.report.plaintext_bytes += header.plaintext_len
        self._check_chain(item)
        last = self._last_yielded
        gap = header.dropped_before or (
            obj != 0 if last is None
            else last.header.seq != obj - 1 or last.header.epoch != header.epoch)
        self._last_yielded = item
        return Segment(obj, header.epoch, header.start_ns, header.end_ns, plaintext, gap)

    # -- whole session ---------------------------------------------------------

    def check_manifest(self) -> None:
        m = self.manifest
        if m is None:
            self.problem(None, ProblemCode.INCOMPLETE,
                         "no manifest: the session was never finalized (recorder killed, node "
                         "lost, still recording) or manifest.json was deleted")
            return
        if m.session.uid != self.uid:
            self.problem(None, ProblemCode.MANIFEST_SESSION,
                         f"manifest belongs to session {m.session.uid}, not {self.uid}")
        if bytes.fromhex(m.recipient_fingerprint) != self.my_fpr:
            self.problem(None, ProblemCode.WRONG_KEY,
                         self.wrong_key_message(bytes.fromhex(m.recipient_fingerprint)))
        seqs = [c.seq for c in m.chunks]
        if (seqs != list(range(len(seqs))) or m.totals.chunks != len(seqs)
                or m.totals.sealed_bytes != sum(c.sealed_bytes for c in m.chunks)
                or m.totals.plaintext_bytes != sum(c.plaintext_bytes for c in m.chunks)):
            self.problem(None, ProblemCode.MANIFEST_INVALID,
                         "manifest's chunk list is not 0..N-1 or disagrees with its totals")
        if not m.complete:
            self.problem(None, ProblemCode.INCOMPLETE,
                         f"manifest is not final (complete: false, last updated "
                         f"{m.updated_at.isoformat()}, lists {len(m.chunks)} chunks): the "
                         "recorder did not finish the session")

    def finish(self) -> None:
        m = self.manifest
        for item in self.misplaced:
            self._classify_misplaced(item)
        for item in [*self.placed.values(), *self.misplaced]:
            if item.header.seq not in self._chain_checked:
                self._check_chain(item)
        self._report_wrong_recipient()
        complete = m is not None and m.complete
        authentic = set(self.placed) | {i.header.seq for i in self.misplaced}
        highest = max([*self.chunks.keys(), *authentic, -1])
        if m is not None:
            highest = max(highest, len(m.chunks) - 1)
        expected = len(m.chunks) if complete and m is not None else highest + 1
        self.report.chunks_expected = expected
        for seq in range(expected):
            if seq not in self.chunks and seq not in authentic:
                self.problem(seq, ProblemCode.MISSING, f"chunk {seq} missing")
        if complete:
            for obj in sorted(self.chunks):
                if obj >= expected:
                    self.problem(obj, ProblemCode.UNEXPECTED,
                                 f"object {obj} is not in the final manifest of {expected} "
                                 "chunks: added after the session was finalized")
        if m is not None:
            self._cross_check_manifest(m)
        self.report.complete = complete
        self.report.gaps = derive_gaps(
            ChunkInfo(i.header.seq, i.header.epoch, i.header.start_ns, i.header.end_ns,
                      i.header.plaintext_len, i.header.sealed_len, i.sha256.hex(),
                      i.header.dropped_before)
            for i in self.placed.values())

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
) -> VerifyReport:
    """Check a session: `chunks` maps the sequence number in each object's name to its bytes.

    `session_uid` is needed when there is no manifest (the object path names
    it); when both are given, a manifest of another session is a problem.
    Objects are read once each, in order, so a lazy Mapping over the store works.
    """
    return verify_and_decrypt(manifest, chunks, private_key, session_uid=session_uid)


def verify_and_decrypt(
    manifest: Manifest | None,
    chunks: Mapping[int, bytes],
    private_key: X25519PrivateKey,
    *,
    session_uid: str | None = None,
    sink: Callable[[Segment], None] | None = None,
) -> VerifyReport:
    """`verify`, handing each authentic, correctly placed chunk's plaintext to `sink`.

    One pass for forensic export: the segments are written as they are
    checked, and the report says which of them (if any) are suspect.
    """
    walk = _Walk(manifest, chunks, private_key, session_uid, strict=False)
    walk.check_manifest()
    for obj in sorted(chunks):
        segment = walk.visit(obj, chunks[obj])
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
) -> Iterator[Segment]:
    """Plaintext of the session's authentic chunks in sequence order.

    Strict by default: raises IntegrityError at the first chunk that is not
    authentic, in place, of this session and chained to its predecessor, and
    UnwrapError when the private key is not the recording's recipient.
    Missing chunks and an unfinished session do not stop playback (they show
    as `gap_before`); `verify` gives the full report. With skip_damaged,
    damaged chunks are left out instead of raising.
    """
    walk = _Walk(manifest, chunks, private_key, session_uid, strict=not skip_damaged)
    if manifest is not None and bytes.fromhex(manifest.recipient_fingerprint) != walk.my_fpr:
        raise UnwrapError(walk.wrong_key_message(bytes.fromhex(manifest.recipient_fingerprint)))
    for obj in sorted(chunks):
        segment = walk.visit(obj, chunks[obj])
        if segment is not None:
            yield segment
    if not (walk.placed or walk.misplaced) and walk.wrong_recipient:
        raise UnwrapError(walk.wrong_key_message(next(iter(walk.wrong_recipient.values()))))
