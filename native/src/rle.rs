//! Interleaved RLE bitmap decompression ([MS-RDPBCGR] 2.2.9.1.1.3.1.2.4), a line-for-line
//! port of recorder/lucid_recorder/rdp/rle.py: same orders, same errors, same output.

const REGULAR_BG_RUN: u32 = 0x0;
const REGULAR_FG_RUN: u32 = 0x1;
const REGULAR_FGBG_IMAGE: u32 = 0x2;
const REGULAR_COLOR_RUN: u32 = 0x3;
const REGULAR_COLOR_IMAGE: u32 = 0x4;
const LITE_SET_FG_FG_RUN: u32 = 0xC;
const LITE_SET_FG_FGBG_IMAGE: u32 = 0xD;
const LITE_DITHERED_RUN: u32 = 0xE;
const MEGA_MEGA_BG_RUN: u32 = 0xF0;
const MEGA_MEGA_FG_RUN: u32 = 0xF1;
const MEGA_MEGA_FGBG_IMAGE: u32 = 0xF2;
const MEGA_MEGA_COLOR_RUN: u32 = 0xF3;
const MEGA_MEGA_COLOR_IMAGE: u32 = 0xF4;
const MEGA_MEGA_SET_FG_RUN: u32 = 0xF6;
const MEGA_MEGA_SET_FGBG_IMAGE: u32 = 0xF7;
const MEGA_MEGA_DITHERED_RUN: u32 = 0xF8;
const SPECIAL_FGBG_1: u32 = 0xF9;
const SPECIAL_FGBG_2: u32 = 0xFA;
const WHITE: u32 = 0xFD;
const BLACK: u32 = 0xFE;

fn code_of(header: u32) -> u32 {
    if header & 0xC0 != 0xC0 {
        header >> 5
    } else if header & 0xF0 == 0xF0 {
        header
    } else {
        header >> 4
    }
}

struct Stream<'a> {
    data: &'a [u8],
    pos: usize,
    pixel_size: usize,
}

impl Stream<'_> {
    fn byte(&mut self) -> Result<u32, String> {
        match self.data.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b as u32)
            }
            None => Err("RLE stream ends inside an order".into()),
        }
    }

    fn uint16(&mut self) -> Result<u32, String> {
        Ok(self.byte()? | self.byte()? << 8)
    }

    fn pixel(&mut self) -> Result<u32, String> {
        let end = self.pos + self.pixel_size;
        if end > self.data.len() {
            return Err("RLE stream ends inside a pixel".into());
        }
        let mut value = 0u32;
        for (i, &b) in self.data[self.pos..end].iter().enumerate() {
            value |= (b as u32) << (8 * i);
        }
        self.pos = end;
        Ok(value)
    }

    fn run_length(&mut self, code: u32, header: u32) -> Result<usize, String> {
        Ok(match code {
            REGULAR_FGBG_IMAGE | LITE_SET_FG_FGBG_IMAGE => {
                let mask = if code == REGULAR_FGBG_IMAGE { 0x1F } else { 0x0F };
                let length = header & mask;
                if length == 0 { self.byte()? as usize + 1 } else { length as usize * 8 }
            }
            REGULAR_BG_RUN | REGULAR_FG_RUN | REGULAR_COLOR_RUN | REGULAR_COLOR_IMAGE => {
                let length = header & 0x1F;
                if length == 0 { self.byte()? as usize + 32 } else { length as usize }
            }
            LITE_SET_FG_FG_RUN | LITE_DITHERED_RUN => {
                let length = header & 0x0F;
                if length == 0 { self.byte()? as usize + 16 } else { length as usize }
            }
            _ => self.uint16()? as usize,
        })
    }
}

fn white(pixel_size: usize) -> u32 {
    (1u32 << (8 * pixel_size)) - 1
}

#[allow(clippy::too_many_arguments)]
fn fgbg(out: &mut [u32], mut pos: usize, row: usize, mask: u32, bits: usize, fg: u32,
        first_line: bool) -> usize {
    for bit in 0..bits {
        let on = mask >> bit & 1 == 1;
        out[pos] = if first_line {
            if on { fg } else { 0 }
        } else {
            let above = out[pos - row];
            if on { above ^ fg } else { above }
        };
        pos += 1;
    }
    pos
}

/// Decode to width * height pixel values, in the stream's order (bottom row first).
pub fn decompress(data: &[u8], width: usize, height: usize, pixel_size: usize)
                  -> Result<Vec<u32>, String> {
    if !(1..=3).contains(&pixel_size) {
        return Err(format!("RLE pixel size {pixel_size} not in 1..3"));
    }
    let total = width * height;
    let mut out = vec![0u32; total];
    let mut src = Stream { data, pos: 0, pixel_size };
    let row = width;
    let mut pos = 0usize;
    let mut fg = white(pixel_size);
    let mut insert_fg = false;
    let mut first_line = true;
    let need = |pos: usize, count: usize| -> Result<(), String> {
        if pos + count > total {
            Err(format!("RLE stream decodes past {width}x{height} at pixel {pos} (+{count})"))
        } else {
            Ok(())
        }
    };

    while src.pos < data.len() {
        if first_line && pos >= row {
            first_line = false;
            insert_fg = false;
        }
        let header = src.byte()?;
        let code = code_of(header);
        if code == REGULAR_BG_RUN || code == MEGA_MEGA_BG_RUN {
            let mut length = src.run_length(code, header)?;
            need(pos, length)?;
            if insert_fg && length > 0 {
                out[pos] = if first_line { fg } else { out[pos - row] ^ fg };
                pos += 1;
                length -= 1;
            }
            if first_line {
                out[pos..pos + length].fill(0);
            } else {
                // Forward, in steps of at most a row: each step reads only finished pixels.
                for i in pos..pos + length {
                    out[i] = out[i - row];
                }
            }
            pos += length;
            insert_fg = true;
            continue;
        }
        insert_fg = false;
        match code {
            REGULAR_FG_RUN | MEGA_MEGA_FG_RUN | LITE_SET_FG_FG_RUN | MEGA_MEGA_SET_FG_RUN => {
                let length = src.run_length(code, header)?;
                if code == LITE_SET_FG_FG_RUN || code == MEGA_MEGA_SET_FG_RUN {
                    fg = src.pixel()?;
                }
                need(pos, length)?;
                if first_line {
                    out[pos..pos + length].fill(fg);
                } else {
                    for i in pos..pos + length {
                        out[i] = out[i - row] ^ fg;
                    }
                }
                pos += length;
            }
            LITE_DITHERED_RUN | MEGA_MEGA_DITHERED_RUN => {
                let length = src.run_length(code, header)?;
                let a = src.pixel()?;
                let b = src.pixel()?;
                need(pos, 2 * length)?;
                for i in 0..length {
                    out[pos + 2 * i] = a;
                    out[pos + 2 * i + 1] = b;
                }
                pos += 2 * length;
            }
            REGULAR_COLOR_RUN | MEGA_MEGA_COLOR_RUN => {
                let length = src.run_length(code, header)?;
                let colour = src.pixel()?;
                need(pos, length)?;
                out[pos..pos + length].fill(colour);
                pos += length;
            }
            REGULAR_FGBG_IMAGE | MEGA_MEGA_FGBG_IMAGE | LITE_SET_FG_FGBG_IMAGE
            | MEGA_MEGA_SET_FGBG_IMAGE => {
                let mut length = src.run_length(code, header)?;
                if code == LITE_SET_FG_FGBG_IMAGE || code == MEGA_MEGA_SET_FGBG_IMAGE {
                    fg = src.pixel()?;
                }
                need(pos, length)?;
                while length > 0 {
                    let bits = length.min(8);
                    let mask = src.byte()?;
                    pos = fgbg(&mut out, pos, row, mask, bits, fg, first_line);
                    length -= bits;
                }
            }
            REGULAR_COLOR_IMAGE | MEGA_MEGA_COLOR_IMAGE => {
                let length = src.run_length(code, header)?;
                need(pos, length)?;
                for _ in 0..length {
                    out[pos] = src.pixel()?;
                    pos += 1;
                }
            }
            SPECIAL_FGBG_1 | SPECIAL_FGBG_2 => {
                need(pos, 8)?;
                let mask = if code == SPECIAL_FGBG_1 { 0x03 } else { 0x05 };
                pos = fgbg(&mut out, pos, row, mask, 8, fg, first_line);
            }
            WHITE | BLACK => {
                need(pos, 1)?;
                out[pos] = if code == WHITE { white(pixel_size) } else { 0 };
                pos += 1;
            }
            _ => {
                return Err(format!("unknown RLE order {header:#04x} at byte {}", src.pos - 1));
            }
        }
    }
    if pos != total {
        return Err(format!("RLE stream decodes {pos} of {width}x{height} pixels"));
    }
    Ok(out)
}

/// decompress's 24 bpp values (bottom row first) as RGB24 top-down, cropped to the
/// top-left dest_w x dest_h: what bitmap.decode_bitmap makes of them with PIL.
pub fn values_to_rgb24(values: &[u32], width: usize, height: usize, dest_w: usize,
                       out: &mut [u8]) {
    for (y, dst) in out.chunks_exact_mut(dest_w * 3).enumerate() {
        // The stream's first row is the bottom row.
        let src = &values[(height - 1 - y) * width..][..dest_w];
        for (px, &v) in dst.chunks_exact_mut(3).zip(src) {
            px[0] = (v >> 16) as u8;
            px[1] = (v >> 8) as u8;
            px[2] = v as u8;
        }
    }
}
