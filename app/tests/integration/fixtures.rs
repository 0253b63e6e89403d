//! Realistic source documents for the tests: a hospital bill, a physical-therapy statement, a wage
//! loss letter and a police report, as plain text, PDF (built with lopdf) and DOCX (built by hand).
#![allow(dead_code)]

use std::io::Write;

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Document, Object, Stream};

pub const HOSPITAL_BILL: &str = "Springfield General Hospital\n\
Patient statement for Jordan Rivera\n\
Account 88123\n\
03/14/2025  Emergency department visit level 4        $1,850.00\n\
03/14/2025  CT scan cervical spine                     $2,400.00\n\
03/14/2025  X-ray left wrist, 3 views                    $310.00\n\
Total charges                                          $4,560.00\n\
Amount due                                             $4,560.00\n\
Diagnosis: cervical strain and fracture of the left distal radius.\n";

pub const THERAPY_STATEMENT: &str = "Lakeside Physical Therapy\n\
Statement of services for Jordan Rivera\n\
04/02/2025  Physical therapy evaluation                  $275.00\n\
04/09/2025  Therapeutic exercise, 4 units                $190.00\n\
04/16/2025  Therapeutic exercise, 4 units                $190.00\n\
Balance due                                              $655.00\n\
Assessment: improving range of motion; continued treatment recommended.\n";

pub const WAGE_LETTER: &str = "Acme Logistics Human Resources\n\
To whom it may concern:\n\
Jordan Rivera missed 12 days of work from 03/15/2025 to 03/31/2025 due to injuries.\n\
Lost wages for 12 days at $240.00 per day, total $2,880.00.\n";

pub const POLICE_REPORT: &str = "Springfield Police Department traffic collision report\n\
Date of collision: 03/14/2025 at 5:40 PM, Main Street and 3rd Avenue.\n\
Vehicle 2, driven by Casey Morgan, failed to stop at a red signal and struck vehicle 1.\n\
Driver of vehicle 2 was cited for running a red light.\n";

/// A one-page PDF with the given lines of text in Helvetica.
pub fn pdf_with_text(text: &str) -> Vec<u8> {
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let font_id = document.add_object(dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => "Helvetica",
    });
    let resources_id = document.add_object(dictionary! {
        "Font" => dictionary! { "F1" => font_id },
    });
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 10.into()]),
        Operation::new("TL", vec![14.into()]),
        Operation::new("Td", vec![50.into(), 740.into()]),
    ];
    for line in text.lines() {
        operations.push(Operation::new("Tj", vec![Object::string_literal(line)]));
        operations.push(Operation::new("T*", vec![]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content = Content { operations };
    let content_id = document.add_object(Stream::new(
        dictionary! {},
        content.encode().expect("content encodes"),
    ));
    let page_id = document.add_object(dictionary! {
        "Type" => "Page",
        "Parent" => pages_id,
        "Contents" => content_id,
    });
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => vec![page_id.into()],
            "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
        }),
    );
    let catalog_id = document.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    document.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).expect("pdf saves");
    bytes
}

/// A minimal DOCX package with one paragraph per line.
pub fn docx_with_text(text: &str) -> Vec<u8> {
    let paragraphs: String = text
        .lines()
        .map(|line| {
            let escaped = line
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;");
            format!("<w:p><w:r><w:t xml:space=\"preserve\">{escaped}</w:t></w:r></w:p>")
        })
        .collect();
    let document_xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
         <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\"><w:body>{paragraphs}</w:body></w:document>"
    );
    let content_types = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
        <Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>\
        <Default Extension=\"xml\" ContentType=\"application/xml\"/>\
        <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>";
    let rels = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
        <Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
        <Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/></Relationships>";
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default();
        for (name, content) in [
            ("[Content_Types].xml", content_types.to_string()),
            ("_rels/.rels", rels.to_string()),
            ("word/document.xml", document_xml),
        ] {
            zip.start_file(name, options).expect("zip entry");
            zip.write_all(content.as_bytes()).expect("zip write");
        }
        zip.finish().expect("zip finish");
    }
    buffer.into_inner()
}

/// A valid 2x2 PNG image (a firm logo).
pub fn tiny_png() -> Vec<u8> {
    // Signature, IHDR (2x2, 8-bit RGB), one IDAT with zlib-compressed scanlines, IEND.
    let raw: Vec<u8> = vec![0, 200, 30, 30, 30, 30, 200, 0, 30, 200, 30, 200, 30, 30];
    let mut idat = vec![0x78, 0x01, 0x01];
    let length = raw.len() as u16;
    idat.extend_from_slice(&length.to_le_bytes());
    idat.extend_from_slice(&(!length).to_le_bytes());
    idat.extend_from_slice(&raw);
    idat.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png_chunk(&mut png, b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
    png_chunk(&mut png, b"IDAT", &idat);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc_input);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in bytes {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}
