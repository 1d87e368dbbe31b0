// One validating pass over a segment: its keyframes (where decoding can start, with the
// pointer state there, which keyframes do not carry), its markers and its activity.
// Nothing of a segment is drawn before this pass has accepted all of it.

import { type PointerState, type ShapeState } from "./framebuffer.js";
import { type Rec, type ScanState, SegmentScanner } from "./reader.js";

export interface KeyframeEntry {
  ts: number;
  /** The scan state just before the keyframe record: resume a SegmentScanner here. */
  state: ScanState;
  pointer: PointerState;
}

export type Marker =
  | { kind: "start" | "stop"; ts: number; text: string }
  | { kind: "gap"; ts: number; startNs: number; endNs: number; text: string }
  | { kind: "resize"; ts: number; width: number; height: number };

export interface SegmentIndex {
  seq: number;
  width: number;
  height: number;
  startNs: number;
  endNs: number;
  sessionStartUnixNs: bigint;
  recordCount: number;
  size: number;
  keyframes: KeyframeEntry[];
  markers: Marker[];
  /** Distinct times of screen updates (rectangles) and pointer moves, ascending. */
  activity: Float64Array;
  rects: number;
  pointerMoves: number;
}

export function indexSegment(data: Uint8Array): SegmentIndex {
  const scanner = new SegmentScanner(data);
  const h = scanner.header;
  const pointer: PointerState = { x: 0, y: 0, shape: null };
  const keyframes: KeyframeEntry[] = [];
  const markers: Marker[] = [];
  const activity: number[] = [];
  let rects = 0;
  let pointerMoves = 0;
  let records = 0;
  for (;;) {
    const before = scanner.state();
    const rec: Rec | null = scanner.next();
    if (rec === null) break;
    records++;
    switch (rec.t) {
      case "keyframe":
        keyframes.push({ ts: rec.ts, state: before, pointer: { ...pointer } });
        break;
      case "rect":
        rects++;
        if (activity[activity.length - 1] !== rec.ts) activity.push(rec.ts);
        break;
      case "pointer":
        pointerMoves++;
        pointer.x = rec.x;
        pointer.y = rec.y;
        if (activity[activity.length - 1] !== rec.ts) activity.push(rec.ts);
        break;
      case "shape": {
        const shape: ShapeState = rec.width && rec.height ? {
          width: rec.width, height: rec.height, hotspotX: rec.hotspotX, hotspotY: rec.hotspotY,
          rgba: data.slice(rec.px, rec.px + rec.width * rec.height * 4),
        } : null;
        pointer.shape = shape;
        break;
      }
      case "default":
        pointer.shape = "default";
        break;
      case "start":
      case "stop":
        markers.push({ kind: rec.t, ts: rec.ts, text: rec.text });
        break;
      case "gap":
        markers.push({ kind: "gap", ts: rec.ts, startNs: Number(rec.startNs),
          endNs: Number(rec.endNs), text: rec.text });
        break;
      case "resize":
        markers.push({ kind: "resize", ts: rec.ts, width: rec.width, height: rec.height });
        break;
    }
  }
  return {
    seq: h.seq, width: h.width, height: h.height, startNs: h.baseNs, endNs: scanner.endNs!,
    sessionStartUnixNs: h.sessionStartUnixNs, recordCount: records, size: data.length,
    keyframes, markers, activity: Float64Array.from(activity), rects, pointerMoves,
  };
}

/** The last keyframe at or before t (the segment's first keyframe if t precedes them all). */
export function keyframeAt(index: SegmentIndex, t: number): KeyframeEntry {
  const k = index.keyframes;
  let lo = 0;
  let hi = k.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (k[mid]!.ts <= t) lo = mid;
    else hi = mid - 1;
  }
  return k[lo]!;
}
