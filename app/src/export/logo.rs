//! The firm's logo between upload and export: size checks from the image header before any
//! decoding, the normalisation every uploaded PNG goes through (decoded within limits, flattened
//! onto white, scaled to fit [`STORED_LOGO_MAX_SIDE`], re-encoded as an 8-bit PNG that carries
//! Steno's marker), and the decision an export takes for a stored logo.

use std::io::Cursor;

use super::{invalid_logo, ExportError, ImageFormat, LogoImage, PixelSize};
use crate::limits::{Limit, LimitExceeded};

/// The widest or tallest logo Steno stores; larger PNGs are scaled down at upload. Printed at
/// most 60 pt high or 468 pt wide, 1024 pixels is well over 150 dpi.
pub const STORED_LOGO_MAX_SIDE: u32 = 1024;

/// The text chunk Steno writes into every PNG it normalised, so an export can tell a logo
/// stored before normalisation existed from one it may decode directly.
const MARKER_KEYWORD: &str = "Software";
const MARKER_TEXT: &str = "Steno logo normaliser 1";

/// The most memory decoding a stored (already normalised) PNG may take.
const MAX_DECODED_LOGO_BYTES: usize = 64 * 1024 * 1024;

/// Why a logo cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LogoError {
    #[error(transparent)]
    Image(#[from] ExportError),
    #[error("{0}")]
    Limit(LimitExceeded),
}

/// Reads the logo's size from its header and refuses it when a side is over `max_dimension`;
/// nothing is decoded.
pub fn check_dimensions(logo: &LogoImage, max_dimension: u32) -> Result<PixelSize, LogoError> {
    let size = logo.pixel_size()?;
    if size.width > max_dimension || size.height > max_dimension {
        return Err(LogoError::Limit(LimitExceeded::new(
            Limit::LogoDimensionPixels,
            u64::from(max_dimension),
            format!(
                "the logo is {}x{} pixels; a side is larger than",
                size.width, size.height
            ),
            "scale the image down and upload it again",
        )));
    }
    Ok(size)
}

/// What an export does with a stored logo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredLogo {
    /// Embed it as it is: a JPEG (never decoded by Steno) or a PNG Steno normalised.
    Ready,
    /// A PNG stored before normalisation existed: normalise it (in the extractor child) first.
    NeedsNormalising,
}

/// Decides from headers alone how an export may use a stored logo.
pub fn stored_logo_use(logo: &LogoImage, max_dimension: u32) -> Result<StoredLogo, LogoError> {
    let size = check_dimensions(logo, max_dimension)?;
    Ok(match logo.format {
        ImageFormat::Jpeg => StoredLogo::Ready,
        ImageFormat::Png
            if has_marker(&logo.bytes)
                && size.width <= STORED_LOGO_MAX_SIDE
                && size.height <= STORED_LOGO_MAX_SIDE =>
        {
            StoredLogo::Ready
        }
        ImageFormat::Png => StoredLogo::NeedsNormalising,
    })
}

/// Decodes a PNG within `max_dimension` (checked from the header first), flattens it onto
/// white, scales it to fit [`STORED_LOGO_MAX_SIDE`] and encodes it again with Steno's marker.
pub fn normalise_png(bytes: &[u8], max_dimension: u32) -> Result<Vec<u8>, LogoError> {
    let logo = LogoImage {
        bytes: bytes.to_vec(),
        format: ImageFormat::Png,
    };
    let size = check_dimensions(&logo, max_dimension)?;
    // 16-bit RGBA is the largest a decoder holds per pixel before reducing to 8 bits.
    let decode_limit = (size.width as usize)
        .saturating_mul(size.height as usize)
        .saturating_mul(8)
        .saturating_add(1024 * 1024);
    let decoded = decode_png_within(bytes, decode_limit)?;
    let scaled = scale_to_fit(&decoded, STORED_LOGO_MAX_SIDE);
    encode_with_marker(&scaled).map_err(LogoError::Image)
}

/// 8-bit samples of a decoded PNG, flattened onto a white page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodedPng {
    pub width: u32,
    pub height: u32,
    /// "DeviceGray" (one byte a pixel) or "DeviceRGB" (three).
    pub color_space: &'static str,
    pub samples: Vec<u8>,
}

impl DecodedPng {
    fn channels(&self) -> usize {
        if self.color_space == "DeviceGray" {
            1
        } else {
            3
        }
    }
}

/// Decodes a stored PNG to 8-bit grey or RGB samples.
pub(crate) fn decode_png(bytes: &[u8]) -> Result<DecodedPng, ExportError> {
    decode_png_within(bytes, MAX_DECODED_LOGO_BYTES)
}

/// Decodes any PNG to 8-bit grey or RGB samples, the decoder holding at most `max_bytes`;
/// palettes are expanded and alpha is blended onto white so transparent logos look right.
fn decode_png_within(bytes: &[u8], max_bytes: usize) -> Result<DecodedPng, ExportError> {
    let png_error = |error: png::DecodingError| invalid_logo(ImageFormat::Png, &error.to_string());
    let mut decoder =
        png::Decoder::new_with_limits(Cursor::new(bytes), png::Limits { bytes: max_bytes });
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(png_error)?;
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer).map_err(png_error)?;
    buffer.truncate(frame.buffer_size());
    let (color_space, samples) = match frame.color_type {
        png::ColorType::Grayscale => ("DeviceGray", buffer),
        png::ColorType::Rgb => ("DeviceRGB", buffer),
        png::ColorType::GrayscaleAlpha => ("DeviceGray", blend_onto_white(&buffer, 1)),
        png::ColorType::Rgba => ("DeviceRGB", blend_onto_white(&buffer, 3)),
        png::ColorType::Indexed => {
            return Err(ExportError::UnsupportedLogo {
                reason: "its colour palette could not be expanded".to_string(),
            })
        }
    };
    Ok(DecodedPng {
        width: frame.width,
        height: frame.height,
        color_space,
        samples,
    })
}

/// Drops the alpha channel after blending each pixel onto a white background.
fn blend_onto_white(samples: &[u8], color_channels: usize) -> Vec<u8> {
    let pixel_size = color_channels + 1;
    let mut blended = Vec::with_capacity(samples.len() / pixel_size * color_channels);
    for pixel in samples.chunks_exact(pixel_size) {
        let alpha = u32::from(pixel[color_channels]);
        for &channel in &pixel[..color_channels] {
            let value = (u32::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255;
            blended.push(value as u8);
        }
    }
    blended
}

/// The output size that fits `max_side`, keeping the aspect ratio (at least one pixel a side).
fn fitted_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    if width <= max_side && height <= max_side {
        return (width, height);
    }
    let scale = |side: u32, longest: u32| {
        ((u64::from(side) * u64::from(max_side) + u64::from(longest) / 2) / u64::from(longest))
            .max(1) as u32
    };
    if width >= height {
        (max_side, scale(height, width))
    } else {
        (scale(width, height), max_side)
    }
}

/// Scales down by averaging each output pixel's area of the input (a box filter).
fn scale_to_fit(decoded: &DecodedPng, max_side: u32) -> DecodedPng {
    let (width, height) = fitted_size(decoded.width, decoded.height, max_side);
    if (width, height) == (decoded.width, decoded.height) {
        return decoded.clone();
    }
    let channels = decoded.channels();
    let source_width = decoded.width as usize;
    let span = |index: usize, output: u32, input: u32| {
        let start = index * input as usize / output as usize;
        let end = ((index + 1) * input as usize / output as usize).max(start + 1);
        start..end
    };
    let mut samples = Vec::with_capacity(width as usize * height as usize * channels);
    let mut sums = vec![0u64; channels];
    for y in 0..height as usize {
        let rows = span(y, height, decoded.height);
        for x in 0..width as usize {
            let columns = span(x, width, decoded.width);
            sums.iter_mut().for_each(|sum| *sum = 0);
            for row in rows.clone() {
                let start = (row * source_width + columns.start) * channels;
                let end = (row * source_width + columns.end) * channels;
                for pixel in decoded.samples[start..end].chunks_exact(channels) {
                    for (sum, &value) in sums.iter_mut().zip(pixel) {
                        *sum += u64::from(value);
                    }
                }
            }
            let count = (rows.len() * columns.len()) as u64;
            samples.extend(sums.iter().map(|sum| ((sum + count / 2) / count) as u8));
        }
    }
    DecodedPng {
        width,
        height,
        color_space: decoded.color_space,
        samples,
    }
}

fn encode_with_marker(decoded: &DecodedPng) -> Result<Vec<u8>, ExportError> {
    let write_error = |error: png::EncodingError| ExportError::UnsupportedLogo {
        reason: format!("it could not be encoded again ({error})"),
    };
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, decoded.width, decoded.height);
        encoder.set_color(if decoded.channels() == 1 {
            png::ColorType::Grayscale
        } else {
            png::ColorType::Rgb
        });
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .add_text_chunk(MARKER_KEYWORD.to_string(), MARKER_TEXT.to_string())
            .map_err(write_error)?;
        let mut writer = encoder.write_header().map_err(write_error)?;
        writer
            .write_image_data(&decoded.samples)
            .map_err(write_error)?;
    }
    Ok(bytes)
}

/// True when the PNG carries Steno's normalisation marker in a text chunk before its image data.
fn has_marker(bytes: &[u8]) -> bool {
    let mut expected = MARKER_KEYWORD.as_bytes().to_vec();
    expected.push(0);
    expected.extend_from_slice(MARKER_TEXT.as_bytes());
    let mut offset = 8;
    while let Some(header) = bytes.get(offset..offset + 8) {
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let chunk_type = &header[4..8];
        if chunk_type == b"IDAT" || chunk_type == b"IEND" {
            return false;
        }
        let data_start = offset + 8;
        let Some(data) = data_start
            .checked_add(length)
            .and_then(|data_end| bytes.get(data_start..data_end))
        else {
            return false;
        };
        if chunk_type == b"tEXt" && data == expected.as_slice() {
            return true;
        }
        offset = data_start + length + 4;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support::{encode_png, jpeg_logo, tiny_png_rgb};

    fn png(bytes: Vec<u8>) -> LogoImage {
        LogoImage {
            bytes,
            format: ImageFormat::Png,
        }
    }

    /// A PNG whose header claims `width` x `height` with no image data behind it.
    fn header_only_png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    #[test]
    fn oversized_logos_are_refused_from_the_header_alone() {
        let error = check_dimensions(&png(header_only_png(20_000, 20_000)), 4096).unwrap_err();
        let LogoError::Limit(hit) = error else {
            panic!("expected a limit, got {error}");
        };
        assert_eq!(hit.limit, Limit::LogoDimensionPixels);
        assert!(
            hit.to_string()
                .starts_with("the logo is 20000x20000 pixels; a side is larger than the logo_dimension_pixels limit of 4096 pixels"),
            "{hit}"
        );
        assert!(check_dimensions(&png(header_only_png(4096, 10)), 4096).is_ok());
        assert!(normalise_png(&header_only_png(5000, 10), 4096).is_err());
    }

    #[test]
    fn large_logos_are_scaled_to_fit_and_marked() {
        let big = tiny_png_rgb(2048, 512);
        let normalised = normalise_png(&big, 4096).unwrap();
        let logo = png(normalised.clone());
        assert_eq!(
            logo.pixel_size().unwrap(),
            PixelSize {
                width: 1024,
                height: 256
            }
        );
        assert!(has_marker(&normalised));
        assert_eq!(stored_logo_use(&logo, 4096).unwrap(), StoredLogo::Ready);
        let decoded = decode_png(&normalised).unwrap();
        // The gradient survives the box filter: red falls from left to right.
        assert!(decoded.samples[0] < 5 && decoded.samples[decoded.samples.len() - 3] > 250);
    }

    #[test]
    fn small_logos_keep_their_size_and_transparency_becomes_white() {
        let rgba = encode_png(2, 1, png::ColorType::Rgba, &[255, 0, 0, 255, 0, 0, 0, 0]);
        let normalised = normalise_png(&rgba, 4096).unwrap();
        let decoded = decode_png(&normalised).unwrap();
        assert_eq!((decoded.width, decoded.height), (2, 1));
        assert_eq!(decoded.samples, vec![255, 0, 0, 255, 255, 255]);
    }

    #[test]
    fn stored_logos_without_the_marker_are_normalised_before_export() {
        let legacy = png(tiny_png_rgb(24, 8));
        assert_eq!(
            stored_logo_use(&legacy, 4096).unwrap(),
            StoredLogo::NeedsNormalising
        );
        assert_eq!(
            stored_logo_use(&jpeg_logo(), 4096).unwrap(),
            StoredLogo::Ready
        );
        assert!(matches!(
            stored_logo_use(&png(header_only_png(9000, 100)), 4096),
            Err(LogoError::Limit(_))
        ));
    }

    #[test]
    fn fitted_sizes_keep_the_aspect_ratio() {
        assert_eq!(fitted_size(20_000, 20_000, 1024), (1024, 1024));
        assert_eq!(fitted_size(3000, 1000, 1024), (1024, 341));
        assert_eq!(fitted_size(10, 4000, 1024), (3, 1024));
        assert_eq!(fitted_size(1, 4000, 1024), (1, 1024));
        assert_eq!(fitted_size(800, 600, 1024), (800, 600));
    }

    #[test]
    fn damaged_pngs_are_errors() {
        let mut bytes = tiny_png_rgb(4, 4);
        bytes.truncate(bytes.len() - 20);
        assert!(matches!(
            normalise_png(&bytes, 4096),
            Err(LogoError::Image(_))
        ));
    }
}
