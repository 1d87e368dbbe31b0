// Reading the Python-generated vectors (player/test/vectors, from player/tools/make_vectors.py).

import { createHash, webcrypto } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { decompress } from "fzstd";

import type { Framebuffer } from "../src/format/framebuffer.js";
import { iterSegment } from "../src/format/reader.js";
import { Framebuffer as FB } from "../src/format/framebuffer.js";

// Node 18 (Debian 12's) has WebCrypto only behind a flag as a global; the page's code uses
// the global, as browsers have it.
if (globalThis.crypto === undefined) {
  (globalThis as { crypto?: unknown }).crypto = webcrypto;
}

// Tests run from player/.build/test/, bundled; the vectors stay in player/test/vectors.
const here = dirname(fileURLToPath(import.meta.url));
export const VECTORS = join(here, "..", "..", "test", "vectors");

export const readVector = (path: string): Uint8Array =>
  new Uint8Array(readFileSync(join(VECTORS, path)));
export const readJson = <T>(path: string): T =>
  JSON.parse(readFileSync(join(VECTORS, path), "utf8")) as T;
export const segmentFile = (path: string): Uint8Array => decompress(readVector(path));

export const sha = (data: Uint8Array | Uint8ClampedArray): string =>
  createHash("sha256").update(data).digest("hex");
const hex = (s: string) => Buffer.from(s, "utf8").toString("hex");

/** The reference's record lines (make_vectors.record_line), from the TS decoder. */
export const recordLines = (data: Uint8Array): string[] => [...recordLineGen(data)];

/** The same, one line per record as the decoder yields it (so errors come in place). */
export function* recordLineGen(data: Uint8Array): Generator<string> {
  let fb: FB | null = null;
  for (const r of iterSegment(data)) {
    switch (r.t) {
      case "keyframe":
        fb ??= new FB(r.width, r.height);
        fb.apply(data, r);
        yield (`K ${r.ts} ${r.width}x${r.height} ${sha(fb.rgb())}`);
        break;
      case "rect":
        fb!.apply(data, r);
        yield (`R ${r.ts} ${r.x},${r.y},${r.w},${r.h} ${sha(fb!.rgb(r.x, r.y, r.w, r.h))}`);
        break;
      case "resize":
        fb!.apply(data, r);
        yield (`Z ${r.ts} ${r.width}x${r.height}`);
        break;
      case "pointer":
        yield (`P ${r.ts} ${r.x},${r.y}`);
        break;
      case "shape":
        yield (`S ${r.ts} ${r.width}x${r.height} ${r.hotspotX},${r.hotspotY} ` +
          sha(data.subarray(r.px, r.px + r.width * r.height * 4)));
        break;
      case "default":
        yield (`D ${r.ts}`);
        break;
      case "start":
        yield (`A ${r.ts} ${hex(r.text)}`);
        break;
      case "stop":
        yield (`O ${r.ts} ${hex(r.text)}`);
        break;
      case "gap":
        yield (`G ${r.ts} ${r.startNs}-${r.endNs} ${hex(r.text)}`);
        break;
    }
  }
}

export function pointerText(fb: Framebuffer): string {
  const s = fb.pointer.shape;
  const what = s === null ? "none" : s === "default" ? "default"
    : `${s.width}x${s.height}@${s.hotspotX},${s.hotspotY}:${sha(s.rgba)}`;
  return `${fb.pointer.x},${fb.pointer.y} ${what}`;
}
