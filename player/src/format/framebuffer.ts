// The desktop as a recording describes it, kept as RGBA so a canvas can take it as is
// (recorder/lucid_recorder/format/framebuffer.py keeps RGB; rgb() gives the same bytes).

import type { CopyRows, Rec } from "./reader.js";

export interface CustomShape {
  width: number;
  height: number;
  hotspotX: number;
  hotspotY: number;
  rgba: Uint8Array;
}

/** null: hidden or never set; "default": the client's default arrow. */
export type ShapeState = null | "default" | CustomShape;

export interface PointerState {
  x: number;
  y: number;
  shape: ShapeState;
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export class Framebuffer {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
  pointer: PointerState = { x: 0, y: 0, shape: null };
  /** The area changed since the last takeDirty(), or null. */
  private dirty: Box | null = null;

  constructor(width: number, height: number) {
    this.width = width;
    this.height = height;
    this.rgba = blank(width, height);
    this.touch(0, 0, width, height);
  }

  private touch(x: number, y: number, w: number, h: number): void {
    const d = this.dirty;
    if (d === null) this.dirty = { x0: x, y0: y, x1: x + w, y1: y + h };
    else {
      d.x0 = Math.min(d.x0, x);
      d.y0 = Math.min(d.y0, y);
      d.x1 = Math.max(d.x1, x + w);
      d.y1 = Math.max(d.y1, y + h);
    }
  }

  takeDirty(): Box | null {
    const d = this.dirty;
    this.dirty = null;
    return d;
  }

  /** Keep the overlapping top-left area; the rest is black. */
  resize(width: number, height: number): void {
    const next = blank(width, height);
    const keep = Math.min(width, this.width) * 4;
    for (let y = 0; y < Math.min(height, this.height); y++) {
      next.set(this.rgba.subarray(y * this.width * 4, y * this.width * 4 + keep), y * width * 4);
    }
    this.width = width;
    this.height = height;
    this.rgba = next;
    this.dirty = null;
    this.touch(0, 0, width, height);
  }

  /** Copy w*h pixels laid out as the record says (planar, XOR) from `data` at `px`; rows
   * from `skipAt` on land `skip` rows lower (a COPY_RECT's rows around its copied ones). */
  private paint(data: Uint8Array, px: number, x: number, y: number, w: number, h: number,
    planar: boolean, xor: boolean, skipAt = h, skip = 0): void {
    const dst = this.rgba;
    const stride = this.width * 4;
    const n = w * h;
    let k = 0;
    for (let row = 0; row < h; row++) {
      let o = (y + row + (row >= skipAt ? skip : 0)) * stride + x * 4;
      if (!planar && !xor) {
        let s = px + k * 3;
        for (let c = 0; c < w; c++, o += 4, s += 3) {
          dst[o] = data[s]!;
          dst[o + 1] = data[s + 1]!;
          dst[o + 2] = data[s + 2]!;
        }
        k += w;
      } else if (planar && !xor) {
        for (let c = 0; c < w; c++, o += 4, k++) {
          dst[o] = data[px + k]!;
          dst[o + 1] = data[px + n + k]!;
          dst[o + 2] = data[px + 2 * n + k]!;
        }
      } else if (!planar) {
        let s = px + k * 3;
        for (let c = 0; c < w; c++, o += 4, s += 3) {
          dst[o] ^= data[s]!;
          dst[o + 1] ^= data[s + 1]!;
          dst[o + 2] ^= data[s + 2]!;
        }
        k += w;
      } else {
        for (let c = 0; c < w; c++, o += 4, k++) {
          dst[o] ^= data[px + k]!;
          dst[o + 1] ^= data[px + n + k]!;
          dst[o + 2] ^= data[px + 2 * n + k]!;
        }
      }
    }
    this.touch(x, y, w, h);
  }

  /** A predicted keyframe (version 2): planes of R-G, G, B-G, each less the row above. */
  private paintPredicted(data: Uint8Array, px: number): void {
    const dst = this.rgba;
    const w = this.width;
    const n = w * this.height;
    const stride = w * 4;
    for (let k = 0, o = 0; k < n; k++, o += 4) {
      // The row above is already final RGB; its R-G and B-G are what the residuals add to.
      let g = data[px + n + k]!;
      let rg = data[px + k]!;
      let bg = data[px + 2 * n + k]!;
      if (k >= w) {
        const up = o - stride;
        const upG = dst[up + 1]!;
        g += upG;
        rg += dst[up]! - upG;
        bg += dst[up + 2]! - upG;
      }
      dst[o + 1] = g & 0xff;
      dst[o] = (rg + g) & 0xff;
      dst[o + 2] = (bg + g) & 0xff;
    }
    this.touch(0, 0, w, this.height);
  }

  private copyRect(data: Uint8Array, rec: Extract<Rec, { t: "rect" }>, c: CopyRows): void {
    const stride = this.width * 4;
    const rowBytes = rec.w * 4;
    // The source may overlap the rect: take it before anything changes, as the format says.
    const source = new Uint8ClampedArray(rowBytes * c.rows);
    for (let r = 0; r < c.rows; r++) {
      const s = (c.sy + r) * stride + c.sx * 4;
      source.set(this.rgba.subarray(s, s + rowBytes), r * rowBytes);
    }
    const rest = rec.h - c.rows;
    if (rest) {
      this.paint(data, rec.px, rec.x, rec.y, rec.w, rest, rec.planar, rec.xor, c.first, c.rows);
    }
    for (let r = 0; r < c.rows; r++) {
      this.rgba.set(source.subarray(r * rowBytes, (r + 1) * rowBytes),
        (rec.y + c.first + r) * stride + rec.x * 4);
    }
    this.touch(rec.x, rec.y, rec.w, rec.h);
  }

  /** Change the framebuffer as `rec` says; markers other than resize change nothing. */
  apply(data: Uint8Array, rec: Rec): void {
    switch (rec.t) {
      case "keyframe":
        if (rec.width !== this.width || rec.height !== this.height) {
          this.resize(rec.width, rec.height);
        }
        if (rec.predicted) this.paintPredicted(data, rec.px);
        else this.paint(data, rec.px, 0, 0, rec.width, rec.height, rec.planar, false);
        break;
      case "rect":
        if (rec.copy) this.copyRect(data, rec, rec.copy);
        else this.paint(data, rec.px, rec.x, rec.y, rec.w, rec.h, rec.planar, rec.xor);
        break;
      case "resize":
        this.resize(rec.width, rec.height);
        break;
      case "pointer":
        this.pointer.x = rec.x;
        this.pointer.y = rec.y;
        break;
      case "shape":
        this.pointer.shape = rec.width && rec.height ? {
          width: rec.width, height: rec.height, hotspotX: rec.hotspotX, hotspotY: rec.hotspotY,
          rgba: data.slice(rec.px, rec.px + rec.width * rec.height * 4),
        } : null;
        break;
      case "default":
        this.pointer.shape = "default";
        break;
      default:
        break;
    }
  }

  /** The pixels as the reference holds them: RGB24, row-major, no padding. */
  rgb(x = 0, y = 0, w = this.width, h = this.height): Uint8Array {
    const out = new Uint8Array(w * h * 3);
    const src = this.rgba;
    let o = 0;
    for (let row = y; row < y + h; row++) {
      let s = (row * this.width + x) * 4;
      for (let c = 0; c < w; c++, s += 4) {
        out[o++] = src[s]!;
        out[o++] = src[s + 1]!;
        out[o++] = src[s + 2]!;
      }
    }
    return out;
  }
}

function blank(width: number, height: number): Uint8ClampedArray {
  const px = new Uint8ClampedArray(width * height * 4);
  for (let i = 3; i < px.length; i += 4) px[i] = 255;
  return px;
}

export function copyPointer(p: PointerState): PointerState {
  return { x: p.x, y: p.y, shape: p.shape };
}
