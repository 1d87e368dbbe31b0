// One recorded session as the page knows it: the chunk objects the server lists, each
// fetched once (sealed), verified in order by the Walk (seal/verify.ts), its segment
// validated and indexed (format/index.ts), its plaintext kept in memory only, in a bounded
// cache, and re-derived from the sealed bytes when evicted. Nothing is ever written to disk.
//
// refresh() may run again and again: a live session grows, its manifest changes, and the
// verdicts follow.

import { FormatError } from "../format/errors.js";
import { type SegmentIndex, indexSegment } from "../format/index.js";
import { toHex } from "../seal/bytes.js";
import { type ChunkHeader, decodeHeader } from "../seal/container.js";
import { ChunkFormatError } from "../seal/errors.js";
import { type RecipientKey, recordId, unwrapDataKey } from "../seal/keys.js";
import { type Manifest, ManifestError, parseManifest } from "../seal/manifest.js";
import {
  type Opener,
  type Problem,
  type VerifyReport,
  Walk,
  openChunk,
} from "../seal/verify.js";
import { type Api, type SessionInfo, type StoredChunk } from "./api.js";

export type ChunkState = "pending" | "ok" | "failed" | "missing";

export interface ChunkEntry {
  seq: number;
  /** Object size as stored; null when no object holds this sequence number. */
  size: number | null;
  state: ChunkState;
  problems: Problem[];
  /** Session time span: the verified segment's, else what the header or manifest claims. */
  startNs: number | null;
  endNs: number | null;
  index: SegmentIndex | null;
}

const PLAINTEXT_BUDGET = 512 * 1024 * 1024;
const PREFETCH = 3;
const EMPTY = new Uint8Array(0);

/** Plaintext segments by sequence number, least recently used dropped first. */
class PlaintextCache {
  private readonly items = new Map<number, Uint8Array>();
  private bytes = 0;

  constructor(private readonly budget: number) {}

  get(seq: number): Uint8Array | undefined {
    const v = this.items.get(seq);
    if (v !== undefined) {
      this.items.delete(seq);
      this.items.set(seq, v);
    }
    return v;
  }

  put(seq: number, data: Uint8Array): void {
    if (data.length === 0 || data.length > this.budget) return;
    const old = this.items.get(seq);
    if (old !== undefined) this.bytes -= old.length;
    this.items.delete(seq);
    this.items.set(seq, data);
    this.bytes += data.length;
    for (const [k, v] of this.items) {
      if (this.bytes <= this.budget) break;
      this.items.delete(k);
      this.bytes -= v.length;
    }
  }
}

export class Session {
  readonly info: SessionInfo;
  readonly key: RecipientKey;
  private readonly api: Api;
  entries = new Map<number, ChunkEntry>();
  manifest: Manifest | null = null;
  manifestError: string | null = null;
  report: VerifyReport | null = null;
  /** Problems of the player's own checks (segments that do not decode). */
  private readonly formatProblems = new Map<number, Problem>();
  private manifestText: string | null | undefined = undefined;
  private walk: Walk | null = null;
  private walked = new Set<number>();
  private placed = new Set<number>();
  private readonly sealed = new Map<number, Uint8Array>();
  private readonly stored = new Map<number, number>();
  private readonly plain = new PlaintextCache(PLAINTEXT_BUDGET);
  // Per digest of the sealed bytes (the same bytes always open the same way): how opening
  // went, and the segment's index. A re-walk (the manifest changed) then costs no decryption.
  private readonly opened = new Map<string, { error?: unknown }>();
  private readonly indexes = new Map<string, SegmentIndex>();
  private readonly shaOf = new Map<number, string>();
  private readonly dataKeys = new Map<string, Promise<CryptoKey>>();
  private refreshing: Promise<boolean> | null = null;
  onChange: () => void = () => {};

  constructor(api: Api, info: SessionInfo, key: RecipientKey) {
    this.api = api;
    this.info = info;
    this.key = key;
  }

  /** No final manifest yet: still recording, or the recorder never finished. */
  get complete(): boolean {
    return this.manifest?.complete === true;
  }

  get wrongKey(): boolean {
    return this.report?.problems.some((p) => p.code === "wrong-key") === true &&
      this.placed.size === 0;
  }

  get sessionProblems(): Problem[] {
    const list = (this.report?.problems ?? []).filter((p) => p.chunk === null);
    if (this.manifestError) {
      list.unshift({ chunk: null, code: "manifest-invalid",
        message: `manifest.json is not a valid manifest: ${this.manifestError}` });
    }
    return list;
  }

  /** Stored objects seen so far, and how many of them are verified (for progress). */
  progress(): { stored: number; walked: number } {
    return { stored: this.stored.size, walked: this.walked.size };
  }

  /** Spans in time order: every chunk whose time range is known. */
  spans(): ChunkEntry[] {
    return [...this.entries.values()].filter((e) => e.startNs !== null)
      .sort((a, b) => a.startNs! - b.startNs! || a.seq - b.seq);
  }

  /** List, fetch and verify what is new; true when anything changed. Never runs twice at once. */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const [listed, manifestText] = await Promise.all([this.api.chunks(), this.api.manifest()]);
    let changed = false;
    if (manifestText !== this.manifestText) {
      this.manifestText = manifestText;
      this.setManifest(manifestText);
      changed = true;
    }
    const fresh = listed.filter((c) => this.stored.get(c.seq) !== c.size);
    for (const c of fresh) {
      this.stored.set(c.seq, c.size);
      this.sealed.delete(c.seq); // new or replaced: fetched again
      this.formatProblems.delete(c.seq);
    }
    for (const seq of [...this.stored.keys()]) {
      if (!listed.some((c) => c.seq === seq)) {
        this.stored.delete(seq); // deleted from the bucket meanwhile
        this.sealed.delete(seq);
        this.formatProblems.delete(seq);
        changed = true;
      }
    }
    const highest = Math.max(-1, ...this.walked);
    if (fresh.some((c) => c.seq <= highest) || changed) this.restartWalk();
    const todo = [...this.stored.keys()].filter((s) => !this.walked.has(s)).sort((a, b) => a - b);
    if (todo.length || changed || fresh.length) {
      await this.walkObjects(todo);
      changed = true;
    }
    return changed;
  }

  private setManifest(text: string | null): void {
    this.manifestError = null;
    this.manifest = null;
    if (text === null) return;
    try {
      this.manifest = parseManifest(text);
    } catch (e) {
      if (!(e instanceof ManifestError)) throw e;
      this.manifestError = e.message;
    }
  }

  private restartWalk(): void {
    this.walk = null;
    this.walked = new Set();
    this.placed = new Set();
  }

  private opener(): Opener {
    return async (sealed, header, dataKey, sha) => {
      const known = this.opened.get(sha);
      if (known?.error !== undefined) throw known.error;
      if (known !== undefined) return this.plain.get(header.seq) ?? EMPTY;
      try {
        const data = await openChunk(sealed, header, dataKey, sha);
        this.opened.set(sha, {});
        return data;
      } catch (e) {
        this.opened.set(sha, { error: e });
        throw e;
      }
    };
  }

  private fetchSealed(seq: number): Promise<Uint8Array | null> {
    const have = this.sealed.get(seq);
    if (have !== undefined) return Promise.resolve(have);
    return this.api.chunk(seq).then((data) => {
      if (data !== null) this.sealed.set(seq, data);
      return data;
    });
  }

  private async walkObjects(todo: number[]): Promise<void> {
    this.walk ??= new Walk(this.manifest, this.key, this.info.uid, this.opener());
    const walk = this.walk;
    const pending = new Map<number, Promise<Uint8Array | null>>();
    const ask = (i: number) => {
      for (let j = i; j < Math.min(todo.length, i + PREFETCH); j++) {
        if (!pending.has(todo[j]!)) pending.set(todo[j]!, this.fetchSealed(todo[j]!));
      }
    };
    for (let i = 0; i < todo.length; i++) {
      if (walk !== this.walk) return; // a newer refresh restarted the walk
      ask(i);
      const seq = todo[i]!;
      const sealed = await pending.get(seq)!;
      if (sealed === null) {
        this.stored.delete(seq);
        continue;
      }
      const segment = await walk.visit(seq, sealed);
      this.walked.add(seq);
      if (segment !== null) {
        this.placed.add(seq);
        await this.indexSegment(seq, sealed, segment.plaintext);
      }
      this.update();
      this.onChange();
    }
    this.update();
  }

  private async indexSegment(seq: number, sealed: Uint8Array, plaintext: Uint8Array):
    Promise<void> {
    const sha = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", sealed as BufferSource)));
    this.shaOf.set(seq, sha);
    if (this.indexes.has(sha) || this.formatProblems.has(seq)) return;
    const data = plaintext.length ? plaintext : await this.reopen(seq);
    try {
      const index = indexSegment(data);
      if (index.seq !== seq) {
        throw new FormatError("BadValue", 10, `the segment says it is segment ${index.seq}`);
      }
      this.indexes.set(sha, index);
      this.plain.put(seq, data);
    } catch (e) {
      if (!(e instanceof FormatError)) throw e;
      this.formatProblems.set(seq, { chunk: seq, code: "malformed",
        message: `chunk ${seq} is authentic but its segment does not decode: ${e.message}` });
    }
  }

  /** Recompute every verdict from the walk's report. */
  private update(): void {
    if (this.walk === null) return;
    const report = this.walk.report(this.stored.keys());
    report.problems.push(...this.formatProblems.values());
    if (this.formatProblems.size) report.ok = false;
    this.report = report;
    const bySeq = new Map<number, Problem[]>();
    for (const p of report.problems) {
      if (p.chunk !== null) bySeq.set(p.chunk, [...(bySeq.get(p.chunk) ?? []), p]);
    }
    const seqs = new Set<number>([...this.stored.keys(), ...bySeq.keys(),
      ...(this.manifest?.chunks.map((c) => c.seq) ?? [])]);
    const entries = new Map<number, ChunkEntry>();
    for (const seq of [...seqs].sort((a, b) => a - b)) {
      const problems = bySeq.get(seq) ?? [];
      const stored = this.stored.has(seq);
      let state: ChunkState;
      if (!stored) state = problems.length || this.walked.size >= this.stored.size ? "missing" : "pending";
      else if (!this.walked.has(seq)) state = "pending";
      else if (problems.length || !this.placed.has(seq)) state = "failed";
      else state = "ok";
      const index = state === "ok" ? this.segmentIndex(seq) : null;
      if (state === "ok" && index === null) state = "failed";
      const [startNs, endNs] = index ? [index.startNs, index.endNs] : this.claimedSpan(seq);
      entries.set(seq, { seq, size: stored ? this.stored.get(seq)! : null, state, problems,
        startNs, endNs, index });
    }
    this.entries = entries;
  }

  private segmentIndex(seq: number): SegmentIndex | null {
    const sha = this.shaOf.get(seq);
    return sha === undefined ? null : this.indexes.get(sha) ?? null;
  }

  /** The time span a chunk claims (unverified): its header, else the manifest. */
  private claimedSpan(seq: number): [number | null, number | null] {
    const sealed = this.sealed.get(seq);
    if (sealed !== undefined) {
      try {
        const h: ChunkHeader = decodeHeader(sealed);
        return [Number(h.startNs), Number(h.endNs)];
      } catch (e) {
        if (!(e instanceof ChunkFormatError)) throw e;
      }
    }
    const m = this.manifest?.chunks.find((c) => c.seq === seq);
    return m ? [Number(m.startNs), Number(m.endNs)] : [null, null];
  }

  /** Plaintext of a verified chunk (from memory, or decrypted again from its sealed bytes). */
  async plaintext(seq: number): Promise<Uint8Array> {
    return this.plain.get(seq) ?? this.reopen(seq);
  }

  private async reopen(seq: number): Promise<Uint8Array> {
    const sealed = this.sealed.get(seq) ?? await this.fetchSealed(seq);
    if (sealed === null) throw new Error(`chunk ${seq} is no longer stored`);
    const header = decodeHeader(sealed);
    const id = `${recordId(header.key)}/${header.sessionUid}`;
    let key = this.dataKeys.get(id);
    if (key === undefined) {
      key = unwrapDataKey(header.key, this.key, header.sessionUid);
      this.dataKeys.set(id, key);
    }
    const data = await openChunk(sealed, header, await key, "");
    this.plain.put(seq, data);
    return data;
  }
}

export type { StoredChunk };
