"""Test vectors for the browser player, made by the reference implementation (Python).

    .venv/bin/python player/tools/make_vectors.py           # rewrite player/test/vectors/
    .venv/bin/python player/tools/make_vectors.py --check   # exit 1 if they are stale

The TypeScript decoder and verifier (player/src) are checked against these by the node
test suite (player/test): the same segments must give the same records and the same
frames, byte for byte; the same damaged segments the same error, class and offset and
message; the same sealed sessions the same plaintext and the same verification problems.
tests/unit/test_player_vectors.py runs `--check`, so a change to the Python side that
changes its output fails until the vectors are regenerated (and the TS side agrees).

Everything here is deterministic: the synthetic desktop is, and the sealer's random data
keys and ephemeral X25519 keys are drawn from seeded SHA-256 streams instead of the OS.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import itertools
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import zstandard
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from lucid_recorder.format import (
    INTERLEAVED,
    PLANAR,
    XOR_INTERLEAVED,
    XOR_PLANAR,
    FormatError,
    RecordingWriter,
    SegmentWriter,
    iter_segment,
)
from lucid_recorder.format.encoding import fixed_layout, predicted_keyframes
from lucid_recorder.format.framebuffer import Framebuffer, default_arrow
from lucid_recorder.format.header import SegmentHeader, Trailer
from lucid_recorder.format.reader import peek_segment
from lucid_recorder.format.recording import FinishedSegment
from lucid_recorder.format.records import (
    DesktopResize,
    Gap,
    Keyframe,
    Pointer,
    PointerDefault,
    PointerShape,
    Rect,
    Start,
    Stop,
    TimedRecord,
)
from lucid_recorder.format.varint import encode_uvarint as uv
from lucid_recorder.player.source import LocalDirectorySource, write_local_recording
from lucid_recorder.player.synthetic import SyntheticDesktop
from lucid_recorder.player.timeline import Recording
from lucid_recorder.sealing import keys as keys_module
from lucid_recorder.sealing import sealer as sealer_module
from lucid_recorder.sealing.compression import Codec, Compressed, compress_chunk
from lucid_recorder.sealing.manifest import Manifest, SessionIdentity, build_manifest
from lucid_recorder.sealing.sealer import ChunkInfo, SealedChunk, Sealer
from lucid_recorder.sealing.verify import VerifyReport, decrypt_segments, verify

OUT = Path(__file__).resolve().parents[1] / "test" / "vectors"
NS = 1_000_000_000
START_UNIX_NS = 1_795_000_000 * NS
SESSION = SessionIdentity(namespace="audit", name="vector",
                          uid="7d3f1c2e-0a5b-4c6d-9e8f-101112131415")
STARTED_AT = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)


# `lucid-seal keygen --passphrase-from-env` writes this format (PBES2, AES-256-CBC).
ENCRYPTED_KEY = Path("keys/auditor-passphrase.pem")
PASSPHRASE = "correct horse battery staple"


def sha(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


def seeded(label: str) -> Callable[[int], bytes]:
    """Bytes from SHA-256(label || counter): a deterministic stand-in for os.urandom."""
    counter = 0

    def draw(n: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < n:
            out += hashlib.sha256(f"{label}/{counter}".encode()).digest()
            counter += 1
        return out[:n]
    return draw


# -- the canonical description both decoders must produce ------------------------------


def record_line(item: TimedRecord) -> str:
    """One line per decoded record; player/test/digest.ts writes exactly the same lines."""
    r, t = item.record, item.ts_ns
    if isinstance(r, Keyframe):
        return f"K {t} {r.width}x{r.height} {sha(r.rgb)}"
    if isinstance(r, Rect):
        return f"R {t} {r.x},{r.y},{r.width},{r.height} {sha(r.rgb)}"
    if isinstance(r, DesktopResize):
        return f"Z {t} {r.width}x{r.height}"
    if isinstance(r, Pointer):
        return f"P {t} {r.x},{r.y}"
    if isinstance(r, PointerShape):
        return f"S {t} {r.width}x{r.height} {r.hotspot_x},{r.hotspot_y} {sha(r.rgba)}"
    if isinstance(r, PointerDefault):
        return f"D {t}"
    if isinstance(r, Start):
        return f"A {t} {r.detail.encode().hex()}"
    if isinstance(r, Stop):
        return f"O {t} {r.reason.encode().hex()}"
    if isinstance(r, Gap):
        return f"G {t} {r.start_ns}-{r.end_ns} {r.reason.encode().hex()}"
    raise TypeError(f"unknown record {r!r}")


def pointer_text(fb: Framebuffer) -> str:
    shape = fb.pointer.shape
    if shape is None:
        what = "none"
    elif isinstance(shape, PointerDefault):
        what = "default"
    else:
        what = f"{shape.width}x{shape.height}@{shape.hotspot_x},{shape.hotspot_y}:{sha(shape.rgba)}"
    return f"{fb.pointer.x},{fb.pointer.y} {what}"


def decode_outcome(data: bytes) -> dict[str, Any]:
    """What the reference decoder makes of `data`: its records, or its error."""
    lines: list[str] = []
    try:
        for item in iter_segment(data):
            lines.append(record_line(item))
    except FormatError as exc:
        return {"error": type(exc).__name__, "offset": exc.offset, "message": str(exc),
                "recordsBefore": len(lines)}
    return {"records": sha("\n".join(lines).encode()), "count": len(lines)}


# -- recordings (plain segments) -------------------------------------------------------


@dataclass
class Case:
    name: str
    about: str
    segments: list[bytes]


def desktop_records(width: int, height: int, seconds: float, **kwargs: Any) -> Iterator[
        TimedRecord]:
    """The synthetic desktop, plus the pointer records it does not make on its own."""
    desktop = SyntheticDesktop(width, height)
    for item in desktop.session(seconds, **kwargs):
        yield item
        # A hidden pointer, then the default arrow, then a small custom shape: every
        # pointer record type, at times that fall inside segments and keyframe intervals.
        if item.ts_ns == int(1.3 * NS) and isinstance(item.record, Rect | Pointer):
            yield TimedRecord(item.ts_ns, PointerShape(0, 0, 0, 0, b""))
        if item.ts_ns == int(2.1 * NS) and isinstance(item.record, Rect | Pointer):
            yield TimedRecord(item.ts_ns, PointerDefault())
        if item.ts_ns == int(4.2 * NS) and isinstance(item.record, Rect | Pointer):
            rgba = bytes((i * 37 + 11) % 256 for i in range(5 * 4 * 4))
            yield TimedRecord(item.ts_ns, PointerShape(5, 4, 2, 3, rgba))


def scrolling_records(width: int, height: int, tile: int = 64) -> Iterator[TimedRecord]:
    """A page of glyph-like rows scrolled down step by step, each step repainted tile by
    tile (as xrdp sends a repaint), with an XOR-friendly and a planar-friendly row."""
    def line(i: int) -> bytes:
        if i % 4 == 3:
            return b"\xf0" * width * 3
        return bytes((i * 31 + c * (i % 7 + 1) * 13) % 256 for c in range(width * 3))
    document = [line(i) for i in range(height + 200)]
    ts, top = 0, 0
    for step in (0, 1, 3, 8, 13, 13, 2, 5, 0, 21):
        top += step
        for ty in range(0, height, tile):
            for tx in range(0, width, tile):
                rows = document[top + ty:top + min(ty + tile, height)]
                rgb = b"".join(r[tx * 3:(tx + tile) * 3] for r in rows)
                ts += NS // 100
                yield TimedRecord(ts, Rect(tx, ty, tile, len(rows), rgb))


def record(records: Iterable[TimedRecord], width: int, height: int, **writer: Any) -> list[bytes]:
    w = RecordingWriter(width, height, session_start_unix_ns=START_UNIX_NS, **writer)
    out = []
    last = 0
    for item in records:
        out += [s.data for s in w.add(item.ts_ns, item.record)]
        last = item.ts_ns
    out.append(w.close(last).data)
    return out


def cases() -> list[Case]:
    made = [
        Case("desktop", "200x150 synthetic desktop, 8 s: typing, clock, dragged dialog, a "
             "reconnect gap at 3.0-3.5 s, a resize to 240x160 at 5 s, every pointer record, "
             "3 s segments with a keyframe every second (adaptive layout)",
             record(desktop_records(200, 150, 8.0, step_ms=100, gap_s=(3.0, 3.5),
                                    resize_at_s=(5.0, 240, 160)),
                    200, 150, segment_ns=3 * NS, keyframe_interval_ns=NS)),
        Case("mid-session", "a recording that starts 90 s into the session (base time and "
             "first sequence number not zero), one keyframe per segment",
             record((TimedRecord(t.ts_ns + 90 * NS, t.record)
                     for t in desktop_records(160, 120, 3.0, step_ms=200)),
                    160, 120, segment_ns=2 * NS, start_ns=90 * NS, first_seq=7)),
    ]
    made.append(Case("version-1", "160x120, 2 s, written as format version 1 (no copies)",
                     record(desktop_records(160, 120, 2.0, step_ms=100), 160, 120,
                            segment_ns=10 * NS, keyframe_interval_ns=NS, version=1)))
    made.append(Case("predicted-keyframes", "160x120, 2 s, a keyframe every 0.5 s, every "
                     "keyframe predicted planar (encoding.predicted_keyframes)",
                     record(desktop_records(160, 120, 2.0, step_ms=100), 160, 120,
                            segment_ns=10 * NS, keyframe_interval_ns=NS // 2,
                            layout_policy=predicted_keyframes)))
    made.append(Case("scrolling", "128x96, a text-like page scrolled by 1 to 21 rows at a "
                     "time and repainted in 64x64 tiles: COPY_RECTs with and without pixels",
                     record(scrolling_records(128, 96), 128, 96, segment_ns=10 * NS)))
    for layout, name in ((INTERLEAVED, "interleaved"), (PLANAR, "planar"),
                         (XOR_INTERLEAVED, "xor-interleaved"), (XOR_PLANAR, "xor-planar")):
        made.append(Case(f"layout-{name}", f"160x120, 2 s, every rectangle stored {name}",
                         record(desktop_records(160, 120, 2.0, step_ms=100), 160, 120,
                                segment_ns=10 * NS, keyframe_interval_ns=NS // 2,
                                layout_policy=fixed_layout(layout))))
    return made


def frame_times(recording: Recording) -> list[int]:
    """Every record time, the midpoints between them, and every segment boundary."""
    stamps: set[int] = set()
    for index, (_, info) in enumerate(recording.segments):
        stamps.update((info.start_ns, info.end_ns))
        stamps.update(item.ts_ns for item in recording.records(index))
    ordered = sorted(stamps)
    mids = {(a + b) // 2 for a, b in itertools.pairwise(ordered)}
    return sorted(stamps | mids)


def case_vector(case: Case, out: Path) -> dict[str, Any]:
    seg_dir = out / "segments" / case.name
    seg_dir.mkdir(parents=True)
    segments = []
    with tempfile.TemporaryDirectory() as tmp:
        finished = []
        for data in case.segments:
            info = peek_segment(data)
            finished.append(FinishedSegment(info.header.seq, info.start_ns, info.end_ns, data))
        write_local_recording(tmp, finished)
        recording = Recording(LocalDirectorySource(tmp))
        for index, (seq, info) in enumerate(recording.segments):
            data = case.segments[index]
            # Stored compressed (zstd 19) to keep the repository small; the TS tests
            # decompress them with the same fzstd the page uses.
            name = f"{seq:08d}.seg.zst"
            (seg_dir / name).write_bytes(zstandard.ZstdCompressor(level=19).compress(data))
            segments.append({
                "file": f"segments/{case.name}/{name}", "seq": seq, "size": len(data),
                "width": info.header.width, "height": info.header.height,
                "baseNs": str(info.header.base_ns), "endNs": str(info.end_ns),
                "sessionStartUnixNs": str(info.header.session_start_unix_ns),
                "recordCount": info.trailer.record_count,
                "records": [record_line(item) for item in recording.records(index)],
            })
        frames = []
        for t, fb in recording.frames_at(frame_times(recording)):
            frames.append({"t": str(t), "size": f"{fb.width}x{fb.height}", "rgb": sha(fb.pixels),
                           "pointer": pointer_text(fb)})
        summary = recording.summary()
    return {"name": case.name, "about": case.about, "startNs": str(recording.start_ns),
            "endNs": str(recording.end_ns), "segments": segments, "frames": frames,
            "summary": {"keyframes": summary.keyframes, "rectangles": summary.rectangles,
                        "updates": summary.updates, "stopReason": summary.stop_reason,
                        "resizes": [[str(t), w, h] for t, w, h in summary.resizes],
                        "gaps": [[str(g.start_ns), str(g.end_ns), g.reason]
                                 for g in summary.gaps]}}


# -- damaged segments ------------------------------------------------------------------


def tiny_segment() -> bytes:
    """A 4x3 segment with every record type, small enough to damage at every byte."""
    w = SegmentWriter(4, 3, 1000, seq=5, session_start_unix_ns=START_UNIX_NS,
                      keyframe_interval_ns=300)
    w.add(1000, Start("tiny é"))
    w.add(1010, PointerShape(2, 2, 1, 0, bytes(range(16))))
    w.add(1020, Pointer(3, 2))
    w.add(1100, Rect(1, 1, 2, 2, bytes(range(100, 112))))
    w.add(1200, Rect(0, 0, 4, 1, bytes(range(12))))
    w.add(1250, Rect(0, 2, 4, 1, bytes(range(12))))  # row 0 again: a COPY_RECT
    w.add(1300, PointerDefault())
    w.add(1350, Gap(900, 1340, "lost"))
    w.add(1400, DesktopResize(3, 2))
    w.add(1500, Rect(0, 1, 3, 1, bytes(range(200, 209))))
    w.add(1600, PointerShape(0, 0, 0, 0, b""))
    w.add(1700, Stop("bye"))
    return w.finish(1750)


def hand_made() -> list[tuple[str, bytes]]:
    """Damage that single-byte edits do not reach (each names the rule it breaks)."""
    def head(width: int = 2, height: int = 2, base: int = 0, flags: int = 0,
             version: int = 1) -> bytes:
        h = bytearray(SegmentHeader(0, width, height, base, 0).pack())
        h[8], h[9] = version, flags
        return bytes(h)

    key = bytes([0x10]) + uv(0) + bytes(12)

    def seg(*records: bytes, duration: int = 100, count: int | None = None,
            base: int = 0, version: int = 1) -> bytes:
        n = len(records) + 1 if count is None else count
        return (head(base=base, version=version) + key + b"".join(records)
                + Trailer(duration, n).pack())

    def copy(kind: int, *fields: int, payload: bytes = b"") -> bytes:
        return seg(bytes([kind]) + uv(1) + b"".join(uv(f) for f in fields) + payload,
                   version=2)

    big = 2**63
    return [
        ("empty", b""),
        ("magic-prefix", b"LUCID"),
        ("version-3", head(version=3) + key + Trailer(0, 1).pack()),
        ("copy-in-version-1", seg(bytes([0x24]) + uv(1) + uv(0) * 3 + uv(1) + uv(0) + uv(1)
                                  + uv(0) * 2)),
        ("copy-ok", copy(0x24, 0, 1, 2, 1, 0, 1, 0, 0)),
        ("copy-ok-with-pixels", copy(0x27, 0, 0, 2, 2, 1, 1, 0, 0, payload=bytes(range(6)))),
        ("copy-no-rows", copy(0x24, 0, 0, 2, 1, 0, 0, 0, 0)),
        ("copy-rows-past-rect", copy(0x24, 0, 0, 2, 1, 0, 2, 0, 0)),
        ("copy-source-outside", copy(0x24, 0, 0, 2, 1, 0, 1, 1, 0)),
        ("copy-rect-outside", copy(0x24, 1, 0, 2, 1, 0, 1, 0, 0)),
        ("copy-bits-no-pixels", copy(0x25, 0, 0, 2, 1, 0, 1, 0, 1)),
        ("copy-short", head(version=2) + key + bytes([0x26]) + uv(1)
         + b"".join(uv(f) for f in (0, 0, 2, 2, 0, 1, 0, 0)) + bytes(5)),
        ("flags-set", head(flags=1) + key + Trailer(0, 1).pack()),
        ("width-zero", head(width=0) + Trailer(0, 0).pack()),
        ("height-too-big", head(height=8193) + Trailer(0, 0).pack()),
        ("base-too-big", head(base=big) + key + Trailer(0, 1).pack()),
        ("no-trailer", head() + key),
        ("trailing-bytes", seg() + b"\x00"),
        ("count-mismatch", seg(count=5)),
        ("unknown-type", seg(bytes([0x99]) + uv(1))),
        ("time-backwards", seg(bytes([0x40]) + uv(50) + uv(0) + uv(0),
                               bytes([0x40]) + uv(40) + uv(0) + uv(0))),
        ("end-before-last", seg(bytes([0x40]) + uv(500) + uv(0) + uv(0), duration=100)),
        ("varint-overlong", seg(bytes([0x40]) + b"\x80" * 10 + b"\x00" + uv(0) + uv(0))),
        ("varint-65-bits", seg(bytes([0x40]) + b"\xff" * 9 + b"\x7f" + uv(0) + uv(0))),
        ("ts-too-big", seg(bytes([0x40]) + uv(big) + uv(0) + uv(0))),
        ("ts-beyond-2^53", seg(bytes([0x40]) + uv(2**53 + 1) + uv(0) + uv(0),
                               duration=2**53 + 2)),
        ("duration-too-big", seg(duration=big)),
        ("duration-overflows", seg(base=2**62, duration=2**62)),
        ("first-not-keyframe", head() + bytes([0x40]) + uv(0) + uv(0) + uv(0)
         + Trailer(0, 1).pack()),
        ("keyframe-late", head() + bytes([0x10]) + uv(5) + bytes(12) + Trailer(9, 1).pack()),
        ("resize-no-keyframe", seg(bytes([0x30]) + uv(1) + uv(1) + uv(1),
                                   bytes([0x40]) + uv(1) + uv(0) + uv(0), bytes(3))),
        ("resize-keyframe-late", seg(bytes([0x30]) + uv(1) + uv(1) + uv(1),
                                     bytes([0x10]) + uv(2) + bytes(3))),
        ("resize-huge", seg(bytes([0x30]) + uv(1) + uv(8192) + uv(8192))),
        ("resize-zero", seg(bytes([0x30]) + uv(1) + uv(0) + uv(5))),
        ("resize-at-end", seg(bytes([0x30]) + uv(1) + uv(1) + uv(1) + bytes(3))),
        ("rect-outside", seg(bytes([0x20]) + uv(1) + uv(1) + uv(1) + uv(2) + uv(1)
                             + bytes(6))),
        ("rect-empty", seg(bytes([0x20]) + uv(1) + uv(0) + uv(0) + uv(0) + uv(1))),
        ("rect-short", seg(bytes([0x22]) + uv(1) + uv(0) + uv(0) + uv(2) + uv(2) + bytes(5))),
        ("pointer-far", seg(bytes([0x40]) + uv(1) + uv(65536) + uv(0))),
        ("shape-too-big", seg(bytes([0x41]) + uv(1) + uv(513) + uv(1) + uv(0) + uv(0))),
        ("shape-one-empty", seg(bytes([0x41]) + uv(1) + uv(0) + uv(1) + uv(0) + uv(0))),
        ("shape-hotspot-out", seg(bytes([0x41]) + uv(1) + uv(2) + uv(2) + uv(2) + uv(0)
                                  + bytes(16))),
        ("shape-hidden-hotspot", seg(bytes([0x41]) + uv(1) + uv(0) + uv(0) + uv(1) + uv(0))),
        ("text-too-long", seg(bytes([0x51]) + uv(1) + uv(1025) + bytes(1025))),
        ("text-not-utf8", seg(bytes([0x51]) + uv(1) + uv(2) + b"\xc3\x28")),
        ("text-truncated", seg(bytes([0x50]) + uv(1) + uv(50) + b"abc")),
        ("gap-too-big", seg(bytes([0x52]) + uv(1) + uv(2**62) + uv(2**62) + uv(0))),
        ("gap-ok-big-start", seg(bytes([0x52]) + uv(1) + uv(2**60) + uv(5) + uv(0))),
    ]


def damaged() -> dict[str, Any]:
    tiny = tiny_segment()
    flips = []
    for offset in range(len(tiny)):
        for mask in (0x01, 0x80, 0xFF):
            data = bytearray(tiny)
            data[offset] ^= mask
            flips.append({"flipAt": offset, "mask": mask, **decode_outcome(bytes(data))})
    return {
        "tiny": {"hex": tiny.hex(), **decode_outcome(tiny)},
        "truncations": [{"length": n, **decode_outcome(tiny[:n])} for n in range(len(tiny))],
        "flips": flips,
        "handMade": [{"name": name, "hex": data.hex(), **decode_outcome(data)}
                     for name, data in hand_made()],
    }


# -- sealed sessions -------------------------------------------------------------------


class _SeededX25519:
    """Stands in for X25519PrivateKey in the keys module: generate() is deterministic."""

    def __init__(self, draw: Callable[[int], bytes]) -> None:
        self._draw = draw

    def generate(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self._draw(32))


class _SeededEd25519:
    """Stands in for Ed25519PrivateKey in the sealer module: the run's signing key, seeded."""

    def __init__(self, draw: Callable[[int], bytes]) -> None:
        self._draw = draw

    def generate(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._draw(32))


@contextlib.contextmanager
def deterministic_keys(label: str) -> Iterator[None]:
    draw = seeded(label)
    with mock.patch.object(keys_module, "X25519PrivateKey", _SeededX25519(draw)), \
            mock.patch.object(sealer_module, "Ed25519PrivateKey", _SeededEd25519(draw)), \
            mock.patch.object(sealer_module, "new_data_key", lambda: draw(32)):
        yield


def private_key(label: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


def pem(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def seal_all(segments: list[bytes], recipient: X25519PrivateKey, uid: str, label: str, *,
             epoch: int = 0, first_seq: int = 0, prev: bytes | None = None,
             codec: Codec = Codec.ZSTD, format_2: bool = False
             ) -> tuple[list[SealedChunk], Sealer]:
    with deterministic_keys(label):
        kwargs: dict[str, Any] = {"epoch": epoch, "next_seq": first_seq}
        if format_2:  # namespace and name bound, signed by the run
            kwargs.update(namespace=SESSION.namespace, name=SESSION.name)
        if prev is not None:
            kwargs["prev_sha256"] = prev
        sealer = Sealer(recipient.public_key(), uid, **kwargs)
    out = []
    for data in segments:
        info = peek_segment(data)
        # As the recorder compresses a chunk (window over the chunk, long-distance matching).
        out.append(sealer.seal(compress_chunk(data, codec, 9), info.start_ns, info.end_ns))
    return out, sealer


def manifest_of(chunks: list[ChunkInfo], sealers: list[Sealer], recipient: X25519PrivateKey, *,
                complete: bool, session: SessionIdentity = SESSION,
                sealer: Sealer | None = None) -> Manifest:
    from lucid_recorder.sealing.keys import fingerprint
    signing = {"signer": sealer.signer, "epoch": sealer.epoch} if sealer is not None else {}
    return build_manifest(session, fingerprint(recipient.public_key()), chunks,
                          [s.key_record for s in sealers], started_at=STARTED_AT,
                          now=STARTED_AT + dt.timedelta(minutes=5), complete=complete,
                          **signing)


def report_json(report: VerifyReport) -> dict[str, Any]:
    return {"ok": report.ok, "complete": report.complete,
            "chunksExpected": report.chunks_expected, "chunksAuthentic": report.chunks_authentic,
            "plaintextBytes": report.plaintext_bytes,
            "problems": [{"chunk": p.chunk, "code": str(p.code), "message": p.message}
                         for p in report.problems],
            "gaps": [g.model_dump(mode="json", by_alias=True) for g in report.gaps]}


def sealed_sessions(segments: list[bytes], out: Path) -> dict[str, Any]:
    """A good session and damaged copies, each with what the reference verify says."""
    auditor = private_key("lucid test vector auditor")
    stranger = private_key("lucid test vector stranger")
    keys_dir = out / "keys"
    keys_dir.mkdir(parents=True)
    (keys_dir / "auditor.pem").write_bytes(pem(auditor))
    (keys_dir / "stranger.pem").write_bytes(pem(stranger))
    # Encrypted with a random salt and IV: the one file --check compares by content.
    (keys_dir / ENCRYPTED_KEY.name).write_bytes(auditor.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(PASSPHRASE.encode())))

    good, sealer = seal_all(segments, auditor, SESSION.uid, "good")
    infos = [c.info for c in good]
    final = manifest_of(infos, [sealer], auditor, complete=True)
    # The same recording sealed again (other keys): chunks with another history.
    other, _ = seal_all(segments, auditor, SESSION.uid, "other")
    foreign_uid = "00000000-1111-2222-3333-444444444444"
    foreign, _ = seal_all(segments, auditor, foreign_uid, "foreign")
    # A restarted recorder: epoch 1 continues the sequence and the chain after chunk 1.
    restarted, restart_sealer = seal_all(segments[2:], auditor, SESSION.uid, "restart",
                                         epoch=1, first_seq=2,
                                         prev=bytes.fromhex(good[1].info.sha256))
    # Sealed under a made-up key for epoch 0, chained correctly: a key conflict.
    forged, _ = seal_all(segments[1:2], auditor, SESSION.uid, "forged", first_seq=1,
                         prev=bytes.fromhex(good[0].info.sha256))
    # The same data key (same seeded draws) sealing chunk 2 after a made-up predecessor.
    rechained, _ = seal_all(segments[2:], auditor, SESSION.uid, "good", first_seq=2,
                            prev=hashlib.sha256(b"not chunk 1").digest())
    # Authentic (sealed under the session's key, chained after chunk 0) yet not zstd.
    with deterministic_keys("good"):
        broken_sealer = Sealer(auditor.public_key(), SESSION.uid, next_seq=1,
                               prev_sha256=bytes.fromhex(good[0].info.sha256))
    not_zstd = broken_sealer.seal(Compressed(Codec.ZSTD, b"\x28\xb5\x2f\xfd not really zstd",
                                             1000), good[1].info.start_ns, good[1].info.end_ns)
    # Uncompressed chunks are large: the tiny segment is enough to cover codec none.
    raw, raw_sealer = seal_all([tiny_segment()], auditor, SESSION.uid, "raw", codec=Codec.NONE)
    theirs, their_sealer = seal_all(segments, stranger, SESSION.uid, "stranger")
    signed, signed_sealer = seal_all(segments, auditor, SESSION.uid, "format-2", format_2=True)

    def flip(data: bytes, offset: int) -> bytes:
        b = bytearray(data)
        b[offset] ^= 0x01
        return bytes(b)

    chunks = {i: c.data for i, c in enumerate(good)}
    m_final = final.to_json()
    variants: list[tuple[str, str, dict[int, bytes], bytes | None]] = [
        ("good", "the session as recorded, finalized", dict(chunks), m_final),
        ("no-compression", "codec none (one chunk: the tiny segment)",
         {i: c.data for i, c in enumerate(raw)},
         manifest_of([c.info for c in raw], [raw_sealer], auditor, complete=True).to_json()),
        ("live", "still recording: an intermediate manifest (complete: false) listing two "
         "chunks, three stored", dict(chunks),
         manifest_of(infos[:2], [sealer], auditor, complete=False).to_json()),
        ("no-manifest", "never finalized and no manifest at all", dict(chunks), None),
        ("flipped-payload", "one bit flipped in chunk 1's ciphertext",
         {**chunks, 1: flip(chunks[1], len(chunks[1]) - 40)}, m_final),
        ("flipped-header", "one bit flipped in chunk 1's time range (authenticated header)",
         {**chunks, 1: flip(chunks[1], 30)}, m_final),
        ("flipped-key", "one bit flipped in chunk 1's wrapped data key",
         {**chunks, 1: flip(chunks[1], 160)}, m_final),
        ("corrupt-zstd", "chunk 1 authentic but its payload is not zstd",
         {**chunks, 1: not_zstd.data}, m_final),
        ("truncated", "chunk 2 cut short", {**chunks, 2: chunks[2][:-7]}, m_final),
        ("extended", "bytes appended to chunk 0", {**chunks, 0: chunks[0] + b"\0\0"}, m_final),
        ("malformed", "chunk 1 is not a chunk", {**chunks, 1: b"hello, world"}, m_final),
        ("missing", "chunk 1 deleted", {0: chunks[0], 2: chunks[2]}, m_final),
        ("tail-deleted", "the last chunk and the manifest deleted", {0: chunks[0], 1: chunks[1]},
         None),
        ("swapped", "chunks 1 and 2 swapped", {0: chunks[0], 1: chunks[2], 2: chunks[1]},
         m_final),
        ("substituted", "chunk 1 replaced by chunk 1 of another sealing of the session",
         {**chunks, 1: other[1].data}, m_final),
        ("chain-broken", "chunk 2 sealed under the session's data key after another chunk 1",
         {**chunks, 2: rechained[0].data}, m_final),
        ("foreign", "chunk 1 replayed from another session", {**chunks, 1: foreign[1].data},
         m_final),
        ("replayed", "chunk 0 copied as object 3", {**chunks, 3: chunks[0]}, m_final),
        ("added", "a chunk added after finalization", {**chunks, 3: other[2].data}, m_final),
        ("key-conflict", "chunk 1 sealed under a made-up key for epoch 0",
         {**chunks, 1: forged[0].data}, m_final),
        ("restart", "the recorder restarted after chunk 1: epoch 1 for chunk 2",
         {0: chunks[0], 1: chunks[1], 2: restarted[0].data},
         manifest_of([infos[0], infos[1], restarted[0].info], [sealer, restart_sealer], auditor,
                     complete=True).to_json()),
        ("manifest-edited", "the manifest's hash of chunk 2 replaced",
         dict(chunks), m_final.replace(infos[2].sha256.encode(), other[2].info.sha256.encode())),
        ("manifest-other-session", "a manifest naming another session", dict(chunks),
         manifest_of(infos, [sealer], auditor, complete=True,
                     session=SessionIdentity(namespace="audit", name="vector",
                                             uid=foreign_uid)).to_json()),
        ("format-2", "chunk format 2 (namespace and name bound, signed by the run) and a "
         "signed format 2 manifest", {i: c.data for i, c in enumerate(signed)},
         manifest_of([c.info for c in signed], [signed_sealer], auditor, complete=True,
                     sealer=signed_sealer).to_json()),
        ("other-recipient", "the whole session sealed for the stranger's key",
         {i: c.data for i, c in enumerate(theirs)},
         manifest_of([c.info for c in theirs], [their_sealer], stranger,
                     complete=True).to_json()),
    ]
    described = []
    for name, about, objects, manifest_json in variants:
        where = out / "sessions" / name
        (where / "chunks").mkdir(parents=True)
        for seq, data in objects.items():
            (where / "chunks" / f"{seq:08d}.lrec").write_bytes(data)
        manifest = None
        if manifest_json is not None:
            (where / "manifest.json").write_bytes(manifest_json)
            manifest = Manifest.model_validate_json(manifest_json)
        entry: dict[str, Any] = {"name": name, "about": about, "dir": f"sessions/{name}",
                                 "objects": sorted(objects),
                                 "manifest": manifest_json is not None}
        for key_name, key in (("auditor", auditor), ("stranger", stranger)):
            report = verify(manifest, objects, key, session_uid=SESSION.uid)
            plain = [{"seq": s.seq, "epoch": s.epoch, "sha256": sha(s.plaintext),
                      "gapBefore": s.gap_before}
                     for s in decrypt_segments(manifest, objects, key, session_uid=SESSION.uid,
                                               skip_damaged=True)] if report.chunks_authentic \
                else []
            entry[key_name] = {"report": report_json(report), "segments": plain}
        described.append(entry)
    return {"session": SESSION.model_dump(mode="json"), "keys": {
        "auditor": "keys/auditor.pem", "stranger": "keys/stranger.pem",
        "auditorEncrypted": str(ENCRYPTED_KEY), "passphrase": PASSPHRASE},
        "segmentSha256": [sha(s) for s in segments], "sessions": described}


# -- files -----------------------------------------------------------------------------


def generate(out: Path) -> None:
    # Keep the encrypted key file when it still holds the key: it differs on every run.
    previous = out / ENCRYPTED_KEY
    kept = previous.read_bytes() if previous.is_file() else None
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    made = cases()
    arrow = default_arrow()
    index = {"about": "Generated by player/tools/make_vectors.py from the Python reference; "
                      "do not edit.",
             "cases": [case_vector(case, out) for case in made],
             "defaultArrow": {"size": f"{arrow.width}x{arrow.height}",
                              "hotspot": f"{arrow.hotspot_x},{arrow.hotspot_y}",
                              "rgba": sha(arrow.rgba)}}
    (out / "recordings.json").write_text(json.dumps(index, indent=1) + "\n")
    (out / "damaged.json").write_text(json.dumps(damaged(), indent=None) + "\n")
    desktop = next(c for c in made if c.name == "desktop")
    (out / "sealed.json").write_text(
        json.dumps(sealed_sessions(desktop.segments, out), indent=1) + "\n")
    if kept is not None and _same_key(kept, (out / ENCRYPTED_KEY).read_bytes()):
        (out / ENCRYPTED_KEY).write_bytes(kept)


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _same_key(a: bytes | None, b: bytes | None) -> bool:
    if a is None or b is None:
        return False
    keys = [serialization.load_pem_private_key(x, PASSPHRASE.encode()) for x in (a, b)]
    return keys[0].private_bytes_raw() == keys[1].private_bytes_raw()  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temp dir and fail if anything differs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not args.check:
        generate(args.out)
        print(f"{args.out}: {len(tree(args.out))} files")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "vectors"
        generate(fresh)
        want, have = tree(fresh), tree(args.out) if args.out.exists() else {}
    stale = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k)
                   and not (k == str(ENCRYPTED_KEY) and _same_key(want.get(k), have.get(k))))
    if stale:
        print(f"{args.out} is stale ({len(stale)} files differ, e.g. {stale[:3]}); run "
              f"player/tools/make_vectors.py", file=sys.stderr)
        return 1
    print(f"{args.out}: up to date ({len(want)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
