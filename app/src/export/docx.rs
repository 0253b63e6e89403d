//! DOCX export: writes a letter draft as a WordprocessingML package (document, styles, footer, logo) zipped by hand.

use std::io::{Cursor, Write};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::{
    specials_totals, ExportError, ImageFormat, Letterhead, LogoImage, SpecialsRow,
    SPECIALS_COLUMN_TITLES, SPECIALS_TABLE_TITLE,
};
use crate::model::{format_long_date, LetterDraft};

const NS_MAIN: &str = "http://schemas.openxmlformats.org/wordprocessingml/2006/main";
const NS_RELATIONSHIPS: &str =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const NS_DRAWING_WORD: &str =
    "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing";
const NS_DRAWING: &str = "http://schemas.openxmlformats.org/drawingml/2006/main";
const NS_PICTURE: &str = "http://schemas.openxmlformats.org/drawingml/2006/picture";
const NS_PACKAGE_RELATIONSHIPS: &str =
    "http://schemas.openxmlformats.org/package/2006/relationships";
const NS_CONTENT_TYPES: &str = "http://schemas.openxmlformats.org/package/2006/content-types";

const RELATIONSHIP_TYPE_DOCUMENT: &str =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument";
const RELATIONSHIP_TYPE_STYLES: &str =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles";
const RELATIONSHIP_TYPE_FOOTER: &str =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/footer";
const RELATIONSHIP_TYPE_IMAGE: &str =
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image";

const STYLES_RELATIONSHIP_ID: &str = "rId1";
const FOOTER_RELATIONSHIP_ID: &str = "rId2";
const LOGO_RELATIONSHIP_ID: &str = "rId3";

const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;

/// US Letter with one-inch margins, in twentieths of a point.
const PAGE_WIDTH_TWIPS: u32 = 12240;
const PAGE_HEIGHT_TWIPS: u32 = 15840;
const MARGIN_TWIPS: u32 = 1440;
const TEXT_WIDTH_PT: f64 = 468.0;
/// Column widths of the specials table; they add up to the 6.5 inch text width.
const SPECIALS_COLUMN_TWIPS: [u32; 5] = [1400, 1200, 3010, 2300, 1450];
const EMU_PER_POINT: f64 = 12700.0;

/// Font sizes in half-points.
const FIRM_NAME_SIZE: u32 = 36;
const ADDRESS_SIZE: u32 = 18;
const TABLE_SIZE: u32 = 18;

pub(super) fn render(
    letter: &LetterDraft,
    letterhead: &Letterhead,
) -> Result<Vec<u8>, ExportError> {
    let logo = match &letterhead.logo {
        Some(logo) => Some(PlacedLogo::new(logo)?),
        None => None,
    };
    let logo_format = logo.as_ref().map(|placed| placed.image.format);
    let mut parts: Vec<(String, Vec<u8>)> = vec![
        (
            "[Content_Types].xml".to_string(),
            content_types_xml(logo_format).into_bytes(),
        ),
        (
            "_rels/.rels".to_string(),
            package_relationships_xml().into_bytes(),
        ),
        (
            "word/document.xml".to_string(),
            document_xml(letter, letterhead, logo.as_ref()).into_bytes(),
        ),
        (
            "word/_rels/document.xml.rels".to_string(),
            document_relationships_xml(logo_format).into_bytes(),
        ),
        ("word/styles.xml".to_string(), styles_xml().into_bytes()),
        ("word/footer1.xml".to_string(), footer_xml().into_bytes()),
    ];
    if let Some(placed) = &logo {
        parts.push((
            logo_part_name(placed.image.format),
            placed.image.bytes.clone(),
        ));
    }
    zip_parts(&parts)
}

fn zip_parts(parts: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ExportError> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for (name, bytes) in parts {
        zip.start_file(name.as_str(), options)
            .map_err(docx_write_error)?;
        zip.write_all(bytes).map_err(docx_write_error)?;
    }
    let cursor = zip.finish().map_err(docx_write_error)?;
    Ok(cursor.into_inner())
}

fn docx_write_error(error: impl std::fmt::Display) -> ExportError {
    ExportError::DocxWrite(error.to_string())
}

/// The logo with its printed size, ready to be referenced from the document.
struct PlacedLogo<'a> {
    image: &'a LogoImage,
    width_emu: u64,
    height_emu: u64,
}

impl<'a> PlacedLogo<'a> {
    fn new(image: &'a LogoImage) -> Result<PlacedLogo<'a>, ExportError> {
        let (width_pt, height_pt) = image.display_size_pt(TEXT_WIDTH_PT)?;
        Ok(PlacedLogo {
            image,
            width_emu: points_to_emu(width_pt),
            height_emu: points_to_emu(height_pt),
        })
    }
}

fn points_to_emu(points: f64) -> u64 {
    (points * EMU_PER_POINT).round().max(1.0) as u64
}

fn logo_file_name(format: ImageFormat) -> String {
    format!("logo.{}", format.extension())
}

fn logo_part_name(format: ImageFormat) -> String {
    format!("word/media/{}", logo_file_name(format))
}

fn content_types_xml(logo_format: Option<ImageFormat>) -> String {
    let mut xml = format!("{XML_DECLARATION}<Types xmlns=\"{NS_CONTENT_TYPES}\">");
    xml.push_str(r#"<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>"#);
    xml.push_str(r#"<Default Extension="xml" ContentType="application/xml"/>"#);
    if let Some(format) = logo_format {
        xml.push_str(&format!(
            r#"<Default Extension="{}" ContentType="{}"/>"#,
            format.extension(),
            format.content_type()
        ));
    }
    xml.push_str(r#"<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>"#);
    xml.push_str(r#"<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/>"#);
    xml.push_str(r#"<Override PartName="/word/footer1.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.footer+xml"/>"#);
    xml.push_str("</Types>");
    xml
}

fn relationship(id: &str, relationship_type: &str, target: &str) -> String {
    format!(r#"<Relationship Id="{id}" Type="{relationship_type}" Target="{target}"/>"#)
}

fn package_relationships_xml() -> String {
    format!(
        "{XML_DECLARATION}<Relationships xmlns=\"{NS_PACKAGE_RELATIONSHIPS}\">{}</Relationships>",
        relationship("rId1", RELATIONSHIP_TYPE_DOCUMENT, "word/document.xml")
    )
}

fn document_relationships_xml(logo_format: Option<ImageFormat>) -> String {
    let mut xml = format!("{XML_DECLARATION}<Relationships xmlns=\"{NS_PACKAGE_RELATIONSHIPS}\">");
    xml.push_str(&relationship(
        STYLES_RELATIONSHIP_ID,
        RELATIONSHIP_TYPE_STYLES,
        "styles.xml",
    ));
    xml.push_str(&relationship(
        FOOTER_RELATIONSHIP_ID,
        RELATIONSHIP_TYPE_FOOTER,
        "footer1.xml",
    ));
    if let Some(format) = logo_format {
        let target = format!("media/{}", logo_file_name(format));
        xml.push_str(&relationship(
            LOGO_RELATIONSHIP_ID,
            RELATIONSHIP_TYPE_IMAGE,
            &target,
        ));
    }
    xml.push_str("</Relationships>");
    xml
}

fn styles_xml() -> String {
    format!(
        "{XML_DECLARATION}<w:styles xmlns:w=\"{NS_MAIN}\">\
         <w:docDefaults>\
         <w:rPrDefault><w:rPr>\
         <w:rFonts w:ascii=\"Arial\" w:hAnsi=\"Arial\" w:eastAsia=\"Arial\" w:cs=\"Arial\"/>\
         <w:sz w:val=\"22\"/><w:szCs w:val=\"22\"/><w:lang w:val=\"en-US\"/>\
         </w:rPr></w:rPrDefault>\
         <w:pPrDefault><w:pPr><w:spacing w:after=\"160\" w:line=\"264\" w:lineRule=\"auto\"/></w:pPr></w:pPrDefault>\
         </w:docDefaults>\
         <w:style w:type=\"paragraph\" w:default=\"1\" w:styleId=\"Normal\"><w:name w:val=\"Normal\"/><w:qFormat/></w:style>\
         <w:style w:type=\"table\" w:default=\"1\" w:styleId=\"TableNormal\"><w:name w:val=\"Normal Table\"/>\
         <w:tblPr><w:tblInd w:w=\"0\" w:type=\"dxa\"/><w:tblCellMar>\
         <w:top w:w=\"0\" w:type=\"dxa\"/><w:left w:w=\"108\" w:type=\"dxa\"/>\
         <w:bottom w:w=\"0\" w:type=\"dxa\"/><w:right w:w=\"108\" w:type=\"dxa\"/>\
         </w:tblCellMar></w:tblPr></w:style>\
         </w:styles>"
    )
}

/// Footer with "Page N of M" built from the PAGE and NUMPAGES fields.
fn footer_xml() -> String {
    let mut xml = format!(
        "{XML_DECLARATION}<w:ftr xmlns:w=\"{NS_MAIN}\" xmlns:r=\"{NS_RELATIONSHIPS}\">\
         <w:p><w:pPr><w:spacing w:after=\"0\"/><w:jc w:val=\"center\"/></w:pPr>"
    );
    let size = RunFormat {
        bold: false,
        size_half_points: Some(ADDRESS_SIZE),
    };
    xml.push_str(&run("Page ", &size));
    xml.push_str(&field_runs("PAGE", &size));
    xml.push_str(&run(" of ", &size));
    xml.push_str(&field_runs("NUMPAGES", &size));
    xml.push_str("</w:p></w:ftr>");
    xml
}

fn field_runs(instruction: &str, format: &RunFormat) -> String {
    let properties = format.properties_xml();
    format!(
        "<w:r>{properties}<w:fldChar w:fldCharType=\"begin\"/></w:r>\
         <w:r>{properties}<w:instrText xml:space=\"preserve\"> {instruction} </w:instrText></w:r>\
         <w:r>{properties}<w:fldChar w:fldCharType=\"separate\"/></w:r>\
         <w:r>{properties}<w:t>1</w:t></w:r>\
         <w:r>{properties}<w:fldChar w:fldCharType=\"end\"/></w:r>"
    )
}

fn document_xml(
    letter: &LetterDraft,
    letterhead: &Letterhead,
    logo: Option<&PlacedLogo>,
) -> String {
    let mut body = String::new();
    write_letterhead(&mut body, letterhead, logo);
    write_opening(&mut body, letter);
    for section in &letter.sections {
        body.push_str(&paragraph(&section.heading, &ParagraphFormat::heading()));
        for text in &section.paragraphs {
            body.push_str(&paragraph(text, &ParagraphFormat::body()));
        }
    }
    if !letter.specials.is_empty() {
        write_specials_table(&mut body, letter);
    }
    write_closing(&mut body, letter);
    format!(
        "{XML_DECLARATION}<w:document xmlns:w=\"{NS_MAIN}\" xmlns:r=\"{NS_RELATIONSHIPS}\" \
         xmlns:wp=\"{NS_DRAWING_WORD}\" xmlns:a=\"{NS_DRAWING}\" xmlns:pic=\"{NS_PICTURE}\">\
         <w:body>{body}{}</w:body></w:document>",
        section_properties_xml()
    )
}

fn section_properties_xml() -> String {
    format!(
        "<w:sectPr><w:footerReference w:type=\"default\" r:id=\"{FOOTER_RELATIONSHIP_ID}\"/>\
         <w:pgSz w:w=\"{PAGE_WIDTH_TWIPS}\" w:h=\"{PAGE_HEIGHT_TWIPS}\"/>\
         <w:pgMar w:top=\"{MARGIN_TWIPS}\" w:right=\"{MARGIN_TWIPS}\" w:bottom=\"{MARGIN_TWIPS}\" \
         w:left=\"{MARGIN_TWIPS}\" w:header=\"720\" w:footer=\"720\" w:gutter=\"0\"/></w:sectPr>"
    )
}

fn write_letterhead(body: &mut String, letterhead: &Letterhead, logo: Option<&PlacedLogo>) {
    if let Some(placed) = logo {
        body.push_str(&format!(
            "<w:p><w:pPr><w:spacing w:after=\"120\"/></w:pPr><w:r>{}</w:r></w:p>",
            inline_picture_xml(placed)
        ));
    }
    body.push_str(&paragraph(
        &letterhead.firm_name,
        &ParagraphFormat {
            run: RunFormat {
                bold: true,
                size_half_points: Some(FIRM_NAME_SIZE),
            },
            space_after_twips: 40,
            ..ParagraphFormat::body()
        },
    ));
    let address_count = letterhead.address_lines.len();
    for (index, line) in letterhead.address_lines.iter().enumerate() {
        let is_last = index + 1 == address_count;
        body.push_str(&paragraph(
            line,
            &ParagraphFormat {
                run: RunFormat {
                    bold: false,
                    size_half_points: Some(ADDRESS_SIZE),
                },
                space_after_twips: 0,
                rule_below: is_last,
                ..ParagraphFormat::body()
            },
        ));
    }
    if address_count == 0 {
        body.push_str(&paragraph(
            "",
            &ParagraphFormat {
                space_after_twips: 0,
                rule_below: true,
                ..ParagraphFormat::body()
            },
        ));
    }
    body.push_str(&paragraph("", &ParagraphFormat::body()));
}

fn write_opening(body: &mut String, letter: &LetterDraft) {
    body.push_str(&paragraph(
        &format_long_date(letter.letter_date),
        &ParagraphFormat {
            space_after_twips: 240,
            ..ParagraphFormat::body()
        },
    ));
    write_line_block(body, &letter.recipient, false);
    write_line_block(body, &letter.reference, true);
    body.push_str(&paragraph(&letter.salutation, &ParagraphFormat::body()));
}

/// Lines printed one under the other, with space after the whole block.
fn write_line_block(body: &mut String, lines: &[String], bold: bool) {
    let count = lines.len();
    for (index, line) in lines.iter().enumerate() {
        let is_last = index + 1 == count;
        body.push_str(&paragraph(
            line,
            &ParagraphFormat {
                run: RunFormat {
                    bold,
                    size_half_points: None,
                },
                space_after_twips: if is_last { 240 } else { 0 },
                keep_with_next: !is_last,
                ..ParagraphFormat::body()
            },
        ));
    }
}

/// The closing, room to sign and the signature lines as one paragraph whose lines stay on one page.
fn write_closing(body: &mut String, letter: &LetterDraft) {
    let mut text = letter.closing.clone();
    if !letter.signature.is_empty() {
        text.push_str("\n\n\n");
        text.push_str(&letter.signature.join("\n"));
    }
    body.push_str(&paragraph(
        &text,
        &ParagraphFormat {
            keep_lines_together: true,
            ..ParagraphFormat::body()
        },
    ));
}

fn write_specials_table(body: &mut String, letter: &LetterDraft) {
    body.push_str(&paragraph(
        SPECIALS_TABLE_TITLE,
        &ParagraphFormat::heading(),
    ));
    body.push_str("<w:tbl><w:tblPr><w:tblW w:w=\"5000\" w:type=\"pct\"/>");
    body.push_str(&table_borders_xml());
    body.push_str("<w:tblLayout w:type=\"fixed\"/>");
    body.push_str(&table_cell_margins_xml());
    body.push_str("</w:tblPr><w:tblGrid>");
    for width in SPECIALS_COLUMN_TWIPS {
        body.push_str(&format!("<w:gridCol w:w=\"{width}\"/>"));
    }
    body.push_str("</w:tblGrid>");
    body.push_str(&table_row(&SPECIALS_COLUMN_TITLES, true));
    for item in &letter.specials {
        let row = SpecialsRow::from_item(item);
        body.push_str(&table_row(&row.cells(), false));
    }
    for total in specials_totals(letter) {
        body.push_str(&totals_row(
            total.label,
            &total.amount,
            total.is_grand_total,
        ));
    }
    body.push_str("</w:tbl>");
    body.push_str(&paragraph("", &ParagraphFormat::body()));
}

fn table_borders_xml() -> String {
    let mut xml = String::from("<w:tblBorders>");
    for side in ["top", "left", "bottom", "right", "insideH", "insideV"] {
        xml.push_str(&format!(
            "<w:{side} w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"808080\"/>"
        ));
    }
    xml.push_str("</w:tblBorders>");
    xml
}

fn table_cell_margins_xml() -> String {
    "<w:tblCellMar><w:top w:w=\"40\" w:type=\"dxa\"/><w:left w:w=\"100\" w:type=\"dxa\"/>\
     <w:bottom w:w=\"40\" w:type=\"dxa\"/><w:right w:w=\"100\" w:type=\"dxa\"/></w:tblCellMar>"
        .to_string()
}

fn table_row(cells: &[&str; 5], is_header: bool) -> String {
    let row_properties = if is_header {
        "<w:trPr><w:cantSplit/><w:tblHeader/></w:trPr>"
    } else {
        "<w:trPr><w:cantSplit/></w:trPr>"
    };
    let mut xml = format!("<w:tr>{row_properties}");
    let last_column = cells.len() - 1;
    for (column, (text, width)) in cells.iter().zip(SPECIALS_COLUMN_TWIPS).enumerate() {
        let is_amount = column == last_column;
        xml.push_str(&table_cell(text, width, 1, is_header, is_amount));
    }
    xml.push_str("</w:tr>");
    xml
}

fn totals_row(label: &str, amount: &str, is_grand_total: bool) -> String {
    let label_width: u32 = SPECIALS_COLUMN_TWIPS[..4].iter().sum();
    format!(
        "<w:tr><w:trPr><w:cantSplit/></w:trPr>{}{}</w:tr>",
        table_cell(label, label_width, 4, is_grand_total, true),
        table_cell(amount, SPECIALS_COLUMN_TWIPS[4], 1, is_grand_total, true)
    )
}

fn table_cell(
    text: &str,
    width_twips: u32,
    column_span: u32,
    bold: bool,
    align_right: bool,
) -> String {
    let span = if column_span > 1 {
        format!("<w:gridSpan w:val=\"{column_span}\"/>")
    } else {
        String::new()
    };
    let format = ParagraphFormat {
        run: RunFormat {
            bold,
            size_half_points: Some(TABLE_SIZE),
        },
        space_after_twips: 0,
        align_right,
        line_spacing: false,
        ..ParagraphFormat::body()
    };
    format!(
        "<w:tc><w:tcPr><w:tcW w:w=\"{width_twips}\" w:type=\"dxa\"/>{span}</w:tcPr>{}</w:tc>",
        paragraph(text, &format)
    )
}

/// Character formatting of a run.
#[derive(Debug, Clone, Copy, Default)]
struct RunFormat {
    bold: bool,
    size_half_points: Option<u32>,
}

impl RunFormat {
    fn properties_xml(&self) -> String {
        let mut xml = String::new();
        if self.bold {
            xml.push_str("<w:b/><w:bCs/>");
        }
        if let Some(size) = self.size_half_points {
            xml.push_str(&format!(
                "<w:sz w:val=\"{size}\"/><w:szCs w:val=\"{size}\"/>"
            ));
        }
        if xml.is_empty() {
            xml
        } else {
            format!("<w:rPr>{xml}</w:rPr>")
        }
    }
}

/// Paragraph formatting; the properties are written in the order the schema requires.
#[derive(Debug, Clone, Copy)]
struct ParagraphFormat {
    run: RunFormat,
    space_after_twips: u32,
    keep_with_next: bool,
    keep_lines_together: bool,
    rule_below: bool,
    align_right: bool,
    /// Whether the document's default 1.1 line spacing applies; table cells use single spacing.
    line_spacing: bool,
}

impl ParagraphFormat {
    fn body() -> ParagraphFormat {
        ParagraphFormat {
            run: RunFormat::default(),
            space_after_twips: 160,
            keep_with_next: false,
            keep_lines_together: false,
            rule_below: false,
            align_right: false,
            line_spacing: true,
        }
    }

    fn heading() -> ParagraphFormat {
        ParagraphFormat {
            run: RunFormat {
                bold: true,
                size_half_points: None,
            },
            space_after_twips: 80,
            keep_with_next: true,
            ..ParagraphFormat::body()
        }
    }

    fn properties_xml(&self) -> String {
        let mut xml = String::from("<w:pPr>");
        if self.keep_with_next {
            xml.push_str("<w:keepNext/>");
        }
        if self.keep_lines_together {
            xml.push_str("<w:keepLines/>");
        }
        if self.rule_below {
            xml.push_str(
                "<w:pBdr><w:bottom w:val=\"single\" w:sz=\"8\" w:space=\"4\" w:color=\"000000\"/></w:pBdr>",
            );
        }
        if self.line_spacing {
            xml.push_str(&format!(
                "<w:spacing w:after=\"{}\"/>",
                self.space_after_twips
            ));
        } else {
            xml.push_str(&format!(
                "<w:spacing w:after=\"{}\" w:line=\"240\" w:lineRule=\"auto\"/>",
                self.space_after_twips
            ));
        }
        if self.align_right {
            xml.push_str("<w:jc w:val=\"right\"/>");
        }
        xml.push_str(&self.run.properties_xml());
        xml.push_str("</w:pPr>");
        xml
    }
}

fn paragraph(text: &str, format: &ParagraphFormat) -> String {
    let content = if text.is_empty() {
        String::new()
    } else {
        run(text, &format.run)
    };
    format!("<w:p>{}{content}</w:p>", format.properties_xml())
}

/// One run of text; line breaks become `w:br` and tabs `w:tab`.
fn run(text: &str, format: &RunFormat) -> String {
    let mut xml = format!("<w:r>{}", format.properties_xml());
    let mut pending = String::new();
    for character in text.chars() {
        match character {
            '\n' | '\t' => {
                push_text_element(&mut xml, &pending);
                pending.clear();
                xml.push_str(if character == '\n' {
                    "<w:br/>"
                } else {
                    "<w:tab/>"
                });
            }
            '\r' => {}
            other => pending.push(other),
        }
    }
    push_text_element(&mut xml, &pending);
    xml.push_str("</w:r>");
    xml
}

fn push_text_element(xml: &mut String, text: &str) {
    if !text.is_empty() {
        xml.push_str("<w:t xml:space=\"preserve\">");
        xml.push_str(&escape_xml(text));
        xml.push_str("</w:t>");
    }
}

/// Escapes text content (quotes need no escaping outside attributes) and drops characters XML 1.0 does not allow.
pub(super) fn escape_xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            other if is_allowed_in_xml(other) => escaped.push(other),
            _ => {}
        }
    }
    escaped
}

fn is_allowed_in_xml(character: char) -> bool {
    matches!(character, '\t' | '\n' | '\r')
        || ('\u{20}'..='\u{D7FF}').contains(&character)
        || ('\u{E000}'..='\u{FFFD}').contains(&character)
        || character >= '\u{10000}'
}

fn inline_picture_xml(placed: &PlacedLogo) -> String {
    let width = placed.width_emu;
    let height = placed.height_emu;
    let file_name = logo_file_name(placed.image.format);
    format!(
        "<w:drawing><wp:inline distT=\"0\" distB=\"0\" distL=\"0\" distR=\"0\">\
         <wp:extent cx=\"{width}\" cy=\"{height}\"/>\
         <wp:effectExtent l=\"0\" t=\"0\" r=\"0\" b=\"0\"/>\
         <wp:docPr id=\"1\" name=\"Firm logo\"/>\
         <wp:cNvGraphicFramePr><a:graphicFrameLocks noChangeAspect=\"1\"/></wp:cNvGraphicFramePr>\
         <a:graphic><a:graphicData uri=\"{NS_PICTURE}\">\
         <pic:pic><pic:nvPicPr><pic:cNvPr id=\"1\" name=\"{file_name}\"/><pic:cNvPicPr/></pic:nvPicPr>\
         <pic:blipFill><a:blip r:embed=\"{LOGO_RELATIONSHIP_ID}\"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>\
         <pic:spPr><a:xfrm><a:off x=\"0\" y=\"0\"/><a:ext cx=\"{width}\" cy=\"{height}\"/></a:xfrm>\
         <a:prstGeom prst=\"rect\"><a:avLst/></a:prstGeom></pic:spPr>\
         </pic:pic></a:graphicData></a:graphic></wp:inline></w:drawing>"
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{
        jpeg_logo, path_str, png_logo, run_tool, sample_letter, sample_letterhead, ADDRESS_LINES,
        FIRM_NAME, PARAGRAPH_SENTENCE,
    };
    use super::*;
    use crate::extract::{extract_text, DocumentKind};
    use crate::model::format_cents;
    use quick_xml::events::Event;
    use quick_xml::Reader;

    const UNZIP: &str = "unzip";

    /// Writes the DOCX to a temporary directory and returns the directory and the file path.
    fn write_docx(bytes: &[u8]) -> (tempfile::TempDir, String) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("letter.docx");
        std::fs::write(&path, bytes).unwrap();
        let path = path_str(&path).to_string();
        (directory, path)
    }

    /// Prints one part of the package; unzip reads brackets as a wildcard, so they are escaped.
    fn unzip_part(path: &str, part: &str) -> String {
        let pattern = part.replace('[', "\\[").replace(']', "\\]");
        run_tool("unzip", &["-p", path, &pattern], UNZIP)
    }

    fn assert_well_formed(xml: &str, part: &str) {
        let mut reader = Reader::from_str(xml);
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(error) => panic!("{part} is not well-formed: {error}\n{xml}"),
            }
        }
    }

    /// Every text of the letter, as it must appear in word/document.xml.
    fn expected_texts(letter: &LetterDraft) -> Vec<String> {
        let mut texts = vec![FIRM_NAME.to_string(), format_long_date(letter.letter_date)];
        texts.extend(ADDRESS_LINES.iter().map(|line| line.to_string()));
        texts.extend(letter.recipient.iter().cloned());
        texts.extend(letter.reference.iter().cloned());
        texts.push(letter.salutation.clone());
        for section in &letter.sections {
            texts.push(section.heading.clone());
            texts.extend(section.paragraphs.iter().cloned());
        }
        for item in &letter.specials {
            texts.extend(
                SpecialsRow::from_item(item)
                    .cells()
                    .iter()
                    .map(|cell| cell.to_string()),
            );
        }
        for total in specials_totals(letter) {
            texts.push(total.label.to_string());
            texts.push(total.amount);
        }
        texts.push(letter.closing.clone());
        texts.extend(letter.signature.iter().cloned());
        texts
    }

    #[test]
    fn letter_with_png_logo_is_a_complete_package() {
        let letter = sample_letter();
        let bytes = render(&letter, &sample_letterhead(Some(png_logo()))).unwrap();
        let (_directory, path) = write_docx(&bytes);

        run_tool("unzip", &["-tq", &path], UNZIP);
        let listing = run_tool("unzip", &["-l", &path], UNZIP);
        for part in [
            "[Content_Types].xml",
            "_rels/.rels",
            "word/document.xml",
            "word/_rels/document.xml.rels",
            "word/styles.xml",
            "word/footer1.xml",
            "word/media/logo.png",
        ] {
            assert!(listing.contains(part), "{part} missing from:\n{listing}");
        }
        let logo = std::process::Command::new("unzip")
            .args(["-p", &path, "word/media/logo.png"])
            .output()
            .unwrap();
        assert_eq!(logo.stdout, png_logo().bytes);

        for part in [
            "[Content_Types].xml",
            "_rels/.rels",
            "word/document.xml",
            "word/_rels/document.xml.rels",
            "word/styles.xml",
            "word/footer1.xml",
        ] {
            assert_well_formed(&unzip_part(&path, part), part);
        }
        let content_types = unzip_part(&path, "[Content_Types].xml");
        assert!(content_types.contains(r#"<Default Extension="png" ContentType="image/png"/>"#));
        let relationships = unzip_part(&path, "word/_rels/document.xml.rels");
        assert!(relationships.contains(r#"Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/logo.png""#));

        let document = unzip_part(&path, "word/document.xml");
        assert!(document.contains(r#"<a:blip r:embed="rId3"/>"#));
        assert!(
            document.contains(r#"<wp:extent cx="2286000" cy="762000"/>"#),
            "24x8 px at 60 pt high"
        );
        for expected in expected_texts(&letter) {
            let escaped = escape_xml(&expected);
            assert!(
                document.contains(&escaped),
                "word/document.xml lacks {escaped:?}"
            );
        }
        assert!(document.contains(PARAGRAPH_SENTENCE));
        assert!(document.contains("Avery &amp; Lindqvist"));
        assert!(document.contains("Orthopaedic consultation &lt;initial visit&gt;"));
        for item in &letter.specials {
            assert!(document.contains(&format_cents(item.amount_cents)));
        }
        assert!(document.contains("$20,101.49"));
        let footer = unzip_part(&path, "word/footer1.xml");
        assert!(footer.contains(" NUMPAGES "));
    }

    #[test]
    fn letter_without_logo_has_no_media_or_drawing() {
        let letter = sample_letter();
        let bytes = render(&letter, &sample_letterhead(None)).unwrap();
        let (_directory, path) = write_docx(&bytes);
        let listing = run_tool("unzip", &["-l", &path], UNZIP);
        assert!(!listing.contains("word/media/"), "{listing}");
        let document = unzip_part(&path, "word/document.xml");
        assert!(!document.contains("<w:drawing>"));
        let relationships = unzip_part(&path, "word/_rels/document.xml.rels");
        assert!(!relationships.contains("rId3"));
        let content_types = unzip_part(&path, "[Content_Types].xml");
        assert!(!content_types.contains("image/"));
    }

    #[test]
    fn jpeg_logo_is_stored_as_jpeg() {
        let bytes = render(&sample_letter(), &sample_letterhead(Some(jpeg_logo()))).unwrap();
        let (_directory, path) = write_docx(&bytes);
        let listing = run_tool("unzip", &["-l", &path], UNZIP);
        assert!(listing.contains("word/media/logo.jpeg"), "{listing}");
        let content_types = unzip_part(&path, "[Content_Types].xml");
        assert!(content_types.contains(r#"<Default Extension="jpeg" ContentType="image/jpeg"/>"#));
        let document = unzip_part(&path, "word/document.xml");
        assert!(document.contains(r#"<wp:extent cx="762000" cy="762000"/>"#));
    }

    #[test]
    fn round_trips_through_text_extraction() {
        let letter = sample_letter();
        let bytes = render(&letter, &sample_letterhead(Some(png_logo()))).unwrap();
        let text = extract_text(DocumentKind::Docx, &bytes).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for expected in expected_texts(&letter) {
            assert!(
                lines.contains(&expected.as_str()),
                "extracted text lacks the line {expected:?}:\n{text}"
            );
        }
    }

    #[test]
    fn markup_and_control_characters_cannot_break_the_xml() {
        let mut letter = sample_letter();
        letter.salutation = "Dear <b>Sir</b> & \"Madam\"\u{1}\u{b}:".to_string();
        letter.sections[0].paragraphs[0] = "Line one\nLine two\tafter a tab ]]> </w:t>".to_string();
        let bytes = render(&letter, &sample_letterhead(None)).unwrap();
        let (_directory, path) = write_docx(&bytes);
        let document = unzip_part(&path, "word/document.xml");
        assert_well_formed(&document, "word/document.xml");
        assert!(document.contains("Dear &lt;b&gt;Sir&lt;/b&gt; &amp; \"Madam\":"));
        assert!(document
            .contains("Line one</w:t><w:br/><w:t xml:space=\"preserve\">Line two</w:t><w:tab/>"));
        let text = extract_text(DocumentKind::Docx, &bytes).unwrap();
        assert!(text.contains("Dear <b>Sir</b> & \"Madam\":"));
        assert!(text.contains("Line one\nLine two\tafter a tab ]]> </w:t>"));
    }

    #[test]
    fn letter_without_specials_has_no_table() {
        let mut letter = sample_letter();
        letter.specials.clear();
        let bytes = render(&letter, &sample_letterhead(None)).unwrap();
        let text = extract_text(DocumentKind::Docx, &bytes).unwrap();
        assert!(!text.contains(SPECIALS_TABLE_TITLE));
        assert!(text.contains(&letter.closing));
    }
}
