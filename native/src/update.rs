//! A whole bitmap update in one call: wire.parse_bitmap_update, UpdateDecoder.check_bounds
//! and bitmap.decode_bitmap for every rectangle of a TS_UPDATE_BITMAP_DATA.
//!
//! All or nothing: any rectangle this module does not decode exactly as the reference does
//! (16 bpp, uncompressed, raw or lossy planar, a damaged stream, a bound exceeded, a
//! truncated update) declines the whole update, and the caller runs the reference on it,
//! so results and errors stay the reference's.

use crate::rle;

const UPDATETYPE_BITMAP: u16 = 0x1;
const BITMAP_COMPRESSION: u16 = 0x0001;
const NO_BITMAP_COMPRESSION_HDR: u16 = 0x0400;
const COMPRESSION_HEADER_SIZE: usize = 8;
// The one planar header aardwolf's decoder accepts: RLE, an alpha plane, no colour loss,
// no chroma subsampling. Any other goes to the reference.
const PLANAR_RLE_WITH_ALPHA: u8 = 0x10;

pub struct Decoded {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
    pub rgb: Vec<u8>,
}

pub struct Update {
    pub rects: Vec<Decoded>,
    /// Sum of the rectangles' bitmap data lengths, as UpdateDecoder.stats counts them.
    pub bitmap_bytes: usize,
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

/// None: leave the update to the reference, also when its rectangles would decode to more
/// than `max_bytes` of RGB24 (the reference queues those in several lists as it goes).
pub fn decode(data: &[u8], desktop_w: usize, desktop_h: usize, padding: usize,
              max_bytes: usize) -> Option<Update> {
    let mut total = 0usize;
    if u16_at(data, 0)? != UPDATETYPE_BITMAP {
        return None;
    }
    let count = u16_at(data, 2)? as usize;
    let mut offset = 4;
    let mut update = Update { rects: Vec::with_capacity(count), bitmap_bytes: 0 };
    for _ in 0..count {
        let mut f = [0usize; 9];
        for (i, v) in f.iter_mut().enumerate() {
            *v = u16_at(data, offset + 2 * i)? as usize;
        }
        let [left, top, right, bottom, width, height, bpp, flags, length] = f;
        offset += 18;
        let mut start = offset;
        let compressed = flags as u16 & BITMAP_COMPRESSION != 0;
        if compressed && flags as u16 & NO_BITMAP_COMPRESSION_HDR == 0 {
            start += COMPRESSION_HEADER_SIZE;
        }
        let end = offset + length;
        if end > data.len() || start > end {
            return None;
        }
        let bits = &data[start..end];
        offset = end;
        // UpdateDecoder.check_bounds, then decode_bitmap's destination checks.
        if right >= desktop_w || bottom >= desktop_h || width > desktop_w + padding
            || height > desktop_h + padding || right < left || bottom < top {
            return None;
        }
        let (dest_w, dest_h) = (right - left + 1, bottom - top + 1);
        if dest_w > width || dest_h > height || !compressed {
            return None;
        }
        total += dest_w * dest_h * 3;
        if total > max_bytes {
            return None;
        }
        let rgb = match bpp {
            24 => rle24(bits, width, height, dest_w, dest_h)?,
            32 if bits.first() == Some(&PLANAR_RLE_WITH_ALPHA) => {
                planar(bits, width, height, dest_w, dest_h)?
            }
            _ => return None,
        };
        update.bitmap_bytes += bits.len();
        update.rects.push(Decoded { x: left, y: top, w: dest_w, h: dest_h, rgb });
    }
    Some(update)
}

fn rle24(bits: &[u8], width: usize, height: usize, dest_w: usize, dest_h: usize)
         -> Option<Vec<u8>> {
    let values = rle::decompress(bits, width, height, 3).ok()?;
    let mut out = vec![0u8; dest_w * dest_h * 3];
    rle::values_to_rgb24(&values, width, height, dest_w, &mut out);
    Some(out)
}

/// RDP 6.0 planar with RLE ([MS-RDPEGDI] 2.2.2.5.1) as aardwolf 0.2.16's decoder reads it
/// (its process_plane, index for index, with a decline where it would panic): the
/// planes A, R, G, B into a top-down B, G, R, A buffer, then cropped to RGB24.
fn planar(bits: &[u8], width: usize, height: usize, dest_w: usize, dest_h: usize)
          -> Option<Vec<u8>> {
    let size = width.checked_mul(height)?.checked_mul(4)?;
    let mut bgra = vec![0u8; size];
    let mut pos = 1;
    for channel in [3usize, 2, 1, 0] {
        pos = plane(bits, pos, width, height, &mut bgra[channel..])?;
    }
    let mut out = vec![0u8; dest_w * dest_h * 3];
    for (y, dst) in out.chunks_exact_mut(dest_w * 3).enumerate() {
        let src = &bgra[y * width * 4..][..dest_w * 4];
        for (px, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
            px[0] = s[2];
            px[1] = s[1];
            px[2] = s[0];
        }
    }
    Some(out)
}

/// One plane into every 4th byte of `output`; the input position after it.
fn plane(input: &[u8], mut pos: usize, width: usize, height: usize, output: &mut [u8])
         -> Option<usize> {
    let mut next = || -> Option<u8> {
        let b = *input.get(pos)?;
        pos += 1;
        Some(b)
    };
    let mut last_line: Option<usize> = None;
    for row in 0..height {
        // The stream's first row is the bottom row.
        let this_line = (height - 1 - row) * width * 4;
        let mut out = this_line;
        let mut x = 0usize;
        let mut color: u8 = 0;
        while x < width {
            let code = next()?;
            let mut run = (code & 0xf) as usize;
            let mut raw = (code >> 4) as usize;
            if run == 1 || run == 2 {
                // A long run of 16 + raw or 32 + raw, no raw bytes.
                run = (run << 4) | raw;
                raw = 0;
            }
            // aardwolf lets a row overrun into the next lines of `output` (and panics
            // past its end); the same writes here, and a decline where it would panic.
            match last_line {
                None => {
                    for _ in 0..raw {
                        color = next()?;
                        *output.get_mut(out)? = color;
                        out += 4;
                        x += 1;
                    }
                    for _ in 0..run {
                        *output.get_mut(out)? = color;
                        out += 4;
                        x += 1;
                    }
                }
                Some(last) => {
                    for _ in 0..raw {
                        let v = next()?;
                        color = if v & 1 != 0 { ((v >> 1) + 1).wrapping_neg() } else { v >> 1 };
                        let above = *output.get(last + x * 4)?;
                        *output.get_mut(out)? = above.wrapping_add(color);
                        out += 4;
                        x += 1;
                    }
                    for _ in 0..run {
                        let above = *output.get(last + x * 4)?;
                        *output.get_mut(out)? = above.wrapping_add(color);
                        out += 4;
                        x += 1;
                    }
                }
            }
        }
        last_line = Some(this_line);
    }
    Some(pos)
}
