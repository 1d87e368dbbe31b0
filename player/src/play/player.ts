// What the screen shows at a time t: the frame decoded from the nearest keyframe at or
// before t in the verified chunk that holds t (format/decoder.ts does the decoding), or
// nothing, with the reason, where a chunk is missing, failed or not verified yet.

import { SegmentCursor } from "../format/decoder.js";
import { Framebuffer } from "../format/framebuffer.js";
import { type SegmentIndex, keyframeAt } from "../format/index.js";
import type { ChunkEntry, Session } from "./session.js";
import { offset } from "./text.js";

export type Shown =
  | { kind: "frame"; t: number; fb: Framebuffer; seq: number; note: string | null;
      records: number }
  | { kind: "blank"; t: number; seq: number | null; reason: string; wait: boolean };

const describe = (e: ChunkEntry): string => {
  if (e.state === "pending") return `chunk ${e.seq}: being verified…`;
  if (e.state === "missing") return `chunk ${e.seq} is missing: nothing to show`;
  const first = e.problems[0];
  return `chunk ${e.seq} failed verification (${first?.code ?? "unverified"}): not shown` +
    (first ? `: ${first.message}` : "");
};

export class Player {
  readonly session: Session;
  private cursor: SegmentCursor | null = null;
  private fb: Framebuffer | null = null;

  constructor(session: Session) {
    this.session = session;
  }

  /** Start and end of what is known of the recording (session ns), or null if nothing. */
  range(): [number, number] | null {
    const spans = this.session.spans();
    if (!spans.length) return null;
    return [spans[0]!.startNs!, Math.max(...spans.map((s) => s.endNs ?? s.startNs!))];
  }

  /** The span holding t: the last one starting at or before t (the first if none does). */
  spanAt(t: number): ChunkEntry | null {
    const spans = this.session.spans();
    let found: ChunkEntry | null = spans[0] ?? null;
    for (const s of spans) {
      if (s.startNs! <= t) found = s;
      else break;
    }
    return found;
  }

  /** End of the verified, drawable stretch that contains t (for live playback). */
  drawableEnd(): number | null {
    let end: number | null = null;
    for (const s of this.session.spans()) {
      if (s.state === "ok") end = Math.max(end ?? 0, s.endNs!);
    }
    return end;
  }

  async frameAt(t: number): Promise<Shown> {
    const span = this.spanAt(t);
    if (span === null) return { kind: "blank", t, seq: null, reason: "no chunks yet", wait: true };
    if (span.state !== "ok" || span.index === null) {
      this.cursor = null;
      return { kind: "blank", t, seq: span.seq, reason: describe(span),
        wait: span.state === "pending" };
    }
    const index: SegmentIndex = span.index;
    const kf = keyframeAt(index, t);
    let c = this.cursor;
    let records = 0;
    const goOn = c !== null && c.segment.index === index && c.position <= t && kf.ts <= c.position;
    if (!goOn) {
      const data = await this.session.plaintext(span.seq);
      c = this.cursor = new SegmentCursor({ data, index }, kf, this.fb ?? undefined);
      this.fb = c.fb;
      records = 1;
    }
    records += c!.advanceTo(t);
    const note = t > index.endNs
      ? `nothing recorded after ${offset(index.endNs - this.range()![0])}` +
        (this.nextStart(t) !== null ? " until the next chunk" : "")
      : null;
    return { kind: "frame", t, fb: c!.fb, seq: span.seq, note, records };
  }

  private nextStart(t: number): number | null {
    const next = this.session.spans().find((s) => s.startNs! > t);
    return next ? next.startNs : null;
  }

  /** The first screen update or pointer move after t, in any verified chunk. */
  nextActivity(t: number): number | null {
    for (const s of this.session.spans()) {
      if (s.state !== "ok" || s.index === null || s.endNs! < t) continue;
      const a = s.index.activity;
      let lo = 0;
      let hi = a.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (a[mid]! <= t) lo = mid + 1;
        else hi = mid;
      }
      if (lo < a.length) return a[lo]!;
    }
    return null;
  }
}
