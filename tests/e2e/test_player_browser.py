"""The browser player against the real stack: a real recording (operator, recorder, xrdp,
MinIO), `lucid-play serve`, and the page in Debian's Chromium driven by playwright-core
(player/e2e/drive.mjs). The key is loaded through the page's file input, as an auditor would.

- recorded: 5 seeks, each frame's canvas pixels equal `lucid-play frame --at T`;
- live: the page follows a recording session, at most chunking.maxSeconds + 2 s behind;
- bad input: the wrong key, a tampered chunk, a truncated recording, 0.0.0.0;
- and the page never requests anything from another origin than its own server.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from PIL import Image

from lucid_devstack.operator_proc import OperatorProcess
from lucid_devstack.stack import Stack, venv_bin
from lucid_recorder.player.text import parse_time
from lucid_recorder.sealing.keys import KeyPairFiles, keygen
from tests.e2e.support import Sessions, has_default_sa, wait_for

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "player" / "e2e" / "drive.mjs"
SCREENSHOT = REPO / "docs" / "player.png"
# Each chunk row of the verification table: {seq: [state, verdict text]}.
VERDICTS = ("Object.fromEntries([...document.querySelectorAll('#chunks tbody tr')].map("
            "r => [r.dataset.seq, [r.dataset.state, r.cells[3].textContent]]))")


def _namespace(stack: Stack, api: client.ApiClient) -> Sessions:
    namespace = f"player-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    wait_for(lambda: has_default_sa(api, namespace), 30, f"default SA in {namespace}")
    made = Sessions(stack, api, namespace)
    made.standard_secrets()
    return made


def _cli(stack: Stack, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(venv_bin() / argv[0]), *argv[1:]], capture_output=True,
                          text=True, timeout=120, env=_env(stack))


def _env(stack: Stack) -> dict[str, str]:
    return {**os.environ, **stack.env(), "LUCID_S3_ACCESS_KEY": stack.minio.access_key,
            "LUCID_S3_SECRET_KEY": stack.minio.secret_key}


def _record(sessions: Sessions, name: str, bucket: str, keys: KeyPairFiles,
            **spec: Any) -> dict[str, Any]:
    sessions.secret(f"auditor-{name}", {"publicKey": keys.public.read_text()})
    manifest = sessions.manifest(name, **spec)
    manifest["spec"]["encryption"]["recipientPublicKeySecretRef"]["name"] = f"auditor-{name}"
    manifest["spec"]["storage"]["bucket"] = bucket
    sessions.apply(manifest)
    sessions.wait_phase(name, "Recording", timeout=90)
    return manifest


def _chunks_stored(sessions: Sessions, name: str) -> int:
    return int((sessions.status(name).get("pipeline") or {}).get("chunksStored", 0))


def _stop(sessions: Sessions, manifest: dict[str, Any]) -> None:
    name = manifest["metadata"]["name"]
    sessions.apply({**manifest, "spec": {**manifest["spec"], "state": "Stopped"}})
    sessions.wait_phase(name, "Completed", timeout=90)


class Served:
    """A running `lucid-play serve`; its URL is read from the first line it prints."""

    def __init__(self, stack: Stack, *args: str, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [str(venv_bin() / "lucid-play"), "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=log.open("w"), text=True, env=_env(stack))
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if match is None:
            self.stop()
            raise AssertionError(f"lucid-play serve did not start: {line!r} "
                                 f"{log.read_text()}")
        self.url = match.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _s3(stack: Stack, bucket: str, session: str) -> list[str]:
    return ["--endpoint", stack.minio.endpoint, "--bucket", bucket, "--no-tls",
            "--session", session]


def drive(url: str, steps: list[dict[str, Any]], out: Path, timeout: float = 240) -> dict:
    """Run the steps in Chromium; fails the test when a step fails or the page went elsewhere."""
    out.mkdir(parents=True, exist_ok=True)
    script = out / f"script-{uuid.uuid4().hex[:6]}.json"
    script.write_text(json.dumps({"url": url, "out": str(out), "steps": steps}))
    done = subprocess.run(["node", str(DRIVER), str(script)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, check=False)
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        pytest.fail(f"driver printed no result (exit {done.returncode}): {done.stdout[-2000:]}"
                    f"\n{done.stderr[-4000:]}")
    if done.returncode != 0:
        pytest.fail("browser step failed: " + json.dumps(result["results"][-3:], indent=1)
                    + "\npage console:\n" + "\n".join(result["console"][-30:]))
    origin = url.rstrip("/")
    assert result["offOrigin"] == [], result["offOrigin"]
    assert result["requests"] and all(r.startswith(origin + "/") for r in result["requests"]), \
        result["requests"]
    return result


def _rgb(path: Path) -> bytes:
    return Image.open(path).convert("RGB").tobytes()


@dataclass
class Recorded:
    sessions: Sessions
    name: str
    bucket: str
    keys: KeyPairFiles
    segments: Path
    duration_ns: int

    @property
    def session(self) -> str:
        return f"{self.sessions.namespace}/{self.name}"


@pytest.fixture(scope="module")
def recorded(stack: Stack, api: client.ApiClient, recorder_operator: OperatorProcess,
             tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """About 16 s of the real desktop: 4 s chunks, a keyframe every second."""
    tmp = tmp_path_factory.mktemp("recorded")
    sessions = _namespace(stack, api)
    keys = keygen(tmp / "keys")
    manifest = _record(sessions, "played", "player-e2e", keys,
                       chunking={"maxSeconds": 4},
                       recording={"keyframeIntervalSeconds": 1})
    for line in ("the auditor watches this", "in the browser, decrypted locally"):
        stack.desktop.type_text(line)
        stack.desktop.press("Return")
        time.sleep(2)
    wait_for(lambda: _chunks_stored(sessions, "played") >= 3, 90, "three chunks stored")
    stack.desktop.type_text("last line before the stop")
    time.sleep(1.5)
    _stop(sessions, manifest)
    source = [*_s3(stack, "player-e2e", f"{sessions.namespace}/played"),
              "--private-key", str(keys.private)]
    decrypted = _cli(stack, "lucid-seal", "decrypt", *source, "--out-dir", str(tmp / "seg"))
    assert decrypted.returncode == 0, decrypted.stderr
    info = _cli(stack, "lucid-play", "info", str(tmp / "seg"))
    assert info.returncode == 0, info.stderr
    duration = re.search(r"^duration\s+(\S+)", info.stdout, re.MULTILINE)
    assert duration is not None, info.stdout
    return Recorded(sessions, "played", "player-e2e", keys, tmp / "seg",
                    parse_time(duration.group(1)))


def test_recorded_session_plays_and_seeks_to_the_exact_frames(recorded: Recorded, stack: Stack,
                                                              tmp_path: Path):
    served = Served(stack, *_s3(stack, recorded.bucket, recorded.session),
                    log=tmp_path / "serve.log")
    try:
        # Five points across the recording, in a jumping order (back and forth), at odd
        # milliseconds: most fall between keyframes, which is what the index is for.
        fractions = (0.62, 0.07, 0.93, 0.31, 0.5)
        times = [f"{round(recorded.duration_ns * f / 1e6) / 1000:.3f}" for f in fractions]
        for i, at in enumerate(times):
            done = _cli(stack, "lucid-play", "frame", str(recorded.segments), "--at", at,
                        "-o", str(tmp_path / f"expected-{i}.png"))
            assert done.returncode == 0, done.stderr
        steps: list[dict[str, Any]] = [
            {"do": "loadKey", "path": str(recorded.keys.private)},
            {"do": "waitFrame", "t": "0"},
            {"do": "waitFor", "js": "!document.querySelector('#chunks tr[data-state=pending]')"},
        ]
        steps += [{"do": "seek", "to": at, "expectNs": str(parse_time(at)), "capture": f"seek-{i}"}
                  for i, at in enumerate(times)]
        steps += [
            {"do": "text", "selector": "#summary"},
            {"do": "eval", "js": "[...document.querySelectorAll('#chunks tbody tr')]"
                                 ".map(r => r.dataset.state)"},
            {"do": "screenshot", "path": str(tmp_path / "player.png"), "fullPage": True},
        ]
        result = drive(served.url, steps, tmp_path)
    finally:
        served.stop()
    seeks = [r for r in result["results"] if r["step"] == "seek"]
    assert len(seeks) == 5
    for i, seek in enumerate(seeks):
        assert seek["state"] == "frame"
        shot = Path(seek["capture"]).read_bytes()
        expected = _rgb(tmp_path / f"expected-{i}.png")
        assert (seek["width"] * seek["height"] * 3) == len(expected)
        assert shot == expected, f"canvas differs from lucid-play frame --at {times[i]}"
    summary = next(r["text"] for r in result["results"] if r["step"] == "text")
    assert summary.startswith("All ") and "authentic, in order, and the session is finalized" \
        in summary
    states = next(r["value"] for r in result["results"] if r["step"] == "eval")
    assert states and set(states) == {"ok"}
    if os.environ.get("LUCID_PLAYER_SCREENSHOT"):
        SCREENSHOT.write_bytes((tmp_path / "player.png").read_bytes())
    print("seek ms:", [s["seekMs"] for s in seeks])


@pytest.mark.parametrize("max_seconds", [1, pytest.param(60, marks=pytest.mark.slow)])
def test_live_session_is_followed_within_max_seconds_plus_two(
        stack: Stack, api: client.ApiClient, recorder_operator: OperatorProcess, tmp_path: Path,
        max_seconds: int):
    sessions = _namespace(stack, api)
    keys = keygen(tmp_path / "keys")
    manifest = _record(sessions, "live", "player-live", keys,
                       chunking={"maxSeconds": max_seconds})
    wait_for(lambda: _chunks_stored(sessions, "live") >= 1, max_seconds + 60,
             "the first chunk")
    served = Served(stack, *_s3(stack, "player-live", f"{sessions.namespace}/live"),
                    log=tmp_path / "serve.log")
    sampler = """async (ms) => {
      const out = [];
      const end = performance.now() + ms;
      while (performance.now() < end) {
        await new Promise(r => setTimeout(r, 200));
        const c = document.getElementById('screen');
        if (c.dataset.state === 'frame') out.push([Number(c.dataset.sessionT),
          Number(document.body.dataset.lagMs ?? NaN),
          Number(document.body.dataset.edgeLagMs ?? NaN)]);
      }
      return out;
    }"""
    # Type while the page watches: the frame must advance and show it.
    typer = threading.Thread(target=lambda: (
        time.sleep(4), stack.desktop.type_text("typed while an auditor watched live"),
        stack.desktop.press("Return")))
    try:
        steps = [
            {"do": "loadKey", "path": str(keys.private)},
            {"do": "waitFrame"},
            {"do": "waitFor", "js": "!document.getElementById('live').hidden"},
            {"do": "capture", "name": "before"},
        ]
        typer.start()
        watch_ms = 10_000 + 1_250 * max_seconds
        steps += [{"do": "eval", "js": sampler, "arg": watch_ms, "timeout": watch_ms + 30_000},
                  {"do": "capture", "name": "after"}]
        result = drive(served.url, steps, tmp_path, timeout=watch_ms / 1000 + 120)
        typer.join(timeout=30)
    finally:
        served.stop()
    _stop(sessions, manifest)
    samples = next(r["value"] for r in result["results"] if r["step"] == "eval")
    times = [s[0] for s in samples]
    assert times[-1] - times[0] >= 5e9, f"the frame did not advance: {times[:3]}…{times[-3:]}"
    before, after = (next(r for r in result["results"] if r.get("capture", "").endswith(n))
                     for n in ("before.rgb", "after.rgb"))
    assert Path(before["capture"]).read_bytes() != Path(after["capture"]).read_bytes()
    lags = [s[1] for s in samples if s[1] == s[1]]
    # Steady state, once the page caught up with the recording (it plays faster until
    # then, however long a loaded machine made the start): at most maxSeconds + 2 s.
    limit = (max_seconds + 2) * 1000
    caught = next((i for i, lag in enumerate(lags) if lag <= limit), None)
    assert caught is not None and caught <= 2 * len(lags) // 3, \
        f"the page never caught up with the recording: {lags}"
    steady = lags[caught:]
    edges = [s[2] for s in samples if s[2] == s[2]]
    median = sorted(steady)[len(steady) // 2]
    print(f"live lag at maxSeconds {max_seconds}: median {median:.0f} ms, "
          f"max {max(steady):.0f} ms over {len(steady)} samples; newest verified moment "
          f"{min(edges):.0f}..{max(edges):.0f} ms old")
    assert max(steady) <= limit, steady


def _copy_session(stack: Stack, recorded: Recorded, bucket: str,
                  change: dict[str, bytes | None]) -> None:
    """Copy the recorded session's objects to another bucket, replacing or deleting some."""
    minio = stack.minio.client()
    if not minio.bucket_exists(bucket):
        minio.make_bucket(bucket)
    prefix = f"recordings/{recorded.session}/"
    for obj in minio.list_objects(recorded.bucket, prefix=prefix, recursive=True):
        name = obj.object_name or ""
        response = minio.get_object(recorded.bucket, name)
        try:
            data = response.read()
        finally:
            response.close()
            response.release_conn()
        for key, value in change.items():
            if name.endswith(key):
                data = value  # type: ignore[assignment]
        if data is not None:
            minio.put_object(bucket, name, io.BytesIO(data), len(data))


def _chunk(stack: Stack, recorded: Recorded, seq: int) -> bytes:
    minio = stack.minio.client()
    names = [o.object_name for o in minio.list_objects(
        recorded.bucket, prefix=f"recordings/{recorded.session}/", recursive=True)]
    name = next(n for n in names if n and n.endswith(f"chunks/{seq:08d}.lrec"))
    response = minio.get_object(recorded.bucket, name)
    try:
        return response.read()
    finally:
        response.close()
        response.release_conn()


def test_wrong_key_shows_a_clear_message_and_draws_nothing(recorded: Recorded, stack: Stack,
                                                          tmp_path: Path):
    other = keygen(tmp_path / "other")
    served = Served(stack, *_s3(stack, recorded.bucket, recorded.session),
                    log=tmp_path / "serve.log")
    try:
        result = drive(served.url, [
            {"do": "loadKey", "path": str(other.private)},
            {"do": "waitFor", "js": "document.getElementById('keyerror').textContent !== ''"},
            {"do": "text", "selector": "#keyerror"},
            {"do": "eval", "js": "[document.getElementById('player').hidden,"
                                 " document.getElementById('screen').dataset.state]"},
        ], tmp_path)
    finally:
        served.stop()
    message = next(r["text"] for r in result["results"] if r["step"] == "text")
    assert message.startswith("Wrong key: the recording is encrypted to recipient ")
    assert "Nothing was decrypted or shown" in message
    hidden, state = next(r["value"] for r in result["results"] if r["step"] == "eval")
    assert hidden is True and state == "loading"


def test_tampered_chunk_is_marked_and_never_drawn(recorded: Recorded, stack: Stack,
                                                 tmp_path: Path):
    chunk = bytearray(_chunk(stack, recorded, 1))
    chunk[-100] ^= 0x01
    _copy_session(stack, recorded, "player-tampered", {"chunks/00000001.lrec": bytes(chunk)})
    served = Served(stack, *_s3(stack, "player-tampered", recorded.session),
                    log=tmp_path / "serve.log")
    try:
        result = drive(served.url, [
            {"do": "loadKey", "path": str(recorded.keys.private)},
            {"do": "waitFrame", "t": "0"},
            {"do": "waitFor", "js": "!document.querySelector('#chunks tr[data-state=pending]')"},
            {"do": "eval", "js": VERDICTS},
            {"do": "click", "selector": "#chunks tr[data-seq='1']"},
            {"do": "waitFor", "js": "document.getElementById('screen').dataset.seq === '1'"},
            {"do": "eval", "js": "[document.getElementById('screen').dataset.state,"
                                 " document.getElementById('overlay').textContent]"},
            {"do": "capture", "name": "tampered"},
        ], tmp_path)
    finally:
        served.stop()
    verdicts = next(r["value"] for r in result["results"] if r["step"] == "eval")
    assert verdicts["1"][0] == "failed"
    assert "auth-failed: chunk 1 failed authentication: its bytes were modified" in verdicts["1"][1]
    assert {s for k, (s, _) in verdicts.items() if k != "1"} == {"ok"}
    state, overlay = [r["value"] for r in result["results"] if r["step"] == "eval"][1]
    assert state == "blank"
    assert overlay.startswith("chunk 1 failed verification (auth-failed): not shown")
    capture = next(r for r in result["results"] if r["step"] == "capture")
    pixels = set(Path(capture["capture"]).read_bytes())
    assert pixels <= {0x10, 0x12, 0x16}  # the blank fill only: nothing of the chunk drawn


def test_truncated_recording_plays_what_is_there(recorded: Recorded, stack: Stack,
                                                tmp_path: Path):
    minio = stack.minio.client()
    last = max(int(Path(o.object_name or "").stem) for o in minio.list_objects(
        recorded.bucket, prefix=f"recordings/{recorded.session}/", recursive=True)
        if (o.object_name or "").endswith(".lrec"))
    cut = _chunk(stack, recorded, last)
    # The recorder died mid-upload: its last chunk cut short, no final manifest.
    _copy_session(stack, recorded, "player-truncated", {
        f"chunks/{last:08d}.lrec": cut[: len(cut) // 2], "manifest.json": None})
    served = Served(stack, *_s3(stack, "player-truncated", recorded.session),
                    log=tmp_path / "serve.log")
    try:
        result = drive(served.url, [
            {"do": "loadKey", "path": str(recorded.keys.private)},
            {"do": "waitFrame"},
            {"do": "waitFor", "js": "!document.querySelector('#chunks tr[data-state=pending]')"},
            {"do": "eval", "js": VERDICTS},
            {"do": "text", "selector": "#problems"},
            {"do": "seek", "to": "1", "expectNs": str(parse_time("1")), "capture": "early"},
        ], tmp_path)
    finally:
        served.stop()
    verdicts = next(r["value"] for r in result["results"] if r["step"] == "eval")
    assert verdicts[str(last)][0] == "failed"
    assert "truncated: chunk" in verdicts[str(last)][1]
    assert {s for k, (s, _) in verdicts.items() if k != str(last)} == {"ok"}
    problems = next(r["text"] for r in result["results"] if r["step"] == "text")
    assert "incomplete: no manifest" in problems
    early = next(r for r in result["results"] if r["step"] == "seek")
    assert early["state"] == "frame"
    expected = _cli(stack, "lucid-play", "frame", str(recorded.segments), "--at", "1", "-o",
                    str(tmp_path / "early.png"))
    assert expected.returncode == 0
    assert Path(early["capture"]).read_bytes() == _rgb(tmp_path / "early.png")


def test_serve_refuses_every_interface_without_the_flag(recorded: Recorded, stack: Stack):
    done = _cli(stack, "lucid-play", "serve", *_s3(stack, recorded.bucket, recorded.session),
                "--listen", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 (every interface)" in done.stderr
    assert "--allow-remote" in done.stderr
    assert done.stdout == ""
