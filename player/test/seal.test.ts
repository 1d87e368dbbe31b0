// The TS key handling, container, decompression and verifier against sessions sealed and
// verified by the Python reference (player/tools/make_vectors.py).

import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { toHex } from "../src/seal/bytes.js";
import { decodeHeader } from "../src/seal/container.js";
import { KeyFormatError } from "../src/seal/errors.js";
import { PassphraseNeeded, type RecipientKey, importPrivateKey } from "../src/seal/keys.js";
import { parseManifest } from "../src/seal/manifest.js";
import { verify } from "../src/seal/verify.js";
import { VECTORS, readJson, sha } from "./support.js";

interface Report {
  ok: boolean; complete: boolean; chunksExpected: number; chunksAuthentic: number;
  plaintextBytes: number; problems: { chunk: number | null; code: string; message: string }[];
  gaps: { afterSeq: number | null; beforeSeq: number; startNs: number; endNs: number;
    reason: string }[];
}
interface Expected { report: Report; segments: { seq: number; epoch: number; sha256: string;
  gapBefore: boolean }[] }
interface SessionVector { name: string; about: string; dir: string; objects: number[];
  manifest: boolean; auditor: Expected; stranger: Expected }
interface Sealed {
  session: { namespace: string; name: string; uid: string };
  keys: { auditor: string; stranger: string; auditorEncrypted: string; passphrase: string };
  segmentSha256: string[];
  sessions: SessionVector[];
}

const sealed = readJson<Sealed>("sealed.json");
const pemText = (path: string) => readFileSync(join(VECTORS, path), "utf8");

function loadSession(dir: string) {
  const chunks = new Map<number, Uint8Array>();
  for (const f of readdirSync(join(VECTORS, dir, "chunks"))) {
    chunks.set(Number(f.slice(0, 8)), new Uint8Array(readFileSync(join(VECTORS, dir, "chunks", f))));
  }
  const path = join(VECTORS, dir, "manifest.json");
  const manifest = existsSync(path) ? parseManifest(readFileSync(path, "utf8")) : null;
  return { chunks, manifest };
}

describe("keys", () => {
  it("imports the PEM keygen writes and finds the fingerprint the manifest names", async () => {
    const key = await importPrivateKey(pemText(sealed.keys.auditor));
    assert.equal(key.privateKey.extractable, false);
    const { manifest } = loadSession("sessions/good");
    assert.equal(toHex(key.fingerprint), manifest!.recipientFingerprint);
  });
  it("imports a passphrase-protected key, and asks for the passphrase", async () => {
    const text = pemText(sealed.keys.auditorEncrypted);
    await assert.rejects(importPrivateKey(text), PassphraseNeeded);
    await assert.rejects(importPrivateKey(text, "wrong"), /wrong passphrase|not a readable/);
    const key = await importPrivateKey(text, sealed.keys.passphrase);
    const plain = await importPrivateKey(pemText(sealed.keys.auditor));
    assert.equal(toHex(key.fingerprint), toHex(plain.fingerprint));
  });
  it("refuses other files by name", async () => {
    const publicPem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA" + "A".repeat(43) +
      "=\n-----END PUBLIC KEY-----\n";
    await assert.rejects(importPrivateKey(publicPem), /public key/);
    await assert.rejects(importPrivateKey("hello"), /not a PEM private key/);
    // An Ed25519 PKCS#8 key (RFC 8410's example).
    const ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU" +
      "++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    await assert.rejects(importPrivateKey(ed), (e: Error) =>
      e instanceof KeyFormatError && /Ed25519 key, expected X25519/.test(e.message));
  });
});

describe("sealed sessions verify as the reference verifies them", () => {
  let keys: Record<"auditor" | "stranger", RecipientKey>;
  for (const s of sealed.sessions) {
    for (const who of ["auditor", "stranger"] as const) {
      it(`${s.name} (${who}'s key): ${s.about}`, async () => {
        keys ??= {
          auditor: await importPrivateKey(pemText(sealed.keys.auditor)),
          stranger: await importPrivateKey(pemText(sealed.keys.stranger)),
        };
        const { chunks, manifest } = loadSession(s.dir);
        assert.deepEqual([...chunks.keys()].sort((a, b) => a - b), s.objects);
        const { report, segments } = await verify(manifest, chunks, keys[who], sealed.session.uid);
        const want = s[who];
        const got = {
          ...report,
          problems: report.problems.map((p) => ({ ...p, message: p.code === "decompress-failed"
            // zstd libraries word their errors differently; the reference's prefix stays.
            ? p.message.split(": zstd payload is corrupt")[0] : p.message })),
          gaps: report.gaps.map((g) => ({ ...g, startNs: Number(g.startNs),
            endNs: Number(g.endNs) })),
        };
        const expected = {
          ...want.report, sessionUid: sealed.session.uid,
          problems: want.report.problems.map((p) => ({ ...p, message: p.code === "decompress-failed"
            ? p.message.split(": zstd payload is corrupt")[0] : p.message })),
        };
        assert.deepEqual(got, expected);
        if (want.report.chunksAuthentic) {
          assert.deepEqual(segments.map((x) => ({ seq: x.seq, epoch: x.epoch,
            sha256: sha(x.plaintext), gapBefore: x.gapBefore })), want.segments);
        }
      });
    }
  }

  it("the good session's plaintext is the recording's segments", async () => {
    const key = await importPrivateKey(pemText(sealed.keys.auditor));
    const { chunks, manifest } = loadSession("sessions/good");
    const { segments } = await verify(manifest, chunks, key);
    assert.deepEqual(segments.map((x) => sha(x.plaintext)), sealed.segmentSha256);
  });

  it("chunk headers parse without a key", () => {
    const { chunks, manifest } = loadSession("sessions/good");
    for (const [seq, data] of chunks) {
      const h = decodeHeader(data);
      assert.equal(h.seq, seq);
      assert.equal(h.sessionUid, sealed.session.uid);
      assert.equal(h.startNs, manifest!.chunks[seq]!.startNs);
    }
  });
});
