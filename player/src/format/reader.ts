// The strict segment decoder, a line-by-line port of recorder/lucid_recorder/format/reader.py
// (the reference): the same records, the same errors with the same byte offsets and messages.
//
// It decodes without copying: a record names where its pixels start in the segment, and the
// framebuffer (framebuffer.ts) reads them from there. A scan that never touches the pixels
// still checks every rule, so one pass validates a whole segment and builds its keyframe
// index (index.ts) before anything of it is drawn.

import {
  HEADER_SIZE,
  MAX_COORDINATE,
  MAX_DIMENSION,
  MAX_NS,
  MAX_POINTER_DIMENSION,
  MAX_REASON_BYTES,
  MAX_U64,
  MAX_VARINT_BYTES,
  T,
  isKeyframeType,
  isRecordType,
  isCopyRectType,
  isRectType,
  isVersion2Type,
  PREDICTED_KEYFRAME,
} from "./constants.js";
import {
  badValue,
  lengthMismatch,
  outOfBounds,
  timeWentBackwards,
  truncated,
  unknownRecordType,
} from "./errors.js";
import {
  MAX_SAFE_NS,
  type SegmentHeader,
  beyond53,
  checkTrailerPosition,
  hex2,
  unpackHeader,
  unpackTrailer,
} from "./header.js";
import { Utf8Error, decodeUtf8 } from "./utf8.js";

export type Rec =
  | { t: "keyframe"; ts: number; at: number; planar: boolean; predicted: boolean;
      width: number; height: number; px: number }
  | { t: "rect"; ts: number; at: number; planar: boolean; xor: boolean; x: number; y: number;
      w: number; h: number; px: number; copy?: CopyRows }
  | { t: "resize"; ts: number; at: number; width: number; height: number }
  | { t: "pointer"; ts: number; at: number; x: number; y: number }
  | { t: "shape"; ts: number; at: number; width: number; height: number; hotspotX: number;
      hotspotY: number; px: number }
  | { t: "default"; ts: number; at: number }
  | { t: "start"; ts: number; at: number; text: string }
  | { t: "stop"; ts: number; at: number; text: string }
  | { t: "gap"; ts: number; at: number; startNs: bigint; endNs: bigint; text: string };

/** A COPY_RECT (version 2): rows first..first+rows-1 of the rect come from the framebuffer
 * at (sx, sy) as it was before the record; `px` holds the other rows. */
export interface CopyRows {
  first: number;
  rows: number;
  sx: number;
  sy: number;
}

/** Where a scan stands between two records: enough to resume it there (see index.ts). */
export interface ScanState {
  pos: number;
  lastOff: number;
  count: number;
  width: number;
  height: number;
}

const TWO53 = 2 ** 53;

/** Exact unsigned LEB128 from `pos`: [value, next position]. */
export function uvarintExact(d: Uint8Array, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  const start = pos;
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    if (pos >= d.length) throw truncated(start, "data ends inside a varint");
    const byte = d[pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      if (result > MAX_U64) throw badValue(start, "varint exceeds 64 bits");
      return [result, pos];
    }
    shift += 7n;
  }
  throw badValue(start, `varint longer than ${MAX_VARINT_BYTES} bytes`);
}

/** The exact values of `n` varints from `pos`, for messages about huge numbers. */
function exact(d: Uint8Array, pos: number, n: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const [v, next] = uvarintExact(d, pos);
    out.push(v);
    pos = next;
  }
  return out;
}

export class SegmentScanner {
  readonly data: Uint8Array;
  readonly header: SegmentHeader;
  private pos: number;
  private readonly base: number;
  private lastOff: number;
  private count: number;
  // Current desktop size; 0 until the opening keyframe (the reference's `fb is None`).
  private width: number;
  private height: number;
  private needKeyframeAt: number | null;
  private done = false;
  /** Session time of the segment's end, once the trailer was read. */
  endNs: number | null = null;

  constructor(data: Uint8Array, resume?: ScanState) {
    this.data = data;
    this.header = unpackHeader(data);
    this.base = this.header.baseNs;
    if (resume) {
      // Resuming at an indexed keyframe of a segment that was scanned whole before.
      this.pos = resume.pos;
      this.lastOff = resume.lastOff;
      this.count = resume.count;
      this.width = resume.width;
      this.height = resume.height;
      this.needKeyframeAt = null;
    } else {
      this.pos = HEADER_SIZE;
      this.lastOff = 0;
      this.count = 0;
      this.width = 0;
      this.height = 0;
      this.needKeyframeAt = 0;
    }
  }

  /** The state before the next record (valid between calls to next()). */
  state(): ScanState {
    return { pos: this.pos, lastOff: this.lastOff, count: this.count, width: this.width,
      height: this.height };
  }

  private remaining(): number {
    return this.data.length - this.pos;
  }

  private uv(): number {
    const d = this.data;
    let p = this.pos;
    let result = 0;
    let mul = 1;
    // Seven groups (49 bits) stay exact in a double; anything longer goes the exact way.
    for (let i = 0; i < 7; i++) {
      if (p >= d.length) throw truncated(this.pos, "data ends inside a varint");
      const b = d[p++]!;
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.pos = p;
        return result;
      }
      mul *= 128;
    }
    const [value, next] = uvarintExact(d, this.pos);
    this.pos = next;
    return Number(value); // may round above 2^53: callers re-read such values exactly
  }

  private take(n: number, what: string): number {
    if (n > this.remaining()) {
      throw truncated(this.pos, `${what} needs ${n} bytes, only ${this.remaining()} remain`);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private text(): string {
    const at = this.pos;
    const n = this.uv();
    if (n > MAX_REASON_BYTES) {
      const [exactN] = exact(this.data, at, 1);
      throw outOfBounds(at, `text length ${exactN} exceeds ${MAX_REASON_BYTES}`);
    }
    const from = this.take(n, "text");
    try {
      return decodeUtf8(this.data.subarray(from, from + n));
    } catch (e) {
      if (e instanceof Utf8Error) throw badValue(at, `text is not UTF-8: ${e.message}`);
      throw e;
    }
  }

  private contains(x: number, y: number, w: number, h: number): boolean {
    return w > 0 && h > 0 && x >= 0 && y >= 0 && x + w <= this.width && y + h <= this.height;
  }

  private copyRect(kind: number, ts: number, at: number, fieldsAt: number,
    planar: boolean): Rec {
    const d = this.data;
    const [x, y, w, h, first, rows, sx, sy] = Array.from({ length: 8 }, () => this.uv()) as
      [number, number, number, number, number, number, number, number];
    if (!this.contains(x, y, w, h)) {
      const [ex, ey, ew, eh] = exact(d, fieldsAt, 4);
      throw outOfBounds(fieldsAt, `rect ${ew}x${eh}+${ex}+${ey} outside the ` +
        `${this.width}x${this.height} desktop`);
    }
    if (!(rows >= 1 && first + rows <= h)) {
      throw outOfBounds(fieldsAt, `copied rows ${first}..${first + rows - 1} outside the ` +
        `rect's ${h} rows (at least one row is copied)`);
    }
    if (!this.contains(sx, sy, w, rows)) {
      throw outOfBounds(fieldsAt, `copy source ${w}x${rows}+${sx}+${sy} outside the ` +
        `${this.width}x${this.height} desktop`);
    }
    const restRows = h - rows;
    if (!restRows && kind !== T.COPY_RECT) {
      throw badValue(fieldsAt, "layout bits on a copy that carries no pixels");
    }
    const px = restRows ? this.take(w * restRows * 3, `rect ${w}x${h} less ${rows} copied rows`)
      : this.pos;
    return { t: "rect", ts, at, planar, xor: (kind & T.XOR) !== 0, x, y, w, h, px,
      copy: { first, rows, sx, sy } };
  }

  /** The next record, or null after the trailer; throws FormatError at the first defect. */
  next(): Rec | null {
    if (this.done) return null;
    const d = this.data;
    const at = this.pos;
    if (this.remaining() < 1) {
      throw truncated(at, "data ends before the end trailer (segment truncated)");
    }
    const kind = d[at]!;
    this.pos += 1;
    if (kind === T.END) {
      this.pos = at;
      checkTrailerPosition(at, d.length);
      const trailer = unpackTrailer(d, at);
      if (this.needKeyframeAt !== null) {
        throw badValue(at, "segment ends where a keyframe is required");
      }
      if (trailer.recordCount !== this.count) {
        throw lengthMismatch(at + 9, `trailer counts ${trailer.recordCount} records, ` +
          `segment holds ${this.count}`);
      }
      const base = BigInt(this.base);
      if (base + trailer.durationNs < base + BigInt(this.lastOff)) {
        throw timeWentBackwards(at + 1, "segment end is before its last record");
      }
      if (trailer.durationNs > MAX_NS - base) {
        throw badValue(at + 1, "segment end exceeds 2^63-1 ns");
      }
      const end = base + trailer.durationNs;
      if (end > MAX_SAFE_NS) throw beyond53(at + 1, "segment end", end);
      this.endNs = Number(end);
      this.done = true;
      return null;
    }
    if (!isRecordType(kind) || (this.header.version < 2 && isVersion2Type(kind))) {
      throw unknownRecordType(at, `unknown record type ${hex2(kind)} in a format version ` +
        `${this.header.version} segment`);
    }

    const tsAt = this.pos;
    const off = this.uv();
    if (off >= TWO53 || this.base + off > Number.MAX_SAFE_INTEGER) {
      const [exactOff] = exact(d, tsAt, 1);
      const ts = BigInt(this.base) + exactOff!;
      if (ts > MAX_NS) throw badValue(tsAt, "timestamp exceeds 2^63-1 ns");
      throw beyond53(tsAt, "timestamp", ts);
    }
    if (off < this.lastOff) {
      throw timeWentBackwards(tsAt, `time ${this.base + off} ns is before the previous ` +
        `record's ${this.base + this.lastOff} ns`);
    }
    this.lastOff = off;
    this.count += 1;
    const ts = this.base + off;

    if (this.needKeyframeAt !== null) {
      if (!isKeyframeType(kind)) {
        const what = this.width === 0 ? "a segment must start with"
          : "a resize must be followed by";
        throw badValue(at, `${what} a keyframe, found record type ${hex2(kind)}`);
      }
      if (off !== this.needKeyframeAt) {
        throw badValue(tsAt, "a keyframe after a segment start or resize must share its time");
      }
    }

    const planar = (kind & T.PLANAR) !== 0;
    if (isKeyframeType(kind)) {
      let px: number;
      if (this.width === 0) {
        const { width, height } = this.header;
        px = this.take(width * height * 3, `keyframe ${width}x${height}`);
        this.width = width;
        this.height = height;
      } else {
        px = this.take(this.width * this.height * 3, `keyframe ${this.width}x${this.height}`);
      }
      this.needKeyframeAt = null;
      return { t: "keyframe", ts, at, planar, predicted: kind === PREDICTED_KEYFRAME,
        width: this.width, height: this.height, px };
    }

    const fieldsAt = this.pos;
    if (isRectType(kind)) {
      const x = this.uv();
      const y = this.uv();
      const w = this.uv();
      const h = this.uv();
      if (!this.contains(x, y, w, h)) {
        const [ex, ey, ew, eh] = exact(d, fieldsAt, 4);
        throw outOfBounds(fieldsAt, `rect ${ew}x${eh}+${ex}+${ey} outside the ` +
          `${this.width}x${this.height} desktop`);
      }
      const px = this.take(w * h * 3, `rect ${w}x${h}`);
      return { t: "rect", ts, at, planar, xor: (kind & T.XOR) !== 0, x, y, w, h, px };
    }
    if (isCopyRectType(kind)) return this.copyRect(kind, ts, at, fieldsAt, planar);
    switch (kind) {
      case T.RESIZE: {
        const w = this.uv();
        const h = this.uv();
        if (!(w >= 1 && w <= MAX_DIMENSION && h >= 1 && h <= MAX_DIMENSION)) {
          const [ew, eh] = exact(d, fieldsAt, 2);
          throw outOfBounds(fieldsAt, `desktop size ${ew}x${eh} outside 1..${MAX_DIMENSION}`);
        }
        // The keyframe that must follow carries w*h*3 bytes; refuse before going on.
        if (w * h * 3 > this.remaining()) {
          throw truncated(this.pos, `resize to ${w}x${h} needs a ${w * h * 3}-byte keyframe, ` +
            `only ${this.remaining()} bytes remain`);
        }
        this.width = w;
        this.height = h;
        this.needKeyframeAt = off;
        return { t: "resize", ts, at, width: w, height: h };
      }
      case T.POINTER: {
        const x = this.uv();
        const y = this.uv();
        if (x > MAX_COORDINATE || y > MAX_COORDINATE) {
          const [ex, ey] = exact(d, fieldsAt, 2);
          throw outOfBounds(fieldsAt, `pointer position ${ex},${ey} beyond ${MAX_COORDINATE}`);
        }
        return { t: "pointer", ts, at, x, y };
      }
      case T.POINTER_SHAPE: {
        const w = this.uv();
        const h = this.uv();
        const hx = this.uv();
        const hy = this.uv();
        const big = () => exact(d, fieldsAt, 4);
        if (w > MAX_POINTER_DIMENSION || h > MAX_POINTER_DIMENSION) {
          const [ew, eh] = big();
          throw outOfBounds(fieldsAt,
            `pointer shape ${ew}x${eh} larger than ${MAX_POINTER_DIMENSION}`);
        }
        if ((w === 0) !== (h === 0)) {
          throw badValue(fieldsAt, `pointer shape ${w}x${h} has one empty dimension`);
        }
        if ((w && !(hx < w && hy < h)) || (!w && (hx || hy))) {
          const [, , ex, ey] = big();
          throw outOfBounds(fieldsAt, `pointer hotspot ${ex},${ey} outside the ${w}x${h} shape`);
        }
        const px = this.take(w * h * 4, `pointer shape ${w}x${h}`);
        return { t: "shape", ts, at, width: w, height: h, hotspotX: hx, hotspotY: hy, px };
      }
      case T.POINTER_DEFAULT:
        return { t: "default", ts, at };
      case T.START:
        return { t: "start", ts, at, text: this.text() };
      case T.STOP:
        return { t: "stop", ts, at, text: this.text() };
      case T.GAP: {
        const [start, p1] = uvarintExact(d, this.pos);
        const [length, p2] = uvarintExact(d, p1);
        this.pos = p2;
        if (start > MAX_NS || length > MAX_NS - start) {
          throw badValue(fieldsAt, "gap range exceeds 2^63-1 ns");
        }
        return { t: "gap", ts, at, startNs: start, endNs: start + length, text: this.text() };
      }
      default:
        throw unknownRecordType(at, `unknown record type ${hex2(kind)}`);
    }
  }
}

/** Every record of a segment, checked to the trailer (throws at the first defect). */
export function* iterSegment(data: Uint8Array): Generator<Rec> {
  const scanner = new SegmentScanner(data);
  for (let rec = scanner.next(); rec !== null; rec = scanner.next()) yield rec;
}
