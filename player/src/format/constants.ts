// Format constants, versions 1 and 2 (docs/format.md; recorder/lucid_recorder/format/header.py).

export const MAGIC = new TextEncoder().encode("LUCIDSEG");
export const TRAILER_MAGIC = new TextEncoder().encode("LUCIDEND");
/** What the recorder writes; version 2 adds COPY_RECT. */
export const VERSION = 2;
export const READABLE_VERSIONS: readonly number[] = [1, 2];
export const HEADER_SIZE = 34;
export const TRAILER_SIZE = 21;

export const MAX_NS = (1n << 63n) - 1n;
export const MAX_U64 = (1n << 64n) - 1n;
export const MAX_VARINT_BYTES = 10;
export const MAX_DIMENSION = 8192;
export const MAX_POINTER_DIMENSION = 512;
export const MAX_COORDINATE = 0xffff;
export const MAX_REASON_BYTES = 1024;

export const T = {
  KEYFRAME: 0x10,
  RECT: 0x20,
  COPY_RECT: 0x24,
  RESIZE: 0x30,
  POINTER: 0x40,
  POINTER_SHAPE: 0x41,
  POINTER_DEFAULT: 0x42,
  START: 0x50,
  STOP: 0x51,
  GAP: 0x52,
  END: 0xff,
  PLANAR: 0x01,
  XOR: 0x02,
} as const;

const known = new Uint8Array(256);
for (const t of [0x10, 0x11, 0x13, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x30, 0x40, 0x41, 0x42, 0x50, 0x51, 0x52]) {
  known[t] = 1;
}
export const isRecordType = (t: number): boolean => known[t] === 1;
/** Keyframe with red and blue less green, less the row above, planar (version 2). */
export const PREDICTED_KEYFRAME = 0x13;
export const isKeyframeType = (t: number): boolean =>
  t === 0x10 || t === 0x11 || t === PREDICTED_KEYFRAME;
export const isRectType = (t: number): boolean => t >= 0x20 && t <= 0x23;
export const isCopyRectType = (t: number): boolean => t >= 0x24 && t <= 0x27;
/** Types a version 1 segment may not hold. */
export const isVersion2Type = (t: number): boolean =>
  isCopyRectType(t) || t === PREDICTED_KEYFRAME;
