"""Numbers for docs/player.md: the browser player on a synthetic 1-hour recording.

    .venv/bin/python player/tools/measure.py [--work DIR] [--minutes 60]

Makes (once, kept in --work) a sealed 1024x768 session from the synthetic desktop
(lucid_recorder.player.synthetic: typing, a ticking clock, a dragged dialog), cut into
60 s chunks with a keyframe every 30 s and zstd 9, as the recorder's defaults do; serves it
with `lucid-play serve --from-dir`; and drives the page in Chromium (player/e2e/drive.mjs):
time to first frame after the key is loaded, time until every chunk is verified, and the
latency of 20 seeks to random times. Then the decoder's speed on plain segments (node,
player/tools/bench.ts) for the same hour and for a busy minute (a frame every 40 ms), and
the size of the page's bundle. Prints one JSON object; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lucid_recorder.format.recording import RecordingWriter
from lucid_recorder.player.serve import DirObjects, serve, start_in_thread
from lucid_recorder.player.synthetic import SyntheticDesktop
from lucid_recorder.sealing.compression import Codec, compress
from lucid_recorder.sealing.keys import fingerprint, keygen, read_public_key
from lucid_recorder.sealing.manifest import SessionIdentity, build_manifest
from lucid_recorder.sealing.sealer import Sealer

PLAYER = Path(__file__).resolve().parents[1]
NS = 1_000_000_000
SESSION = SessionIdentity(namespace="bench", name="synthetic-hour",
                          uid="00000000-0000-4000-8000-000000000060")


def make_recording(out: Path, seconds: float, step_ms: int, *, sealed: bool) -> None:
    """Plain segments in out/seg, and (sealed) the session in out/session."""
    if (out / "done").exists():
        return
    (out / "seg").mkdir(parents=True, exist_ok=True)
    desktop = SyntheticDesktop(1024, 768)
    writer = RecordingWriter(1024, 768, segment_ns=60 * NS, keyframe_interval_ns=30 * NS,
                             session_start_unix_ns=int(time.time() * NS) - int(seconds * NS))
    segments = []
    for item in desktop.session(seconds, step_ms=step_ms):
        segments += writer.add(item.ts_ns, item.record)
    segments.append(writer.close())
    for s in segments:
        (out / "seg" / f"{s.seq:08d}.seg").write_bytes(s.data)
    if sealed:
        keys = keygen(out / "keys")
        recipient = read_public_key(keys.public)
        sealer = Sealer(recipient, SESSION.uid)
        (out / "session" / "chunks").mkdir(parents=True)
        infos = []
        for s in segments:
            chunk = sealer.seal(compress(s.data, Codec.ZSTD, 9), s.start_ns, s.end_ns)
            (out / "session" / "chunks" / f"{chunk.seq:08d}.lrec").write_bytes(chunk.data)
            infos.append(chunk.info)
        now = dt.datetime.now(dt.UTC)
        manifest = build_manifest(SESSION, fingerprint(recipient), infos, [sealer.key_record],
                                  started_at=now, now=now, complete=True)
        (out / "session" / "manifest.json").write_bytes(manifest.to_json())
    (out / "done").write_text("")


def drive(url: str, steps: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    script = out / "script.json"
    script.write_text(json.dumps({"url": url, "out": str(out), "steps": steps}))
    done = subprocess.run(["node", str(PLAYER / "e2e" / "drive.mjs"), str(script)],
                          capture_output=True, text=True, timeout=1800, check=False)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if done.returncode != 0 or result["offOrigin"]:
        raise SystemExit(f"browser run failed: {json.dumps(result)[-3000:]}")
    return result


def browser_numbers(work: Path) -> dict[str, Any]:
    server = serve(DirObjects(work / "session", SESSION), "127.0.0.1", 0, allow_remote=False,
                   log=lambda line: None)
    start_in_thread(server)
    chunks = sorted((work / "session" / "chunks").glob("*.lrec"))
    duration_s = len(chunks) * 60
    rng = random.Random(14)
    times = [f"{rng.uniform(0, duration_s - 1):.3f}" for _ in range(20)]
    from lucid_recorder.player.text import parse_time
    steps: list[dict[str, Any]] = [
        {"do": "loadKey", "path": str(work / "keys" / "private.pem")},
        {"do": "waitFrame", "t": "0", "timeout": 600_000},
        {"do": "eval", "js": "Number(document.body.dataset.firstFrameMs)"},
        {"do": "waitFor", "js": "document.body.dataset.verifiedMs !== undefined",
         "timeout": 1_200_000},
        {"do": "eval", "js": "Number(document.body.dataset.verifiedMs)"},
        *({"do": "seek", "to": at, "expectNs": str(parse_time(at))} for at in times),
        {"do": "eval", "js": """(() => { const c = document.createElement('canvas');
            c.width = 1024; c.height = 768; const x = c.getContext('2d');
            const img = new ImageData(1024, 768); const t0 = performance.now();
            for (let i = 0; i < 200; i++) { img.data[i * 4] = i; x.putImageData(img, 0, 0); }
            return (performance.now() - t0) / 200; })()"""},
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = drive(server.url, steps, Path(tmp))
    finally:
        server.shutdown()
        server.server_close()
    evals = [r["value"] for r in result["results"] if r["step"] == "eval"]
    seeks = sorted(r["seekMs"] for r in result["results"] if r["step"] == "seek")
    sealed = sum(p.stat().st_size for p in chunks)
    return {"chunks": len(chunks), "sealedBytes": sealed, "firstFrameMs": evals[0],
            "allVerifiedMs": evals[1], "seekMs": {
                "median": statistics.median(seeks),
                "p95": seeks[max(0, round(0.95 * len(seeks)) - 1)], "max": seeks[-1],
                "all": seeks},
            "putImageData1024x768Ms": evals[2]}


def decode_numbers(*dirs: Path) -> dict[str, Any]:
    subprocess.run(["node", str(PLAYER / "build.mjs"), "--bench"], check=True, timeout=120)
    done = subprocess.run(["node", str(PLAYER / ".build" / "bench.mjs"), *map(str, dirs)],
                          capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(done.stdout)


def bundle_numbers() -> dict[str, int]:
    web = PLAYER.parent / "recorder" / "lucid_recorder" / "player" / "web"
    js = (web / "player.js").read_bytes()
    files = {p.name: p.stat().st_size for p in web.iterdir()}
    return {"playerJs": len(js), "playerJsGzip": len(gzip.compress(js, 9)),
            "total": sum(files.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path,
                        default=Path(tempfile.gettempdir()) / "lucid-player-bench")
    parser.add_argument("--minutes", type=int, default=60)
    args = parser.parse_args()
    hour = args.work / f"synthetic-{args.minutes}min"
    busy = args.work / "busy-minute"
    started = time.monotonic()
    make_recording(hour, args.minutes * 60, 1000, sealed=True)
    make_recording(busy, 60, 40, sealed=False)
    print(f"recordings ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
    out = {"recording": f"synthetic 1024x768, {args.minutes} min, a frame a second, 60 s "
                        "chunks, keyframes every 30 s, zstd 9",
           "browser": browser_numbers(hour),
           "decodeHour": decode_numbers(hour / "seg"),
           "decodeBusyMinute": decode_numbers(busy / "seg"),
           "bundle": bundle_numbers()}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
