// Decode speed of the TS decoder on plain segments: node .build/bench.mjs DIR [DIR...]
// (player/tools/measure.py runs it). Every segment is indexed (the validating pass), then
// decoded from its first keyframe to its end into the RGBA framebuffer the canvas takes;
// a "frame" is one distinct time with screen updates, as `lucid-play info` counts them.

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

import { SegmentCursor } from "../src/format/decoder.js";
import { indexSegment } from "../src/format/index.js";

const files = process.argv.slice(2).flatMap((dir) =>
  readdirSync(dir).filter((f) => f.endsWith(".seg")).sort().map((f) => join(dir, f)));
const segments = files.map((f) => new Uint8Array(readFileSync(f)));
let t0 = performance.now();
const indexes = segments.map((d) => indexSegment(d));
const indexMs = performance.now() - t0;
let frames = 0;
let records = 0;
let width = 0;
let height = 0;
t0 = performance.now();
for (let i = 0; i < segments.length; i++) {
  const index = indexes[i]!;
  const cursor = new SegmentCursor({ data: segments[i]!, index }, index.keyframes[0]!);
  width = cursor.fb.width;
  height = cursor.fb.height;
  for (const ts of index.activity) {
    records += cursor.advanceTo(ts);
    frames++;
  }
  records += cursor.advanceTo(Infinity);
}
const decodeMs = performance.now() - t0;
const bytes = segments.reduce((n, s) => n + s.length, 0);
console.log(JSON.stringify({ segments: segments.length, bytes, width, height, frames, records,
  indexMs, decodeMs, fps: frames / (decodeMs / 1000),
  mbPerSecond: bytes / 1e6 / ((decodeMs + indexMs) / 1000) }));
