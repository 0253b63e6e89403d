//! Text extraction from uploaded source documents: recognising PDF, DOCX and plain text by their
//! bytes and pulling out their text within [`DocumentLimits`]. This code parses untrusted files;
//! Steno runs it only inside the bounded extractor child process (see `crate::extractor`).

mod pdf_guard;
mod pdf_lexer;
mod stream_decode;

use std::io::{Cursor, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::NsReader;
use zip::result::ZipError;
use zip::ZipArchive;

use crate::limits::{Limit, LimitExceeded};

/// The limits one document's extraction stays within (the extractor child also runs under
/// memory, CPU and time limits that back these up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocumentLimits {
    /// Text extracted from one document, after whitespace is normalised.
    pub max_text_bytes: u64,
    /// Bytes the compressed streams of a PDF (each once), or the document part of a DOCX,
    /// may inflate to.
    pub max_decompressed_bytes: u64,
    /// Nesting of arrays, dictionaries and strings in a PDF; also bounds page-tree and form depth.
    pub max_nesting_depth: usize,
    pub max_pdf_objects: u64,
    /// Page content the PDF text extractor may be asked to read, every reuse counted.
    pub max_page_content_bytes: u64,
}

impl Default for DocumentLimits {
    fn default() -> DocumentLimits {
        DocumentLimits {
            max_text_bytes: 2 * 1024 * 1024,
            max_decompressed_bytes: 64 * 1024 * 1024,
            max_nesting_depth: 64,
            max_pdf_objects: 100_000,
            max_page_content_bytes: 32 * 1024 * 1024,
        }
    }
}

impl DocumentLimits {
    /// Raw text collected before whitespace normalisation; normalising only shrinks it, so
    /// twice the final limit leaves room for layout whitespace while bounding the work.
    fn max_raw_text_bytes(&self) -> usize {
        usize::try_from(self.max_text_bytes.saturating_mul(2)).unwrap_or(usize::MAX)
    }

    fn text_limit_error(&self) -> ExtractError {
        ExtractError::Limit(LimitExceeded::new(
            Limit::ExtractedTextBytes,
            self.max_text_bytes,
            "the text extracted from the document is larger than",
            "split the document and upload the parts",
        ))
    }
}

/// The kinds of source document Steno reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    PlainText,
    Pdf,
    Docx,
}

const DOCX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

impl DocumentKind {
    /// Short stable name, as stored with the document: "text", "pdf" or "docx".
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::PlainText => "text",
            DocumentKind::Pdf => "pdf",
            DocumentKind::Docx => "docx",
        }
    }

    /// The inverse of [`DocumentKind::as_str`].
    pub fn from_name(name: &str) -> Option<DocumentKind> {
        match name {
            "text" => Some(DocumentKind::PlainText),
            "pdf" => Some(DocumentKind::Pdf),
            "docx" => Some(DocumentKind::Docx),
            _ => None,
        }
    }

    /// MIME type to store and serve the original file with.
    pub fn content_type(self) -> &'static str {
        match self {
            DocumentKind::PlainText => "text/plain; charset=utf-8",
            DocumentKind::Pdf => "application/pdf",
            DocumentKind::Docx => DOCX_CONTENT_TYPE,
        }
    }

    /// How the kind is named in messages: "is named as a PDF", "it looks like plain text".
    fn described(self) -> &'static str {
        match self {
            DocumentKind::PlainText => "plain text",
            DocumentKind::Pdf => "a PDF",
            DocumentKind::Docx => "a DOCX document",
        }
    }
}

/// Why a document was rejected or its text could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{filename} is empty; choose the file again and check that it has content")]
    EmptyFile { filename: String },
    #[error("{filename} is not a PDF, DOCX or plain-text file (it looks like {found}); save it as a PDF or DOCX and upload it again")]
    UnsupportedFile { filename: String, found: String },
    #[error("{filename} is named as {claimed} but its contents are {found}; check that you chose the right file")]
    NameDoesNotMatchContent {
        filename: String,
        claimed: &'static str,
        found: &'static str,
    },
    #[error("the PDF could not be parsed: {reason}; if it opens in a PDF viewer, print it to a new PDF and upload that")]
    UnreadablePdf { reason: String },
    #[error("the PDF contains no selectable text (it is probably a scanned image); run it through OCR and upload the result")]
    PdfWithoutText,
    #[error("the DOCX could not be read: {reason}; open it in Word, save it again and upload the new file")]
    UnreadableDocx { reason: String },
    #[error("the DOCX has no word/document.xml, so it is not a Word document or it is damaged; save it again from Word and upload the new file")]
    DocxWithoutDocument,
    #[error("{0}")]
    Limit(LimitExceeded),
    #[error("the text file is not UTF-8 (the first invalid byte is at offset {offset}); save it with UTF-8 encoding and upload it again")]
    TextNotUtf8 { offset: usize },
    #[error("the text file contains NUL bytes, so it is binary data rather than text; upload the document as a PDF or DOCX")]
    TextContainsNul,
}

const PDF_SIGNATURE: &[u8] = b"%PDF-";
const ZIP_SIGNATURE: &[u8] = b"PK\x03\x04";
const DOCX_DOCUMENT_PART: &str = "word/document.xml";

/// Decides what kind of document an upload is from its bytes, rejecting anything that is
/// not a PDF, a DOCX or UTF-8 text, and files named or declared as a PDF or DOCX that are not.
pub fn detect_kind(
    filename: &str,
    declared_content_type: Option<&str>,
    bytes: &[u8],
) -> Result<DocumentKind, ExtractError> {
    if bytes.is_empty() {
        return Err(ExtractError::EmptyFile {
            filename: filename.to_string(),
        });
    }
    let detected = sniff_kind(bytes).map_err(|found| ExtractError::UnsupportedFile {
        filename: filename.to_string(),
        found,
    })?;
    let claims = [
        kind_claimed_by_filename(filename),
        declared_content_type.and_then(kind_claimed_by_content_type),
    ];
    for claimed in claims.into_iter().flatten() {
        if claimed != detected {
            return Err(ExtractError::NameDoesNotMatchContent {
                filename: filename.to_string(),
                claimed: claimed.described(),
                found: detected.described(),
            });
        }
    }
    Ok(detected)
}

/// The kind the bytes are, or a description of what they look like instead.
fn sniff_kind(bytes: &[u8]) -> Result<DocumentKind, String> {
    if bytes.starts_with(PDF_SIGNATURE) {
        return Ok(DocumentKind::Pdf);
    }
    if bytes.starts_with(ZIP_SIGNATURE) {
        return sniff_zip(bytes);
    }
    if let Some(description) = describe_binary_format(bytes) {
        return Err(description.to_string());
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if text.contains('\0') => Err("binary data".to_string()),
        Ok(text) if text.starts_with("{\\rtf") => Err("an RTF document".to_string()),
        Ok(_) => Ok(DocumentKind::PlainText),
        Err(_) if bytes.contains(&0) => Err("binary data".to_string()),
        Err(_) => Err("text that is not UTF-8 encoded".to_string()),
    }
}

/// A ZIP archive is a DOCX when it holds the main document part.
fn sniff_zip(bytes: &[u8]) -> Result<DocumentKind, String> {
    let lookup = catch_unwind(|| {
        ZipArchive::new(Cursor::new(bytes))
            .map(|archive| archive.index_for_name(DOCX_DOCUMENT_PART).is_some())
    });
    match lookup {
        Ok(Ok(true)) => Ok(DocumentKind::Docx),
        Ok(Ok(false)) => Err(format!("a ZIP archive without {DOCX_DOCUMENT_PART}")),
        Ok(Err(_)) | Err(_) => Err("a damaged or incomplete ZIP archive".to_string()),
    }
}

/// Names common file formats people upload by mistake, from their signatures.
fn describe_binary_format(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 8] = [
        (b"\x89PNG\r\n\x1a\n", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"II*\x00", "a TIFF image"),
        (b"MM\x00*", "a TIFF image"),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "a legacy Word .doc or password-protected Office file",
        ),
        (b"\xFF\xFE", "UTF-16 text"),
        (b"\xFE\xFF", "UTF-16 text"),
    ];
    if bytes.get(4..8) == Some(b"ftyp") {
        return Some("a HEIC image or MP4 video");
    }
    if bytes.starts_with(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        return Some("a WebP image");
    }
    SIGNATURES
        .iter()
        .find(|(signature, _)| bytes.starts_with(signature))
        .map(|(_, description)| *description)
}

fn kind_claimed_by_filename(filename: &str) -> Option<DocumentKind> {
    let extension = filename.rsplit_once('.')?.1.to_ascii_lowercase();
    match extension.as_str() {
        "pdf" => Some(DocumentKind::Pdf),
        "docx" => Some(DocumentKind::Docx),
        _ => None,
    }
}

fn kind_claimed_by_content_type(content_type: &str) -> Option<DocumentKind> {
    let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/pdf" => Some(DocumentKind::Pdf),
        DOCX_CONTENT_TYPE => Some(DocumentKind::Docx),
        _ => None,
    }
}

/// Extracts the readable text of a document whose kind `detect_kind` decided, within the
/// default limits.
pub fn extract_text(kind: DocumentKind, bytes: &[u8]) -> Result<String, ExtractError> {
    extract_text_within(kind, bytes, &DocumentLimits::default())
}

/// Extracts the readable text of a document within `limits`.
pub fn extract_text_within(
    kind: DocumentKind,
    bytes: &[u8],
    limits: &DocumentLimits,
) -> Result<String, ExtractError> {
    let raw = match kind {
        DocumentKind::PlainText => plain_text(bytes)?,
        DocumentKind::Pdf => pdf_text(bytes, limits)?,
        DocumentKind::Docx => docx_text(bytes, limits)?,
    };
    let text = normalise_whitespace(&raw);
    if text.len() as u64 > limits.max_text_bytes {
        return Err(limits.text_limit_error());
    }
    Ok(text)
}

fn plain_text(bytes: &[u8]) -> Result<String, ExtractError> {
    let text = std::str::from_utf8(bytes).map_err(|error| ExtractError::TextNotUtf8 {
        offset: error.valid_up_to(),
    })?;
    if text.contains('\0') {
        return Err(ExtractError::TextContainsNul);
    }
    Ok(text.strip_prefix('\u{FEFF}').unwrap_or(text).to_string())
}

/// Text the PDF extractor writes, refused past a cap so a page cannot produce unbounded output.
struct CappedText {
    bytes: Vec<u8>,
    cap: usize,
    exceeded: bool,
}

impl Write for CappedText {
    fn write(&mut self, buffer: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buffer.len() > self.cap {
            self.exceeded = true;
            return Err(std::io::Error::other("extracted text limit reached"));
        }
        self.bytes.extend_from_slice(buffer);
        Ok(buffer.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn unreadable_pdf(reason: impl ToString) -> ExtractError {
    ExtractError::UnreadablePdf {
        reason: reason.to_string(),
    }
}

/// Checks the raw file against the limits, loads it, checks its pages, then extracts the text
/// into a capped buffer.
fn pdf_text(bytes: &[u8], limits: &DocumentLimits) -> Result<String, ExtractError> {
    let scan = pdf_guard::scan_file(bytes, limits)?;
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let mut document = lopdf::Document::load_mem(bytes).map_err(unreadable_pdf)?;
        if document.is_encrypted() {
            document.decrypt("").map_err(unreadable_pdf)?;
        }
        pdf_guard::check_pages(&document, &scan, limits)?;
        let mut sink = CappedText {
            bytes: Vec::new(),
            cap: limits.max_raw_text_bytes(),
            exceeded: false,
        };
        let written = {
            let writer: &mut dyn Write = &mut sink;
            let mut output = pdf_extract::PlainTextOutput::new(writer);
            pdf_extract::output_doc(&document, &mut output)
        };
        if sink.exceeded {
            return Err(limits.text_limit_error());
        }
        written.map_err(unreadable_pdf)?;
        Ok(String::from_utf8_lossy(&sink.bytes).into_owned())
    }));
    let text =
        parsed.unwrap_or_else(|_| Err(unreadable_pdf("the PDF parser failed on its structure")))?;
    if text.trim().is_empty() {
        return Err(ExtractError::PdfWithoutText);
    }
    Ok(text)
}

fn docx_text(bytes: &[u8], limits: &DocumentLimits) -> Result<String, ExtractError> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let xml = read_docx_document_part(bytes, limits)?;
        document_xml_text(&xml, limits)
    }));
    parsed.unwrap_or_else(|_| {
        Err(ExtractError::UnreadableDocx {
            reason: "the DOCX parser failed on its structure".to_string(),
        })
    })
}

fn unreadable_docx(reason: String) -> ExtractError {
    ExtractError::UnreadableDocx { reason }
}

fn read_docx_document_part(bytes: &[u8], limits: &DocumentLimits) -> Result<Vec<u8>, ExtractError> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|error| unreadable_docx(format!("it is not a valid ZIP archive ({error})")))?;
    let part = match archive.by_name(DOCX_DOCUMENT_PART) {
        Ok(part) => part,
        Err(ZipError::FileNotFound) => return Err(ExtractError::DocxWithoutDocument),
        Err(error) => {
            return Err(unreadable_docx(format!(
                "{DOCX_DOCUMENT_PART} could not be unpacked ({error})"
            )))
        }
    };
    let mut xml = Vec::new();
    part.take(limits.max_decompressed_bytes + 1)
        .read_to_end(&mut xml)
        .map_err(|error| {
            unreadable_docx(format!(
                "{DOCX_DOCUMENT_PART} could not be unpacked ({error})"
            ))
        })?;
    if xml.len() as u64 > limits.max_decompressed_bytes {
        return Err(ExtractError::Limit(LimitExceeded::new(
            Limit::DecompressedBytes,
            limits.max_decompressed_bytes,
            format!("the DOCX's {DOCX_DOCUMENT_PART} inflates to more than"),
            "split the document and upload the parts",
        )));
    }
    Ok(xml)
}

const WORDPROCESSING_NAMESPACES: [&[u8]; 2] = [
    b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    b"http://purl.oclc.org/ooxml/wordprocessingml/main",
];
const MARKUP_COMPATIBILITY_NAMESPACE: &[u8] =
    b"http://schemas.openxmlformats.org/markup-compatibility/2006";

/// Where the reader is in the document while collecting text.
#[derive(Debug, Default)]
struct DocxTextCollector {
    text: String,
    /// Inside a `w:t` element, whose character data is document text.
    in_text_element: bool,
    /// Nesting depth of `w:r` runs; tabs and breaks only count inside a run
    /// (`w:tab` also defines tab stops in paragraph properties).
    run_depth: usize,
    /// Nesting depth of `mc:Fallback`, which repeats content already read from `mc:Choice`.
    fallback_depth: usize,
}

impl DocxTextCollector {
    fn start_word_element(&mut self, local_name: &[u8]) {
        match local_name {
            b"t" => self.in_text_element = true,
            b"r" => self.run_depth += 1,
            _ => self.run_content_element(local_name),
        }
    }

    fn empty_word_element(&mut self, local_name: &[u8]) {
        match local_name {
            b"p" => self.text.push('\n'),
            _ => self.run_content_element(local_name),
        }
    }

    /// Elements inside a run that stand for a character.
    fn run_content_element(&mut self, local_name: &[u8]) {
        if self.run_depth == 0 {
            return;
        }
        match local_name {
            b"tab" | b"ptab" => self.text.push('\t'),
            b"br" | b"cr" => self.text.push('\n'),
            b"noBreakHyphen" => self.text.push('-'),
            _ => {}
        }
    }

    fn end_word_element(&mut self, local_name: &[u8]) {
        match local_name {
            b"t" => self.in_text_element = false,
            b"r" => self.run_depth = self.run_depth.saturating_sub(1),
            b"p" => self.text.push('\n'),
            _ => {}
        }
    }
}

fn is_wordprocessing_namespace(namespace: &ResolveResult) -> bool {
    matches!(namespace, ResolveResult::Bound(Namespace(uri)) if WORDPROCESSING_NAMESPACES.contains(uri))
}

fn is_fallback_element(namespace: &ResolveResult, local_name: &[u8]) -> bool {
    local_name == b"Fallback"
        && matches!(namespace, ResolveResult::Bound(Namespace(uri)) if *uri == MARKUP_COMPATIBILITY_NAMESPACE)
}

/// Reads the paragraphs of `word/document.xml`: `w:t` text, `w:tab` tabs, `w:br` breaks,
/// one line per `w:p` paragraph.
fn document_xml_text(xml: &[u8], limits: &DocumentLimits) -> Result<String, ExtractError> {
    let malformed = |error: quick_xml::Error| {
        unreadable_docx(format!(
            "{DOCX_DOCUMENT_PART} is not well-formed XML ({error})"
        ))
    };
    let mut reader = NsReader::from_reader(xml);
    let mut buffer = Vec::new();
    let mut collector = DocxTextCollector::default();
    loop {
        let (namespace, event) = reader
            .read_resolved_event_into(&mut buffer)
            .map_err(malformed)?;
        let is_word = is_wordprocessing_namespace(&namespace);
        match event {
            Event::Start(element) => {
                let local_name = element.local_name();
                if is_fallback_element(&namespace, local_name.as_ref()) {
                    collector.fallback_depth += 1;
                } else if is_word && collector.fallback_depth == 0 {
                    collector.start_word_element(local_name.as_ref());
                }
            }
            Event::Empty(element) if is_word && collector.fallback_depth == 0 => {
                collector.empty_word_element(element.local_name().as_ref());
            }
            Event::End(element) => {
                let local_name = element.local_name();
                if is_fallback_element(&namespace, local_name.as_ref()) {
                    collector.fallback_depth = collector.fallback_depth.saturating_sub(1);
                } else if is_word && collector.fallback_depth == 0 {
                    collector.end_word_element(local_name.as_ref());
                }
            }
            Event::Text(text) if collector.in_text_element && collector.fallback_depth == 0 => {
                collector
                    .text
                    .push_str(&text.unescape().map_err(malformed)?);
            }
            Event::CData(data) if collector.in_text_element && collector.fallback_depth == 0 => {
                collector.text.push_str(&String::from_utf8_lossy(&data));
            }
            Event::Eof => break,
            _ => {}
        }
        if collector.text.len() > limits.max_raw_text_bytes() {
            return Err(limits.text_limit_error());
        }
        buffer.clear();
    }
    Ok(collector.text)
}

/// Unifies line endings, drops control characters, trims trailing spaces and keeps at most
/// two blank lines in a row; leading blank lines and trailing whitespace are removed.
fn normalise_whitespace(text: &str) -> String {
    let unified = text.replace("\r\n", "\n").replace(['\r', '\u{C}'], "\n");
    let mut normalised = String::with_capacity(unified.len());
    let mut blank_lines_in_a_row = 0;
    for line in unified.split('\n') {
        let cleaned: String = line
            .chars()
            .filter(|character| *character == '\t' || !character.is_control())
            .collect();
        let trimmed = cleaned.trim_end();
        if trimmed.is_empty() {
            blank_lines_in_a_row += 1;
            if blank_lines_in_a_row > 2 || normalised.is_empty() {
                continue;
            }
        } else {
            blank_lines_in_a_row = 0;
        }
        normalised.push_str(trimmed);
        normalised.push('\n');
    }
    normalised.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support::{
        sample_letter, sample_letterhead, squash_whitespace, tiny_png_rgb, FIRM_NAME,
        PARAGRAPH_SENTENCE,
    };
    use crate::export::{render_docx, render_pdf};
    use crate::model::format_cents;
    use lopdf::{dictionary, Dictionary};
    use std::io::Write;
    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

    fn zip_of(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        for (name, content) in parts {
            zip.start_file(*name, SimpleFileOptions::default()).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;

    /// A DOCX as Word writes it: tab stops in paragraph properties, runs split mid-word,
    /// entities, deleted text, a table and a text box repeated in a compatibility fallback.
    fn hand_built_docx() -> Vec<u8> {
        let document = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006">
  <w:body>
    <w:p><w:pPr><w:tabs><w:tab w:val="left" w:pos="720"/></w:tabs></w:pPr>
      <w:r><w:t>INVOICE</w:t></w:r><w:r><w:tab/><w:t xml:space="preserve">No. 4471 </w:t></w:r>
    </w:p>
    <w:p><w:r><w:t>Smith &amp; Sons Phys</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>iotherapy</w:t></w:r></w:p>
    <w:p><w:r><w:t>Line A</w:t><w:br/><w:t>Line B</w:t></w:r><w:del><w:r><w:delText>removed words</w:delText></w:r></w:del></w:p>
    <w:p/>
    <w:p/>
    <w:p/>
    <w:p/>
    <w:tbl><w:tr><w:tc><w:p><w:r><w:t>03/02/2025</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>$1,250.00</w:t></w:r></w:p></w:tc></w:tr></w:tbl>
    <w:p><w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing><w:txbxContent><w:p><w:r><w:t>Boxed note</w:t></w:r></w:p></w:txbxContent></w:drawing></mc:Choice><mc:Fallback><w:pict><w:txbxContent><w:p><w:r><w:t>Boxed note</w:t></w:r></w:p></w:txbxContent></w:pict></mc:Fallback></mc:AlternateContent></w:r></w:p>
    <w:sectPr/>
  </w:body>
</w:document>"#;
        zip_of(&[
            ("[Content_Types].xml", CONTENT_TYPES),
            ("word/document.xml", document),
        ])
    }

    /// A one-page PDF written with lopdf directly, so extraction is not only tested on our own writer.
    fn lopdf_built_pdf(lines: &[&str]) -> Vec<u8> {
        let font = dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Times-Roman",
        };
        lopdf_built_pdf_with_font(lines, font)
    }

    fn lopdf_built_pdf_with_font(lines: &[&str], font: Dictionary) -> Vec<u8> {
        use lopdf::content::{Content, Operation};
        use lopdf::{Document, Object, Stream};
        let mut document = Document::with_version("1.4");
        let pages_id = document.new_object_id();
        let font_id = document.add_object(font);
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 12.into()]),
            Operation::new("TL", vec![16.into()]),
            Operation::new("Td", vec![72.into(), 700.into()]),
        ];
        for line in lines {
            operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
            operations.push(Operation::new("T*", vec![]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations }.encode().unwrap();
        let content_id = document.add_object(Stream::new(dictionary! {}, content));
        let page_id = document.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
            "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        });
        document.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => vec![page_id.into()],
                "Count" => 1,
            }),
        );
        let catalog_id = document.add_object(dictionary! {
            "Type" => "Catalog",
            "Pages" => pages_id,
        });
        document.trailer.set("Root", catalog_id);
        let mut bytes = Vec::new();
        document.save_to(&mut bytes).unwrap();
        bytes
    }

    fn sample_pdf() -> Vec<u8> {
        render_pdf(&sample_letter(), &sample_letterhead(None)).unwrap()
    }

    #[test]
    fn kinds_have_stable_names_and_content_types() {
        for kind in [
            DocumentKind::PlainText,
            DocumentKind::Pdf,
            DocumentKind::Docx,
        ] {
            assert_eq!(DocumentKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(DocumentKind::Pdf.content_type(), "application/pdf");
        assert!(DocumentKind::PlainText
            .content_type()
            .starts_with("text/plain"));
        assert!(DocumentKind::Docx
            .content_type()
            .ends_with("wordprocessingml.document"));
    }

    #[test]
    fn detects_each_kind_from_its_bytes() {
        assert_eq!(
            detect_kind("letter.pdf", Some("application/pdf"), &sample_pdf()).unwrap(),
            DocumentKind::Pdf
        );
        assert_eq!(
            detect_kind("notes.docx", None, &hand_built_docx()).unwrap(),
            DocumentKind::Docx
        );
        assert_eq!(
            detect_kind(
                "notes.txt",
                Some("text/plain"),
                "Bill: $40 \u{2014} paid".as_bytes()
            )
            .unwrap(),
            DocumentKind::PlainText
        );
        // The bytes decide when the name claims nothing in particular.
        assert_eq!(
            detect_kind("scan", Some("application/octet-stream"), &sample_pdf()).unwrap(),
            DocumentKind::Pdf
        );
        assert_eq!(
            detect_kind("records.txt", None, &sample_pdf()).unwrap(),
            DocumentKind::Pdf
        );
    }

    #[test]
    fn rejects_images_with_a_message_naming_the_file() {
        let error = detect_kind("photo.png", Some("image/png"), &tiny_png_rgb(2, 2)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "photo.png is not a PDF, DOCX or plain-text file (it looks like a PNG image); save it as a PDF or DOCX and upload it again"
        );
        let error = detect_kind("IMG_0042.jpg", None, &[0xFF, 0xD8, 0xFF, 0xE1, 0, 0]).unwrap_err();
        assert!(error.to_string().contains("a JPEG image"), "{error}");
        let legacy_word = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\0\0\0\0";
        let error = detect_kind("old.doc", None, legacy_word).unwrap_err();
        assert!(error.to_string().contains("legacy Word .doc"), "{error}");
    }

    #[test]
    fn rejects_empty_binary_and_non_utf8_files() {
        let error = detect_kind("blank.pdf", None, b"").unwrap_err();
        assert!(matches!(error, ExtractError::EmptyFile { .. }));
        assert!(error.to_string().starts_with("blank.pdf is empty"));
        let error = detect_kind("data.bin", None, b"abc\0def").unwrap_err();
        assert!(error.to_string().contains("binary data"), "{error}");
        let error = detect_kind("latin1.txt", None, b"caf\xe9 au lait").unwrap_err();
        assert!(error.to_string().contains("not UTF-8"), "{error}");
        let error = detect_kind("memo.rtf", None, b"{\\rtf1\\ansi hello}").unwrap_err();
        assert!(error.to_string().contains("RTF"), "{error}");
    }

    #[test]
    fn rejects_names_and_declared_types_that_do_not_match_the_bytes() {
        let error = detect_kind("records.pdf", None, b"just some text").unwrap_err();
        assert_eq!(
            error.to_string(),
            "records.pdf is named as a PDF but its contents are plain text; check that you chose the right file"
        );
        let error = detect_kind("records.PDF", None, &hand_built_docx()).unwrap_err();
        assert!(
            matches!(error, ExtractError::NameDoesNotMatchContent { .. }),
            "{error}"
        );
        let error = detect_kind("notes.docx", None, &sample_pdf()).unwrap_err();
        assert!(
            error.to_string().contains("named as a DOCX document"),
            "{error}"
        );
        let error =
            detect_kind("upload", Some("application/pdf; charset=binary"), b"text").unwrap_err();
        assert!(
            matches!(error, ExtractError::NameDoesNotMatchContent { .. }),
            "{error}"
        );
    }

    #[test]
    fn zip_without_document_part_is_rejected() {
        let archive = zip_of(&[
            ("[Content_Types].xml", CONTENT_TYPES),
            ("notes.txt", "hello"),
        ]);
        let error = detect_kind("bundle.zip", None, &archive).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("a ZIP archive without word/document.xml"),
            "{error}"
        );
        let error = extract_text(DocumentKind::Docx, &archive).unwrap_err();
        assert!(matches!(error, ExtractError::DocxWithoutDocument));
        assert!(error
            .to_string()
            .starts_with("the DOCX has no word/document.xml"));
    }

    #[test]
    fn docx_text_follows_paragraphs_runs_tabs_and_breaks() {
        let text = extract_text(DocumentKind::Docx, &hand_built_docx()).unwrap();
        assert_eq!(
            text,
            "INVOICE\tNo. 4471\nSmith & Sons Physiotherapy\nLine A\nLine B\n\n\n03/02/2025\n$1,250.00\nBoxed note"
        );
    }

    #[test]
    fn docx_with_another_namespace_prefix_is_read() {
        let document = r#"<doc:document xmlns:doc="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><doc:body><doc:p><doc:r><doc:t>Prefix independent</doc:t></doc:r></doc:p><other:p xmlns:other="urn:not-word"><other:t>ignored</other:t></other:p></doc:body></doc:document>"#;
        let archive = zip_of(&[("word/document.xml", document)]);
        assert_eq!(
            extract_text(DocumentKind::Docx, &archive).unwrap(),
            "Prefix independent"
        );
    }

    #[test]
    fn damaged_docx_is_an_error() {
        let error = extract_text(DocumentKind::Docx, b"PK\x03\x04 not really a zip").unwrap_err();
        assert!(
            matches!(error, ExtractError::UnreadableDocx { .. }),
            "{error}"
        );
        let archive = zip_of(&[("word/document.xml", "<w:document xmlns:w=\"x\"><w:body>")]);
        let unclosed = extract_text(DocumentKind::Docx, &archive);
        assert!(unclosed.is_ok() || matches!(unclosed, Err(ExtractError::UnreadableDocx { .. })));
        let archive = zip_of(&[("word/document.xml", "<a><b></a>")]);
        let error = extract_text(DocumentKind::Docx, &archive).unwrap_err();
        assert!(error.to_string().contains("not well-formed XML"), "{error}");
        let mut truncated = hand_built_docx();
        truncated.truncate(truncated.len() / 2);
        assert!(extract_text(DocumentKind::Docx, &truncated).is_err());
        let error = detect_kind("notes.docx", None, &truncated).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("a damaged or incomplete ZIP archive"),
            "{error}"
        );
    }

    #[test]
    fn our_docx_round_trips() {
        let letter = sample_letter();
        let bytes = render_docx(&letter, &sample_letterhead(None)).unwrap();
        assert_eq!(
            detect_kind("letter.docx", None, &bytes).unwrap(),
            DocumentKind::Docx
        );
        let text = extract_text(DocumentKind::Docx, &bytes).unwrap();
        assert!(text.starts_with(FIRM_NAME), "{text}");
        assert!(text.contains(PARAGRAPH_SENTENCE));
        assert!(text.contains("Dear Ms. Whitfield:"));
    }

    #[test]
    fn our_pdf_round_trips() {
        let letter = sample_letter();
        let text = extract_text(DocumentKind::Pdf, &sample_pdf()).unwrap();
        let squashed = squash_whitespace(&text);
        assert!(squashed.contains(FIRM_NAME), "{text}");
        assert!(squashed.contains(PARAGRAPH_SENTENCE), "{text}");
        for section in &letter.sections {
            assert!(
                squashed.contains(&section.heading),
                "missing {:?}",
                section.heading
            );
        }
        for item in &letter.specials {
            assert!(squashed.contains(&format_cents(item.amount_cents)));
        }
        assert!(squashed.contains("Page 2 of"));
        assert!(squashed.contains("\u{201c}reasonable\u{201d}"), "{text}");
    }

    #[test]
    fn lopdf_written_pdf_is_read() {
        let bytes = lopdf_built_pdf(&["Statement of charges", "Balance due: $612.40"]);
        assert_eq!(
            detect_kind("statement.pdf", None, &bytes).unwrap(),
            DocumentKind::Pdf
        );
        let text = extract_text(DocumentKind::Pdf, &bytes).unwrap();
        assert!(text.contains("Statement of charges"), "{text:?}");
        assert!(text.contains("Balance due: $612.40"), "{text:?}");
    }

    #[test]
    fn pdf_without_text_is_an_error() {
        let bytes = lopdf_built_pdf(&[]);
        let error = extract_text(DocumentKind::Pdf, &bytes).unwrap_err();
        assert!(matches!(error, ExtractError::PdfWithoutText), "{error}");
    }

    #[test]
    fn a_panic_inside_the_pdf_parser_becomes_an_error() {
        // The PDF text extractor panics on a font dictionary without a Subtype.
        let font = dictionary! { "Type" => "Font", "BaseFont" => "Helvetica" };
        let bytes = lopdf_built_pdf_with_font(&["Total due: $88.00"], font);
        let error = extract_text(DocumentKind::Pdf, &bytes).unwrap_err();
        assert!(
            matches!(error, ExtractError::UnreadablePdf { .. }),
            "{error}"
        );
        assert!(
            error.to_string().contains("the PDF parser failed"),
            "{error}"
        );
    }

    #[test]
    fn garbage_and_truncated_pdfs_are_errors_not_panics() {
        let error = extract_text(
            DocumentKind::Pdf,
            b"%PDF-1.7\n\x00\xff garbage (((( <<< >> endobj",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the PDF could not be parsed: "),
            "{error}"
        );
        let pdf = sample_pdf();
        assert!(extract_text(DocumentKind::Pdf, &pdf[..pdf.len() / 3]).is_err());
        assert!(extract_text(DocumentKind::Pdf, b"").is_err());
        for length in (0..pdf.len()).step_by(97) {
            let _ = extract_text(DocumentKind::Pdf, &pdf[..length]);
        }
        let mut scrambled = pdf.clone();
        for index in (40..scrambled.len()).step_by(13) {
            scrambled[index] = scrambled[index].wrapping_add(31);
        }
        let _ = extract_text(DocumentKind::Pdf, &scrambled);
    }

    #[test]
    fn plain_text_is_read_as_utf8() {
        let text = extract_text(
            DocumentKind::PlainText,
            "\u{FEFF}Total \u{2014} $5\r\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(text, "Total \u{2014} $5");
        assert!(matches!(
            extract_text(DocumentKind::PlainText, b"ok\xff"),
            Err(ExtractError::TextNotUtf8 { offset: 2 })
        ));
        assert!(matches!(
            extract_text(DocumentKind::PlainText, b"a\0b"),
            Err(ExtractError::TextContainsNul)
        ));
    }

    #[test]
    fn text_past_the_limit_is_refused_naming_it() {
        let limits = DocumentLimits {
            max_text_bytes: 200,
            ..DocumentLimits::default()
        };
        let line = "Office visit 04/02/2025, $120.00";
        let lines: Vec<&str> = std::iter::repeat_n(line, 12).collect();
        let paragraphs: String = lines
            .iter()
            .map(|line| format!("<w:p><w:r><w:t>{line}</w:t></w:r></w:p>"))
            .collect();
        let document = format!(
            "<w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{paragraphs}</w:body></w:document>"
        );
        let inputs = [
            (DocumentKind::PlainText, lines.join("\n").into_bytes()),
            (DocumentKind::Pdf, lopdf_built_pdf(&lines)),
            (
                DocumentKind::Docx,
                zip_of(&[("word/document.xml", document.as_str())]),
            ),
        ];
        for (kind, bytes) in inputs {
            match extract_text_within(kind, &bytes, &limits) {
                Err(ExtractError::Limit(hit)) => {
                    assert_eq!(hit.limit, Limit::ExtractedTextBytes, "{kind:?}");
                    assert!(hit
                        .to_string()
                        .contains("extracted_text_bytes limit of 200 bytes"));
                }
                other => panic!("{kind:?}: expected the text limit, got {other:?}"),
            }
            let text = extract_text(kind, &bytes).unwrap();
            assert!(text.matches("$120.00").count() == 12, "{kind:?}: {text}");
        }
    }

    #[test]
    fn a_docx_part_past_the_decompressed_limit_is_refused() {
        let limits = DocumentLimits {
            max_decompressed_bytes: 1000,
            ..DocumentLimits::default()
        };
        let padding = " ".repeat(2000);
        let archive = zip_of(&[("word/document.xml", padding.as_str())]);
        match extract_text_within(DocumentKind::Docx, &archive, &limits) {
            Err(ExtractError::Limit(hit)) => assert_eq!(hit.limit, Limit::DecompressedBytes),
            other => panic!("expected the decompressed limit, got {other:?}"),
        }
    }

    #[test]
    fn whitespace_is_normalised_lightly() {
        assert_eq!(
            normalise_whitespace(
                "\n\n  Title   \r\nbody\t \n\n\n\n\n\nend\u{C}page two\u{7}  \n\n"
            ),
            "  Title\nbody\n\n\nend\npage two"
        );
        assert_eq!(normalise_whitespace(" \n \t\n"), "");
    }
}
