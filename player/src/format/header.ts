// Fixed-size segment header and trailer (docs/format.md, "Byte layout").

import {
  HEADER_SIZE,
  MAGIC,
  MAX_DIMENSION,
  MAX_NS,
  T,
  TRAILER_MAGIC,
  TRAILER_SIZE,
  READABLE_VERSIONS,
} from "./constants.js";
import {
  badMagic,
  badValue,
  lengthMismatch,
  outOfBounds,
  truncated,
  unsupportedVersion,
} from "./errors.js";

// Session times are plain numbers here: exact up to 2^53 ns, 104 days after the session
// start. The format allows 2^63-1; the browser decoder refuses what it cannot represent
// (BadValue, "beyond 2^53 ns"), where the Python reference would go on.
export const MAX_SAFE_NS = BigInt(Number.MAX_SAFE_INTEGER);

export interface SegmentHeader {
  seq: number;
  width: number;
  height: number;
  baseNs: number;
  sessionStartUnixNs: bigint;
  version: number;
}

export interface Trailer {
  durationNs: bigint;
  recordCount: number;
}

export interface SegmentInfo {
  header: SegmentHeader;
  trailer: Trailer;
  size: number;
  startNs: number;
  endNs: number;
}

const view = (d: Uint8Array) => new DataView(d.buffer, d.byteOffset, d.byteLength);

function startsWith(data: Uint8Array, prefix: Uint8Array, at = 0): boolean {
  if (data.length < at + prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[at + i] !== prefix[i]) return false;
  return true;
}

export const hex2 = (n: number) => "0x" + n.toString(16).padStart(2, "0");

export function beyond53(at: number, what: string, value: bigint): Error {
  return badValue(at, `${what} ${value} ns is beyond 2^53 ns (104 days): the browser player ` +
    "cannot represent it");
}

export function unpackHeader(data: Uint8Array): SegmentHeader {
  if (!startsWith(data, MAGIC)) {
    if (data.length < MAGIC.length && startsWith(MAGIC, data)) {
      throw truncated(data.length, "data ends inside the segment magic");
    }
    throw badMagic(0, "not a Lucid segment (bad magic)");
  }
  if (data.length < HEADER_SIZE) {
    throw truncated(data.length, `header needs ${HEADER_SIZE} bytes, data has ${data.length}`);
  }
  const v = view(data);
  const version = data[8]!;
  const flags = data[9]!;
  if (!READABLE_VERSIONS.includes(version)) {
    throw unsupportedVersion(8, `format version ${version} (this decoder reads ` +
      `${READABLE_VERSIONS.join(", ")})`);
  }
  if (flags) throw badValue(9, `reserved header flags set: ${hex2(flags)}`);
  const seq = v.getUint32(10, true);
  const width = v.getUint16(14, true);
  const height = v.getUint16(16, true);
  const base = v.getBigUint64(18, true);
  const sessionStartUnixNs = v.getBigInt64(26, true);
  if (!(width >= 1 && width <= MAX_DIMENSION)) {
    throw outOfBounds(14, `desktop width ${width} outside 1..${MAX_DIMENSION}`);
  }
  if (!(height >= 1 && height <= MAX_DIMENSION)) {
    throw outOfBounds(16, `desktop height ${height} outside 1..${MAX_DIMENSION}`);
  }
  if (base > MAX_NS) throw badValue(18, `base time ${base} exceeds 2^63-1 ns`);
  if (base > MAX_SAFE_NS) throw beyond53(18, "base time", base);
  return { seq, width, height, baseNs: Number(base), sessionStartUnixNs, version };
}

/** The trailer at `offset`, or (offset undefined) in the last TRAILER_SIZE bytes. */
export function unpackTrailer(data: Uint8Array, offset?: number): Trailer {
  const atEnd = offset === undefined;
  const at = offset ?? data.length - TRAILER_SIZE;
  if (atEnd && at < HEADER_SIZE) {
    throw truncated(data.length, "segment too short to hold header and trailer");
  }
  const v = view(data);
  const kind = data[at]!;
  const duration = v.getBigUint64(at + 1, true);
  const count = v.getUint32(at + 9, true);
  const magicOk = startsWith(data, TRAILER_MAGIC, at + 13);
  if (atEnd && (kind !== T.END || !magicOk)) {
    throw truncated(data.length, "no end trailer: segment truncated or not finished");
  }
  if (!magicOk) throw badValue(at + 13, "bad end trailer magic");
  if (duration > MAX_NS) throw badValue(at + 1, `duration ${duration} exceeds 2^63-1 ns`);
  return { durationNs: duration, recordCount: count };
}

export function checkTrailerPosition(offset: number, total: number): void {
  if (offset + TRAILER_SIZE > total) {
    throw truncated(total, `data ends inside the end trailer that starts at byte ${offset}`);
  }
  if (offset + TRAILER_SIZE < total) {
    throw lengthMismatch(offset + TRAILER_SIZE,
      `${total - offset - TRAILER_SIZE} bytes follow the end trailer`);
  }
}

/** Header and trailer only: enough to index a recording for seeking. */
export function peekSegment(data: Uint8Array): SegmentInfo {
  const header = unpackHeader(data);
  const trailer = unpackTrailer(data);
  const base = BigInt(header.baseNs);
  if (trailer.durationNs > MAX_NS - base) {
    throw badValue(data.length - TRAILER_SIZE + 1, "segment end exceeds 2^63-1 ns");
  }
  const end = base + trailer.durationNs;
  if (end > MAX_SAFE_NS) throw beyond53(data.length - TRAILER_SIZE + 1, "segment end", end);
  return { header, trailer, size: data.length, startNs: header.baseNs, endNs: Number(end) };
}
