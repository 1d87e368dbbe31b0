// Frames at times: the same answer as Recording.frames_at in
// recorder/lucid_recorder/player/timeline.py (every record stamped at or before t, in the
// segment that holds t), found faster: decoding starts at the nearest keyframe at or before
// t instead of at the segment start, and a later time continues where the last one stopped.

import { Framebuffer, copyPointer } from "./framebuffer.js";
import { type KeyframeEntry, type SegmentIndex, keyframeAt } from "./index.js";
import { type Rec, SegmentScanner } from "./reader.js";

export interface LoadedSegment {
  data: Uint8Array;
  index: SegmentIndex;
}

/** Decodes forward through one segment from one of its keyframes. */
export class SegmentCursor {
  readonly segment: LoadedSegment;
  readonly fb: Framebuffer;
  private readonly scanner: SegmentScanner;
  private pending: Rec | null;
  /** Time of the last record applied. */
  position: number;

  constructor(segment: LoadedSegment, from: KeyframeEntry, fb?: Framebuffer) {
    this.segment = segment;
    this.scanner = new SegmentScanner(segment.data, from.state);
    const first = this.scanner.next();
    if (first === null || first.t !== "keyframe") {
      throw new Error("index entry does not point at a keyframe");
    }
    this.fb = fb ?? new Framebuffer(first.width, first.height);
    this.fb.apply(segment.data, first);
    this.fb.pointer = copyPointer(from.pointer);
    this.position = first.ts;
    this.pending = this.scanner.next();
  }

  /** Time of the next record not applied yet, or null at the segment's end. */
  nextTs(): number | null {
    return this.pending === null ? null : this.pending.ts;
  }

  /** Apply every record stamped at or before t; returns how many were applied. */
  advanceTo(t: number): number {
    let n = 0;
    const data = this.segment.data;
    while (this.pending !== null && this.pending.ts <= t) {
      this.fb.apply(data, this.pending);
      this.position = this.pending.ts;
      this.pending = this.scanner.next();
      n++;
    }
    return n;
  }
}

/** The index of the last segment starting at or before t (0 if t precedes them all). */
export function segmentAt(segments: readonly { index: SegmentIndex }[], t: number): number {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (segments[mid]!.index.startNs <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Frames of a recording held in memory (the browser player gives it the segments it has
 * verified). frameAt reuses one framebuffer; copy what you keep.
 */
export class Decoder {
  segments: LoadedSegment[];
  cursor: SegmentCursor | null = null;
  /** Records applied since creation: what a seek cost. */
  applied = 0;

  constructor(segments: LoadedSegment[]) {
    this.segments = segments;
  }

  frameAt(t: number): Framebuffer {
    const segment = this.segments[segmentAt(this.segments, t)]!;
    const kf = keyframeAt(segment.index, t);
    const c = this.cursor;
    // Going on is cheaper unless a keyframe lies between where we are and t.
    const goOn = c !== null && c.segment === segment && c.position <= t &&
      kf.ts <= c.position;
    if (!goOn) {
      this.cursor = new SegmentCursor(segment, kf, c?.fb);
      this.applied += 1;
    }
    this.applied += this.cursor!.advanceTo(t);
    return this.cursor!.fb;
  }
}
