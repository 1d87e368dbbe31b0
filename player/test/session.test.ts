// The page's session and player logic (play/), over the vector sessions served by a fake of
// the local server: what is drawn, what is not, and how a growing session is followed.

import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import type { Api, SessionInfo, StoredChunk } from "../src/play/api.js";
import { DEFAULT_ARROW } from "../src/play/arrow.js";
import { Player } from "../src/play/player.js";
import { Session } from "../src/play/session.js";
import { offset, parseTime } from "../src/play/text.js";
import { importPrivateKey } from "../src/seal/keys.js";
import { VECTORS, readJson, sha } from "./support.js";

/** Serves a vector session directory as `lucid-play serve` would; `upTo` hides later chunks. */
class DirApi {
  upTo = Infinity;
  withManifest = true;
  requests: string[] = [];
  constructor(private readonly dir: string) {}

  private files(): Map<number, string> {
    const out = new Map<number, string>();
    for (const f of readdirSync(join(this.dir, "chunks"))) {
      const seq = Number(f.slice(0, 8));
      if (seq <= this.upTo) out.set(seq, join(this.dir, "chunks", f));
    }
    return out;
  }

  async session(): Promise<SessionInfo> {
    return { namespace: "audit", name: "vector", uid: "7d3f1c2e-0a5b-4c6d-9e8f-101112131415",
      source: this.dir };
  }

  async manifest(): Promise<string | null> {
    this.requests.push("manifest");
    const path = join(this.dir, "manifest.json");
    return this.withManifest && existsSync(path) ? readFileSync(path, "utf8") : null;
  }

  async chunks(): Promise<StoredChunk[]> {
    this.requests.push("chunks");
    return [...this.files()].map(([seq, path]) => ({ seq, size: readFileSync(path).length }));
  }

  async chunk(seq: number): Promise<Uint8Array | null> {
    this.requests.push(`chunk ${seq}`);
    const path = this.files().get(seq);
    return path === undefined ? null : new Uint8Array(readFileSync(path));
  }
}

const auditorPem = readFileSync(join(VECTORS, "keys", "auditor.pem"), "utf8");
const strangerPem = readFileSync(join(VECTORS, "keys", "stranger.pem"), "utf8");

async function open(name: string, pem = auditorPem, setup?: (api: DirApi) => void) {
  const api = new DirApi(join(VECTORS, "sessions", name));
  setup?.(api);
  const info = await api.session();
  const session = new Session(api as unknown as Api, info, await importPrivateKey(pem));
  await session.refresh();
  return { api, session, player: new Player(session) };
}

interface CaseVector { name: string; frames: { t: string; rgb: string }[] }
const desktop = readJson<{ cases: CaseVector[] }>("recordings.json").cases
  .find((c) => c.name === "desktop")!;

describe("session and player", () => {
  it("a good session: every chunk verified, frames as the reference's", async () => {
    const { session, player } = await open("good");
    assert.deepEqual(session.spans().map((s) => s.state), ["ok", "ok", "ok"]);
    assert.equal(session.report!.ok, true);
    assert.equal(session.complete, true);
    for (const f of desktop.frames.filter((_, i) => i % 7 === 0)) {
      const shown = await player.frameAt(Number(f.t));
      assert.equal(shown.kind, "frame");
      if (shown.kind === "frame") assert.equal(sha(shown.fb.rgb()), f.rgb, `at ${f.t}`);
    }
  });

  for (const [name, seq, code] of [["flipped-payload", 1, "auth-failed"],
    ["truncated", 2, "truncated"], ["chain-broken", 2, "chain-broken"],
    ["corrupt-zstd", 1, "decompress-failed"], ["key-conflict", 1, "key-conflict"]] as const) {
    it(`${name}: chunk ${seq} is marked ${code} and never drawn`, async () => {
      const { session, player } = await open(name);
      const entry = session.entries.get(seq)!;
      assert.equal(entry.state, "failed");
      assert.ok(entry.problems.some((p) => p.code === code), JSON.stringify(entry.problems));
      const mid = (entry.startNs! + entry.endNs!) / 2;
      const shown = await player.frameAt(mid);
      assert.equal(shown.kind, "blank");
      if (shown.kind === "blank") assert.match(shown.reason, new RegExp(`chunk ${seq} failed`));
      // The others still play.
      const other = [...session.entries.values()].find((e) => e.state === "ok")!;
      assert.equal((await player.frameAt(other.startNs!)).kind, "frame");
    });
  }

  it("a missing chunk is shown as missing", async () => {
    const { session, player } = await open("missing");
    const entry = session.entries.get(1)!;
    assert.equal(entry.state, "missing");
    assert.notEqual(entry.startNs, null); // from the manifest
    const shown = await player.frameAt(entry.startNs! + 1);
    assert.equal(shown.kind, "blank");
  });

  it("the wrong key: nothing decrypted, a clear verdict", async () => {
    const { session } = await open("good", strangerPem);
    assert.equal(session.wrongKey, true);
    assert.deepEqual(session.spans().map((s) => s.state), ["failed", "failed", "failed"]);
    const p = session.report!.problems.find((x) => x.code === "wrong-key")!;
    assert.match(p.message, /encrypted to recipient [0-9a-f]{16}, but the private key given/);
  });

  it("a live session grows: new chunks are fetched once and verified in turn", async () => {
    const { api, session, player } = await open("good", auditorPem, (a) => {
      a.upTo = 0;
      a.withManifest = false;
    });
    assert.equal(session.complete, false);
    assert.deepEqual(session.spans().map((s) => s.state), ["ok"]);
    const firstEnd = player.drawableEnd()!;
    api.upTo = 1;
    assert.equal(await session.refresh(), true);
    assert.deepEqual(session.spans().map((s) => s.state), ["ok", "ok"]);
    assert.ok(player.drawableEnd()! > firstEnd);
    api.upTo = 2;
    api.withManifest = true; // finalized
    await session.refresh();
    assert.equal(session.complete, true);
    assert.equal(session.report!.ok, true);
    assert.equal(api.requests.filter((r) => r === "chunk 0").length, 1);
    assert.equal(await session.refresh(), false);
  });

  it("skip idle finds the next screen update or pointer move", async () => {
    const { session, player } = await open("good");
    const all = session.spans().flatMap((s) => [...s.index!.activity]);
    assert.ok(all.length > 10);
    for (let i = 0; i + 1 < all.length; i += 5) {
      assert.equal(player.nextActivity(all[i]!), all[i + 1]);
    }
    assert.equal(player.nextActivity(all[all.length - 1]!), null);
    // The reconnect gap (3.0-3.5 s) has no activity: from inside it, the next is after it.
    assert.ok(player.nextActivity(3.1e9)! >= 3.5e9);
  });

  it("the default arrow is the reference's", () => {
    const want = readJson<{ defaultArrow: { size: string; hotspot: string; rgba: string } }>(
      "recordings.json").defaultArrow;
    assert.equal(`${DEFAULT_ARROW.width}x${DEFAULT_ARROW.height}`, want.size);
    assert.equal(`${DEFAULT_ARROW.hotspotX},${DEFAULT_ARROW.hotspotY}`, want.hotspot);
    assert.equal(sha(DEFAULT_ARROW.rgba), want.rgba);
  });

  it("times read and write as the CLI's", () => {
    assert.equal(parseTime("83.5"), 83_500_000_000);
    assert.equal(parseTime("1:23.5"), 83_500_000_000);
    assert.equal(parseTime("1:02:03"), 3_723_000_000_000);
    assert.throws(() => parseTime("1:x"), /not a time/);
    assert.throws(() => parseTime("-3"), /not a time/);
    assert.equal(offset(83_500_000_000), "1:23.500");
    assert.equal(offset(3_723_000_000_000), "1:02:03.000");
  });
});
