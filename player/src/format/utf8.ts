// Strict UTF-8 decoding with CPython's error reasons ("invalid start byte", ...), so that a
// bad text field gives the same message as the reference decoder.

export class Utf8Error extends Error {}

const decoder = new TextDecoder("utf-8", { fatal: true });

function reason(b: Uint8Array): string | null {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) { i++; continue; }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return "invalid start byte";
    for (let k = 1; k <= need; k++) {
      if (i + k >= n) return "unexpected end of data";
      const x = b[i + k]!;
      const okLo = k === 1 ? lo : 0x80;
      const okHi = k === 1 ? hi : 0xbf;
      if (x < okLo || x > okHi) return "invalid continuation byte";
    }
    i += need + 1;
  }
  return null;
}

export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new Utf8Error(reason(bytes) ?? "invalid data");
  }
}
