//! Reading images: dimensions, EXIF metadata, and the two JPEG renderings
//! (360 px thumbnail, 1280 px preview) with EXIF orientation applied.
//!
//! Every decode is preceded by a header-only read of the dimensions and
//! refused above the configured pixel limit (decompression bombs), and runs
//! under `image`'s allocation limits. Metadata problems never stop a
//! thumbnail: a photo with broken EXIF is rendered without orientation or
//! date. Formats without a decoder here (HEIC, AVIF, video) get metadata
//! where EXIF can be read and a placeholder in the UI.
//! This module is pure computation on files; it never touches the database.
//!
//! JPEGs (almost every photo) take a faster path: shrink-on-load, decoding
//! at n/8 scale in the DCT domain to the smallest size still at least
//! 1280 px (360 px for [`thumbnail_only`]), so a 24-megapixel photo never
//! exists in memory at full size (≈ 4.5 MB instead of 72 MB of pixels); then
//! a SIMD Lanczos resize (fast_image_resize) to the preview and from it to
//! the thumbnail. The decoder is libjpeg-turbo through the `mozjpeg` crate
//! (built from source, statically; corrupt data unwinds and is caught),
//! else jpeg-decoder's `scale`; other formats, and JPEGs neither reads
//! (CMYK, 12-bit), go through the `image` crate.

use std::{
    fs::File,
    io::{BufReader, Cursor},
    path::Path,
};

use image::{codecs::jpeg::JpegEncoder, DynamicImage, ImageDecoder, ImageReader, Limits};

use crate::db::media::BlobMeta;

/// The renderings of one image, as JPEG bytes.
#[derive(Debug)]
pub struct Renderings {
    /// Longest edge at most 360 px.
    pub thumb: Vec<u8>,
    /// Longest edge at most 1280 px.
    pub preview: Vec<u8>,
}

/// Result of [`analyse`]: metadata always, renderings when the image could be decoded.
#[derive(Debug)]
pub struct Analysis {
    /// Width, height, capture time, camera, and the thumbnail note.
    pub meta: BlobMeta,
    /// `None` when not decodable; `meta.thumb_note` says why.
    pub renderings: Option<Renderings>,
}

/// Reads metadata from the file at `path` (content type `mime`) and, for an
/// image we can decode within `max_pixels`, renders the thumbnail and preview.
/// Animated images give their first frame.
pub fn analyse(path: &Path, mime: &str, max_pixels: u64) -> Analysis {
    let mut meta = read_exif(path);
    if !mime.starts_with("image/") {
        meta.thumb_note = Some(format!("no preview for {mime}"));
        return Analysis {
            meta,
            renderings: None,
        };
    }
    match render(path, max_pixels) {
        Ok((w, h, r)) => {
            meta.width = Some(i64::from(w));
            meta.height = Some(i64::from(h));
            meta.has_thumbnail = true;
            Analysis {
                meta,
                renderings: Some(r),
            }
        }
        Err(note) => {
            meta.thumb_note = Some(note);
            Analysis {
                meta,
                renderings: None,
            }
        }
    }
}

/// Renders the image at `path` (any decodable format) without reading its
/// metadata; for previews that are not blobs (Telegram's thumbnails).
///
/// # Errors
/// Why it could not be rendered.
pub fn render_file(path: &Path, max_pixels: u64) -> Result<Renderings, String> {
    render(path, max_pixels).map(|(_, _, r)| r)
}

fn render(path: &Path, max_pixels: u64) -> Result<(u32, u32, Renderings), String> {
    if let Some((w, h, img)) = decode_jpeg_scaled(path, max_pixels, PREVIEW_EDGE)? {
        let preview = resize(img, PREVIEW_EDGE)?;
        let thumb = resize(preview.clone(), THUMB_EDGE)?;
        return Ok((
            w,
            h,
            Renderings {
                thumb: encode_jpeg(&thumb)?,
                preview: encode_jpeg(&preview)?,
            },
        ));
    }
    render_any(path, max_pixels)
}

/// Only the 360 px thumbnail of a photo, as JPEG (the benchmark's unit of
/// work, comparable with `vipsthumbnail -s 360`): a JPEG decodes at the
/// smallest DCT scale still at least 360 px.
///
/// # Errors
/// Why it could not be rendered.
pub fn thumbnail_only(path: &Path, max_pixels: u64) -> Result<Vec<u8>, String> {
    match decode_jpeg_scaled(path, max_pixels, THUMB_EDGE)? {
        Some((_, _, img)) => encode_jpeg(&resize(img, THUMB_EDGE)?),
        None => render_any(path, max_pixels).map(|(_, _, r)| r.thumb),
    }
}

/// The EXIF orientation of a file (1–8), if it has one.
fn exif_orientation(path: &Path) -> Option<u8> {
    let file = File::open(path).ok()?;
    let exif = exif::Reader::new()
        .read_from_container(&mut BufReader::new(file))
        .ok()?;
    let v = exif
        .get_field(exif::Tag::Orientation, exif::In::PRIMARY)?
        .value
        .get_uint(0)?;
    u8::try_from(v).ok()
}

/// Shrink-on-load for JPEGs: the upright image decoded at the smallest DCT
/// scale whose long edge is still at least `edge`, with the photo's full
/// (upright) width and height. `Ok(None)`: not a JPEG this path handles (the
/// caller falls back to the `image` crate).
#[allow(clippy::type_complexity)]
fn decode_jpeg_scaled(
    path: &Path,
    max_pixels: u64,
    edge: u32,
) -> Result<Option<(u32, u32, DynamicImage)>, String> {
    let mut head = [0u8; 3];
    {
        use std::io::Read;
        let mut f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        if f.read_exact(&mut head).is_err() || head != [0xFF, 0xD8, 0xFF] {
            return Ok(None);
        }
    }
    // libjpeg-turbo (through mozjpeg) when it can: its entropy decoder is the
    // fastest there is; it reports corrupt data by unwinding, caught here.
    let fast = std::panic::catch_unwind(|| -> std::io::Result<Option<(u32, u32, DynamicImage)>> {
        let mut d = mozjpeg::Decompress::with_markers(&[]).from_path(path)?;
        let (w, h) = (d.width() as u32, d.height() as u32);
        if u64::from(w) * u64::from(h) > max_pixels {
            return Ok(Some((w, h, DynamicImage::new_rgb8(0, 0))));
        }
        // The smallest n/8 whose long edge still reaches `edge`.
        let long = w.max(h).max(1);
        let n = (1..=8u32)
            .find(|n| long * n / 8 >= edge.min(long))
            .unwrap_or(8);
        d.scale(n as u8);
        let mut started = d.rgb()?;
        let (sw, sh) = (started.width() as u32, started.height() as u32);
        let data = started.read_scanlines::<u8>()?;
        started.finish()?;
        Ok(image::RgbImage::from_raw(sw, sh, data).map(|img| (w, h, DynamicImage::ImageRgb8(img))))
    });
    if let Ok(Ok(Some((w, h, mut img)))) = fast {
        let pixels = u64::from(w) * u64::from(h);
        if pixels > max_pixels {
            return Err(format!(
                "image is {w}x{h} = {pixels} pixels, above the limit of {max_pixels} (max_image_pixels)"
            ));
        }
        let orientation = exif_orientation(path)
            .and_then(image::metadata::Orientation::from_exif)
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        let sw = img.width();
        img.apply_orientation(orientation);
        let (w, h) = if img.width() == sw { (w, h) } else { (h, w) };
        return Ok(Some((w, h, img)));
    }
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut decoder = jpeg_decoder::Decoder::new(BufReader::new(file));
    if decoder.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(format!(
            "image is {w}x{h} = {pixels} pixels, above the limit of {max_pixels} (max_image_pixels)"
        ));
    }
    let Ok((sw, sh)) = decoder.scale(edge as u16, edge as u16) else {
        return Ok(None);
    };
    let Ok(data) = decoder.decode() else {
        return Ok(None);
    };
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let mut img = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => {
            image::RgbImage::from_raw(sw, sh, data).map(DynamicImage::ImageRgb8)
        }
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(sw, sh, data)
            .map(|g| DynamicImage::ImageRgb8(DynamicImage::ImageLuma8(g).to_rgb8())),
        _ => None,
    }
    .ok_or_else(|| "decoded JPEG has an unexpected size".to_string())?;
    let orientation = exif_orientation(path)
        .and_then(image::metadata::Orientation::from_exif)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    img.apply_orientation(orientation);
    let (w, h) = if img.width() == sw { (w, h) } else { (h, w) };
    Ok(Some((w, h, img)))
}

/// Longest edge of the preview, pixels.
const PREVIEW_EDGE: u32 = 1280;
/// Longest edge of the thumbnail, pixels.
const THUMB_EDGE: u32 = 360;

/// Resizes to fit in `edge`×`edge` (never up), Lanczos3 with SIMD.
fn resize(img: DynamicImage, edge: u32) -> Result<DynamicImage, String> {
    let (w, h) = (img.width(), img.height());
    if w.max(h) <= edge {
        return Ok(img);
    }
    // The short edge in proportion, rounded to the nearest pixel.
    let scaled = |short: u32, long: u32| {
        ((u64::from(short) * u64::from(edge) + u64::from(long) / 2) / u64::from(long)).max(1) as u32
    };
    let (dw, dh) = if w >= h {
        (edge, scaled(h, w))
    } else {
        (scaled(w, h), edge)
    };
    let mut dst = DynamicImage::new(dw, dh, img.color());
    fast_image_resize::Resizer::new()
        .resize(
            &img,
            &mut dst,
            &fast_image_resize::ResizeOptions::new().resize_alg(
                fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Lanczos3),
            ),
        )
        .map_err(|e| format!("cannot resize: {e}"))?;
    Ok(dst)
}

fn render_any(path: &Path, max_pixels: u64) -> Result<(u32, u32, Renderings), String> {
    let open = || -> Result<ImageReader<BufReader<File>>, String> {
        ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| format!("cannot open: {e}"))
    };
    let (w, h) = open()?
        .into_dimensions()
        .map_err(|e| format!("no decoder for this image: {e}"))?;
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(format!(
            "image is {w}x{h} = {pixels} pixels, above the limit of {max_pixels} (max_image_pixels)"
        ));
    }
    let mut reader = open()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(w);
    limits.max_image_height = Some(h);
    limits.max_alloc = Some(pixels.saturating_mul(8).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("cannot decode: {e}"))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| format!("cannot decode: {e}"))?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width(), img.height());
    let preview = resize(img.into_rgb8().into(), PREVIEW_EDGE)?;
    let thumb = resize(preview.clone(), THUMB_EDGE)?;
    Ok((
        w,
        h,
        Renderings {
            thumb: encode_jpeg(&thumb)?,
            preview: encode_jpeg(&preview)?,
        },
    ))
}

fn encode_jpeg(img: &DynamicImage) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&img.to_rgb8())
        .map_err(|e| format!("cannot encode thumbnail: {e}"))?;
    Ok(out.into_inner())
}

/// EXIF capture time of a file as Unix seconds (camera local time read as
/// UTC: EXIF has no zone), when it has one.
pub fn capture_time(path: &Path) -> Option<i64> {
    let t = read_exif(path).taken_at?;
    chrono::NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S")
        .ok()
        .map(|d| d.and_utc().timestamp())
}

/// EXIF capture time and camera, when readable; never fails.
fn read_exif(path: &Path) -> BlobMeta {
    let mut meta = BlobMeta::default();
    let Ok(file) = File::open(path) else {
        return meta;
    };
    let Ok(exif) = exif::Reader::new().read_from_container(&mut BufReader::new(file)) else {
        return meta;
    };
    let ascii = |tag| -> Option<String> {
        match &exif.get_field(tag, exif::In::PRIMARY)?.value {
            exif::Value::Ascii(v) => v
                .first()
                .map(|b| {
                    String::from_utf8_lossy(b)
                        .trim_matches(['\0', ' '])
                        .to_string()
                })
                .filter(|s| !s.is_empty()),
            _ => None,
        }
    };
    for tag in [exif::Tag::DateTimeOriginal, exif::Tag::DateTime] {
        let parsed = exif
            .get_field(tag, exif::In::PRIMARY)
            .and_then(|f| match &f.value {
                exif::Value::Ascii(v) => v.first().and_then(|b| exif::DateTime::from_ascii(b).ok()),
                _ => None,
            });
        if let Some(d) = parsed {
            if d.month >= 1 && d.month <= 12 && d.day >= 1 && d.day <= 31 {
                meta.taken_at = Some(format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                    d.year, d.month, d.day, d.hour, d.minute, d.second
                ));
                break;
            }
        }
    }
    meta.camera = match (ascii(exif::Tag::Make), ascii(exif::Tag::Model)) {
        (Some(make), Some(model)) if model.starts_with(&make) => Some(model),
        (Some(make), Some(model)) => Some(format!("{make} {model}")),
        (a, b) => a.or(b),
    };
    meta
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/images")
            .join(name)
    }

    fn dims(jpeg: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory(jpeg).unwrap();
        (img.width(), img.height())
    }

    #[test]
    fn exif_orientation_is_applied() {
        // Landscape_6.jpg is stored 1800x1200 portrait-rotated; orientation 6 turns it upright.
        let a = analyse(&fixture("Landscape_6.jpg"), "image/jpeg", 100_000_000);
        let r = a.renderings.expect("decodable");
        let (w, h) = dims(&r.thumb);
        assert!(w > h, "landscape after orientation, got {w}x{h}");
        assert_eq!(w.max(h), 360);
        assert!(a.meta.width.unwrap() > a.meta.height.unwrap());
    }

    #[test]
    fn camera_and_capture_time_are_read() {
        let a = analyse(&fixture("Canon_40D.jpg"), "image/jpeg", 100_000_000);
        assert_eq!(a.meta.camera.as_deref(), Some("Canon EOS 40D"));
        assert_eq!(a.meta.taken_at.as_deref(), Some("2008-05-30T15:56:01"));
        assert!(a.meta.has_thumbnail);
    }

    #[test]
    fn broken_exif_still_thumbnails_and_first_frame_of_animation() {
        let a = analyse(&fixture("invalid-exif.jpg"), "image/jpeg", 100_000_000);
        assert!(a.renderings.is_some(), "{:?}", a.meta.thumb_note);
        let g = analyse(&fixture("iss634.gif"), "image/gif", 100_000_000);
        assert!(g.renderings.is_some(), "{:?}", g.meta.thumb_note);
    }

    #[test]
    fn pixel_limit_is_checked_before_decoding() {
        let a = analyse(&fixture("hopper.jpg"), "image/jpeg", 1000);
        assert!(a.renderings.is_none());
        assert!(a.meta.thumb_note.unwrap().contains("above the limit"));
    }

    #[test]
    fn undecodable_formats_get_a_note_not_an_error() {
        let a = analyse(&fixture("L_exif_xmp_iptc.heic"), "image/heif", 100_000_000);
        assert!(a.renderings.is_none());
        assert!(a.meta.thumb_note.is_some());
    }
}
