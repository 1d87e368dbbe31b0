"""What signed recordings and the operator's seals cost (issue 13): `python -m bench.evidence`.

- CPU per chunk of sealing in format 2 (signed, identity bound) against format 1, for a
  typical compressed chunk and for an incompressible one, and of signing a manifest;
- verify time and peak memory for a synthesised busy hour: 1200 chunks of 8 MiB of
  screen updates (the default maxBytes; the benchmark desktop closes one every ~3 s),
  stored in a real MinIO with the operator's seals, checked by `lucid-seal verify
  --operator-key` as a process.

Writes bench/results/evidence.json; docs/storage.md quotes it. Numbers, never assertions.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from lucid_common.evidence import new_operator_key, public_pem, sign_seal
from lucid_devstack.minio import MinioServer, make_bucket
from lucid_devstack.stack import venv_bin
from lucid_operator import evidence
from lucid_operator.seal_store import store_seal
from lucid_recorder.sealing import Codec, SessionIdentity, build_manifest, compress, fingerprint
from lucid_recorder.sealing.keys import keygen, read_public_key
from lucid_recorder.sealing.sealer import Sealer
from lucid_recorder.storage import ObjectStore, SessionLayout, make_client

RESULTS = Path(__file__).resolve().parent / "results" / "evidence.json"
SESSION = SessionIdentity(namespace="bench", name="hour", uid=str(uuid.uuid4()))
MiB = 1024 * 1024



def _cpu(fn, repeat: int) -> float:
    began = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - began) / repeat


def _screen(seed: int) -> bytes:
    # 8 MiB of "screen updates": repeated content plus 64 KiB of noise, which zstd level 9
    # stores in about 65 KiB, like the benchmark desktop's chunks (1.3 MB per minute at a
    # chunk every ~3 s; docs/benchmarks.md).
    block = os.urandom(4096) * 16
    noise = os.urandom(64 * 1024)
    return (block * 128)[: 8 * MiB - len(noise) - 8] + noise + seed.to_bytes(8, "big")


def signing_cost(recipient) -> dict[str, float]:
    out: dict[str, float] = {}
    payloads = {"typical (8 MiB, zstd 9)": compress(_screen(1), Codec.ZSTD, 9),
                "incompressible (8 MiB)": compress(os.urandom(8 * MiB), Codec.NONE)}
    for label, payload in payloads.items():
        v1 = Sealer(recipient, SESSION.uid)
        v2 = Sealer(recipient, SESSION.uid, namespace=SESSION.namespace, name=SESSION.name)
        repeat = 200 if len(payload.data) < MiB else 20
        t1 = _cpu(lambda s=v1, p=payload: s.seal(p, 0, 1), repeat)
        t2 = _cpu(lambda s=v2, p=payload: s.seal(p, 0, 1), repeat)
        out[f"{label}: sealed bytes"] = len(payload.data)
        out[f"{label}: format 1 ms"] = t1 * 1e3
        out[f"{label}: format 2 ms"] = t2 * 1e3
        out[f"{label}: added ms"] = (t2 - t1) * 1e3
    sealer = Sealer(recipient, SESSION.uid, namespace=SESSION.namespace, name=SESSION.name)
    infos = [sealer.seal(compress(b"x", Codec.NONE), i, i + 1).info for i in range(1200)]
    started = dt.datetime.now(dt.UTC)
    out["manifest of 1200 chunks: sign ms"] = _cpu(lambda: build_manifest(
        SESSION, fingerprint(recipient), infos, [sealer.key_record], started_at=started,
        now=started, complete=True, signer=sealer.signer), 5) * 1e3 - _cpu(lambda: build_manifest(
        SESSION, fingerprint(recipient), infos, [sealer.key_record], started_at=started,
        now=started, complete=True), 5) * 1e3
    return out


def verify_hour(workdir: Path, chunks: int = 1200) -> dict[str, float]:
    keys = keygen(workdir / "keys")
    recipient = read_public_key(keys.public)
    operator = new_operator_key()
    (workdir / "operator.pem").write_bytes(public_pem(operator.public_key()))
    server = MinioServer(workdir / "minio").start()
    try:
        client = make_client(server.endpoint, server.access_key, server.secret_key, secure=False)
        make_bucket(client, "bench")
        store = ObjectStore(client, "bench", SessionLayout("recordings", SESSION))
        sealer = Sealer(recipient, SESSION.uid, namespace=SESSION.namespace, name=SESSION.name)
        infos = []
        stored = 0
        began = time.monotonic()
        payload = compress(_screen(0), Codec.ZSTD, 9)
        for seq in range(chunks):
            chunk = sealer.seal(payload, seq * 3 * 10**9, (seq + 1) * 3 * 10**9)
            store.put_chunk(seq, chunk.data, chunk.info)
            infos.append(chunk.info)
            stored += len(chunk.data)
        manifest = build_manifest(SESSION, fingerprint(recipient), infos, [sealer.key_record],
                                  started_at=dt.datetime.now(dt.UTC),
                                  now=dt.datetime.now(dt.UTC), complete=True,
                                  signer=sealer.signer)
        store.put_manifest(manifest)
        status = {"metadata": SESSION.model_dump(), "status": {
            "phase": "Completed",
            "pipeline": {"state": "Finalized",
                         "signingKey": {"epoch": 0, "publicKey": base64.b64encode(
                             sealer.signer.public_raw).decode()},
                         "chainHead": {"chunks": chunks, "sha256": infos[-1].sha256}}}}
        seal, _ = evidence.next_seal(status, dt.datetime.now(dt.UTC))
        store_seal(client, "bench", "recordings", sign_seal(seal, operator))
        written = time.monotonic() - began
        env = {**os.environ, "LUCID_S3_ACCESS_KEY": server.access_key,
               "LUCID_S3_SECRET_KEY": server.secret_key}
        argv = [str(venv_bin() / "lucid-seal"), "verify", "--endpoint", server.endpoint,
                "--bucket", "bench", "--no-tls", "--session",
                f"{SESSION.namespace}/{SESSION.name}/{SESSION.uid}", "--private-key",
                str(keys.private), "--operator-key", str(workdir / "operator.pem"),
                "--report", str(workdir / "report.json")]
        measure = ("import resource, subprocess, sys\n"
                   "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
                   "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
                   "print(u.ru_maxrss, u.ru_utime + u.ru_stime, code)\n")
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-c", measure, *argv], capture_output=True,
                              text=True, timeout=1800, env=env)
        wall = time.monotonic() - began
        rss, cpu, code = done.stdout.split()
        report = json.loads((workdir / "report.json").read_text())
        return {"chunks": chunks, "sealed MB": stored / 1e6,
                "plaintext GB": report["plaintextBytes"] / 1e9,
                "write s": written, "verify wall s": wall, "verify CPU s": float(cpu),
                "verify peak RSS MiB": int(rss) / 1024, "exit": int(code),
                "verdict": report["verdict"]}
    finally:
        server.stop()


def main() -> int:
    recipient = read_public_key(keygen(Path(tempfile.mkdtemp()) / "k").public)
    results: dict[str, object] = {"signing": signing_cost(recipient)}
    with tempfile.TemporaryDirectory() as tmp:
        results["verify_hour"] = verify_hour(Path(tmp))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
