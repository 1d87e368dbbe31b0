"""Corrupted recordings through the real console commands: clear errors, never a traceback.

A real recording (synthetic desktop -> format writer -> zstd -> sealed chunks +
manifest, in the local-copy layout `lucid-seal --from-dir` reads) is damaged in
one way per test, then `lucid-seal verify/decrypt` and `lucid-play` run as
subprocesses with a timeout. Each must exit non-zero, say on one line what is
wrong and where (chunk, field, segment/offset), print no traceback, and leave
nothing behind that looks like a good result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lucid_recorder.format import RecordingWriter
from lucid_recorder.player.synthetic import SyntheticDesktop
from lucid_recorder.sealing import (
    Codec,
    Sealer,
    SessionIdentity,
    build_manifest,
    compress,
    fingerprint,
    read_public_key,
)

BIN = Path(sys.executable).parent
UID = "11111111-2222-4333-8444-555555555555"
OTHER_UID = "99999999-2222-4333-8444-555555555555"
NS = 1_000_000_000
CHUNKS = 5
TIMEOUT = 60
HEADER_BYTES = 201  # fixed part of a sealed chunk header; the session UID follows


@dataclass(frozen=True)
class Pristine:
    session: Path  # manifest.json + chunks/<seq>.lrec
    foreign: Path  # another session's chunks, same recipient
    key: Path
    other_key: Path
    segments: Path  # what decrypt writes: <seq>.seg


def _write_session(root: Path, public_pem: Path, uid: str, segments: list[Any]) -> None:
    public = read_public_key(public_pem)
    sealer = Sealer(public, uid)
    (root / "chunks").mkdir(parents=True)
    infos = []
    for segment in segments:
        chunk = sealer.seal(compress(segment.data, Codec.ZSTD, 3), segment.start_ns,
                            segment.end_ns)
        (root / "chunks" / f"{chunk.seq:08d}.lrec").write_bytes(chunk.data)
        infos.append(chunk.info)
    import datetime as dt
    t0 = dt.datetime(2026, 11, 18, 11, 6, 40, tzinfo=dt.UTC)
    manifest = build_manifest(SessionIdentity(namespace="team-a", name="demo", uid=uid),
                              fingerprint(public), infos, [sealer.key_record],
                              started_at=t0, now=t0, complete=True)
    (root / "manifest.json").write_bytes(manifest.to_json())


def run(tool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it; a hang fails the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCID_")}
    return subprocess.run([str(BIN / tool), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, env=env, check=False)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    root = tmp_path_factory.mktemp("pristine")
    for name in ("keys", "other-keys"):
        done = run("lucid-seal", "keygen", "--out-dir", root / name)
        assert done.returncode == 0, done.stderr
    writer = RecordingWriter(160, 120, segment_ns=NS, session_start_unix_ns=1_795_000_000 * NS)
    segments = [s for item in SyntheticDesktop(160, 120).session(CHUNKS - 0.5)
                for s in writer.add(item.ts_ns, item.record)]
    segments.append(writer.close())
    assert len(segments) == CHUNKS
    _write_session(root / "session", root / "keys" / "public.pem", UID, segments)
    _write_session(root / "foreign", root / "keys" / "public.pem", OTHER_UID, segments)
    done = run("lucid-seal", "decrypt", "--from-dir", root / "session", "--private-key",
               root / "keys" / "private.pem", "--out-dir", root / "segments")
    assert done.returncode == 0, done.stderr
    # The control: the undamaged recording verifies and plays.
    assert run("lucid-seal", "verify", "--from-dir", root / "session", "--private-key",
               root / "keys" / "private.pem").returncode == 0
    assert run("lucid-play", "verify", root / "segments").returncode == 0
    return Pristine(root / "session", root / "foreign", root / "keys" / "private.pem",
                    root / "other-keys" / "private.pem", root / "segments")


@pytest.fixture
def session(pristine: Pristine, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine.session, tmp_path / "session"))


def chunk(session: Path, seq: int) -> Path:
    return session / "chunks" / f"{seq:08d}.lrec"


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    for stream in (done.stdout, done.stderr):
        assert "Traceback" not in stream and 'File "' not in stream, stream


def one_line(stderr: str, prefix: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), stderr
    return lines[0]


# --- damaged chunks: verify and decrypt report the chunk and what happened ------------------


def _flip(offset: int) -> Callable[[Path], None]:
    def flip(session: Path) -> None:
        path = chunk(session, 2)
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
    return flip


def _replace(session: Path, seq: int, data: bytes) -> None:
    chunk(session, seq).write_bytes(data)


def _swap(session: Path) -> None:
    one, three = chunk(session, 1).read_bytes(), chunk(session, 3).read_bytes()
    _replace(session, 1, three)
    _replace(session, 3, one)


CHUNK_DAMAGE: list[tuple[str, Callable[[Path, Pristine], None], list[str]]] = [
    ("magic byte", lambda s, p: _flip(0)(s),
     ["[chunk 2] malformed: object 2 is not a valid chunk"]),
    ("format version", lambda s, p: _flip(4)(s), ["[chunk 2] malformed"]),
    ("sequence number in header", lambda s, p: _flip(19)(s), ["[chunk 2] auth-failed"]),
    ("key record in header", lambda s, p: _flip(150)(s), ["[chunk 2] auth-failed"]),
    ("session uid in header", lambda s, p: _flip(HEADER_BYTES + 3)(s), ["[chunk 2]"]),
    ("ciphertext", lambda s, p: _flip(HEADER_BYTES + len(UID) + 40)(s),
     ["[chunk 2] auth-failed: chunk 2 failed authentication: its bytes were modified"]),
    ("GCM tag", lambda s, p: _flip(-1)(s), ["[chunk 2] auth-failed"]),
    ("truncated", lambda s, p: _replace(s, 2, chunk(s, 2).read_bytes()[:-100]),
     ["[chunk 2] truncated: chunk 2 is", "truncated"]),
    ("cut inside the header", lambda s, p: _replace(s, 2, chunk(s, 2).read_bytes()[:50]),
     ["[chunk 2] malformed"]),
    ("zero length", lambda s, p: _replace(s, 2, b""), ["[chunk 2] malformed"]),
    ("bytes appended", lambda s, p: _replace(s, 2, chunk(s, 2).read_bytes() + b"\0" * 7),
     ["[chunk 2] truncated", "extended"]),
    ("random garbage", lambda s, p: _replace(s, 2, os.urandom(4096)), ["[chunk 2] malformed"]),
    ("another session's chunk", lambda s, p: _replace(s, 2, chunk(p.foreign, 2).read_bytes()),
     ["[chunk 2] foreign-session", OTHER_UID]),
    ("swapped chunks", lambda s, p: _swap(s), ["[chunk 1] misplaced", "[chunk 3] misplaced"]),
    ("missing chunk", lambda s, p: chunk(s, 2).unlink(), ["[chunk 2] missing: chunk 2 missing"]),
    ("duplicated chunk", lambda s, p: _replace(s, CHUNKS, chunk(s, 2).read_bytes()),
     [f"[chunk {CHUNKS}] duplicate: object {CHUNKS} is a replayed copy of chunk 2"]),
    ("extra object", lambda s, p: _replace(s, 7, os.urandom(300)),
     ["[chunk 7] malformed", "[chunk 7] unexpected-chunk"]),
]


@pytest.mark.parametrize(("damage", "expected"),
                         [pytest.param(d, e, id=name) for name, d, e in CHUNK_DAMAGE])
def test_verify_names_the_damaged_chunk(pristine: Pristine, session: Path,
                                        damage: Callable[[Path, Pristine], None],
                                        expected: list[str]) -> None:
    damage(session, pristine)
    done = run("lucid-seal", "verify", "--from-dir", session, "--private-key", pristine.key)
    no_traceback(done)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"session {UID}: FAILED" in done.stdout
    for fragment in expected:
        assert fragment in done.stdout, done.stdout
    summary = one_line(done.stderr, "lucid-seal verify: FAILED")
    assert "[chunk" in summary or "[session]" in summary


@pytest.mark.parametrize(("damage", "expected"),
                         [pytest.param(d, e, id=name) for name, d, e in CHUNK_DAMAGE])
def test_decrypt_writes_only_authentic_segments_and_says_it_failed(
        pristine: Pristine, session: Path, tmp_path: Path,
        damage: Callable[[Path, Pristine], None], expected: list[str]) -> None:
    damage(session, pristine)
    out = tmp_path / "plain"
    done = run("lucid-seal", "decrypt", "--from-dir", session, "--private-key", pristine.key,
               "--out-dir", out)
    no_traceback(done)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    for fragment in expected:
        assert fragment in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("lucid-seal decrypt: FAILED")
    report = json.loads((out / "verify-report.json").read_text())
    assert report["ok"] is False and report["problems"]
    # Every .seg written is byte-identical to the good one: nothing damaged was decrypted.
    for seg in out.glob("*.seg"):
        assert seg.read_bytes() == (pristine.segments / seg.name).read_bytes(), seg.name
    damaged = {p["chunk"] for p in report["problems"] if p["chunk"] is not None}
    assert not {f"{seq:08d}.seg" for seq in damaged} & {p.name for p in out.glob("*.seg")} \
        or "duplicate" in done.stderr or "missing" in done.stderr


# --- damaged manifests ----------------------------------------------------------------------


def _manifest(session: Path) -> dict[str, Any]:
    return json.loads((session / "manifest.json").read_text())


def _write_manifest(session: Path, value: Any) -> None:
    (session / "manifest.json").write_text(json.dumps(value))


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def edit(session: Path) -> None:
        manifest = _manifest(session)
        change(manifest)
        _write_manifest(session, manifest)
    return edit


def _claim_more(manifest: dict[str, Any]) -> None:
    extra = dict(manifest["chunks"][-1], seq=CHUNKS)
    manifest["chunks"].append(extra)
    manifest["totals"]["chunks"] += 1
    manifest["totals"]["sealedBytes"] += extra["sealedBytes"]
    manifest["totals"]["plaintextBytes"] += extra["plaintextBytes"]


UNREADABLE_MANIFESTS: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated", lambda s: (s / "manifest.json").write_bytes(
        (s / "manifest.json").read_bytes()[:200]), "Invalid JSON"),
    ("empty", lambda s: (s / "manifest.json").write_bytes(b""), "Invalid JSON"),
    ("binary garbage", lambda s: (s / "manifest.json").write_bytes(os.urandom(512)),
     "Invalid JSON"),
    ("a JSON list", lambda s: _write_manifest(s, [1, 2]), "(top level): Input should be an object"),
    ("chunks is a string", _edit(lambda m: m.update(chunks="many")), "chunks"),
    ("seq is a string", _edit(lambda m: m["chunks"][1].update(seq="one")), "chunks.1.seq"),
    ("session missing", _edit(lambda m: m.pop("session")), "session"),
    ("unknown format", _edit(lambda m: m.update(format="lucid.manifest/v9")), "format"),
    ("negative size", _edit(lambda m: m["chunks"][0].update(sealedBytes=-1)),
     "chunks.0.sealedBytes"),
    ("key not base64", _edit(lambda m: m["keys"][0].update(wrappedKey="%%%")), "keys.0"),
    ("epoch beyond 32 bits", _edit(lambda m: m["keys"][0].update(epoch=2**40)), "keys.0.epoch"),
]


@pytest.mark.parametrize(("command", "damage", "field"), [
    # decrypt reads the manifest through the same code: three cases show it.
    *[pytest.param("verify", d, f, id=f"verify-{n}") for n, d, f in UNREADABLE_MANIFESTS],
    *[pytest.param("decrypt", d, f, id=f"decrypt-{n}") for n, d, f in UNREADABLE_MANIFESTS[:3]],
])
def test_unreadable_manifest_is_one_line_naming_the_field(
        pristine: Pristine, session: Path, tmp_path: Path, command: str,
        damage: Callable[[Path], None], field: str) -> None:
    damage(session)
    extra = ["--out-dir", str(tmp_path / "plain")] if command == "decrypt" else []
    done = run("lucid-seal", command, "--from-dir", session, "--private-key", pristine.key,
               *extra)
    no_traceback(done)
    assert done.returncode == 2, (done.stdout, done.stderr)
    line = one_line(done.stderr, f"lucid-seal {command}: ")
    assert "manifest.json is not a valid manifest" in line and field in line, line
    assert not list((tmp_path / "plain").glob("*")) if (tmp_path / "plain").exists() else True


MISLEADING_MANIFESTS: list[tuple[str, Callable[[Path], None], str]] = [
    ("claims more chunks", _edit(_claim_more), f"[chunk {CHUNKS}] missing"),
    ("huge totals", _edit(lambda m: m["totals"].update(chunks=10**30, sealedBytes=2**70)),
     "manifest-invalid"),
    ("huge chunk size", _edit(lambda m: m["chunks"][1].update(sealedBytes=2**70)),
     "[chunk 1] manifest-mismatch"),
    ("wrong hash", _edit(lambda m: m["chunks"][3].update(sha256="0" * 64)),
     "[chunk 3] manifest-mismatch"),
    ("not final", _edit(lambda m: m.update(complete=False)), "incomplete"),
    ("another session", _edit(lambda m: m["session"].update(uid=OTHER_UID)),
     "manifest-session"),
    ("deleted", lambda s: (s / "manifest.json").unlink(), "incomplete: no manifest"),
]


@pytest.mark.parametrize(("damage", "expected"),
                         [pytest.param(d, e, id=name) for name, d, e in MISLEADING_MANIFESTS])
def test_manifest_that_lies_is_reported(pristine: Pristine, session: Path,
                                        damage: Callable[[Path], None], expected: str) -> None:
    damage(session)
    done = run("lucid-seal", "verify", "--from-dir", session, "--session-uid", UID,
               "--private-key", pristine.key)
    no_traceback(done)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert expected in done.stdout, done.stdout
    one_line(done.stderr, "lucid-seal verify: FAILED")


# --- keys ----------------------------------------------------------------------------------


def test_wrong_private_key_is_named_and_nothing_is_decrypted(pristine: Pristine,
                                                              tmp_path: Path) -> None:
    done = run("lucid-seal", "verify", "--from-dir", pristine.session, "--private-key",
               pristine.other_key)
    no_traceback(done)
    assert done.returncode == 1
    assert "wrong-key: the recording is encrypted to recipient" in done.stdout
    out = tmp_path / "plain"
    done = run("lucid-seal", "decrypt", "--from-dir", pristine.session, "--private-key",
               pristine.other_key, "--out-dir", out)
    no_traceback(done)
    assert done.returncode == 1 and "wrong-key" in done.stderr
    assert list(out.glob("*.seg")) == []
    assert json.loads((out / "verify-report.json").read_text())["ok"] is False


KEY_FILES: list[tuple[str, Callable[[Path, Pristine], Path], str]] = [
    ("garbage", lambda d, p: _file(d, os.urandom(200)), "not a readable PEM private key"),
    ("empty", lambda d, p: _file(d, b""), "not a readable PEM private key"),
    ("truncated PEM", lambda d, p: _file(d, p.key.read_bytes()[:60]),
     "not a readable PEM private key"),
    ("the public key", lambda d, p: p.key.with_name("public.pem"), "private key"),
    ("missing", lambda d, p: d / "absent.pem", "No such file"),
    ("a directory", lambda d, p: d, "Is a directory"),
]


def _file(directory: Path, data: bytes) -> Path:
    path = directory / "key.pem"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("make", "expected"),
                         [pytest.param(m, e, id=name) for name, m, e in KEY_FILES])
def test_bad_private_key_file_is_one_line(pristine: Pristine, tmp_path: Path,
                                          make: Callable[[Path, Pristine], Path],
                                          expected: str) -> None:
    key = make(tmp_path, pristine)
    done = run("lucid-seal", "verify", "--from-dir", pristine.session, "--private-key", key)
    no_traceback(done)
    assert done.returncode == 2
    assert expected in one_line(done.stderr, "lucid-seal verify: ")


# --- damaged plaintext segments fed to the player -------------------------------------------


@pytest.fixture
def segments(pristine: Pristine, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine.segments, tmp_path / "segments",
                                ignore=shutil.ignore_patterns("verify-report.json")))


def _seg(directory: Path, seq: int) -> Path:
    return directory / f"{seq:08d}.seg"


def _garble(directory: Path) -> None:
    path = _seg(directory, 2)
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data) // 2 + 16):
        data[offset] ^= 0xA5
    path.write_bytes(bytes(data))


SEGMENT_DAMAGE: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated", lambda d: _seg(d, 2).write_bytes(_seg(d, 2).read_bytes()[:-37]), "segment 2"),
    ("cut to the header", lambda d: _seg(d, 2).write_bytes(_seg(d, 2).read_bytes()[:20]),
     "segment 2"),
    ("zero length", lambda d: _seg(d, 2).write_bytes(b""), "segment 2"),
    ("random bytes", lambda d: _seg(d, 2).write_bytes(os.urandom(5000)), "segment 2"),
    ("first segment garbage", lambda d: _seg(d, 0).write_bytes(b"not a segment"), "segment 0"),
]
PLAYER_COMMANDS: list[tuple[str, ...]] = [
    ("info",), ("frame", "--at", "end"), ("contact-sheet", "--count", "4"), ("export",),
    ("verify",),
]


# Every command for three kinds of damage; info and verify (which read every segment)
# for the rest, to keep the suite's subprocess count down.
PLAYER_CASES = [
    pytest.param(command, damage, where, id=f"{name}-{command[0]}")
    for index, (name, damage, where) in enumerate(SEGMENT_DAMAGE)
    for command in PLAYER_COMMANDS
    if index < 3 or command[0] in ("info", "verify")
]


@pytest.mark.parametrize(("command", "damage", "where"), PLAYER_CASES)
def test_player_refuses_a_damaged_segment(segments: Path, tmp_path: Path,
                                          command: tuple[str, ...],
                                          damage: Callable[[Path], None], where: str) -> None:
    damage(segments)
    output = tmp_path / ("out.mp4" if command[0] == "export" else "out.png")
    args: list[str | Path] = [command[0], segments, *command[1:]]
    if command[0] in ("frame", "contact-sheet", "export"):
        args += ["-o", output]
    done = run("lucid-play", *args)
    no_traceback(done)
    assert done.returncode == 1, (done.stdout, done.stderr)
    line = one_line(done.stderr, "lucid-play: error: ")
    assert where in line, line
    assert not output.exists(), f"{command[0]} left {output.name} behind"


def test_garbled_pixels_are_not_detectable_in_plaintext_but_nothing_crashes(
        segments: Path, tmp_path: Path) -> None:
    # A decrypted segment carries no checksum of its own (integrity lives in the
    # sealed chunk's AES-GCM tag), so flipped pixel bytes may decode: the player must
    # then either play them or refuse on one line, never crash.
    _garble(segments)
    for command in PLAYER_COMMANDS:
        args: list[str | Path] = [command[0], segments, *command[1:]]
        if command[0] in ("frame", "contact-sheet", "export"):
            args += ["-o", tmp_path / f"{command[0]}.{'mp4' if command[0] == 'export' else 'png'}"]
        done = run("lucid-play", *args)
        no_traceback(done)
        assert done.returncode in (0, 1), (command, done.stderr)
        if done.returncode == 1:
            one_line(done.stderr, "lucid-play: error: ")
