//! Rendering a letter draft to DOCX and PDF on the firm's letterhead: the letterhead and logo types, logo header parsing and the specials table shared by both formats.

mod docx;
pub mod logo;
mod pdf;

use crate::model::{format_cents, LetterDraft, SpecialsItem, SpecialsSource};

/// The firm's letterhead printed at the top of every exported letter.
#[derive(Debug, Clone, PartialEq)]
pub struct Letterhead {
    pub firm_name: String,
    /// Postal address, phone, e-mail: one printed line each.
    pub address_lines: Vec<String>,
    pub logo: Option<LogoImage>,
}

/// The firm's logo as uploaded: the encoded image file and its format.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoImage {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
}

/// Image file formats accepted for the logo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const JPEG_START_OF_IMAGE: &[u8] = &[0xFF, 0xD8, 0xFF];

impl ImageFormat {
    /// Recognises a PNG or JPEG file by its first bytes.
    pub fn detect(bytes: &[u8]) -> Option<ImageFormat> {
        if bytes.starts_with(PNG_SIGNATURE) {
            Some(ImageFormat::Png)
        } else if bytes.starts_with(JPEG_START_OF_IMAGE) {
            Some(ImageFormat::Jpeg)
        } else {
            None
        }
    }

    /// File extension used for the image inside a DOCX package.
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "PNG",
            ImageFormat::Jpeg => "JPEG",
        }
    }
}

/// Why a letter could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the logo is not a valid {format} image ({reason}); upload the logo again as a PNG or JPEG file")]
    InvalidLogo {
        format: &'static str,
        reason: String,
    },
    #[error("the logo cannot be embedded ({reason}); save it as an 8-bit PNG or a baseline JPEG and upload it again")]
    UnsupportedLogo { reason: String },
    #[error("the DOCX file could not be written ({0}); try the export again")]
    DocxWrite(String),
    #[error("the PDF file could not be written ({0}); try the export again")]
    PdfWrite(String),
}

/// Renders the letter as a Word document on the firm's letterhead.
pub fn render_docx(letter: &LetterDraft, letterhead: &Letterhead) -> Result<Vec<u8>, ExportError> {
    docx::render(letter, letterhead)
}

/// Renders the letter as a PDF on the firm's letterhead.
pub fn render_pdf(letter: &LetterDraft, letterhead: &Letterhead) -> Result<Vec<u8>, ExportError> {
    pdf::render(letter, letterhead)
}

/// The text an export of `letter` lays out, in bytes: every line, paragraph and specials cell.
/// Export work grows with it, so exports are refused above a limit.
pub fn letter_text_bytes(letter: &LetterDraft) -> u64 {
    let lines = |lines: &[String]| lines.iter().map(|line| line.len() as u64).sum::<u64>();
    let sections: u64 = letter
        .sections
        .iter()
        .map(|section| section.heading.len() as u64 + lines(&section.paragraphs))
        .sum();
    // A specials row also prints a date, a category, its source and an amount.
    const SPECIALS_ROW_CELLS_BYTES: u64 = 64;
    let specials: u64 = letter
        .specials
        .iter()
        .map(|item| item.description.len() as u64 + SPECIALS_ROW_CELLS_BYTES)
        .sum();
    lines(&letter.recipient)
        + lines(&letter.reference)
        + letter.salutation.len() as u64
        + sections
        + specials
        + letter.closing.len() as u64
        + lines(&letter.signature)
}

/// The tallest the logo is printed, in points.
pub(crate) const LOGO_MAX_HEIGHT_PT: f64 = 60.0;

/// Width and height of an image in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelSize {
    pub width: u32,
    pub height: u32,
}

impl LogoImage {
    /// Checks that the bytes really are the declared format and reads the pixel size from the header.
    pub fn pixel_size(&self) -> Result<PixelSize, ExportError> {
        self.check_format()?;
        match self.format {
            ImageFormat::Png => png_pixel_size(&self.bytes),
            ImageFormat::Jpeg => jpeg_header(&self.bytes).map(|header| header.size),
        }
    }

    /// Printed size in points: 60 pt high, narrower if the logo would be wider than `max_width_pt`.
    pub(crate) fn display_size_pt(&self, max_width_pt: f64) -> Result<(f64, f64), ExportError> {
        let size = self.pixel_size()?;
        let aspect = f64::from(size.width) / f64::from(size.height);
        let mut height = LOGO_MAX_HEIGHT_PT;
        let mut width = height * aspect;
        if width > max_width_pt {
            width = max_width_pt;
            height = width / aspect;
        }
        Ok((width, height))
    }

    fn check_format(&self) -> Result<(), ExportError> {
        match ImageFormat::detect(&self.bytes) {
            Some(found) if found == self.format => Ok(()),
            Some(found) => Err(invalid_logo(
                self.format,
                &format!("the file is actually a {}", found.name()),
            )),
            None => Err(invalid_logo(
                self.format,
                "the file does not start with an image signature",
            )),
        }
    }
}

pub(crate) fn invalid_logo(format: ImageFormat, reason: &str) -> ExportError {
    ExportError::InvalidLogo {
        format: format.name(),
        reason: reason.to_string(),
    }
}

fn nonzero_size(format: ImageFormat, width: u32, height: u32) -> Result<PixelSize, ExportError> {
    if width == 0 || height == 0 {
        return Err(invalid_logo(
            format,
            "the header gives a zero width or height",
        ));
    }
    Ok(PixelSize { width, height })
}

fn read_u32_be(bytes: &[u8], offset: usize) -> Option<u32> {
    let slice = bytes.get(offset..offset + 4)?;
    Some(u32::from_be_bytes([slice[0], slice[1], slice[2], slice[3]]))
}

fn read_u16_be(bytes: &[u8], offset: usize) -> Option<u16> {
    let slice = bytes.get(offset..offset + 2)?;
    Some(u16::from_be_bytes([slice[0], slice[1]]))
}

/// Reads width and height from the IHDR chunk, which a valid PNG has right after the signature.
fn png_pixel_size(bytes: &[u8]) -> Result<PixelSize, ExportError> {
    let chunk_type = bytes.get(12..16);
    if chunk_type != Some(b"IHDR".as_slice()) {
        return Err(invalid_logo(
            ImageFormat::Png,
            "the IHDR header chunk is missing",
        ));
    }
    let width = read_u32_be(bytes, 16);
    let height = read_u32_be(bytes, 20);
    match (width, height) {
        (Some(width), Some(height)) => nonzero_size(ImageFormat::Png, width, height),
        _ => Err(invalid_logo(
            ImageFormat::Png,
            "the IHDR header is cut short",
        )),
    }
}

/// What the PDF writer needs to know about a JPEG to embed it unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JpegHeader {
    pub size: PixelSize,
    /// 1 for grayscale, 3 for YCbCr/RGB, 4 for CMYK.
    pub components: u8,
    pub bits_per_component: u8,
    /// Adobe-written CMYK JPEGs store inverted values.
    pub has_adobe_marker: bool,
}

const JPEG_MARKER_PREFIX: u8 = 0xFF;
const JPEG_START_OF_SCAN: u8 = 0xDA;
const JPEG_END_OF_IMAGE: u8 = 0xD9;
const JPEG_APP14: u8 = 0xEE;

/// Start-of-frame markers carry the image size; 0xC4, 0xC8 and 0xCC share the range but mean something else.
fn is_start_of_frame(marker: u8) -> bool {
    (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC)
}

/// Markers that stand alone, without a length field.
fn is_standalone_marker(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD8)
}

/// Walks the JPEG marker segments up to the start-of-frame header.
pub(crate) fn jpeg_header(bytes: &[u8]) -> Result<JpegHeader, ExportError> {
    let cut_short = || invalid_logo(ImageFormat::Jpeg, "the file ends before the frame header");
    let mut offset = 2;
    let mut has_adobe_marker = false;
    loop {
        let prefix = *bytes.get(offset).ok_or_else(cut_short)?;
        if prefix != JPEG_MARKER_PREFIX {
            return Err(invalid_logo(
                ImageFormat::Jpeg,
                "a marker segment is damaged",
            ));
        }
        let marker = *bytes.get(offset + 1).ok_or_else(cut_short)?;
        if marker == JPEG_MARKER_PREFIX {
            offset += 1;
            continue;
        }
        if is_standalone_marker(marker) {
            offset += 2;
            continue;
        }
        if marker == JPEG_START_OF_SCAN || marker == JPEG_END_OF_IMAGE {
            return Err(invalid_logo(ImageFormat::Jpeg, "there is no frame header"));
        }
        let length = usize::from(read_u16_be(bytes, offset + 2).ok_or_else(cut_short)?);
        let segment_start = offset + 4;
        if is_start_of_frame(marker) {
            return parse_start_of_frame(bytes, segment_start, has_adobe_marker);
        }
        if marker == JPEG_APP14 && bytes.get(segment_start..segment_start + 5) == Some(b"Adobe") {
            has_adobe_marker = true;
        }
        if length < 2 {
            return Err(invalid_logo(
                ImageFormat::Jpeg,
                "a marker segment has a bad length",
            ));
        }
        offset += 2 + length;
    }
}

fn parse_start_of_frame(
    bytes: &[u8],
    segment_start: usize,
    has_adobe_marker: bool,
) -> Result<JpegHeader, ExportError> {
    let cut_short = || invalid_logo(ImageFormat::Jpeg, "the frame header is cut short");
    let bits_per_component = *bytes.get(segment_start).ok_or_else(cut_short)?;
    let height = read_u16_be(bytes, segment_start + 1).ok_or_else(cut_short)?;
    let width = read_u16_be(bytes, segment_start + 3).ok_or_else(cut_short)?;
    let components = *bytes.get(segment_start + 5).ok_or_else(cut_short)?;
    let size = nonzero_size(ImageFormat::Jpeg, u32::from(width), u32::from(height))?;
    Ok(JpegHeader {
        size,
        components,
        bits_per_component,
        has_adobe_marker,
    })
}

/// Title printed above the specials table.
pub(crate) const SPECIALS_TABLE_TITLE: &str = "Itemised Special Damages";

/// Column titles of the specials table, in printed order.
pub(crate) const SPECIALS_COLUMN_TITLES: [&str; 5] = [
    "Date",
    "Category",
    "Description",
    "Source document",
    "Amount",
];

/// One specials item as the five printed cells of the table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SpecialsRow {
    pub date: String,
    pub category: String,
    pub description: String,
    pub source: String,
    pub amount: String,
}

impl SpecialsRow {
    pub fn from_item(item: &SpecialsItem) -> SpecialsRow {
        SpecialsRow {
            date: item
                .service_date
                .map(|date| date.format("%m/%d/%Y").to_string())
                .unwrap_or_else(|| "n/a".to_string()),
            category: item.category.label().to_string(),
            description: item.description.clone(),
            source: match &item.source {
                SpecialsSource::Document { filename, .. } => filename.clone(),
                SpecialsSource::Form => "matter form".to_string(),
            },
            amount: format_cents(item.amount_cents),
        }
    }

    pub fn cells(&self) -> [&str; 5] {
        [
            &self.date,
            &self.category,
            &self.description,
            &self.source,
            &self.amount,
        ]
    }
}

/// A totals line under the specials table: label, formatted amount and whether it is the grand total.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TotalsRow {
    pub label: &'static str,
    pub amount: String,
    pub is_grand_total: bool,
}

pub(crate) fn specials_totals(letter: &LetterDraft) -> Vec<TotalsRow> {
    vec![
        TotalsRow {
            label: "Total medical expenses",
            amount: format_cents(letter.total_medical_cents),
            is_grand_total: false,
        },
        TotalsRow {
            label: "Total lost wages",
            amount: format_cents(letter.total_lost_wages_cents),
            is_grand_total: false,
        },
        TotalsRow {
            label: "Total special damages",
            amount: format_cents(letter.total_specials_cents),
            is_grand_total: true,
        },
    ]
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Sample letters, tiny images and external-tool helpers shared by the export and extract tests.

    use super::{ImageFormat, Letterhead, LogoImage};
    use crate::model::{
        LetterDraft, LetterSection, SpecialsCategory, SpecialsItem, SpecialsSource,
    };
    use chrono::NaiveDate;
    use std::path::Path;
    use std::process::Command;

    pub const FIRM_NAME: &str = "Avery & Lindqvist Injury Law LLP";
    pub const ADDRESS_LINES: [&str; 3] = [
        "410 Chestnut Street, 3rd Floor",
        "Philadelphia, PA 19106",
        "Tel. (215) 555-0142 \u{b7} intake@averylindqvist.example",
    ];
    /// A sentence using characters that need mapping to the PDF's WinAnsi encoding.
    pub const TYPOGRAPHIC_SENTENCE: &str =
        "The insurer\u{2019}s \u{201c}reasonable\u{201d} offer \u{2014} \u{20ac}0 for pain \u{2192} nothing \u{2014} was refused.";
    /// A sentence from the middle of a long paragraph, wholly ASCII.
    pub const PARAGRAPH_SENTENCE: &str =
        "Mr. Becker admitted at the scene that he had been looking at his phone";

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn document_item(
        category: SpecialsCategory,
        description: &str,
        amount_cents: i64,
        service_date: Option<NaiveDate>,
        filename: &str,
    ) -> SpecialsItem {
        SpecialsItem {
            category,
            description: description.to_string(),
            amount_cents,
            service_date,
            source: SpecialsSource::Document {
                document_id: format!("doc-{filename}"),
                filename: filename.to_string(),
            },
        }
    }

    fn section(heading: &str, paragraphs: &[&str]) -> LetterSection {
        LetterSection {
            heading: heading.to_string(),
            paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
        }
    }

    /// A realistic two-page demand letter with six specials items.
    pub fn sample_letter() -> LetterDraft {
        let facts_1 = "On March 14, 2025, at approximately 5:40 p.m., our client Maria L. Gonzalez was driving \
            northbound on Broad Street in Philadelphia, Pennsylvania, and had come to a complete stop at the red \
            light at the intersection with Girard Avenue. Your insured, Thomas R. Becker, was travelling in the same \
            direction at roughly 35 miles per hour when his pickup truck struck the rear of Ms. Gonzalez's sedan \
            without braking. The force of the collision pushed her vehicle into the crosswalk and deployed both \
            front airbags.";
        let facts_2 = "Officers of the Philadelphia Police Department responded to the scene and prepared a report \
            (incident no. 25-031407). Mr. Becker admitted at the scene that he had been looking at his phone \
            while approaching the intersection. Two independent witnesses, whose statements are enclosed, confirm \
            that the traffic signal had been red for several seconds and that Ms. Gonzalez's brake lights were on.";
        let liability = "Pennsylvania law requires every driver to keep an assured clear distance ahead and to \
            maintain a proper lookout (75 Pa.C.S. \u{a7} 3361). A driver who strikes a lawfully stopped vehicle from \
            behind while distracted by a handheld device breaches that duty as a matter of law. Liability here \
            is clear, and we trust that Keystone Mutual will not contest it. TYPOGRAPHIC";
        let injuries_1 = "Ms. Gonzalez was taken by ambulance to Temple University Hospital, where she complained of \
            severe neck pain, low back pain radiating into her left leg, and a headache. A CT scan of the cervical \
            spine showed straightening of the normal lordosis consistent with muscle spasm. She was diagnosed \
            with a cervical strain, a lumbar strain with radiculopathy, and a concussion without loss of \
            consciousness, and discharged with instructions to follow up with an orthopaedic specialist.";
        let injuries_2 = "Dr. Alan Kessler, an orthopaedic surgeon, examined her on March 21, 2025, ordered an MRI of \
            the lumbar spine, which revealed a disc protrusion at L4-L5 abutting the left L5 nerve root, and \
            prescribed a course of physical therapy. Ms. Gonzalez attended eighteen sessions of physical therapy \
            between April and June 2025. She continues to experience intermittent low back pain when sitting for \
            long periods, and Dr. Kessler has noted that her symptoms may persist for the foreseeable future.";
        let damages = "As a direct result of this collision Ms. Gonzalez was unable to work for six weeks as a \
            warehouse supervisor, missed her daughter's graduation, and has been unable to return to the \
            recreational soccer league she played in for eleven years. Her itemised special damages, each \
            supported by the enclosed records, are set out below.";
        let demand = "In light of the clear liability, the documented injuries and the lasting impact on her daily \
            life, we demand $75,000.00 in full settlement of Ms. Gonzalez's claim. Please respond in writing by \
            July 31, 2026. If we do not hear from you by then we will advise our client to file suit without \
            further notice.";
        LetterDraft {
            letter_date: date(2026, 7, 1),
            recipient: vec![
                "Ms. Dana Whitfield, Claims Adjuster".to_string(),
                "Keystone Mutual Insurance Company".to_string(),
                "1200 Market Street, Suite 900".to_string(),
                "Philadelphia, PA 19107".to_string(),
            ],
            reference: vec![
                "Re: Our client: Maria L. Gonzalez".to_string(),
                "Your insured: Thomas R. Becker".to_string(),
                "Date of loss: March 14, 2025".to_string(),
                "Claim number: KM-2025-0048817".to_string(),
            ],
            salutation: "Dear Ms. Whitfield:".to_string(),
            sections: vec![
                section("Facts of the Incident", &[facts_1, facts_2]),
                section(
                    "Liability",
                    &[&liability.replace("TYPOGRAPHIC", TYPOGRAPHIC_SENTENCE)],
                ),
                section("Injuries and Treatment", &[injuries_1, injuries_2]),
                section("Damages", &[damages]),
                section("Demand", &[demand]),
            ],
            specials: vec![
                document_item(
                    SpecialsCategory::Medical,
                    "Emergency department visit, CT scan & ambulance",
                    482_650,
                    Some(date(2025, 3, 14)),
                    "er_records.pdf",
                ),
                document_item(
                    SpecialsCategory::Medical,
                    "Orthopaedic consultation <initial visit>",
                    65_000,
                    Some(date(2025, 3, 21)),
                    "ortho_bill.pdf",
                ),
                document_item(
                    SpecialsCategory::Medical,
                    "Physical therapy, 18 sessions",
                    324_000,
                    Some(date(2025, 4, 2)),
                    "pt_ledger.docx",
                ),
                document_item(
                    SpecialsCategory::Medical,
                    "MRI of the lumbar spine",
                    187_500,
                    Some(date(2025, 4, 10)),
                    "imaging_invoice.pdf",
                ),
                document_item(
                    SpecialsCategory::LostWages,
                    "Six weeks of missed work as warehouse supervisor",
                    912_000,
                    Some(date(2025, 5, 1)),
                    "wage_letter.pdf",
                ),
                SpecialsItem {
                    category: SpecialsCategory::Other,
                    description: "Replacement eyeglasses".to_string(),
                    amount_cents: 38_999,
                    service_date: None,
                    source: SpecialsSource::Form,
                },
            ],
            total_medical_cents: 1_059_150,
            total_lost_wages_cents: 912_000,
            total_specials_cents: 2_010_149,
            total_demand_cents: 7_500_000,
            response_deadline: date(2026, 7, 31),
            closing: "Very truly yours,".to_string(),
            signature: vec!["Jonathan P. Avery, Esq.".to_string(), FIRM_NAME.to_string()],
        }
    }

    pub fn sample_letterhead(logo: Option<LogoImage>) -> Letterhead {
        Letterhead {
            firm_name: FIRM_NAME.to_string(),
            address_lines: ADDRESS_LINES.iter().map(|line| line.to_string()).collect(),
            logo,
        }
    }

    pub fn png_logo() -> LogoImage {
        LogoImage {
            bytes: tiny_png_rgb(24, 8),
            format: ImageFormat::Png,
        }
    }

    pub fn jpeg_logo() -> LogoImage {
        LogoImage {
            bytes: tiny_grey_jpeg(),
            format: ImageFormat::Jpeg,
        }
    }

    /// Encodes a PNG of the given colour type from raw 8-bit samples.
    pub fn encode_png(width: u32, height: u32, color: png::ColorType, samples: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, width, height);
            encoder.set_color(color);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(samples).unwrap();
        }
        bytes
    }

    /// An RGB PNG with a red-to-blue gradient.
    pub fn tiny_png_rgb(width: u32, height: u32) -> Vec<u8> {
        let mut samples = Vec::new();
        for _ in 0..height {
            for x in 0..width {
                let red = (255 * x / width.max(1)) as u8;
                samples.extend_from_slice(&[red, 40, 255 - red]);
            }
        }
        encode_png(width, height, png::ColorType::Rgb, &samples)
    }

    /// An 8x8 mid-grey baseline JPEG, written marker by marker: every block has a DC
    /// coefficient of zero (grey 128 after the level shift) and no AC coefficients, so
    /// one-code Huffman tables suffice and the whole scan is the two bits "0" "0".
    pub fn tiny_grey_jpeg() -> Vec<u8> {
        let mut jpeg = vec![0xFF, 0xD8];
        jpeg.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
        jpeg.extend_from_slice(b"JFIF\0");
        jpeg.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
        jpeg.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
        jpeg.extend_from_slice(&[1u8; 64]);
        jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x08, 0x00, 0x08, 0x01]);
        jpeg.extend_from_slice(&[0x01, 0x11, 0x00]);
        for table_class_and_id in [0x00, 0x10] {
            jpeg.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, table_class_and_id, 0x01]);
            jpeg.extend_from_slice(&[0u8; 15]);
            jpeg.push(0x00);
        }
        jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        jpeg.push(0b0011_1111);
        jpeg.extend_from_slice(&[0xFF, 0xD9]);
        jpeg
    }

    /// Runs an external tool and returns its standard output; a missing tool fails the test
    /// with the Debian package that provides it, and so does any complaint on standard error.
    pub fn run_tool(program: &str, args: &[&str], debian_package: &str) -> String {
        let output = Command::new(program).args(args).output().unwrap_or_else(|error| {
            panic!(
                "could not run `{program}` ({error}); install it with `apt-get install -y {debian_package}`"
            )
        });
        assert!(
            output.status.success(),
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.stderr.is_empty(),
            "`{program} {}` complained: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn path_str(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    /// Collapses runs of whitespace so wrapped or justified text can be searched for phrases.
    pub fn squash_whitespace(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_png_and_jpeg_by_signature() {
        assert_eq!(
            ImageFormat::detect(b"\x89PNG\r\n\x1a\nrest"),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::detect(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::detect(b"GIF89a"), None);
        assert_eq!(ImageFormat::detect(b""), None);
    }

    #[test]
    fn reads_pixel_size_of_generated_images() {
        let png = LogoImage {
            bytes: test_support::tiny_png_rgb(7, 3),
            format: ImageFormat::Png,
        };
        assert_eq!(
            png.pixel_size().unwrap(),
            PixelSize {
                width: 7,
                height: 3
            }
        );
        let jpeg = LogoImage {
            bytes: test_support::tiny_grey_jpeg(),
            format: ImageFormat::Jpeg,
        };
        assert_eq!(
            jpeg.pixel_size().unwrap(),
            PixelSize {
                width: 8,
                height: 8
            }
        );
        let header = jpeg_header(&jpeg.bytes).unwrap();
        assert_eq!(header.components, 1);
        assert_eq!(header.bits_per_component, 8);
    }

    #[test]
    fn logo_is_scaled_to_sixty_points_high_within_the_width() {
        let logo = LogoImage {
            bytes: test_support::tiny_png_rgb(40, 20),
            format: ImageFormat::Png,
        };
        assert_eq!(logo.display_size_pt(468.0).unwrap(), (120.0, 60.0));
        assert_eq!(logo.display_size_pt(60.0).unwrap(), (60.0, 30.0));
    }

    #[test]
    fn mislabelled_or_damaged_logos_are_errors() {
        let png_bytes = test_support::tiny_png_rgb(2, 2);
        let labelled_jpeg = LogoImage {
            bytes: png_bytes.clone(),
            format: ImageFormat::Jpeg,
        };
        let message = labelled_jpeg.pixel_size().unwrap_err().to_string();
        assert!(message.contains("actually a PNG"), "{message}");

        let truncated = LogoImage {
            bytes: png_bytes[..14].to_vec(),
            format: ImageFormat::Png,
        };
        assert!(truncated.pixel_size().is_err());

        let truncated_jpeg = LogoImage {
            bytes: test_support::tiny_grey_jpeg()[..12].to_vec(),
            format: ImageFormat::Jpeg,
        };
        assert!(truncated_jpeg.pixel_size().is_err());
        let not_an_image = LogoImage {
            bytes: b"hello".to_vec(),
            format: ImageFormat::Png,
        };
        assert!(not_an_image.pixel_size().is_err());
    }

    #[test]
    fn specials_rows_cite_their_source() {
        let letter = test_support::sample_letter();
        let rows: Vec<SpecialsRow> = letter.specials.iter().map(SpecialsRow::from_item).collect();
        assert_eq!(rows[0].source, "er_records.pdf");
        assert!(rows.iter().any(|row| row.source == "matter form"));
        assert!(rows.iter().any(|row| row.date == "n/a"));
    }
}
