//! format.motion.find_copy_reference in Rust: where an update's rows already are on
//! screen. The reference (recorder/lucid_recorder/format/motion.py) is the definition;
//! this must return exactly what it returns, and the tests compare both.

use crate::pixels::Area;

pub const MIN_COPY_PIXELS: usize = 512;
pub const MAX_PROBE_MATCHES: usize = 8;

/// (first row, rows, src_x, src_y), as motion.Copy.
pub type Copy = (usize, usize, usize, usize);

pub struct Search<'a> {
    pub fb: &'a [u8],
    pub area: Area,
    pub rgb: &'a [u8],
}

impl Search<'_> {
    pub fn check(&self) -> Result<(), String> {
        self.area.check(self.fb.len())?;
        let (w, h) = (self.area.w, self.area.h);
        if self.rgb.len() != w * h * 3 {
            return Err(format!("rect {w}x{h} needs {} bytes, got {}", w * h * 3,
                               self.rgb.len()));
        }
        Ok(())
    }

    fn row(&self, r: usize) -> &[u8] {
        &self.rgb[r * self.area.w * 3..][..self.area.w * 3]
    }

    fn fb_row(&self, sx: usize, sy: usize) -> &[u8] {
        &self.fb[(sy * self.area.fb_width + sx) * 3..][..self.area.w * 3]
    }

    fn probe_row(&self) -> usize {
        (0..self.area.h)
            .find(|&r| {
                let row = self.row(r);
                row.chunks_exact(3).any(|px| px != &row[..3])
            })
            .unwrap_or(0)
    }

    /// (first row, rows) of the matching run around the probe row at offset (dx, dy).
    fn run(&self, probe: usize, dx: i64, dy: i64) -> (usize, usize) {
        let sx = self.area.x as i64 + dx;
        if sx < 0 || sx as usize + self.area.w > self.area.fb_width {
            return (0, 0);
        }
        let sx = sx as usize;
        let at = |r: usize| self.area.y as i64 + dy + r as i64;
        let inside = |sy: i64| sy >= 0 && (sy as usize) < self.area.fb_height;
        if !inside(at(probe)) || self.fb_row(sx, at(probe) as usize) != self.row(probe) {
            return (0, 0);
        }
        let mut first = probe;
        while first > 0 && inside(at(first - 1))
            && self.fb_row(sx, at(first - 1) as usize) == self.row(first - 1) {
            first -= 1;
        }
        let mut last = probe + 1;
        while last < self.area.h && inside(at(last))
            && self.fb_row(sx, at(last) as usize) == self.row(last) {
            last += 1;
        }
        (first, last - first)
    }

    pub fn find(&self, hints: &[(i64, i64)]) -> Option<Copy> {
        let probe = self.probe_row();
        // (rows, first, dx, dy)
        let mut best: Option<(usize, usize, i64, i64)> = None;
        let consider = |dx: i64, dy: i64, best: &mut Option<(usize, usize, i64, i64)>| {
            let (first, rows) = self.run(probe, dx, dy);
            if rows > 0 && best.is_none_or(|b| rows > b.0) {
                *best = Some((rows, first, dx, dy));
            }
            rows == self.area.h
        };
        let mut done = consider(0, 0, &mut best);
        for &(dx, dy) in hints {
            if done {
                break;
            }
            if (dx, dy) != (0, 0) {
                done = consider(dx, dy, &mut best);
            }
        }
        if !done {
            let probe_row = self.row(probe);
            let mut matches = 0;
            let y = self.area.y as i64 + probe as i64;
            let fb_h = self.area.fb_height as i64;
            'search: for distance in 1..fb_h {
                for dy in [distance, -distance] {
                    let sy = y + dy;
                    if sy < 0 || sy >= fb_h || self.fb_row(self.area.x, sy as usize) != probe_row {
                        continue;
                    }
                    matches += 1;
                    if consider(0, dy, &mut best) || matches >= MAX_PROBE_MATCHES {
                        break 'search;
                    }
                }
                if y + distance >= fb_h && y - distance < 0 {
                    break;
                }
            }
        }
        let (rows, first, dx, dy) = best?;
        if rows < self.area.h && rows * self.area.w < MIN_COPY_PIXELS {
            return None;
        }
        let src_x = (self.area.x as i64 + dx) as usize;
        let src_y = (self.area.y as i64 + dy + first as i64) as usize;
        Some((first, rows, src_x, src_y))
    }
}
