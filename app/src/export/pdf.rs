//! PDF export: lays a letter draft out on US Letter pages in builtin Helvetica (WinAnsi), with the logo, page breaks and "Page N of M" footers, and writes it with lopdf.

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Dictionary, Document, Object, Stream, StringFormat};

use super::logo::decode_png;
use super::{
    jpeg_header, specials_totals, ExportError, ImageFormat, Letterhead, LogoImage, SpecialsRow,
    SPECIALS_COLUMN_TITLES, SPECIALS_TABLE_TITLE,
};
use crate::model::{format_long_date, LetterDraft};

const PAGE_WIDTH: f32 = 612.0;
const PAGE_HEIGHT: f32 = 792.0;
const MARGIN: f32 = 72.0;
const TEXT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
const TOP_OF_TEXT: f32 = PAGE_HEIGHT - MARGIN;
const FOOTER_BASELINE: f32 = 40.0;
const FOOTER_SIZE: f32 = 9.0;

/// Widths of the specials table columns; they add up to the text width.
const SPECIALS_COLUMN_WIDTHS: [f32; 5] = [58.0, 62.0, 160.0, 118.0, 70.0];
const CELL_PADDING: f32 = 3.0;
const TABLE_RULE_GREY: f32 = 0.6;

const LOGO_RESOURCE_NAME: &str = "Logo";

/// How a run of text is set: font, size, line spacing and the space left after it.
#[derive(Debug, Clone, Copy)]
struct TextStyle {
    font: Font,
    size: f32,
    leading: f32,
    space_after: f32,
}

const BODY: TextStyle = TextStyle {
    font: Font::Regular,
    size: 11.0,
    leading: 14.5,
    space_after: 8.0,
};
const HEADING: TextStyle = TextStyle {
    font: Font::Bold,
    space_after: 3.0,
    ..BODY
};
const BLOCK_LINE: TextStyle = TextStyle {
    space_after: 0.0,
    ..BODY
};
const FIRM_NAME: TextStyle = TextStyle {
    font: Font::Bold,
    size: 18.0,
    leading: 22.0,
    space_after: 2.0,
};
const ADDRESS: TextStyle = TextStyle {
    font: Font::Regular,
    size: 9.0,
    leading: 11.5,
    space_after: 0.0,
};
const TABLE_TEXT: TextStyle = TextStyle {
    font: Font::Regular,
    size: 9.0,
    leading: 11.0,
    space_after: 0.0,
};
const TABLE_HEADER: TextStyle = TextStyle {
    font: Font::Bold,
    ..TABLE_TEXT
};

pub(super) fn render(
    letter: &LetterDraft,
    letterhead: &Letterhead,
) -> Result<Vec<u8>, ExportError> {
    let logo = match &letterhead.logo {
        Some(logo) => Some(EmbeddedLogo::new(logo)?),
        None => None,
    };
    let mut layout = Layout::new();
    write_letterhead(&mut layout, letterhead, logo.as_ref());
    write_opening(&mut layout, letter);
    for section in &letter.sections {
        layout.keep_together(HEADING.leading + 2.0 * BODY.leading);
        layout.paragraph(&section.heading, HEADING);
        for text in &section.paragraphs {
            layout.paragraph(text, BODY);
        }
    }
    if !letter.specials.is_empty() {
        write_specials_table(&mut layout, letter);
    }
    write_closing(&mut layout, letter);
    write_document(layout.finish(), logo)
}

fn write_letterhead(layout: &mut Layout, letterhead: &Letterhead, logo: Option<&EmbeddedLogo>) {
    if let Some(logo) = logo {
        layout.image(LOGO_RESOURCE_NAME, logo.display_width, logo.display_height);
        layout.vertical_space(8.0);
    }
    layout.paragraph(&letterhead.firm_name, FIRM_NAME);
    for line in &letterhead.address_lines {
        layout.paragraph(line, ADDRESS);
    }
    layout.vertical_space(6.0);
    layout.horizontal_rule(0.75, 0.0);
    layout.vertical_space(22.0);
}

fn write_opening(layout: &mut Layout, letter: &LetterDraft) {
    layout.paragraph(&format_long_date(letter.letter_date), BODY);
    layout.vertical_space(BODY.leading - BODY.space_after);
    write_line_block(layout, &letter.recipient, BLOCK_LINE);
    write_line_block(
        layout,
        &letter.reference,
        TextStyle {
            font: Font::Bold,
            ..BLOCK_LINE
        },
    );
    layout.paragraph(&letter.salutation, BODY);
}

/// Lines printed one under the other and kept on one page, with a blank line after.
fn write_line_block(layout: &mut Layout, lines: &[String], style: TextStyle) {
    if lines.is_empty() {
        return;
    }
    layout.keep_together(lines.len() as f32 * style.leading);
    for line in lines {
        layout.paragraph(line, style);
    }
    layout.vertical_space(style.leading);
}

fn write_closing(layout: &mut Layout, letter: &LetterDraft) {
    let signature_height = letter.signature.len() as f32 * BLOCK_LINE.leading;
    layout.keep_together(BODY.leading + 36.0 + signature_height);
    layout.paragraph(&letter.closing, BODY);
    layout.vertical_space(36.0);
    for line in &letter.signature {
        layout.paragraph(line, BLOCK_LINE);
    }
}

fn write_specials_table(layout: &mut Layout, letter: &LetterDraft) {
    let header = TableRow::from_cells(&SPECIALS_COLUMN_TITLES, TABLE_HEADER);
    let lines_per_page = header.lines_that_fit_under(TABLE_TEXT);
    let rows: Vec<TableRow> = letter
        .specials
        .iter()
        .map(|item| TableRow::from_cells(&SpecialsRow::from_item(item).cells(), TABLE_TEXT))
        .flat_map(|row| row.split_to_fit(lines_per_page))
        .collect();
    let first_row_height = rows.first().map_or(0.0, TableRow::height);
    layout.vertical_space(4.0);
    layout.keep_together(HEADING.leading + header.height() + first_row_height);
    layout.paragraph(SPECIALS_TABLE_TITLE, HEADING);
    layout.horizontal_rule(0.5, TABLE_RULE_GREY);
    header.draw(layout);
    for row in &rows {
        if !layout.fits(row.height()) {
            layout.start_new_page();
            layout.horizontal_rule(0.5, TABLE_RULE_GREY);
            header.draw(layout);
        }
        row.draw(layout);
    }
    for total in specials_totals(letter) {
        let style = if total.is_grand_total {
            TABLE_HEADER
        } else {
            TABLE_TEXT
        };
        layout.keep_together(style.leading + 2.0 * CELL_PADDING);
        draw_totals_row(layout, total.label, &total.amount, style);
    }
    layout.vertical_space(BODY.leading);
}

/// A table row with each cell already wrapped to its column.
struct TableRow {
    cells: Vec<Vec<Vec<u8>>>,
    style: TextStyle,
}

impl TableRow {
    fn from_cells(cells: &[&str; 5], style: TextStyle) -> TableRow {
        let cells = cells
            .iter()
            .zip(SPECIALS_COLUMN_WIDTHS)
            .map(|(text, width)| {
                wrap_text(text, style.font, style.size, width - 2.0 * CELL_PADDING)
            })
            .collect();
        TableRow { cells, style }
    }

    fn line_count(&self) -> usize {
        self.cells.iter().map(Vec::len).max().unwrap_or(1).max(1)
    }

    fn height(&self) -> f32 {
        self.line_count() as f32 * self.style.leading + 2.0 * CELL_PADDING
    }

    /// How many lines of a row in `style` fit on an otherwise empty page under this header row.
    fn lines_that_fit_under(&self, style: TextStyle) -> usize {
        let room = TOP_OF_TEXT - MARGIN - self.height() - 2.0 * CELL_PADDING;
        ((room / style.leading).floor() as usize).max(1)
    }

    /// Splits a row taller than a page into consecutive rows of at most `max_lines` lines.
    fn split_to_fit(self, max_lines: usize) -> Vec<TableRow> {
        let part_count = self.line_count().div_ceil(max_lines);
        if part_count <= 1 {
            return vec![self];
        }
        (0..part_count)
            .map(|part| TableRow {
                cells: self
                    .cells
                    .iter()
                    .map(|lines| {
                        lines
                            .iter()
                            .skip(part * max_lines)
                            .take(max_lines)
                            .cloned()
                            .collect()
                    })
                    .collect(),
                style: self.style,
            })
            .collect()
    }

    fn draw(&self, layout: &mut Layout) {
        let top = layout.cursor_y - CELL_PADDING;
        let mut column_left = MARGIN;
        let last_column = self.cells.len().saturating_sub(1);
        for (column, (lines, width)) in self.cells.iter().zip(SPECIALS_COLUMN_WIDTHS).enumerate() {
            for (index, line) in lines.iter().enumerate() {
                let baseline = top - index as f32 * self.style.leading - self.style.size;
                let x = if column == last_column {
                    column_left + width
                        - CELL_PADDING
                        - text_width(line, self.style.font, self.style.size)
                } else {
                    column_left + CELL_PADDING
                };
                layout.draw_text(x, baseline, line, self.style.font, self.style.size);
            }
            column_left += width;
        }
        layout.cursor_y -= self.height();
        layout.horizontal_rule(0.5, TABLE_RULE_GREY);
    }
}

/// A totals line: the label right-aligned under the first four columns, the amount under the last.
fn draw_totals_row(layout: &mut Layout, label: &str, amount: &str, style: TextStyle) {
    let baseline = layout.cursor_y - CELL_PADDING - style.size;
    let amount_right = MARGIN + TEXT_WIDTH - CELL_PADDING;
    let label_right = MARGIN + TEXT_WIDTH - SPECIALS_COLUMN_WIDTHS[4] - CELL_PADDING;
    for (text, right_edge) in [(label, label_right), (amount, amount_right)] {
        let encoded = encode_win_ansi(text);
        let x = right_edge - text_width(&encoded, style.font, style.size);
        layout.draw_text(x, baseline, &encoded, style.font, style.size);
    }
    layout.cursor_y -= style.leading + 2.0 * CELL_PADDING;
}

/// Places text, rules and images top to bottom, starting a new page when one is full.
struct Layout {
    finished_pages: Vec<Vec<Operation>>,
    current_page: Vec<Operation>,
    /// Top of the next line, in points from the bottom of the page.
    cursor_y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            finished_pages: Vec::new(),
            current_page: Vec::new(),
            cursor_y: TOP_OF_TEXT,
        }
    }

    fn finish(mut self) -> Vec<Vec<Operation>> {
        self.finished_pages.push(self.current_page);
        self.finished_pages
    }

    fn start_new_page(&mut self) {
        let full_page = std::mem::take(&mut self.current_page);
        self.finished_pages.push(full_page);
        self.cursor_y = TOP_OF_TEXT;
    }

    fn is_at_top_of_page(&self) -> bool {
        self.cursor_y >= TOP_OF_TEXT
    }

    fn fits(&self, height: f32) -> bool {
        self.cursor_y - height >= MARGIN || self.is_at_top_of_page()
    }

    /// Starts a new page unless `height` points of content still fit on this one.
    fn keep_together(&mut self, height: f32) {
        if !self.fits(height) {
            self.start_new_page();
        }
    }

    fn vertical_space(&mut self, height: f32) {
        if !self.is_at_top_of_page() {
            self.cursor_y = (self.cursor_y - height).max(MARGIN);
        }
    }

    /// Wraps the text to the text width and sets it line by line, breaking pages as needed.
    fn paragraph(&mut self, text: &str, style: TextStyle) {
        for line in wrap_text(text, style.font, style.size, TEXT_WIDTH) {
            self.keep_together(style.leading);
            let baseline = self.cursor_y - style.size;
            self.draw_text(MARGIN, baseline, &line, style.font, style.size);
            self.cursor_y -= style.leading;
        }
        self.vertical_space(style.space_after);
    }

    fn draw_text(&mut self, x: f32, baseline: f32, text: &[u8], font: Font, size: f32) {
        if text.is_empty() {
            return;
        }
        self.current_page
            .extend(text_operations(x, baseline, text, font, size));
    }

    /// A full-width line at the cursor in the given grey (0 is black).
    fn horizontal_rule(&mut self, line_width: f32, grey: f32) {
        let y = self.cursor_y;
        self.current_page.extend([
            Operation::new("q", vec![]),
            Operation::new("G", vec![number(grey)]),
            Operation::new("w", vec![number(line_width)]),
            Operation::new("m", vec![number(MARGIN), number(y)]),
            Operation::new("l", vec![number(MARGIN + TEXT_WIDTH), number(y)]),
            Operation::new("S", vec![]),
            Operation::new("Q", vec![]),
        ]);
    }

    fn image(&mut self, resource_name: &str, width: f32, height: f32) {
        self.keep_together(height);
        let bottom = self.cursor_y - height;
        self.current_page.extend([
            Operation::new("q", vec![]),
            Operation::new(
                "cm",
                vec![
                    number(width),
                    number(0.0),
                    number(0.0),
                    number(height),
                    number(MARGIN),
                    number(bottom),
                ],
            ),
            Operation::new("Do", vec![Object::Name(resource_name.as_bytes().to_vec())]),
            Operation::new("Q", vec![]),
        ]);
        self.cursor_y = bottom;
    }
}

fn text_operations(x: f32, baseline: f32, text: &[u8], font: Font, size: f32) -> [Operation; 5] {
    [
        Operation::new("BT", vec![]),
        Operation::new(
            "Tf",
            vec![
                Object::Name(font.resource_name().as_bytes().to_vec()),
                number(size),
            ],
        ),
        Operation::new("Td", vec![number(x), number(baseline)]),
        Operation::new(
            "Tj",
            vec![Object::String(text.to_vec(), StringFormat::Literal)],
        ),
        Operation::new("ET", vec![]),
    ]
}

/// A coordinate or size, rounded to hundredths of a point to keep the content streams short.
fn number(value: f32) -> Object {
    Object::Real((value * 100.0).round() / 100.0)
}

fn footer_operations(page_number: usize, page_count: usize) -> [Operation; 5] {
    let label = encode_win_ansi(&format!("Page {page_number} of {page_count}"));
    let x = (PAGE_WIDTH - text_width(&label, Font::Regular, FOOTER_SIZE)) / 2.0;
    text_operations(x, FOOTER_BASELINE, &label, Font::Regular, FOOTER_SIZE)
}

/// Breaks text into lines no wider than `max_width`, keeping explicit line breaks; a word
/// longer than a whole line is split between characters.
fn wrap_text(text: &str, font: Font, size: f32, max_width: f32) -> Vec<Vec<u8>> {
    let space_width = text_width(b" ", font, size);
    let mut lines = Vec::new();
    for hard_line in text.split('\n') {
        let encoded = encode_win_ansi(hard_line);
        let mut line: Vec<u8> = Vec::new();
        let mut line_width = 0.0;
        for word in encoded
            .split(|&byte| byte == b' ')
            .filter(|word| !word.is_empty())
        {
            let word_width = text_width(word, font, size);
            let needed = if line.is_empty() {
                word_width
            } else {
                line_width + space_width + word_width
            };
            if needed <= max_width {
                if !line.is_empty() {
                    line.push(b' ');
                }
                line.extend_from_slice(word);
                line_width = needed;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let mut pieces = split_long_word(word, font, size, max_width);
            let last_piece = pieces.pop().unwrap_or_default();
            lines.extend(pieces);
            line_width = text_width(&last_piece, font, size);
            line = last_piece;
        }
        lines.push(line);
    }
    lines
}

fn split_long_word(word: &[u8], font: Font, size: f32, max_width: f32) -> Vec<Vec<u8>> {
    let mut pieces = Vec::new();
    let mut piece = Vec::new();
    for &byte in word {
        piece.push(byte);
        if piece.len() > 1 && text_width(&piece, font, size) > max_width {
            piece.pop();
            pieces.push(std::mem::replace(&mut piece, vec![byte]));
        }
    }
    pieces.push(piece);
    pieces
}

/// The two builtin fonts the letter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn resource_name(self) -> &'static str {
        match self {
            Font::Regular => "F1",
            Font::Bold => "F2",
        }
    }

    fn base_font(self) -> &'static str {
        match self {
            Font::Regular => "Helvetica",
            Font::Bold => "Helvetica-Bold",
        }
    }

    /// Advance width of a WinAnsi code in thousandths of the font size.
    fn glyph_width(self, code: u8) -> u16 {
        if (0x20..=0x7E).contains(&code) {
            let index = usize::from(code - 0x20);
            return match self {
                Font::Regular => HELVETICA_ASCII_WIDTHS[index],
                Font::Bold => HELVETICA_BOLD_ASCII_WIDTHS[index],
            };
        }
        if let Some(base_letter) = base_letter_of_accented(code) {
            return self.glyph_width(base_letter);
        }
        self.non_ascii_width(code)
    }

    fn non_ascii_width(self, code: u8) -> u16 {
        let bold = self == Font::Bold;
        match code {
            0xA0 | 0xB7 => 278,
            0x82 | 0x91 | 0x92 => {
                if bold {
                    278
                } else {
                    222
                }
            }
            0x84 | 0x93 | 0x94 => {
                if bold {
                    500
                } else {
                    333
                }
            }
            0x80 | 0x83 | 0x86 | 0x87 | 0x96 | 0xA2..=0xA5 | 0xA7 | 0xAB | 0xBB => 556,
            0x85 | 0x89 | 0x8C | 0x97 | 0x99 | 0xC6 => 1000,
            0x88 | 0x8B | 0x98 | 0x9B | 0xA1 | 0xA8 | 0xAD | 0xAF | 0xB2..=0xB4 | 0xB8 | 0xB9 => {
                333
            }
            0x95 => 350,
            0x9C => 944,
            0xA6 => {
                if bold {
                    280
                } else {
                    260
                }
            }
            0xA9 | 0xAE => 737,
            0xAA => 370,
            0xAC | 0xB1 | 0xD7 | 0xF7 => 584,
            0xB0 => 400,
            0xB5 => {
                if bold {
                    611
                } else {
                    556
                }
            }
            0xB6 => {
                if bold {
                    556
                } else {
                    537
                }
            }
            0xBA => 365,
            0xBC..=0xBE => 834,
            0xBF | 0xDF | 0xF8 => 611,
            0xE6 => 889,
            0xEC..=0xEF => 278,
            _ => 1000,
        }
    }
}

/// Accented Latin-1 letters share the advance width of their base letter in Helvetica.
fn base_letter_of_accented(code: u8) -> Option<u8> {
    let base = match code {
        0x8A => b'S',
        0x8E => b'Z',
        0x9F | 0xDD => b'Y',
        0x9A => b's',
        0x9E => b'z',
        0xC0..=0xC5 => b'A',
        0xC7 => b'C',
        0xC8..=0xCB => b'E',
        0xCC..=0xCF => b'I',
        0xD0 => b'D',
        0xD1 => b'N',
        0xD2..=0xD6 | 0xD8 => b'O',
        0xD9..=0xDC => b'U',
        0xDE => b'P',
        0xE0..=0xE5 => b'a',
        0xE7 => b'c',
        0xE8..=0xEB => b'e',
        0xF0 | 0xF2..=0xF6 => b'o',
        0xF1 => b'n',
        0xF9..=0xFC => b'u',
        0xFD | 0xFF => b'y',
        0xFE => b'p',
        _ => return None,
    };
    Some(base)
}

fn text_width(text: &[u8], font: Font, size: f32) -> f32 {
    let units: u32 = text
        .iter()
        .map(|&code| u32::from(font.glyph_width(code)))
        .sum();
    units as f32 * size / 1000.0
}

/// Helvetica advance widths for the printable ASCII codes 0x20 to 0x7E.
const HELVETICA_ASCII_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278,
    278, // space to /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0 to 9
    278, 278, 584, 584, 584, 556, 1015, // : to @
    667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, // A to M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // N to Z
    278, 278, 278, 469, 556, 333, // [ to `
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, // a to m
    556, 556, 556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, // n to z
    334, 260, 334, 584, // { to ~
];

/// Helvetica-Bold advance widths for the printable ASCII codes 0x20 to 0x7E.
const HELVETICA_BOLD_ASCII_WIDTHS: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278,
    278, // space to /
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, // 0 to 9
    333, 333, 584, 584, 584, 611, 975, // : to @
    722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, // A to M
    722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, // N to Z
    333, 278, 333, 584, 556, 333, // [ to `
    556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, // a to m
    611, 611, 611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, // n to z
    389, 280, 389, 584, // { to ~
];

/// Encodes text for the WinAnsi-encoded builtin fonts: Latin-1 and the Windows-1252
/// punctuation map directly, look-alikes are substituted and anything else becomes '?'.
fn encode_win_ansi(text: &str) -> Vec<u8> {
    text.chars().filter_map(win_ansi_code).collect()
}

/// The WinAnsi code for a character, or `None` for characters that print nothing.
fn win_ansi_code(character: char) -> Option<u8> {
    let code_point = u32::from(character);
    match character {
        '\t' => Some(b' '),
        '\u{AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => None,
        _ if character.is_control() => None,
        ' '..='~' | '\u{A0}'..='\u{FF}' => u8::try_from(code_point).ok(),
        _ => Some(windows_1252_punctuation(character).unwrap_or_else(|| look_alike(character))),
    }
}

/// Codes 0x80 to 0x9F, where Windows-1252 differs from Latin-1.
fn windows_1252_punctuation(character: char) -> Option<u8> {
    let code = match character {
        '\u{20AC}' => 0x80,
        '\u{201A}' => 0x82,
        '\u{0192}' => 0x83,
        '\u{201E}' => 0x84,
        '\u{2026}' => 0x85,
        '\u{2020}' => 0x86,
        '\u{2021}' => 0x87,
        '\u{02C6}' => 0x88,
        '\u{2030}' => 0x89,
        '\u{0160}' => 0x8A,
        '\u{2039}' => 0x8B,
        '\u{0152}' => 0x8C,
        '\u{017D}' => 0x8E,
        '\u{2018}' => 0x91,
        '\u{2019}' => 0x92,
        '\u{201C}' => 0x93,
        '\u{201D}' => 0x94,
        '\u{2022}' => 0x95,
        '\u{2013}' => 0x96,
        '\u{2014}' => 0x97,
        '\u{02DC}' => 0x98,
        '\u{2122}' => 0x99,
        '\u{0161}' => 0x9A,
        '\u{203A}' => 0x9B,
        '\u{0153}' => 0x9C,
        '\u{017E}' => 0x9E,
        '\u{0178}' => 0x9F,
        _ => return None,
    };
    Some(code)
}

/// A WinAnsi character that looks like one outside the encoding, or '?'.
fn look_alike(character: char) -> u8 {
    match character {
        '\u{2010}'..='\u{2012}' | '\u{2043}' | '\u{2212}' => b'-',
        '\u{2015}' => 0x97,
        '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => b' ',
        '\u{2032}' | '\u{201B}' => b'\'',
        '\u{2033}' | '\u{201F}' => b'"',
        '\u{2024}' => b'.',
        '\u{2044}' | '\u{2215}' => b'/',
        _ => b'?',
    }
}

/// The logo as a PDF image XObject, with its printed size.
struct EmbeddedLogo {
    stream: Stream,
    display_width: f32,
    display_height: f32,
}

impl EmbeddedLogo {
    fn new(logo: &LogoImage) -> Result<EmbeddedLogo, ExportError> {
        let (width, height) = logo.display_size_pt(f64::from(TEXT_WIDTH))?;
        let stream = match logo.format {
            ImageFormat::Jpeg => jpeg_image_stream(&logo.bytes)?,
            ImageFormat::Png => png_image_stream(&logo.bytes)?,
        };
        Ok(EmbeddedLogo {
            stream,
            display_width: width as f32,
            display_height: height as f32,
        })
    }
}

fn image_dictionary(width: u32, height: u32, color_space: &str) -> Dictionary {
    dictionary! {
        "Type" => "XObject",
        "Subtype" => "Image",
        "Width" => i64::from(width),
        "Height" => i64::from(height),
        "ColorSpace" => color_space,
        "BitsPerComponent" => 8,
    }
}

/// A JPEG is embedded unchanged and decoded by the viewer.
fn jpeg_image_stream(bytes: &[u8]) -> Result<Stream, ExportError> {
    let header = jpeg_header(bytes)?;
    if header.bits_per_component != 8 {
        return Err(ExportError::UnsupportedLogo {
            reason: format!(
                "the JPEG has {} bits per sample and PDF needs 8",
                header.bits_per_component
            ),
        });
    }
    let color_space = match header.components {
        1 => "DeviceGray",
        3 => "DeviceRGB",
        4 => "DeviceCMYK",
        other => {
            return Err(ExportError::UnsupportedLogo {
                reason: format!("the JPEG has {other} colour components"),
            })
        }
    };
    let mut dictionary = image_dictionary(header.size.width, header.size.height, color_space);
    dictionary.set("Filter", "DCTDecode");
    if header.components == 4 && header.has_adobe_marker {
        let inverted: Vec<Object> = [1, 0, 1, 0, 1, 0, 1, 0]
            .into_iter()
            .map(Object::Integer)
            .collect();
        dictionary.set("Decode", inverted);
    }
    Ok(Stream::new(dictionary, bytes.to_vec()).with_compression(false))
}

fn png_image_stream(bytes: &[u8]) -> Result<Stream, ExportError> {
    let decoded = decode_png(bytes)?;
    let mut stream = Stream::new(
        image_dictionary(decoded.width, decoded.height, decoded.color_space),
        decoded.samples,
    );
    stream
        .compress()
        .map_err(|error| ExportError::PdfWrite(format!("compressing the logo failed: {error}")))?;
    Ok(stream)
}

fn font_dictionary(font: Font) -> Dictionary {
    dictionary! {
        "Type" => "Font",
        "Subtype" => "Type1",
        "BaseFont" => font.base_font(),
        "Encoding" => "WinAnsiEncoding",
    }
}

/// Assembles the pages, fonts, logo and footers into a PDF file.
fn write_document(
    pages: Vec<Vec<Operation>>,
    logo: Option<EmbeddedLogo>,
) -> Result<Vec<u8>, ExportError> {
    let pdf_error = |error: lopdf::Error| ExportError::PdfWrite(error.to_string());
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let regular_id = document.add_object(font_dictionary(Font::Regular));
    let bold_id = document.add_object(font_dictionary(Font::Bold));
    let mut resources = dictionary! {
        "Font" => dictionary! {
            Font::Regular.resource_name() => regular_id,
            Font::Bold.resource_name() => bold_id,
        },
    };
    if let Some(logo) = logo {
        let logo_id = document.add_object(logo.stream);
        resources.set("XObject", dictionary! { LOGO_RESOURCE_NAME => logo_id });
    }
    let resources_id = document.add_object(resources);
    let page_count = pages.len();
    let mut kids = Vec::with_capacity(page_count);
    for (index, mut operations) in pages.into_iter().enumerate() {
        operations.extend(footer_operations(index + 1, page_count));
        let content = Content { operations }.encode().map_err(pdf_error)?;
        let mut stream = Stream::new(Dictionary::new(), content);
        stream.compress().map_err(pdf_error)?;
        let content_id = document.add_object(stream);
        let page_id = document.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
            "Resources" => resources_id,
        });
        kids.push(Object::Reference(page_id));
    }
    let media_box: Vec<Object> = [0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT]
        .into_iter()
        .map(number)
        .collect();
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => page_count as i64,
            "MediaBox" => media_box,
        }),
    );
    let catalog_id = document.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    let info_id = document.add_object(dictionary! {
        "Title" => Object::string_literal("Demand letter"),
        "Producer" => Object::string_literal("Steno"),
    });
    document.trailer.set("Root", catalog_id);
    document.trailer.set("Info", info_id);
    let mut bytes = Vec::new();
    document
        .save_to(&mut bytes)
        .map_err(|error| ExportError::PdfWrite(error.to_string()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{
        jpeg_logo, path_str, png_logo, run_tool, sample_letter, sample_letterhead,
        squash_whitespace, ADDRESS_LINES, FIRM_NAME, PARAGRAPH_SENTENCE,
    };
    use super::*;
    use crate::model::format_cents;

    const POPPLER: &str = "poppler-utils";

    /// Writes the PDF to a temporary directory and returns the directory and the file path.
    fn write_pdf(bytes: &[u8]) -> (tempfile::TempDir, String) {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("letter.pdf");
        std::fs::write(&path, bytes).unwrap();
        let path = path_str(&path).to_string();
        (directory, path)
    }

    fn page_count_from_pdfinfo(path: &str) -> usize {
        let info = run_tool("pdfinfo", &[path], POPPLER);
        let pages_line = info
            .lines()
            .find(|line| line.starts_with("Pages:"))
            .unwrap_or_else(|| panic!("pdfinfo printed no page count:\n{info}"));
        pages_line["Pages:".len()..].trim().parse().unwrap()
    }

    /// Every text of the letter, as the PDF should print it.
    fn expected_texts(letter: &LetterDraft) -> Vec<String> {
        let mut texts = vec![FIRM_NAME.to_string(), format_long_date(letter.letter_date)];
        texts.extend(ADDRESS_LINES.iter().map(|line| line.to_string()));
        texts.extend(letter.recipient.iter().cloned());
        texts.extend(letter.reference.iter().cloned());
        texts.push(letter.salutation.clone());
        for section in &letter.sections {
            texts.push(section.heading.clone());
            texts.extend(
                section
                    .paragraphs
                    .iter()
                    .map(|paragraph| printable(paragraph)),
            );
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

    /// The text as it reads back from the PDF: characters outside WinAnsi print as '?'.
    fn printable(text: &str) -> String {
        text.chars()
            .map(|character| match win_ansi_code(character) {
                Some(b'?') => '?',
                _ => character,
            })
            .collect()
    }

    #[test]
    fn letter_with_png_logo_reads_back_with_poppler() {
        let letter = sample_letter();
        let bytes = render(&letter, &sample_letterhead(Some(png_logo()))).unwrap();
        let (_directory, path) = write_pdf(&bytes);

        let layout = run_tool("pdftotext", &["-layout", &path, "-"], POPPLER);
        for expected in [
            FIRM_NAME,
            ADDRESS_LINES[0],
            ADDRESS_LINES[2],
            "Page 1 of",
            "Page 2 of",
        ] {
            assert!(
                layout.contains(expected),
                "pdftotext -layout lacks {expected:?}:\n{layout}"
            );
        }
        for section in &letter.sections {
            assert!(
                layout.contains(&section.heading),
                "missing heading {:?}",
                section.heading
            );
        }
        for item in &letter.specials {
            let amount = format_cents(item.amount_cents);
            assert!(layout.contains(&amount), "missing amount {amount}");
        }
        assert!(layout.contains("$20,101.49"), "missing the total specials");
        assert!(squash_whitespace(&layout).contains(PARAGRAPH_SENTENCE));

        let reading_order =
            squash_whitespace(&run_tool("pdftotext", &["-raw", &path, "-"], POPPLER));
        for expected in expected_texts(&letter) {
            let expected = squash_whitespace(&expected);
            assert!(
                reading_order.contains(&expected),
                "pdftotext -raw lacks {expected:?}:\n{reading_order}"
            );
        }
        assert!(reading_order.contains(
            "The insurer\u{2019}s \u{201c}reasonable\u{201d} offer \u{2014} \u{20ac}0 for pain ? nothing \u{2014} was refused."
        ));

        let page_count = page_count_from_pdfinfo(&path);
        assert!(
            page_count >= 2,
            "the sample letter should need two pages, got {page_count}"
        );
        assert!(layout.contains(&format!("Page {page_count} of {page_count}")));

        let images = run_tool("pdfimages", &["-list", &path], POPPLER);
        let image_line = images.lines().nth(2).unwrap_or_default();
        let columns: Vec<&str> = image_line.split_whitespace().collect();
        assert_eq!(
            columns.get(3..6),
            Some(["24", "8", "rgb"].as_slice()),
            "{images}"
        );
    }

    #[test]
    fn letter_with_jpeg_logo_embeds_it_unchanged() {
        let letter = sample_letter();
        let bytes = render(&letter, &sample_letterhead(Some(jpeg_logo()))).unwrap();
        let (directory, path) = write_pdf(&bytes);
        let images = run_tool("pdfimages", &["-list", &path], POPPLER);
        let columns: Vec<&str> = images
            .lines()
            .nth(2)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            columns.get(3..9),
            Some(["8", "8", "gray", "1", "8", "jpeg"].as_slice()),
            "{images}"
        );
        let prefix = directory.path().join("page");
        run_tool(
            "pdftoppm",
            &[
                "-r",
                "36",
                "-png",
                "-f",
                "1",
                "-l",
                "1",
                &path,
                path_str(&prefix),
            ],
            POPPLER,
        );
        assert!(std::fs::read_dir(directory.path()).unwrap().count() >= 2);
    }

    #[test]
    fn letter_without_logo_has_no_images_and_reparses_with_lopdf() {
        let letter = sample_letter();
        let bytes = render(&letter, &sample_letterhead(None)).unwrap();
        let (_directory, path) = write_pdf(&bytes);
        let images = run_tool("pdfimages", &["-list", &path], POPPLER);
        assert_eq!(
            images.lines().count(),
            2,
            "expected only the header lines:\n{images}"
        );

        let document = Document::load_mem(&bytes).unwrap();
        let pages = document.get_pages();
        assert_eq!(pages.len(), page_count_from_pdfinfo(&path));
        let first_page = *pages.get(&1).unwrap();
        let fonts = document.get_page_fonts(first_page).unwrap();
        let base_fonts: Vec<&[u8]> = fonts
            .values()
            .map(|font| font.get(b"BaseFont").unwrap().as_name().unwrap())
            .collect();
        assert!(base_fonts.contains(&b"Helvetica".as_slice()));
        assert!(base_fonts.contains(&b"Helvetica-Bold".as_slice()));
        let text = document.extract_text(&[1]).unwrap();
        assert!(text.contains("Dear Ms. Whitfield:"), "{text}");
    }

    #[test]
    fn text_never_runs_into_the_right_margin() {
        let letter = sample_letter();
        let paragraph = &letter.sections[0].paragraphs[0];
        for line in wrap_text(paragraph, Font::Regular, BODY.size, TEXT_WIDTH) {
            assert!(text_width(&line, Font::Regular, BODY.size) <= TEXT_WIDTH);
        }
        let lines = wrap_text(paragraph, Font::Regular, BODY.size, TEXT_WIDTH);
        assert!(lines.len() > 3);
        let rejoined: Vec<u8> = lines.join(&b' ');
        assert_eq!(rejoined, encode_win_ansi(&squash_whitespace(paragraph)));
    }

    #[test]
    fn wrapping_keeps_line_breaks_and_splits_overlong_words() {
        let lines = wrap_text("one\ntwo three", Font::Bold, 10.0, 400.0);
        assert_eq!(lines, vec![b"one".to_vec(), b"two three".to_vec()]);
        let long_word = "x".repeat(200);
        let pieces = wrap_text(&long_word, Font::Regular, 10.0, 100.0);
        assert!(pieces.len() > 1);
        assert!(pieces
            .iter()
            .all(|piece| text_width(piece, Font::Regular, 10.0) <= 100.0));
        assert_eq!(pieces.concat(), long_word.into_bytes());
        assert_eq!(
            wrap_text("", Font::Regular, 10.0, 100.0),
            vec![Vec::<u8>::new()]
        );
    }

    #[test]
    fn glyph_widths_match_helvetica_metrics() {
        assert_eq!(text_width(b"Helvetica", Font::Regular, 1000.0), 4112.0);
        assert_eq!(text_width(b"Helvetica", Font::Bold, 1000.0), 4391.0);
        assert_eq!(Font::Regular.glyph_width(b'W'), 944);
        assert_eq!(Font::Bold.glyph_width(b'm'), 889);
        assert_eq!(
            Font::Regular.glyph_width(0xE9),
            Font::Regular.glyph_width(b'e')
        );
        assert_eq!(Font::Bold.glyph_width(0x93), 500);
    }

    #[test]
    fn characters_outside_win_ansi_are_mapped_or_replaced() {
        assert_eq!(
            encode_win_ansi("caf\u{e9} \u{20ac}5"),
            b"caf\xe9 \x805".to_vec()
        );
        assert_eq!(
            encode_win_ansi("\u{2018}a\u{2019} \u{201c}b\u{201d} \u{2013} \u{2014} \u{2022}"),
            b"\x91a\x92 \x93b\x94 \x96 \x97 \x95".to_vec()
        );
        assert_eq!(
            encode_win_ansi("\u{2212}1\u{2009}kg\u{ad}"),
            b"-1 kg".to_vec()
        );
        assert_eq!(
            encode_win_ansi("\u{4e2d}\u{1f600}\tz\u{7}"),
            b"?? z".to_vec()
        );
    }

    #[test]
    fn png_alpha_is_blended_onto_white_and_grey_stays_grey() {
        use super::super::test_support::encode_png;
        let rgba = encode_png(2, 1, png::ColorType::Rgba, &[255, 0, 0, 255, 0, 0, 0, 0]);
        let decoded = decode_png(&rgba).unwrap();
        assert_eq!(decoded.color_space, "DeviceRGB");
        assert_eq!(decoded.samples, vec![255, 0, 0, 255, 255, 255]);

        let grey = encode_png(3, 1, png::ColorType::Grayscale, &[0, 128, 255]);
        let decoded = decode_png(&grey).unwrap();
        assert_eq!(decoded.color_space, "DeviceGray");
        assert_eq!(decoded.samples, vec![0, 128, 255]);

        let grey_alpha = encode_png(1, 1, png::ColorType::GrayscaleAlpha, &[0, 128]);
        assert_eq!(decode_png(&grey_alpha).unwrap().samples, vec![127]);
    }

    #[test]
    fn palette_png_is_expanded_to_rgb() {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, 2, 1);
            encoder.set_color(png::ColorType::Indexed);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_palette(vec![10, 20, 30, 200, 210, 220]);
            let mut writer = encoder.write_header().unwrap();
            writer.write_image_data(&[1, 0]).unwrap();
        }
        let decoded = decode_png(&bytes).unwrap();
        assert_eq!(decoded.color_space, "DeviceRGB");
        assert_eq!(decoded.samples, vec![200, 210, 220, 10, 20, 30]);
    }

    #[test]
    fn damaged_png_logo_is_an_error_not_a_panic() {
        let mut bytes = super::super::test_support::tiny_png_rgb(4, 4);
        let length = bytes.len();
        bytes.truncate(length - 20);
        let logo = LogoImage {
            bytes,
            format: ImageFormat::Png,
        };
        let error = render(&sample_letter(), &sample_letterhead(Some(logo))).unwrap_err();
        assert!(error.to_string().contains("PNG"), "{error}");
    }

    #[test]
    fn every_page_is_numbered_and_long_letters_break_across_pages() {
        let mut letter = sample_letter();
        let long_paragraph = PARAGRAPH_SENTENCE.repeat(60);
        letter.sections[0].paragraphs.push(long_paragraph.clone());
        letter.sections[0].paragraphs.push(long_paragraph);
        let bytes = render(&letter, &sample_letterhead(None)).unwrap();
        let (_directory, path) = write_pdf(&bytes);
        let page_count = page_count_from_pdfinfo(&path);
        assert!(page_count >= 4, "got {page_count} pages");
        let text = run_tool("pdftotext", &["-layout", &path, "-"], POPPLER);
        for page in 1..=page_count {
            assert!(text.contains(&format!("Page {page} of {page_count}")));
        }
    }

    #[test]
    fn parentheses_backslashes_and_long_words_survive() {
        let mut letter = sample_letter();
        letter.sections[0].paragraphs[0] =
            "Unbalanced (paren and ) closing, C:\\records\\bill.pdf and 100% \"sure\".".to_string();
        letter.specials[0].description = "X".repeat(90);
        let bytes = render(&letter, &sample_letterhead(None)).unwrap();
        let (_directory, path) = write_pdf(&bytes);
        let text = squash_whitespace(&run_tool("pdftotext", &["-raw", &path, "-"], POPPLER));
        assert!(
            text.contains(
                "Unbalanced (paren and ) closing, C:\\records\\bill.pdf and 100% \"sure\"."
            ),
            "{text}"
        );
        let long_word_letters: usize = text
            .split_whitespace()
            .filter(|word| word.chars().all(|character| character == 'X'))
            .map(str::len)
            .sum();
        assert_eq!(long_word_letters, 90);
    }

    #[test]
    fn table_row_taller_than_a_page_is_split_across_pages() {
        let mut letter = sample_letter();
        letter.specials[2].description = (1..=400)
            .map(|number| format!("session{number}"))
            .collect::<Vec<_>>()
            .join(" ");
        let bytes = render(&letter, &sample_letterhead(None)).unwrap();
        let (_directory, path) = write_pdf(&bytes);
        let text = squash_whitespace(&run_tool("pdftotext", &["-raw", &path, "-"], POPPLER));
        for number in [1, 200, 400] {
            assert!(
                text.contains(&format!("session{number}")),
                "session{number} is missing"
            );
        }
        let page_count = page_count_from_pdfinfo(&path);
        assert!(page_count >= 4, "got {page_count} pages");
        let document = Document::load_mem(&bytes).unwrap();
        for page_number in 1..=page_count as u32 {
            let page_text = document.extract_text(&[page_number]).unwrap();
            assert!(page_text.contains(&format!("Page {page_number} of {page_count}")));
        }
    }

    #[test]
    fn sparse_letter_renders_on_one_page() {
        let mut letter = sample_letter();
        letter.sections.clear();
        letter.specials.clear();
        letter.recipient.clear();
        letter.signature.clear();
        let letterhead = Letterhead {
            firm_name: String::new(),
            address_lines: Vec::new(),
            logo: None,
        };
        let bytes = render(&letter, &letterhead).unwrap();
        let (_directory, path) = write_pdf(&bytes);
        assert_eq!(page_count_from_pdfinfo(&path), 1);
        let text = run_tool("pdftotext", &["-layout", &path, "-"], POPPLER);
        assert!(text.contains("Page 1 of 1"));
        assert!(!text.contains("Itemised"));
    }
}
