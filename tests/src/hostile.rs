//! A corpus of hostile uploads, generated in code: PDFs nested a thousand levels deep (in the
//! file body, in content streams, in object streams, in the page tree and in forms), PDFs whose
//! pages reuse one stream or form many times, compressed streams that inflate to far more than
//! they weigh, logos of enormous pixel dimensions, and DOCX files that unpack to megabytes of
//! text. Each input names the Steno limit it must hit with the default settings.
//!
//! [`Size::Test`] keeps every file small enough for the test suite while still passing every
//! limit; [`Size::Full`] reproduces the sizes an attacker used (1 MB and 4 MB flate bombs, a
//! 1.3 MB repeated-reference PDF, a 20000x20000 logo, a 61 kB DOCX), for the benchmark.

use std::io::Write;

use flate2::write::ZlibEncoder;
use flate2::Compression;

/// Which endpoint an input is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `POST /v1/documents` (multipart part `file`).
    Document,
    /// `PUT /v1/firm/logo` (the image as the body).
    Logo,
}

/// How large the generated files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Small and quick to generate, yet past every default limit.
    Test,
    /// The attack sizes, for the benchmark.
    Full,
}

/// One hostile upload.
#[derive(Debug, Clone)]
pub struct HostileInput {
    /// A stable identifier, such as `pdf-nesting-arrays-body`.
    pub name: &'static str,
    /// The class of attack: nesting, repeated references, flate bomb, huge logo, text bomb.
    pub class: &'static str,
    pub target: Target,
    pub filename: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
    /// The limit Steno must name (`error.limit.name`) with its default settings.
    pub expected_limit: &'static str,
}

const MIB: usize = 1024 * 1024;
/// Deeper than any parser's stack allows in a debug build; the issue's files nested ~1,000.
const NESTING: usize = 1000;

/// The whole corpus.
pub fn corpus(size: Size) -> Vec<HostileInput> {
    let mut inputs = Vec::new();
    inputs.extend(nesting_pdfs());
    inputs.extend(repeated_reference_pdfs(size));
    inputs.extend(flate_bomb_pdfs(size));
    inputs.extend(huge_logos(size));
    inputs.extend(text_bombs(size));
    inputs
}

fn pdf_input(
    name: &'static str,
    class: &'static str,
    bytes: Vec<u8>,
    expected_limit: &'static str,
) -> HostileInput {
    HostileInput {
        name,
        class,
        target: Target::Document,
        filename: format!("{name}.pdf"),
        content_type: "application/pdf",
        bytes,
        expected_limit,
    }
}

/// zlib-compresses `length` copies of `byte`, fed in 1 MiB pieces so nothing large is held.
pub fn zlib_of_repeated(byte: u8, length: usize) -> Vec<u8> {
    let piece = vec![byte; MIB.min(length.max(1))];
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    let mut left = length;
    while left > 0 {
        let take = left.min(piece.len());
        encoder
            .write_all(&piece[..take])
            .expect("compressing in memory");
        left -= take;
    }
    encoder.finish().expect("compressing in memory")
}

pub fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("compressing in memory");
    encoder.finish().expect("compressing in memory")
}

/// A stream object's body: its dictionary (without `<<`/`>>`; `/Length` is added) and data.
pub fn stream_object(dictionary: &str, data: &[u8]) -> Vec<u8> {
    let mut object = format!("<< {dictionary} /Length {} >>\nstream\n", data.len()).into_bytes();
    object.extend_from_slice(data);
    object.extend_from_slice(b"\nendstream");
    object
}

/// Writes a PDF whose object `n` (1-based) is `objects[n - 1]`, with a correct xref table.
/// Object 1 must be the catalog.
pub fn pdf_file(objects: &[Vec<u8>]) -> Vec<u8> {
    let mut file = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, body) in objects.iter().enumerate() {
        offsets.push(file.len());
        file.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        file.extend_from_slice(body);
        file.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = file.len();
    file.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        file.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    file.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    file
}

const CATALOG: &str = "<< /Type /Catalog /Pages 2 0 R >>";
const FONT: &str = "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>";

/// A one-page PDF: catalog 1, pages 2, page 3 (contents and resources as given), font 4,
/// then `extra` objects from 5 on.
fn one_page_pdf(contents: &str, resources_extra: &str, extra: Vec<Vec<u8>>) -> Vec<u8> {
    let mut objects = vec![
        CATALOG.as_bytes().to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {contents} \
             /Resources << /Font << /F1 4 0 R >> {resources_extra} >> >>"
        )
        .into_bytes(),
        FONT.as_bytes().to_vec(),
    ];
    objects.extend(extra);
    pdf_file(&objects)
}

/// Page content that shows one line of text.
const TEXT_LINE: &str = "BT /F1 12 Tf 72 700 Td (Statement of charges) Tj ET\n";

fn nesting_pdfs() -> Vec<HostileInput> {
    let arrays = format!("{}{}", "[".repeat(NESTING), "]".repeat(NESTING));
    let dictionaries = format!("{}{}", "<< /A ".repeat(NESTING), ">> ".repeat(NESTING));
    let content_arrays = format!("BT /F1 12 Tf 72 700 Td {arrays} TJ ET");
    let content_dictionaries = format!("/Span {dictionaries} BDC {TEXT_LINE} EMC");
    let content_strings = format!(
        "BT /F1 12 Tf 72 700 Td {}x{} Tj ET",
        "(".repeat(NESTING),
        ")".repeat(NESTING)
    );
    // An object stream holding one deeply nested object (number 6).
    let object_stream_data = format!("6 0 {arrays}");
    // A page whose parent is a pages node that is its own parent; the page inherits its
    // media box, so a parser following `Parent` for it never stops.
    let looping_tree = pdf_file(&[
        CATALOG.as_bytes().to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 6 0 R /Contents 5 0 R >>".to_vec(),
        FONT.as_bytes().to_vec(),
        stream_object("", TEXT_LINE.as_bytes()),
        b"<< /Type /Pages /Parent 6 0 R /Kids [3 0 R] /Count 1 >>".to_vec(),
    ]);
    vec![
        pdf_input(
            "pdf-nesting-arrays-body",
            "nesting",
            one_page_pdf(
                "5 0 R",
                "",
                vec![
                    stream_object("", TEXT_LINE.as_bytes()),
                    arrays.clone().into_bytes(),
                ],
            ),
            "nesting_depth",
        ),
        pdf_input(
            "pdf-nesting-dictionaries-body",
            "nesting",
            one_page_pdf(
                "5 0 R",
                "",
                vec![
                    stream_object("", TEXT_LINE.as_bytes()),
                    dictionaries.clone().into_bytes(),
                ],
            ),
            "nesting_depth",
        ),
        pdf_input(
            "pdf-nesting-arrays-content",
            "nesting",
            one_page_pdf(
                "5 0 R",
                "",
                vec![stream_object("", content_arrays.as_bytes())],
            ),
            "nesting_depth",
        ),
        pdf_input(
            "pdf-nesting-dictionaries-content-flate",
            "nesting",
            one_page_pdf(
                "5 0 R",
                "",
                vec![stream_object(
                    "/Filter /FlateDecode",
                    &zlib(content_dictionaries.as_bytes()),
                )],
            ),
            "nesting_depth",
        ),
        pdf_input(
            "pdf-nesting-strings-content",
            "nesting",
            one_page_pdf(
                "5 0 R",
                "",
                vec![stream_object("", content_strings.as_bytes())],
            ),
            "nesting_depth",
        ),
        pdf_input(
            "pdf-nesting-object-stream",
            "nesting",
            one_page_pdf(
                "5 0 R",
                "",
                vec![
                    stream_object("", TEXT_LINE.as_bytes()),
                    stream_object(
                        "/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode",
                        &zlib(object_stream_data.as_bytes()),
                    ),
                ],
            ),
            "nesting_depth",
        ),
        pdf_input(
            "pdf-nesting-page-tree-loop",
            "nesting",
            looping_tree,
            "nesting_depth",
        ),
        pdf_input(
            "pdf-nesting-form-draws-itself",
            "nesting",
            one_page_pdf(
                "5 0 R",
                "/XObject << /X 6 0 R >>",
                vec![
                    stream_object("", format!("{TEXT_LINE}/X Do").as_bytes()),
                    stream_object(
                        "/Type /XObject /Subtype /Form /BBox [0 0 612 792] \
                         /Resources << /XObject << /X 6 0 R >> >>",
                        b"/X Do",
                    ),
                ],
            ),
            "nesting_depth",
        ),
    ]
}

/// Drawing operations that show nothing, `bytes` long: a content stream that costs a text
/// extractor work (and, decoded as operations, memory) but yields no text.
fn path_operations(bytes: usize) -> Vec<u8> {
    let line = b"10 10 m 20 20 l S\n";
    line.iter().copied().cycle().take(bytes).collect()
}

fn repeated_reference_pdfs(size: Size) -> Vec<HostileInput> {
    // Full size: 200,000 references of 6 bytes (1.2 MB) to a 1 MiB stream: 200 GB to process.
    let references = match size {
        Size::Test => 20_000,
        Size::Full => 200_000,
    };
    let shared = stream_object("/Filter /FlateDecode", &zlib(&path_operations(MIB)));
    let contents = format!("[5 0 R {}]", "6 0 R ".repeat(references));
    let repeated_contents = one_page_pdf(
        &contents,
        "",
        vec![stream_object("", TEXT_LINE.as_bytes()), shared.clone()],
    );
    let draws = format!("{TEXT_LINE}{}", "/X Do\n".repeat(references));
    let repeated_draws = one_page_pdf(
        "5 0 R",
        "/XObject << /X 6 0 R >>",
        vec![
            stream_object("/Filter /FlateDecode", &zlib(draws.as_bytes())),
            stream_object(
                "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Filter /FlateDecode",
                &zlib(&path_operations(MIB)),
            ),
        ],
    );
    // Forms drawing forms: each level draws the next 64 times, six levels deep (64^6 draws).
    let levels = 6;
    let mut forms = Vec::new();
    for level in 0..levels {
        let next = 7 + level;
        let (resources, content) = if level + 1 < levels {
            (
                format!("/Resources << /XObject << /N {next} 0 R >> >>"),
                "/N Do\n".repeat(64),
            )
        } else {
            (String::new(), "10 10 m 20 20 l S\n".to_string())
        };
        forms.push(stream_object(
            &format!("/Type /XObject /Subtype /Form /BBox [0 0 612 792] {resources}"),
            content.as_bytes(),
        ));
    }
    let mut fan_out_objects = vec![stream_object("", format!("{TEXT_LINE}/N Do").as_bytes())];
    fan_out_objects.extend(forms);
    let fan_out = one_page_pdf("5 0 R", "/XObject << /N 6 0 R >>", fan_out_objects);
    vec![
        pdf_input(
            "pdf-repeated-content-references",
            "repeated references",
            repeated_contents,
            "page_content_bytes",
        ),
        pdf_input(
            "pdf-repeated-form-draws",
            "repeated references",
            repeated_draws,
            "page_content_bytes",
        ),
        pdf_input(
            "pdf-repeated-form-fan-out",
            "repeated references",
            fan_out,
            "page_content_bytes",
        ),
    ]
}

fn flate_bomb_pdfs(size: Size) -> Vec<HostileInput> {
    // Full size: 1 GiB in about 1 MB, and 4 GiB in about 4 MB, as in the attack.
    let (one_stream, big_stream, piece) = match size {
        Size::Test => (80 * MIB, 80 * MIB, 24 * MIB),
        Size::Full => (1024 * MIB, 4096 * MIB, 256 * MIB),
    };
    let content_bomb = zlib_of_repeated(b' ', one_stream);
    let content = one_page_pdf(
        "[5 0 R 6 0 R]",
        "",
        vec![
            stream_object("", TEXT_LINE.as_bytes()),
            stream_object("/Filter /FlateDecode", &content_bomb),
        ],
    );
    let large = one_page_pdf(
        "[5 0 R 6 0 R]",
        "",
        vec![
            stream_object("", TEXT_LINE.as_bytes()),
            stream_object("/Filter /FlateDecode", &zlib_of_repeated(b' ', big_stream)),
        ],
    );
    let double = one_page_pdf(
        "[5 0 R 6 0 R]",
        "",
        vec![
            stream_object("", TEXT_LINE.as_bytes()),
            stream_object("/Filter [/FlateDecode /FlateDecode]", &zlib(&content_bomb)),
        ],
    );
    let object_stream = one_page_pdf(
        "5 0 R",
        "",
        vec![
            stream_object("", TEXT_LINE.as_bytes()),
            stream_object("/Type /ObjStm /N 1 /First 4 /Filter /FlateDecode", &{
                let mut data = b"7 0 null".to_vec();
                data.extend(std::iter::repeat_n(b' ', 16));
                let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
                encoder.write_all(&data).unwrap();
                let spaces = vec![b' '; MIB];
                for _ in 0..one_stream / MIB {
                    encoder.write_all(&spaces).unwrap();
                }
                encoder.finish().unwrap()
            }),
        ],
    );
    let piece_bomb = zlib_of_repeated(b' ', piece);
    let many_object_streams = one_page_pdf(
        "5 0 R",
        "",
        vec![
            stream_object("", TEXT_LINE.as_bytes()),
            stream_object(
                "/Type /ObjStm /N 0 /First 0 /Filter /FlateDecode",
                &piece_bomb,
            ),
            stream_object(
                "/Type /ObjStm /N 0 /First 0 /Filter /FlateDecode",
                &piece_bomb,
            ),
            stream_object(
                "/Type /ObjStm /N 0 /First 0 /Filter /FlateDecode",
                &piece_bomb,
            ),
            stream_object(
                "/Type /ObjStm /N 0 /First 0 /Filter /FlateDecode",
                &piece_bomb,
            ),
        ],
    );
    // An embedded Type 1 font program that inflates enormously; extractors decode font files.
    let font_file = pdf_file(&[
        CATALOG.as_bytes().to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R \
          /Resources << /Font << /F1 4 0 R >> >> >>"
            .to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Bomb /FirstChar 32 /LastChar 32 /Widths [250] \
          /FontDescriptor 6 0 R >>"
            .to_vec(),
        stream_object("", TEXT_LINE.as_bytes()),
        b"<< /Type /FontDescriptor /FontName /Bomb /Flags 32 /FontBBox [0 0 1000 1000] \
          /ItalicAngle 0 /Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 /FontFile 7 0 R >>"
            .to_vec(),
        stream_object(
            "/Length1 100 /Length2 0 /Length3 0 /Filter /FlateDecode",
            &content_bomb,
        ),
    ]);
    vec![
        pdf_input(
            "pdf-flate-bomb-content",
            "flate bomb",
            content,
            "decompressed_bytes",
        ),
        pdf_input(
            "pdf-flate-bomb-large",
            "flate bomb",
            large,
            "decompressed_bytes",
        ),
        pdf_input(
            "pdf-flate-bomb-double-filter",
            "flate bomb",
            double,
            "decompressed_bytes",
        ),
        pdf_input(
            "pdf-flate-bomb-object-stream",
            "flate bomb",
            object_stream,
            "decompressed_bytes",
        ),
        pdf_input(
            "pdf-flate-bomb-many-object-streams",
            "flate bomb",
            many_object_streams,
            "decompressed_bytes",
        ),
        pdf_input(
            "pdf-flate-bomb-font-file",
            "flate bomb",
            font_file,
            "decompressed_bytes",
        ),
    ]
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

/// A real, decodable PNG of white pixels: `bit_depth` 1 greyscale (colour type 0) or 8-bit RGB
/// (colour type 2). Rows are generated one at a time into the compressor.
pub fn blank_png(width: u32, height: u32, rgb: bool) -> Vec<u8> {
    let (bit_depth, colour_type, row_bytes) = if rgb {
        (8u8, 2u8, width as usize * 3)
    } else {
        (1u8, 0u8, (width as usize).div_ceil(8))
    };
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[bit_depth, colour_type, 0, 0, 0]);
    let mut row = vec![0xFFu8; row_bytes + 1];
    row[0] = 0; // filter type "none"
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    for _ in 0..height {
        encoder.write_all(&row).expect("compressing in memory");
    }
    let image_data = encoder.finish().expect("compressing in memory");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png_chunk(&mut png, b"IHDR", &header);
    png_chunk(&mut png, b"IDAT", &image_data);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// A baseline JPEG header claiming `width` x `height`, with a tiny scan after it. Steno never
/// decodes JPEGs; a viewer would try to allocate the whole frame.
pub fn huge_jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    jpeg.extend_from_slice(b"JFIF\0");
    jpeg.extend_from_slice(&[0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00]);
    jpeg.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    jpeg.extend_from_slice(&[1u8; 64]);
    jpeg.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 0x08]);
    jpeg.extend_from_slice(&height.to_be_bytes());
    jpeg.extend_from_slice(&width.to_be_bytes());
    jpeg.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
    for table_class_and_id in [0x00, 0x10] {
        jpeg.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, table_class_and_id, 0x01]);
        jpeg.extend_from_slice(&[0u8; 15]);
        jpeg.push(0x00);
    }
    jpeg.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
    jpeg.extend_from_slice(&[0x00, 0xFF, 0xD9]);
    jpeg
}

fn logo_input(name: &'static str, bytes: Vec<u8>, content_type: &'static str) -> HostileInput {
    HostileInput {
        name,
        class: "huge logo",
        target: Target::Logo,
        filename: name.to_string(),
        content_type,
        bytes,
        expected_limit: "logo_dimension_pixels",
    }
}

fn huge_logos(size: Size) -> Vec<HostileInput> {
    // Full size: 20000 x 20000 RGB, as uploaded in the attack (about 1.2 MB of PNG).
    let square = match size {
        Size::Test => blank_png(20_000, 20_000, false),
        Size::Full => blank_png(20_000, 20_000, true),
    };
    vec![
        logo_input("logo-png-20000x20000", square, "image/png"),
        logo_input(
            "logo-png-banner-60000x8",
            blank_png(60_000, 8, true),
            "image/png",
        ),
        logo_input(
            "logo-jpeg-60000x60000",
            huge_jpeg(60_000, 60_000),
            "image/jpeg",
        ),
    ]
}

/// A DOCX whose `word/document.xml` is `document`, compressed.
pub fn docx_with_document(document: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9));
    zip.start_file("[Content_Types].xml", options).unwrap();
    zip.write_all(
        br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
    )
    .unwrap();
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(document).unwrap();
    zip.finish().unwrap().into_inner()
}

const DOCX_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#;
const DOCX_CLOSE: &str = "</w:body></w:document>";

fn text_bombs(size: Size) -> Vec<HostileInput> {
    // Full size: about 63 MB of text in about 61 kB, as in the attack.
    let text_bytes = match size {
        Size::Test => 8 * MIB,
        Size::Full => 63 * 1000 * 1000,
    };
    // Paragraphs of about 4 kB of text each, so the markup adds little to the text.
    let sentence = "Emergency department visit level 4 billed at $1,850.00 on 03/14/2025. ";
    let paragraph = format!("<w:p><w:r><w:t>{}</w:t></w:r></w:p>", sentence.repeat(56));
    let visible = sentence.len() * 56;
    let mut many = DOCX_OPEN.to_string();
    for _ in 0..text_bytes / visible {
        many.push_str(&paragraph);
    }
    many.push_str(DOCX_CLOSE);
    let mut one_run = format!("{DOCX_OPEN}<w:p><w:r><w:t>");
    one_run.push_str(&"A".repeat(text_bytes));
    one_run.push_str(&format!("</w:t></w:r></w:p>{DOCX_CLOSE}"));
    // Markup that unpacks past the decompressed limit without any text at all.
    let mut markup = DOCX_OPEN.to_string();
    markup.push_str(&"<w:p/>".repeat(80 * MIB / 6));
    markup.push_str(DOCX_CLOSE);
    let docx = |name: &'static str, document: &str, expected_limit: &'static str| HostileInput {
        name,
        class: "text bomb",
        target: Target::Document,
        filename: format!("{name}.docx"),
        content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        bytes: docx_with_document(document.as_bytes()),
        expected_limit,
    };
    vec![
        docx("docx-text-bomb-paragraphs", &many, "extracted_text_bytes"),
        docx("docx-text-bomb-one-run", &one_run, "extracted_text_bytes"),
        docx("docx-markup-bomb", &markup, "decompressed_bytes"),
        HostileInput {
            name: "text-too-long",
            class: "text bomb",
            target: Target::Document,
            filename: "notes.txt".to_string(),
            content_type: "text/plain",
            bytes: "Office visit $120.00 on 04/02/2025.\n"
                .repeat(3 * MIB / 36)
                .into_bytes(),
            expected_limit: "extracted_text_bytes",
        },
    ]
}
