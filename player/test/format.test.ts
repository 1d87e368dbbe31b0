// The TS decoder against the Python reference: records, frames and errors, byte for byte.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Decoder, type LoadedSegment } from "../src/format/decoder.js";
import { FormatError } from "../src/format/errors.js";
import { peekSegment } from "../src/format/header.js";
import { indexSegment } from "../src/format/index.js";
import { pointerText, readJson, recordLineGen, recordLines, segmentFile, sha } from "./support.js";

interface SegmentVector {
  file: string; seq: number; size: number; width: number; height: number; baseNs: string;
  endNs: string; sessionStartUnixNs: string; recordCount: number; records: string[];
}
interface FrameVector { t: string; size: string; rgb: string; pointer: string }
interface CaseVector {
  name: string; about: string; startNs: string; endNs: string; segments: SegmentVector[];
  frames: FrameVector[];
  summary: { keyframes: number; rectangles: number; stopReason: string | null;
    resizes: [string, number, number][]; gaps: [string, string, string][] };
}
type Outcome =
  | { error: string; offset: number; message: string; recordsBefore: number }
  | { records: string; count: number };

const { cases } = readJson<{ cases: CaseVector[] }>("recordings.json");

function load(c: CaseVector): LoadedSegment[] {
  return c.segments.map((s) => {
    const data = segmentFile(s.file);
    return { data, index: indexSegment(data) };
  });
}

function outcome(data: Uint8Array): Outcome {
  const lines: string[] = [];
  try {
    for (const line of recordLineGen(data)) lines.push(line);
  } catch (e) {
    if (!(e instanceof FormatError)) throw e;
    return { error: e.kind, offset: e.offset, message: e.message, recordsBefore: lines.length };
  }
  return { records: sha(new TextEncoder().encode(lines.join("\n"))), count: lines.length };
}

describe("recordings decode as the reference decodes them", () => {
  for (const c of cases) {
    it(`${c.name}: headers, trailers and every record`, () => {
      for (const s of c.segments) {
        const data = segmentFile(s.file);
        assert.equal(data.length, s.size);
        const info = peekSegment(data);
        assert.equal(info.header.seq, s.seq);
        assert.equal(`${info.header.width}x${info.header.height}`, `${s.width}x${s.height}`);
        assert.equal(String(info.startNs), s.baseNs);
        assert.equal(String(info.endNs), s.endNs);
        assert.equal(String(info.header.sessionStartUnixNs), s.sessionStartUnixNs);
        assert.equal(info.trailer.recordCount, s.recordCount);
        assert.deepEqual(recordLines(data), s.records);
      }
    });

    it(`${c.name}: every frame, in order, from the nearest keyframe`, () => {
      const decoder = new Decoder(load(c));
      for (const f of c.frames) {
        const fb = decoder.frameAt(Number(f.t));
        assert.equal(`${fb.width}x${fb.height}`, f.size, `size at ${f.t}`);
        assert.equal(sha(fb.rgb()), f.rgb, `pixels at ${f.t}`);
        assert.equal(pointerText(fb), f.pointer, `pointer at ${f.t}`);
      }
    });

    it(`${c.name}: every frame, in a shuffled order (seeks back and forth)`, () => {
      const decoder = new Decoder(load(c));
      const order = c.frames.map((_, i) => i);
      let seed = 12345;
      for (let i = order.length - 1; i > 0; i--) {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        const j = seed % (i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      for (const i of order) {
        const f = c.frames[i]!;
        const fb = decoder.frameAt(Number(f.t));
        assert.equal(sha(fb.rgb()), f.rgb, `pixels at ${f.t}`);
        assert.equal(pointerText(fb), f.pointer, `pointer at ${f.t}`);
      }
    });

    it(`${c.name}: the index finds the reference's keyframes and markers`, () => {
      const segments = load(c);
      const keyframes = segments.reduce((n, s) => n + s.index.keyframes.length, 0);
      assert.equal(keyframes, c.summary.keyframes);
      const rects = segments.reduce((n, s) => n + s.index.rects, 0);
      assert.equal(rects, c.summary.rectangles);
      const markers = segments.flatMap((s) => s.index.markers);
      assert.deepEqual(markers.filter((m) => m.kind === "resize")
        .map((m) => m.kind === "resize" ? [String(m.ts), m.width, m.height] : []),
      c.summary.resizes);
      assert.deepEqual(markers.filter((m) => m.kind === "gap")
        .map((m) => m.kind === "gap" ? [String(m.startNs), String(m.endNs), m.text] : []),
      c.summary.gaps);
      const stops = markers.filter((m) => m.kind === "stop");
      assert.equal(stops.length ? (stops.at(-1) as { text: string }).text : null,
        c.summary.stopReason);
    });
  }
});

interface Damaged {
  tiny: { hex: string } & Outcome;
  truncations: ({ length: number } & Outcome)[];
  flips: ({ flipAt: number; mask: number } & Outcome)[];
  handMade: ({ name: string; hex: string } & Outcome)[];
}
const damaged = readJson<Damaged>("damaged.json");
const tiny = Uint8Array.from(Buffer.from(damaged.tiny.hex, "hex"));

// Where the Python reference accepts times past 2^53 ns (104 days) the browser decoder
// refuses them (docs/player.md). Only then may the two differ, and only with that reason
// naming a time that really is past 2^53.
const BEYOND_2_53 = new Set(["ts-beyond-2^53", "duration-overflows"]);

function sameOrBeyond53(got: Outcome, want: Outcome, what: string): boolean {
  if ("error" in got && got.error === "BadValue" && / beyond 2\^53 ns /.test(got.message)) {
    const value = BigInt(/ (\d+) ns is beyond/.exec(got.message)![1]!);
    assert.ok(value > BigInt(Number.MAX_SAFE_INTEGER), `${what}: ${got.message}`);
    return true;
  }
  assert.deepEqual(got, want, what);
  return false;
}

describe("damaged segments fail as the reference fails: same error, offset and message", () => {
  it("the undamaged tiny segment", () => {
    assert.deepEqual(outcome(tiny), strip(damaged.tiny));
  });
  it(`every truncation (${damaged.truncations.length})`, () => {
    for (const v of damaged.truncations) {
      assert.deepEqual(outcome(tiny.subarray(0, v.length)), strip(v), `length ${v.length}`);
    }
  });
  it(`every single-byte flip (${damaged.flips.length})`, () => {
    let beyond = 0;
    for (const v of damaged.flips) {
      const data = tiny.slice();
      data[v.flipAt]! ^= v.mask;
      if (sameOrBeyond53(outcome(data), strip(v), `byte ${v.flipAt} ^ ${v.mask}`)) beyond++;
    }
    // Flips of the top bits of the 8-byte base time, nothing else.
    assert.ok(beyond <= 6, `${beyond} flips differ by the 2^53 limit`);
  });
  for (const v of damaged.handMade) {
    it(`hand-made: ${v.name}`, () => {
      const got = outcome(Uint8Array.from(Buffer.from(v.hex, "hex")));
      assert.equal(sameOrBeyond53(got, strip(v), v.name), BEYOND_2_53.has(v.name));
    });
  }
});

function strip<T extends object>(v: T): Outcome {
  const o = v as unknown as Record<string, unknown>;
  return "error" in o
    ? { error: o.error as string, offset: o.offset as number, message: o.message as string,
      recordsBefore: o.recordsBefore as number }
    : { records: o.records as string, count: o.count as number };
}
