//! lucid_native: the recorder's hot path in Rust.
//!
//! Every function here has a pure-Python reference in lucid_recorder, which stays the
//! definition: the tests run both on the same fixtures and compare them byte for byte.
//! lucid_recorder.native picks this module when it is installed (LUCID_NATIVE=0 forces
//! the reference).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

mod motion;
mod pixels;
mod rle;
mod update;

use pixels::Area;

fn value_error(message: String) -> PyErr {
    PyValueError::new_err(message)
}

/// rle.decompress(...).tobytes(): native-endian u32 pixel values, bottom row first.
#[pyfunction]
fn rle_decompress<'py>(py: Python<'py>, data: &[u8], width: usize, height: usize,
                       pixel_size: usize) -> PyResult<Bound<'py, PyBytes>> {
    let values = py.allow_threads(|| rle::decompress(data, width, height, pixel_size))
        .map_err(value_error)?;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
    Ok(PyBytes::new(py, &bytes))
}

/// A 24 bpp RLE bitmap of width x height to the top-left dest_w x dest_h of it as RGB24,
/// top-down: what bitmap.decode_bitmap makes of it with PIL.
#[pyfunction]
fn rle24_to_rgb<'py>(py: Python<'py>, data: &[u8], width: usize, height: usize,
                     dest_w: usize, dest_h: usize) -> PyResult<Bound<'py, PyBytes>> {
    if dest_w == 0 || dest_h == 0 || dest_w > width || dest_h > height {
        return Err(value_error(format!("destination {dest_w}x{dest_h} not inside the \
                                        bitmap's {width}x{height}")));
    }
    let values = py.allow_threads(|| rle::decompress(data, width, height, 3))
        .map_err(value_error)?;
    PyBytes::new_with(py, dest_w * dest_h * 3, |out: &mut [u8]| {
        rle::values_to_rgb24(&values, width, height, dest_w, out);
        Ok(())
    })
}

#[pyfunction]
#[pyo3(signature = (rgb, limit = pixels::SAMPLES))]
fn distinct_colours(rgb: &[u8], limit: usize) -> usize {
    pixels::distinct_colours(rgb, limit)
}

/// encoding.adaptive_layout as (planar, xor).
#[pyfunction]
#[pyo3(signature = (rgb, previous = None))]
fn adaptive_layout(rgb: &[u8], previous: Option<&[u8]>) -> PyResult<(bool, bool)> {
    pixels::adaptive_layout(rgb, previous).map_err(value_error)
}

#[pyfunction]
fn xor_bytes<'py>(py: Python<'py>, a: &[u8], b: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    if a.len() != b.len() {
        return Err(value_error("xor of buffers with different lengths".into()));
    }
    PyBytes::new_with(py, a.len(), |out: &mut [u8]| {
        pixels::xor_into(a, b, out);
        Ok(())
    })
}

#[pyfunction]
fn to_planar<'py>(py: Python<'py>, rgb: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, rgb.len(), |out: &mut [u8]| {
        pixels::to_planar_into(rgb, out);
        Ok(())
    })
}

/// encoding.encode_pixels with the layout as (planar, xor).
#[pyfunction]
#[pyo3(signature = (rgb, previous, planar, xor))]
fn encode_pixels<'py>(py: Python<'py>, rgb: &[u8], previous: Option<&[u8]>, planar: bool,
                      xor: bool) -> PyResult<Bound<'py, PyBytes>> {
    if let Some(previous) = previous {
        if xor && previous.len() != rgb.len() {
            return Err(value_error("xor of buffers with different lengths".into()));
        }
    }
    PyBytes::new_with(py, rgb.len(), |out: &mut [u8]| {
        pixels::encode_into(rgb, previous, planar, xor, out);
        Ok(())
    })
}

fn area(fb_width: usize, fb_height: usize, x: usize, y: usize, w: usize, h: usize,
        pixels_len: usize) -> PyResult<Area> {
    let area = Area { fb_width, fb_height, x, y, w, h };
    area.check(pixels_len).map_err(value_error)?;
    Ok(area)
}

/// Framebuffer.region: the rectangle's current pixels, row-major RGB24.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn region<'py>(py: Python<'py>, pixels: &Bound<'py, PyByteArray>, fb_width: usize,
               fb_height: usize, x: usize, y: usize, w: usize, h: usize)
               -> PyResult<Bound<'py, PyBytes>> {
    // SAFETY: the GIL is held and no Python code runs until the slice is dropped, so the
    // bytearray can neither be resized nor freed meanwhile.
    let px = unsafe { pixels.as_bytes() };
    let a = area(fb_width, fb_height, x, y, w, h, px.len())?;
    PyBytes::new_with(py, w * h * 3, |out: &mut [u8]| {
        a.region_into(px, out);
        Ok(())
    })
}

/// Framebuffer.paste into the framebuffer's bytearray.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn paste(pixels: &Bound<'_, PyByteArray>, fb_width: usize, fb_height: usize, x: usize,
         y: usize, w: usize, h: usize, rgb: &[u8]) -> PyResult<()> {
    // SAFETY: as in region; `rgb` is a bytes object, never the bytearray itself.
    let px = unsafe { pixels.as_bytes_mut() };
    let a = area(fb_width, fb_height, x, y, w, h, px.len())?;
    if rgb.len() != w * h * 3 {
        return Err(value_error(format!("rect {w}x{h} needs {} bytes, got {}", w * h * 3,
                                       rgb.len())));
    }
    a.paste(px, rgb);
    Ok(())
}

fn push_uvarint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value != 0 {
            out.push(byte | 0x80);
        } else {
            out.push(byte);
            return;
        }
    }
}

/// The segment writer's rectangle record, fused (writer.SegmentWriter._rect with the
/// adaptive layout): the previous pixels of the area, the layout choice, the record
/// (type byte with `kind | planar_bit | xor_bit`, uvarint time delta, x, y, w, h, pixels),
/// and the paste of the new pixels into the framebuffer's bytearray.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn encode_rect<'py>(py: Python<'py>, pixels: &Bound<'py, PyByteArray>, fb_width: usize,
                    fb_height: usize, x: usize, y: usize, w: usize, h: usize, rgb: &[u8],
                    kind: u8, planar_bit: u8, xor_bit: u8, ts_delta: u64)
                    -> PyResult<Bound<'py, PyBytes>> {
    // SAFETY: as in region and paste.
    let px = unsafe { pixels.as_bytes_mut() };
    let a = area(fb_width, fb_height, x, y, w, h, px.len())?;
    if rgb.len() != w * h * 3 {
        return Err(value_error(format!("rect {w}x{h} needs {} bytes, got {}", w * h * 3,
                                       rgb.len())));
    }
    let mut previous = vec![0u8; rgb.len()];
    a.region_into(px, &mut previous);
    let (planar, xor) = pixels::adaptive_layout(rgb, Some(&previous)).map_err(value_error)?;
    let mut record = Vec::with_capacity(rgb.len() + 32);
    record.push(kind | if planar { planar_bit } else { 0 } | if xor { xor_bit } else { 0 });
    for v in [ts_delta, x as u64, y as u64, w as u64, h as u64] {
        push_uvarint(&mut record, v);
    }
    let head = record.len();
    record.resize(head + rgb.len(), 0);
    pixels::encode_into(rgb, Some(&previous), planar, xor, &mut record[head..]);
    a.paste(px, rgb);
    Ok(PyBytes::new(py, &record))
}

/// bitmap.decode_bitmap's last step for what aardwolf's decoder returns: 4 bytes per
/// pixel, top-down, width x height, to the top-left dest_w x dest_h as RGB24. `bgr`: the
/// bytes are B, G, R, X (32 bpp) rather than R, G, B, X (16 bpp).
#[pyfunction]
fn rgbx_to_rgb<'py>(py: Python<'py>, raw: &[u8], width: usize, height: usize, dest_w: usize,
                    dest_h: usize, bgr: bool) -> PyResult<Bound<'py, PyBytes>> {
    if raw.len() != width * height * 4 {
        return Err(value_error(format!("decoder gave {} bytes, need {}", raw.len(),
                                       width * height * 4)));
    }
    if dest_w == 0 || dest_h == 0 || dest_w > width || dest_h > height {
        return Err(value_error(format!("destination {dest_w}x{dest_h} not inside the \
                                        bitmap's {width}x{height}")));
    }
    let (r, b) = if bgr { (2, 0) } else { (0, 2) };
    PyBytes::new_with(py, dest_w * dest_h * 3, |out: &mut [u8]| {
        for (y, dst) in out.chunks_exact_mut(dest_w * 3).enumerate() {
            let src = &raw[y * width * 4..][..dest_w * 4];
            for (px, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(4)) {
                px[0] = s[r];
                px[1] = s[1];
                px[2] = s[b];
            }
        }
        Ok(())
    })
}

/// T.125 DomainMCSPDU sendDataIndication in aligned PER (what asn1tools decodes for
/// compat's read loop, once per slow-path PDU) as (initiator, channelId, dataPriority
/// index, segmentation bits, userData); None for anything else: another PDU, a fragmented
/// length (16 KiB and more), truncation, padding bits set. The caller leaves those to
/// asn1tools, the reference, so both give the same result or the same error.
#[pyfunction]
fn mcs_send_data_indication<'py>(py: Python<'py>, data: &[u8])
                                 -> Option<(u16, u16, u8, u8, Bound<'py, PyBytes>)> {
    // 0x68: choice index 26 in 6 bits, then 2 padding bits.
    if data.len() < 7 || data[0] != 0x68 {
        return None;
    }
    let initiator = u16::from_be_bytes([data[1], data[2]]);
    let channel_id = u16::from_be_bytes([data[3], data[4]]);
    // dataPriority (2 bits), segmentation (2 bits), 4 padding bits.
    let flags = data[5];
    if flags & 0x0f != 0 {
        return None;
    }
    let (length, start) = match data[6] {
        short @ 0..=0x7f => (short as usize, 7),
        long @ 0x80..=0xbf if data.len() >= 8 => (((long as usize & 0x3f) << 8)
                                                  | data[7] as usize, 8),
        _ => return None,
    };
    // Bytes after userData are ignored, as asn1tools ignores them.
    let user_data = data.get(start..start + length)?;
    Some((initiator, channel_id, flags >> 6, (flags >> 4) & 3, PyBytes::new(py, user_data)))
}

/// format.motion.find_copy: (first_row, rows, src_x, src_y) or None.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn find_copy(pixels: &Bound<'_, PyByteArray>, fb_width: usize, fb_height: usize, x: usize,
             y: usize, w: usize, h: usize, rgb: &[u8], hints: Vec<(i64, i64)>)
             -> PyResult<Option<motion::Copy>> {
    // SAFETY: as in region.
    let fb = unsafe { pixels.as_bytes() };
    let search = motion::Search { fb, area: Area { fb_width, fb_height, x, y, w, h }, rgb };
    search.check().map_err(value_error)?;
    Ok(search.find(&hints))
}

/// bitmap_update in UpdateDecoder.graphics_update: a whole TS_UPDATE_BITMAP_DATA parsed,
/// bounds-checked against the desktop and decoded (at most max_bytes of RGB24), as ([(x, y, w, h, rgb), ...],
/// bitmap_bytes), RGB24 top-down cropped to each destination; None leaves the update to
/// the reference (wire.parse_bitmap_update, check_bounds, decode_bitmap), which gives the
/// same rectangles or raises its error (update.rs says when).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn bitmap_update<'py>(py: Python<'py>, data: &[u8], desktop_w: usize, desktop_h: usize,
                      padding: usize, max_bytes: usize)
                      -> Option<(Vec<(usize, usize, usize, usize, Bound<'py, PyBytes>)>, usize)> {
    let decoded = py.allow_threads(|| update::decode(data, desktop_w, desktop_h, padding,
                                                            max_bytes))?;
    let rects = decoded.rects.into_iter()
        .map(|r| (r.x, r.y, r.w, r.h, PyBytes::new(py, &r.rgb)))
        .collect();
    Some((rects, decoded.bitmap_bytes))
}

#[pymodule]
fn lucid_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rle_decompress, m)?)?;
    m.add_function(wrap_pyfunction!(rle24_to_rgb, m)?)?;
    m.add_function(wrap_pyfunction!(distinct_colours, m)?)?;
    m.add_function(wrap_pyfunction!(adaptive_layout, m)?)?;
    m.add_function(wrap_pyfunction!(xor_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(to_planar, m)?)?;
    m.add_function(wrap_pyfunction!(encode_pixels, m)?)?;
    m.add_function(wrap_pyfunction!(region, m)?)?;
    m.add_function(wrap_pyfunction!(paste, m)?)?;
    m.add_function(wrap_pyfunction!(encode_rect, m)?)?;
    m.add_function(wrap_pyfunction!(find_copy, m)?)?;
    m.add_function(wrap_pyfunction!(rgbx_to_rgb, m)?)?;
    m.add_function(wrap_pyfunction!(mcs_send_data_indication, m)?)?;
    m.add_function(wrap_pyfunction!(bitmap_update, m)?)?;
    Ok(())
}
