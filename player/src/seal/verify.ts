// Verification of a recorded session, a port of recorder/lucid_recorder/sealing/verify.py
// (the reference; the node suite checks both give the same report on the same sessions).
//
// The browser player walks the chunk objects as they arrive (live sessions grow), so the
// checks that need the whole session (`report`) can run any number of times without
// changing the walk. A chunk is drawn only once it is authentic, in place, of this session
// and nothing in its verdict is wrong (player/src/play/session.ts).

import { equal, sha256, toHex } from "./bytes.js";
import { decompress } from "./compression.js";
import { type ChunkHeader, GENESIS, decodeHeader, openSealed } from "./container.js";
import {
  AuthenticationError,
  ChunkFormatError,
  DecompressionError,
  UnwrapError,
} from "./errors.js";
import {
  type KeyRecord,
  type RecipientKey,
  recordId,
  sameRecord,
  shortFingerprint,
  unwrapDataKey,
} from "./keys.js";
import { type ChunkInfo, type Gap, type Manifest, deriveGaps, pyIsoformat } from "./manifest.js";

export type ProblemCode =
  | "incomplete"
  | "manifest-session"
  | "manifest-invalid"
  | "manifest-mismatch"
  | "wrong-key"
  | "malformed"
  | "truncated"
  | "auth-failed"
  | "decompress-failed"
  | "foreign-session"
  | "key-conflict"
  | "misplaced"
  | "duplicate"
  | "missing"
  | "chain-broken"
  | "epoch-regression"
  | "unexpected-chunk";

export interface Problem {
  chunk: number | null;
  code: ProblemCode;
  message: string;
}

export interface Segment {
  seq: number;
  epoch: number;
  startNs: bigint;
  endNs: bigint;
  plaintext: Uint8Array;
  gapBefore: boolean;
}

export interface VerifyReport {
  sessionUid: string;
  ok: boolean;
  complete: boolean;
  chunksExpected: number;
  chunksAuthentic: number;
  plaintextBytes: number;
  problems: Problem[];
  gaps: Gap[];
}

interface Authentic {
  obj: number;
  sha256: Uint8Array;
  header: ChunkHeader;
}

/** Decrypts and decompresses an authenticated chunk; the player memoizes it. */
export type Opener = (sealed: Uint8Array, header: ChunkHeader, dataKey: CryptoKey,
  sha: string) => Promise<Uint8Array>;

export const openChunk: Opener = async (sealed, header, dataKey) =>
  decompress(await openSealed(sealed, dataKey, header), header.codec, header.plaintextLen);

export class Walk {
  readonly uid: string;
  readonly manifest: Manifest | null;
  private readonly key: RecipientKey;
  private readonly myFpr: string;
  private readonly open: Opener;
  private readonly manifestProblems: Problem[] = [];
  private readonly visitProblems: Problem[] = [];
  private readonly unwrapped = new Map<string, Promise<CryptoKey | null>>();
  private readonly manifestKeys = new Map<number, KeyRecord>();
  private readonly epochKeys = new Map<number, KeyRecord>();
  private readonly wrongRecipient = new Map<number, Uint8Array>();
  private readonly placed = new Map<number, Authentic>();
  private readonly misplaced: Authentic[] = [];
  private readonly chainChecked = new Set<number>();
  private readonly visited = new Set<number>();
  private lastYielded: Authentic | null = null;
  private chunksAuthentic = 0;
  private plaintextBytes = 0;

  constructor(manifest: Manifest | null, key: RecipientKey, sessionUid?: string,
    open: Opener = openChunk) {
    const uid = sessionUid ?? manifest?.session.uid;
    if (uid === undefined) throw new Error("without a manifest, the session UID must be given");
    this.uid = uid;
    this.manifest = manifest;
    this.key = key;
    this.myFpr = toHex(key.fingerprint);
    this.open = open;
    for (const k of manifest?.keys ?? []) {
      this.manifestKeys.set(k.epoch, k);
      this.epochKeys.set(k.epoch, k);
    }
    this.checkManifest();
  }

  private problem(list: Problem[], chunk: number | null, code: ProblemCode, message: string) {
    list.push({ chunk, code, message });
  }

  wrongKeyMessage(named: Uint8Array): string {
    return `the recording is encrypted to recipient ${shortFingerprint(named)}, but the ` +
      `private key given belongs to ${shortFingerprint(this.key.fingerprint)}`;
  }

  /** True when the recording is for another key than the one loaded (nothing will open). */
  get wrongKey(): boolean {
    if (this.placed.size || this.misplaced.length) return false;
    return this.manifestProblems.some((p) => p.code === "wrong-key") ||
      this.wrongRecipient.size > 0;
  }

  private dataKey(record: KeyRecord, uid: string, namespace = "", name = ""):
    Promise<CryptoKey | null> {
    const id = `${recordId(record)}/${uid}/${namespace}/${name}`;
    let k = this.unwrapped.get(id);
    if (k === undefined) {
      k = unwrapDataKey(record, this.key, { uid, namespace, name }).catch((e: unknown) => {
        if (e instanceof UnwrapError) return null;
        throw e;
      });
      this.unwrapped.set(id, k);
    }
    return k;
  }

  private async authenticate(obj: number, sealed: Uint8Array, sha: string):
    Promise<[ChunkHeader, Uint8Array] | null> {
    const P = this.visitProblems;
    let header: ChunkHeader;
    try {
      header = decodeHeader(sealed);
    } catch (e) {
      if (!(e instanceof ChunkFormatError)) throw e;
      this.problem(P, obj, "malformed", `object ${obj} is not a valid chunk: ${e.message}`);
      return null;
    }
    if (BigInt(sealed.length) !== header.sealedLen) {
      const how = BigInt(sealed.length) < header.sealedLen ? "truncated" : "extended";
      this.problem(P, obj, "truncated", `chunk ${obj} is ${sealed.length} bytes but its ` +
        `header says ${header.sealedLen}: ${how}`);
      return null;
    }
    if (toHex(header.key.recipientFingerprint) !== this.myFpr) {
      if (header.sessionUid !== this.uid) {
        this.problem(P, obj, "foreign-session", `chunk ${obj} claims session ` +
          `${header.sessionUid}, not ${this.uid}, and is encrypted to another recipient: ` +
          "replayed from another session");
      } else {
        // Decided in report(): a whole recording for another key is the wrong key; one
        // odd chunk among good ones is a modified header.
        this.wrongRecipient.set(obj, header.key.recipientFingerprint);
      }
      return null;
    }
    // Unwrap under the UID the header claims: an authentic chunk of another session then
    // opens, and is reported as exactly that.
    const dataKey = await this.dataKey(header.key, header.sessionUid, header.namespace,
      header.name);
    if (dataKey === null) {
      this.problem(P, obj, "auth-failed", `chunk ${obj} failed authentication: its data key ` +
        "does not open (key record modified, or its session/epoch fields altered)");
      return null;
    }
    let plaintext: Uint8Array;
    try {
      plaintext = await this.open(sealed, header, dataKey, sha);
    } catch (e) {
      if (e instanceof AuthenticationError) {
        this.problem(P, obj, "auth-failed",
          `chunk ${obj} failed authentication: its bytes were modified`);
        return null;
      }
      if (e instanceof DecompressionError) {
        this.problem(P, obj, "decompress-failed",
          `chunk ${obj} is authentic but does not decompress: ${e.message}`);
        return null;
      }
      throw e;
    }
    if (header.sessionUid !== this.uid) {
      this.problem(P, obj, "foreign-session", `chunk ${obj} is chunk ${header.seq} of session ` +
        `${header.sessionUid}, not of ${this.uid}: replayed from another session`);
      return null;
    }
    return [header, plaintext];
  }

  private checkEpochKey(obj: number, header: ChunkHeader): boolean {
    const known = this.epochKeys.get(header.epoch);
    if (known === undefined) {
      this.epochKeys.set(header.epoch, header.key);
      return true;
    }
    if (sameRecord(known, header.key)) return true;
    const source = this.manifestKeys.has(header.epoch) ? "the manifest" : "earlier chunks";
    this.problem(this.visitProblems, obj, "key-conflict", `chunk ${obj} was sealed under ` +
      `another data key for epoch ${header.epoch} than ${source}: forged, or written by a ` +
      "second recorder");
    return false;
  }

  private find(seq: number): Authentic | undefined {
    return this.placed.get(seq) ?? this.misplaced.find((m) => m.header.seq === seq);
  }

  private checkChain(item: Authentic, out: Problem[], checked: Set<number>): void {
    const seq = item.header.seq;
    if (seq === 0) {
      checked.add(seq);
      if (!equal(item.header.prevSha256, GENESIS)) {
        this.problem(out, item.obj, "chain-broken", "chunk 0 does not start a chain: it was " +
          "taken from later in a recording");
      }
      return;
    }
    const prev = this.find(seq - 1);
    if (prev === undefined) return; // reported on its own; maybe found later
    checked.add(seq);
    if (!equal(item.header.prevSha256, prev.sha256)) {
      this.problem(out, item.obj, "chain-broken", `chunk ${seq} does not follow chunk ` +
        `${seq - 1} (previous-hash mismatch): a chunk was substituted or the chunks were ` +
        "reordered");
    } else if (item.header.epoch < prev.header.epoch) {
      this.problem(out, item.obj, "epoch-regression", `chunk ${seq} has key epoch ` +
        `${item.header.epoch}, older than chunk ${seq - 1}'s epoch ${prev.header.epoch}`);
    }
  }

  private classifyMisplaced(item: Authentic, out: Problem[]): void {
    const seq = item.header.seq;
    const twin = this.placed.get(seq);
    if (twin !== undefined && equal(twin.sha256, item.sha256)) {
      this.problem(out, item.obj, "duplicate", `object ${item.obj} is a replayed copy of chunk ${seq}`);
    } else if (twin !== undefined) {
      this.problem(out, item.obj, "duplicate", `object ${item.obj} holds a second, different ` +
        `chunk ${seq}: two recorders, or a forgery`);
    } else {
      this.problem(out, item.obj, "misplaced", `object ${item.obj} holds chunk ${seq}: chunks ` +
        "were swapped or renamed");
    }
  }

  /**
   * One chunk object (by the sequence number in its name), in ascending order of objects.
   * Returns its plaintext when it is authentic and in place; its verdict may still change
   * as the rest of the session is seen (see problemsOf).
   */
  async visit(obj: number, sealed: Uint8Array): Promise<Segment | null> {
    if (this.visited.has(obj)) throw new Error(`object ${obj} visited twice`);
    this.visited.add(obj);
    const digest = await sha256(sealed);
    const opened = await this.authenticate(obj, sealed, toHex(digest));
    if (opened === null) return null;
    const [header, plaintext] = opened;
    if (!this.checkEpochKey(obj, header)) return null;
    const item: Authentic = { obj, sha256: digest, header };
    this.chunksAuthentic += 1;
    if (header.seq !== obj) {
      this.misplaced.push(item);
      return null;
    }
    this.placed.set(obj, item);
    this.plaintextBytes += header.plaintextLen;
    this.checkChain(item, this.visitProblems, this.chainChecked);
    const last = this.lastYielded;
    const gap = header.droppedBefore || (last === null ? obj !== 0
      : last.header.seq !== obj - 1 || last.header.epoch !== header.epoch);
    this.lastYielded = item;
    return { seq: obj, epoch: header.epoch, startNs: header.startNs, endNs: header.endNs,
      plaintext, gapBefore: gap };
  }

  private checkManifest(): void {
    const m = this.manifest;
    const P = this.manifestProblems;
    if (m === null) {
      this.problem(P, null, "incomplete", "no manifest: the session was never finalized " +
        "(recorder killed, node lost, still recording) or manifest.json was deleted");
      return;
    }
    if (m.session.uid !== this.uid) {
      this.problem(P, null, "manifest-session",
        `manifest belongs to session ${m.session.uid}, not ${this.uid}`);
    }
    if (m.recipientFingerprint !== this.myFpr) {
      this.problem(P, null, "wrong-key", this.wrongKeyMessage(
        Uint8Array.from(m.recipientFingerprint.match(/../g)!.map((h) => parseInt(h, 16)))));
    }
    const seqs = m.chunks.map((c) => c.seq);
    if (seqs.some((s, i) => s !== i) || m.totals.chunks !== seqs.length ||
      m.totals.sealedBytes !== m.chunks.reduce((n, c) => n + c.sealedBytes, 0) ||
      m.totals.plaintextBytes !== m.chunks.reduce((n, c) => n + c.plaintextBytes, 0)) {
      this.problem(P, null, "manifest-invalid",
        "manifest's chunk list is not 0..N-1 or disagrees with its totals");
    }
    if (!m.complete) {
      this.problem(P, null, "incomplete", "manifest is not final (complete: false, last " +
        `updated ${pyIsoformat(m.updatedAt)}, lists ${m.chunks.length} chunks): the recorder ` +
        "did not finish the session");
    }
  }

  /** The report over the objects present (`objects`: every sequence number in a name). */
  report(objects: Iterable<number>): VerifyReport {
    const present = new Set(objects);
    const out: Problem[] = [...this.manifestProblems, ...this.visitProblems];
    const m = this.manifest;
    for (const item of this.misplaced) this.classifyMisplaced(item, out);
    const checked = new Set(this.chainChecked);
    for (const item of [...this.placed.values(), ...this.misplaced]) {
      if (!checked.has(item.header.seq)) this.checkChain(item, out, checked);
    }
    if (this.wrongRecipient.size) {
      if (!(this.placed.size || this.misplaced.length)) {
        if (!out.some((p) => p.code === "wrong-key")) {
          this.problem(out, null, "wrong-key",
            this.wrongKeyMessage(this.wrongRecipient.values().next().value!));
        }
      } else {
        for (const obj of [...this.wrongRecipient.keys()].sort((a, b) => a - b)) {
          this.problem(out, obj, "auth-failed", `chunk ${obj} names another recipient than ` +
            "the rest of the session: its header was modified");
        }
      }
    }
    const complete = m !== null && m.complete;
    const authentic = new Set([...this.placed.keys(), ...this.misplaced.map((i) => i.header.seq)]);
    let highest = Math.max(...present, ...authentic, -1);
    if (m !== null) highest = Math.max(highest, m.chunks.length - 1);
    const expected = complete ? m!.chunks.length : highest + 1;
    for (let seq = 0; seq < expected; seq++) {
      if (!present.has(seq) && !authentic.has(seq)) {
        this.problem(out, seq, "missing", `chunk ${seq} missing`);
      }
    }
    if (complete) {
      for (const obj of [...present].sort((a, b) => a - b)) {
        if (obj >= expected) {
          this.problem(out, obj, "unexpected-chunk", `object ${obj} is not in the final ` +
            `manifest of ${expected} chunks: added after the session was finalized`);
        }
      }
    }
    if (m !== null) {
      for (const entry of m.chunks) {
        const actual = this.placed.get(entry.seq);
        if (actual === undefined) continue;
        if (toHex(actual.sha256) !== entry.sha256 ||
          actual.header.sealedLen !== BigInt(entry.sealedBytes) ||
          actual.header.epoch !== entry.epoch) {
          this.problem(out, entry.seq, "manifest-mismatch", `chunk ${entry.seq} differs from ` +
            "the manifest's record of it (sha256/size/epoch): the chunk or the manifest was " +
            "replaced");
        }
      }
      if (m.complete && m.chunks.length) {
        const last = this.placed.get(m.chunks.length - 1);
        if (last !== undefined && m.lastChunkSha256 !== toHex(last.sha256)) {
          this.problem(out, last.obj, "manifest-mismatch",
            "manifest's lastChunkSha256 is not the last chunk's hash");
        }
      }
    }
    const infos: ChunkInfo[] = [...this.placed.values()].map((i) => ({
      seq: i.header.seq, epoch: i.header.epoch, startNs: i.header.startNs,
      endNs: i.header.endNs, plaintextBytes: i.header.plaintextLen,
      sealedBytes: Number(i.header.sealedLen), sha256: toHex(i.sha256),
      droppedBefore: i.header.droppedBefore,
    }));
    return {
      sessionUid: this.uid, ok: out.length === 0, complete, chunksExpected: expected,
      chunksAuthentic: this.chunksAuthentic, plaintextBytes: this.plaintextBytes,
      problems: out, gaps: deriveGaps(infos),
    };
  }

  /** What the manifest says about a chunk (to check one fetched ahead of the walk). */
  manifestEntry(seq: number): ChunkInfo | undefined {
    return this.manifest?.chunks[seq]?.seq === seq ? this.manifest.chunks[seq] : undefined;
  }
}

/** verify() of the reference: every object once, in order, then the report. */
export async function verify(manifest: Manifest | null, chunks: Map<number, Uint8Array>,
  key: RecipientKey, sessionUid?: string): Promise<{ report: VerifyReport; segments: Segment[] }> {
  const walk = new Walk(manifest, key, sessionUid);
  const segments: Segment[] = [];
  for (const obj of [...chunks.keys()].sort((a, b) => a - b)) {
    const s = await walk.visit(obj, chunks.get(obj)!);
    if (s !== null) segments.push(s);
  }
  return { report: walk.report(chunks.keys()), segments };
}
