//! Pixel layouts and the layout choice of recorder/lucid_recorder/format/encoding.py and
//! pixels.py, and the framebuffer's region/paste of format/framebuffer.py.

/// Samples per rectangle in the layout choice; encoding.py's _SAMPLES.
pub const SAMPLES: usize = 1024;
/// More distinct colours than this among the samples means photo-like content.
pub const PHOTO_COLOURS: usize = 256;

pub fn distinct_colours(rgb: &[u8], limit: usize) -> usize {
    let pixels = rgb.len() / 3;
    let step = (pixels / limit.max(1)).max(1) * 3;
    let mut seen: Vec<u32> = (0..pixels * 3)
        .step_by(step)
        .map(|i| (rgb[i] as u32) << 16 | (rgb[i + 1] as u32) << 8 | rgb[i + 2] as u32)
        .collect();
    seen.sort_unstable();
    seen.dedup();
    seen.len()
}

/// (planar, xor) as encoding.adaptive_layout answers it.
pub fn adaptive_layout(rgb: &[u8], previous: Option<&[u8]>) -> Result<(bool, bool), String> {
    if distinct_colours(rgb, SAMPLES) <= PHOTO_COLOURS {
        return Ok((false, false));
    }
    if let Some(previous) = previous {
        if previous.len() != rgb.len() {
            return Err("xor of buffers with different lengths".into());
        }
        let same = rgb.iter().zip(previous).filter(|(a, b)| a == b).count();
        if same * 2 >= rgb.len() {
            return Ok((true, true));
        }
    }
    Ok((true, false))
}

pub fn xor_into(a: &[u8], b: &[u8], out: &mut [u8]) {
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
}

/// RGBRGB... -> RR..GG..BB.. (a trailing partial pixel goes where pixels.to_planar puts it).
pub fn to_planar_into(rgb: &[u8], out: &mut [u8]) {
    // Python's rgb[0::3] + rgb[1::3] + rgb[2::3], including for lengths not divisible by 3.
    let mut o = 0;
    for plane in 0..3 {
        let mut i = plane;
        while i < rgb.len() {
            out[o] = rgb[i];
            o += 1;
            i += 3;
        }
    }
}

/// Pixels as the writer stores them in `layout`, into `out` (same length as `rgb`).
pub fn encode_into(rgb: &[u8], previous: Option<&[u8]>, planar: bool, xor: bool, out: &mut [u8]) {
    match (xor, previous) {
        (true, Some(previous)) => {
            if planar {
                let mut tmp = vec![0u8; rgb.len()];
                xor_into(rgb, previous, &mut tmp);
                to_planar_into(&tmp, out);
            } else {
                xor_into(rgb, previous, out);
            }
        }
        _ => {
            if planar {
                to_planar_into(rgb, out);
            } else {
                out.copy_from_slice(rgb);
            }
        }
    }
}

pub struct Area {
    pub fb_width: usize,
    pub fb_height: usize,
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Area {
    pub fn check(&self, pixels_len: usize) -> Result<(), String> {
        if pixels_len != self.fb_width * self.fb_height * 3 {
            return Err(format!("framebuffer of {pixels_len} bytes is not {}x{}",
                               self.fb_width, self.fb_height));
        }
        if self.w == 0 || self.h == 0 || self.x + self.w > self.fb_width
            || self.y + self.h > self.fb_height {
            return Err(format!("rect {}x{}+{}+{} outside {}x{}", self.w, self.h, self.x, self.y,
                               self.fb_width, self.fb_height));
        }
        Ok(())
    }

    pub fn region_into(&self, pixels: &[u8], out: &mut [u8]) {
        let stride = self.fb_width * 3;
        let row = self.w * 3;
        let start = (self.y * self.fb_width + self.x) * 3;
        for (r, dst) in out.chunks_exact_mut(row).enumerate() {
            let s = start + r * stride;
            dst.copy_from_slice(&pixels[s..s + row]);
        }
    }

    pub fn paste(&self, pixels: &mut [u8], rgb: &[u8]) {
        let stride = self.fb_width * 3;
        let row = self.w * 3;
        let start = (self.y * self.fb_width + self.x) * 3;
        for (r, src) in rgb.chunks_exact(row).enumerate() {
            let d = start + r * stride;
            pixels[d..d + row].copy_from_slice(src);
        }
    }
}
