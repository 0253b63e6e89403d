//! Hard limits on a PDF before the text extractor sees it: nesting depth, object count and
//! inflated bytes measured on the raw file (before the PDF library parses it), then the page
//! content the extractor would process, every reference counted, with forms and fonts
//! followed (after the library loaded the file, before any page is read).

use std::collections::{HashMap, HashSet};

use lopdf::{Dictionary, Document, Object, ObjectId};

use super::pdf_lexer::{Lexer, Next, Position, Token, TooDeep};
use super::stream_decode::{decode_in_chunks, DecodeStop, Filter};
use super::{DocumentLimits, ExtractError};
use crate::limits::{Limit, LimitExceeded};

const SPLIT_ADVICE: &str = "print the document to a new PDF or split it, and upload the result";

fn nesting_error(what: &str, limits: &DocumentLimits) -> ExtractError {
    ExtractError::Limit(LimitExceeded::new(
        Limit::NestingDepth,
        limits.max_nesting_depth as u64,
        what,
        SPLIT_ADVICE,
    ))
}

fn too_deep(where_: &str, limits: &DocumentLimits) -> ExtractError {
    nesting_error(
        &format!("the PDF nests arrays, dictionaries or strings in {where_} deeper than"),
        limits,
    )
}

fn decompressed_error(limits: &DocumentLimits) -> ExtractError {
    ExtractError::Limit(LimitExceeded::new(
        Limit::DecompressedBytes,
        limits.max_decompressed_bytes,
        "the PDF's compressed streams inflate to more than",
        SPLIT_ADVICE,
    ))
}

fn page_content_error(limits: &DocumentLimits) -> ExtractError {
    ExtractError::Limit(LimitExceeded::new(
        Limit::PageContentBytes,
        limits.max_page_content_bytes,
        "the PDF's pages ask the text extractor to read more content (every use of a shared \
         stream, form or font map counted again) than",
        SPLIT_ADVICE,
    ))
}

/// What the raw-file scan found, for the tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct FileScan {
    pub objects: u64,
    pub streams: u64,
    /// Bytes the object streams inflate to.
    pub decompressed_bytes: u64,
}

/// The facts of a stream dictionary the scan needs.
#[derive(Debug, Default, PartialEq)]
struct StreamFacts {
    length: Option<usize>,
    filters: Vec<Filter>,
    /// `Some(n)` for an object stream holding n objects.
    object_stream: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
enum OwnedToken {
    Name(Vec<u8>),
    Regular(Vec<u8>),
    Open,
    Close,
    Other,
}

/// Reads `/Length`, `/Filter`, `/Type /ObjStm` and `/N` from the top level of a dictionary.
fn stream_facts(dictionary: &[u8]) -> StreamFacts {
    let mut tokens: Vec<(OwnedToken, usize)> = Vec::new();
    let mut lexer = Lexer::new(usize::MAX);
    let mut collect = |token: Token<'_>, position: Position| {
        let owned = match token {
            Token::Name(name) => OwnedToken::Name(name.to_vec()),
            Token::Regular(word) => OwnedToken::Regular(word.to_vec()),
            Token::OpenArray | Token::OpenDictionary => OwnedToken::Open,
            Token::CloseArray | Token::CloseDictionary => OwnedToken::Close,
            Token::String => OwnedToken::Other,
        };
        tokens.push((owned, position.depth));
        Next::Continue
    };
    let _ = lexer.feed(dictionary, &mut collect);
    lexer.finish(&mut collect, dictionary.len());
    let mut facts = StreamFacts::default();
    let mut is_object_stream = false;
    let mut object_count = None;
    let mut index = 0;
    while index < tokens.len() {
        let (token, depth) = &tokens[index];
        index += 1;
        let OwnedToken::Name(key) = token else {
            continue;
        };
        if *depth != 1 {
            continue;
        }
        let value = tokens.get(index).map(|(token, _)| token);
        match (key.as_slice(), value) {
            (b"Length", Some(OwnedToken::Regular(number))) => {
                let is_reference =
                    matches!(tokens.get(index + 2), Some((OwnedToken::Regular(r), _)) if r == b"R");
                if !is_reference {
                    facts.length = std::str::from_utf8(number)
                        .ok()
                        .and_then(|text| text.parse().ok());
                }
            }
            (b"Filter", Some(OwnedToken::Name(name))) => {
                facts.filters = vec![Filter::from_name(name)]
            }
            (b"Filter", Some(OwnedToken::Open)) => {
                facts.filters = tokens[index + 1..]
                    .iter()
                    .take_while(|(token, _)| *token != OwnedToken::Close)
                    .filter_map(|(token, _)| match token {
                        OwnedToken::Name(name) => Some(Filter::from_name(name)),
                        _ => None,
                    })
                    .collect();
            }
            (b"Type", Some(OwnedToken::Name(name))) => is_object_stream = name == b"ObjStm",
            (b"N", Some(OwnedToken::Regular(number))) => {
                object_count = std::str::from_utf8(number)
                    .ok()
                    .and_then(|text| text.parse::<u64>().ok());
            }
            _ => {}
        }
    }
    if is_object_stream {
        facts.object_stream = Some(object_count.unwrap_or(0));
    }
    facts
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|offset| from + offset)
}

/// Where a stream's data ends: at its direct `/Length` when `endstream` follows there,
/// otherwise at the next `endstream` keyword (or the end of the file).
fn stream_data_end(bytes: &[u8], data_start: usize, length: Option<usize>) -> usize {
    if let Some(end) = length.and_then(|length| data_start.checked_add(length)) {
        if let Some(after) = bytes.get(end..) {
            let keyword_at = after
                .iter()
                .position(|byte| !byte.is_ascii_whitespace())
                .unwrap_or(after.len());
            if after[keyword_at..].starts_with(b"endstream") {
                return end;
            }
        }
    }
    find(bytes, b"endstream", data_start).unwrap_or(bytes.len())
}

/// The raw-file scan: nesting depth of every object (and of the objects inside object
/// streams), the object count, and the inflated size of the object streams the PDF library
/// unpacks while loading.
pub(crate) fn scan_file(bytes: &[u8], limits: &DocumentLimits) -> Result<FileScan, ExtractError> {
    let mut scan = FileScan::default();
    let mut lexer = Lexer::new(limits.max_nesting_depth);
    let mut dictionary_start = None;
    let mut last_dictionary: Option<(usize, usize)> = None;
    let mut failure: Option<ExtractError> = None;
    let outcome = lexer.feed(bytes, |token, position| {
        let dictionary_just_closed = last_dictionary.take();
        match token {
            Token::OpenDictionary if position.depth == 1 => dictionary_start = Some(position.start),
            Token::CloseDictionary if position.depth == 0 => {
                last_dictionary = dictionary_start.take().map(|start| (start, position.end));
            }
            Token::Regular(b"obj") => {
                scan.objects += 1;
                if scan.objects > limits.max_pdf_objects {
                    failure = Some(objects_error(limits));
                    return Next::SkipTo(bytes.len());
                }
            }
            Token::Regular(b"stream") => {
                let facts = dictionary_just_closed
                    .map(|(start, end)| stream_facts(&bytes[start..end]))
                    .unwrap_or_default();
                let mut data_start = position.end;
                if bytes.get(data_start) == Some(&b'\r') {
                    data_start += 1;
                }
                if bytes.get(data_start) == Some(&b'\n') {
                    data_start += 1;
                }
                let data_end = stream_data_end(bytes, data_start, facts.length).max(data_start);
                scan.streams += 1;
                if let Err(error) =
                    measure_stream(&bytes[data_start..data_end], &facts, limits, &mut scan)
                {
                    failure = Some(error);
                    return Next::SkipTo(bytes.len());
                }
                return Next::SkipTo(data_end);
            }
            _ => {}
        }
        Next::Continue
    });
    if let Some(error) = failure {
        return Err(error);
    }
    outcome.map_err(|TooDeep { .. }| too_deep("the file's objects", limits))?;
    Ok(scan)
}

fn objects_error(limits: &DocumentLimits) -> ExtractError {
    ExtractError::Limit(LimitExceeded::new(
        Limit::PdfObjects,
        limits.max_pdf_objects,
        "the PDF has more objects than",
        SPLIT_ADVICE,
    ))
}

/// Inflates one stream under the remaining budget; an object stream's objects are counted and
/// lexed for nesting as they inflate.
fn measure_stream(
    data: &[u8],
    facts: &StreamFacts,
    limits: &DocumentLimits,
    scan: &mut FileScan,
) -> Result<(), ExtractError> {
    let remaining = limits
        .max_decompressed_bytes
        .saturating_sub(scan.decompressed_bytes);
    let decoded = match facts.object_stream {
        Some(count) => {
            scan.objects += count;
            if scan.objects > limits.max_pdf_objects {
                return Err(objects_error(limits));
            }
            let mut lexer = Lexer::new(limits.max_nesting_depth);
            decode_in_chunks(data, &facts.filters, remaining, |chunk| {
                lexer.feed(chunk, |_, _| Next::Continue)
            })
        }
        // Other streams are decoded only if the extractor reads them (checked after loading).
        None => Ok(0),
    };
    match decoded {
        Ok(size) => {
            scan.decompressed_bytes += size;
            Ok(())
        }
        Err(DecodeStop::OverBudget) => Err(decompressed_error(limits)),
        Err(DecodeStop::Sink(_)) => Err(too_deep("an object stream", limits)),
    }
}

/// How a stream the extractor reads is checked besides its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// Page contents and forms: operators, operands and inline images.
    Content,
    /// A character map (PostScript-like syntax).
    CharacterMap,
    /// Binary data (images, font programs): only its size matters.
    Opaque,
}

/// A stream the extractor would decode: its decoded size and, for content, the names it draws.
#[derive(Debug, Default)]
struct StreamSummary {
    bytes: u64,
    /// XObject names drawn with `Do`, with how often.
    draws: Vec<(Vec<u8>, u64)>,
}

/// Distinct XObject names remembered per content stream; further names count only as draws.
const MAX_DISTINCT_DRAWN_NAMES: usize = 4096;
/// What one `Do` costs besides the drawn stream itself: the extractor sets up a new graphics
/// state and font table for it.
const DRAW_OVERHEAD_BYTES: u64 = 256;

/// Follows the pages as the extractor will, before it starts.
struct ContentWalk<'a> {
    document: &'a Document,
    limits: &'a DocumentLimits,
    summaries: HashMap<ObjectId, StreamSummary>,
    /// Cost of a stream drawn with a given resource dictionary, drawn forms included.
    costs: HashMap<(ObjectId, usize), u64>,
    /// Bytes all distinct streams read so far inflate to (object streams included).
    decompressed: u64,
    /// Page content processed so far, every use counted.
    used: u64,
}

/// Checks the loaded document's page tree and the content its pages make the extractor read:
/// every stream it would decode (contents, forms, drawn images, font programs, character maps)
/// within the decompressed limit, nested within the nesting limit, and all uses together
/// within the page content limit.
pub(crate) fn check_pages(
    document: &Document,
    scan: &FileScan,
    limits: &DocumentLimits,
) -> Result<(), ExtractError> {
    let mut walk = ContentWalk {
        document,
        limits,
        summaries: HashMap::new(),
        costs: HashMap::new(),
        decompressed: scan.decompressed_bytes,
        used: 0,
    };
    for (_, page_id) in document.get_pages() {
        let Ok(page) = document.get_dictionary(page_id) else {
            continue;
        };
        walk.check_parent_chain(page_id, page)?;
        let resources = walk.inherited_resources(page);
        if let Some(resources) = resources {
            let fonts = walk.fonts_cost(resources)?;
            walk.spend(fonts)?;
        }
        for content_id in document.get_page_contents(page_id) {
            let cost = walk.stream_cost(content_id, resources, 0, &mut Vec::new())?;
            walk.spend(cost)?;
        }
    }
    Ok(())
}

impl<'a> ContentWalk<'a> {
    fn spend(&mut self, cost: u64) -> Result<(), ExtractError> {
        self.used = self.used.saturating_add(cost);
        if self.used > self.limits.max_page_content_bytes {
            Err(page_content_error(self.limits))
        } else {
            Ok(())
        }
    }

    fn resolve(&self, object: &'a Object) -> Option<&'a Object> {
        self.document
            .dereference(object)
            .ok()
            .map(|(_, object)| object)
    }

    fn dictionary_entry(&self, dictionary: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
        self.resolve(dictionary.get(key).ok()?)?.as_dict().ok()
    }

    /// The `Parent` chain of a page must end, within the nesting limit, without a loop:
    /// the extractor follows it recursively for inherited attributes.
    fn check_parent_chain(
        &self,
        page_id: ObjectId,
        page: &'a Dictionary,
    ) -> Result<(), ExtractError> {
        let mut seen = HashSet::from([page_id]);
        let mut node = page;
        while let Ok(parent) = node.get(b"Parent") {
            let Ok(parent_id) = parent.as_reference() else {
                break;
            };
            if !seen.insert(parent_id) || seen.len() > self.limits.max_nesting_depth {
                return Err(nesting_error(
                    "the PDF's page tree loops or is nested deeper than",
                    self.limits,
                ));
            }
            match self.document.get_dictionary(parent_id) {
                Ok(parent) => node = parent,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// The page's resources, found up the page tree as the extractor finds them.
    fn inherited_resources(&self, page: &'a Dictionary) -> Option<&'a Dictionary> {
        let mut node = page;
        for _ in 0..=self.limits.max_nesting_depth {
            if let Some(resources) = self.dictionary_entry(node, b"Resources") {
                return Some(resources);
            }
            let parent = node.get(b"Parent").ok()?.as_reference().ok()?;
            node = self.document.get_dictionary(parent).ok()?;
        }
        None
    }

    /// Decodes stream `id` once (counting it against the decompressed limit) and remembers
    /// its size and, for content, what it draws.
    fn summary(&mut self, id: ObjectId, syntax: Syntax) -> Result<&StreamSummary, ExtractError> {
        if !self.summaries.contains_key(&id) {
            let summary = match self.document.get_object(id).and_then(Object::as_stream) {
                Ok(stream) => {
                    let remaining = self
                        .limits
                        .max_decompressed_bytes
                        .saturating_sub(self.decompressed);
                    summarise(
                        &stream.content,
                        &stream_filters(&stream.dict),
                        syntax,
                        remaining,
                        self.limits,
                    )?
                }
                Err(_) => StreamSummary::default(),
            };
            self.decompressed += summary.bytes;
            self.summaries.insert(id, summary);
        }
        Ok(&self.summaries[&id])
    }

    /// What drawing stream `id` with `resources` costs the extractor: its content plus, for
    /// every `Do`, the drawn image or form (with what that form draws) again.
    fn stream_cost(
        &mut self,
        id: ObjectId,
        resources: Option<&'a Dictionary>,
        depth: usize,
        drawing: &mut Vec<ObjectId>,
    ) -> Result<u64, ExtractError> {
        let key = (
            id,
            resources.map_or(0, |resources| resources as *const Dictionary as usize),
        );
        if let Some(cost) = self.costs.get(&key) {
            return Ok(*cost);
        }
        if depth > self.limits.max_nesting_depth || drawing.contains(&id) {
            return Err(nesting_error(
                "the PDF's forms draw each other in a loop or nest deeper than",
                self.limits,
            ));
        }
        let summary = self.summary(id, Syntax::Content)?;
        let mut cost = summary.bytes;
        let draws = summary.draws.clone();
        let xobjects = resources.and_then(|resources| self.dictionary_entry(resources, b"XObject"));
        drawing.push(id);
        for (name, count) in draws {
            let drawn = xobjects
                .and_then(|xobjects| xobjects.get(&name).ok())
                .and_then(|object| object.as_reference().ok());
            let drawn_cost = match drawn {
                Some(drawn_id) => self.drawn_cost(drawn_id, resources, depth, drawing)?,
                None => 0,
            };
            cost = cost.saturating_add(
                count.saturating_mul(DRAW_OVERHEAD_BYTES.saturating_add(drawn_cost)),
            );
            if cost > self.limits.max_page_content_bytes {
                return Err(page_content_error(self.limits));
            }
        }
        drawing.pop();
        self.costs.insert(key, cost);
        Ok(cost)
    }

    /// The cost of one `Do` of XObject `id`: an image is decoded (and, by the extractor, read
    /// as content), a form is read with its own resources or the drawer's.
    fn drawn_cost(
        &mut self,
        id: ObjectId,
        drawer_resources: Option<&'a Dictionary>,
        depth: usize,
        drawing: &mut Vec<ObjectId>,
    ) -> Result<u64, ExtractError> {
        let Ok(stream) = self.document.get_object(id).and_then(Object::as_stream) else {
            return Ok(0);
        };
        let is_image =
            matches!(stream.dict.get(b"Subtype"), Ok(Object::Name(name)) if name == b"Image");
        if is_image {
            return Ok(self.summary(id, Syntax::Opaque)?.bytes);
        }
        let resources = self
            .dictionary_entry(&stream.dict, b"Resources")
            .or(drawer_resources);
        let fonts = match resources {
            Some(resources) => self.fonts_cost(resources)?,
            None => 0,
        };
        Ok(fonts.saturating_add(self.stream_cost(id, resources, depth + 1, drawing)?))
    }

    /// What loading the fonts of `resources` costs: each font's program and character map is
    /// decoded (and the map parsed, recursively) every time a page or form loads its fonts.
    fn fonts_cost(&mut self, resources: &'a Dictionary) -> Result<u64, ExtractError> {
        let Some(fonts) = self.dictionary_entry(resources, b"Font") else {
            return Ok(0);
        };
        let mut cost = 0u64;
        for (_, font) in fonts.iter() {
            let Some(font) = self.resolve(font).and_then(|font| font.as_dict().ok()) else {
                continue;
            };
            let mut streams = Vec::new();
            if let Some(map_id) = reference(font, b"ToUnicode") {
                streams.push((map_id, Syntax::CharacterMap));
            }
            let descendant = font
                .get(b"DescendantFonts")
                .ok()
                .and_then(|fonts| self.resolve(fonts))
                .and_then(|fonts| fonts.as_array().ok())
                .and_then(|fonts| fonts.first())
                .and_then(|first| self.resolve(first))
                .and_then(|first| first.as_dict().ok());
            for font in std::iter::once(font).chain(descendant) {
                if let Some(descriptor) = self.dictionary_entry(font, b"FontDescriptor") {
                    for key in [&b"FontFile"[..], b"FontFile2", b"FontFile3"] {
                        if let Some(program_id) = reference(descriptor, key) {
                            streams.push((program_id, Syntax::Opaque));
                        }
                    }
                }
            }
            for (id, syntax) in streams {
                cost = cost.saturating_add(self.summary(id, syntax)?.bytes);
            }
        }
        Ok(cost)
    }
}

fn reference(dictionary: &Dictionary, key: &[u8]) -> Option<ObjectId> {
    dictionary.get(key).ok()?.as_reference().ok()
}

fn stream_filters(dictionary: &Dictionary) -> Vec<Filter> {
    match dictionary.get(b"Filter") {
        Ok(Object::Name(name)) => vec![Filter::from_name(name)],
        Ok(Object::Array(names)) => names
            .iter()
            .map(|name| name.as_name().map_or(Filter::Other, Filter::from_name))
            .collect(),
        _ => Vec::new(),
    }
}

/// Decodes one stream within `budget` bytes, lexing it as `syntax` says.
fn summarise(
    raw: &[u8],
    filters: &[Filter],
    syntax: Syntax,
    budget: u64,
    limits: &DocumentLimits,
) -> Result<StreamSummary, ExtractError> {
    let mut lexer = match syntax {
        Syntax::Content => Some(Lexer::for_content_stream(limits.max_nesting_depth)),
        Syntax::CharacterMap => Some(Lexer::new(limits.max_nesting_depth)),
        Syntax::Opaque => None,
    };
    let mut draws: HashMap<Vec<u8>, u64> = HashMap::new();
    let mut last_name: Option<Vec<u8>> = None;
    let mut record = |token: Token<'_>, _: Position| {
        match token {
            Token::Name(name) => last_name = Some(name.to_vec()),
            Token::Regular(b"Do") => {
                let mut name = last_name.take().unwrap_or_default();
                if !draws.contains_key(&name) && draws.len() >= MAX_DISTINCT_DRAWN_NAMES {
                    // Counted as a draw of nothing: the overhead still applies.
                    name.clear();
                }
                *draws.entry(name).or_insert(0) += 1;
            }
            _ => last_name = None,
        }
        Next::Continue
    };
    let decoded = decode_in_chunks(raw, filters, budget, |chunk| match lexer.as_mut() {
        Some(lexer) => lexer.feed(chunk, &mut record),
        None => Ok(()),
    });
    if let Some(lexer) = lexer.as_mut() {
        lexer.finish(&mut record, 0);
    }
    let bytes = match decoded {
        Ok(bytes) => bytes,
        Err(DecodeStop::OverBudget) => return Err(decompressed_error(limits)),
        Err(DecodeStop::Sink(_)) => {
            let place = match syntax {
                Syntax::CharacterMap => "a font's character map",
                _ => "a page's content stream",
            };
            return Err(too_deep(place, limits));
        }
    };
    Ok(StreamSummary {
        bytes,
        draws: draws.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_support::{png_logo, sample_letter, sample_letterhead};
    use e2e_tests::hostile::{pdf_file, stream_object, zlib, zlib_of_repeated};

    fn small_limits() -> DocumentLimits {
        DocumentLimits {
            max_text_bytes: 1 << 20,
            max_decompressed_bytes: 1 << 20,
            max_nesting_depth: 8,
            max_pdf_objects: 50,
            max_page_content_bytes: 64 * 1024,
        }
    }

    fn limit_of(result: Result<impl std::fmt::Debug, ExtractError>) -> Limit {
        match result {
            Err(ExtractError::Limit(hit)) => hit.limit,
            other => panic!("expected a limit, got {other:?}"),
        }
    }

    /// Catalog 1, pages 2, page 3 with `contents` and `resources`, font 4, then `extra` from 5.
    fn page_pdf(contents: &str, resources: &str, extra: Vec<Vec<u8>>) -> Vec<u8> {
        let mut objects = vec![
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {contents} \
                 /Resources << /Font << /F1 4 0 R >> {resources} >> >>"
            )
            .into_bytes(),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_vec(),
        ];
        objects.extend(extra);
        pdf_file(&objects)
    }

    fn checked(bytes: &[u8], limits: &DocumentLimits) -> Result<(), ExtractError> {
        let scan = scan_file(bytes, limits)?;
        let document = Document::load_mem(bytes).expect("the test PDF loads");
        check_pages(&document, &scan, limits)
    }

    #[test]
    fn stream_dictionaries_are_read_at_their_top_level_only() {
        let facts = stream_facts(
            b"<< /Length 42 /Filter [/FlateDecode /A85] /DecodeParms << /Length 7 /N 3 >> >>",
        );
        assert_eq!(facts.length, Some(42));
        assert_eq!(facts.filters, vec![Filter::Flate, Filter::Ascii85]);
        assert_eq!(facts.object_stream, None);
        let facts =
            stream_facts(b"<< /Type /ObjStm /N 12 /First 60 /Length 9 0 R /Filter /FlateDecode >>");
        assert_eq!(facts.length, None, "an indirect length is not trusted");
        assert_eq!(facts.object_stream, Some(12));
    }

    #[test]
    fn stream_data_ends_at_its_length_or_at_endstream() {
        let file = b"stream\nabc endstream here";
        assert_eq!(stream_data_end(file, 7, Some(3)), 10);
        // A wrong length falls back to the keyword.
        assert_eq!(stream_data_end(file, 7, Some(1)), 11);
        assert_eq!(stream_data_end(file, 7, None), 11);
        assert_eq!(stream_data_end(b"stream\nno end", 7, None), 13);
    }

    #[test]
    fn binary_stream_data_is_not_lexed() {
        let mut image = vec![b'['; 500];
        image.extend_from_slice(b"<<((((");
        let pdf = page_pdf(
            "5 0 R",
            "/XObject << /Im 6 0 R >>",
            vec![
                stream_object("", b"BT /F1 12 Tf (x) Tj ET q /Im Do Q"),
                stream_object(
                    "/Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray /BitsPerComponent 8",
                    &image,
                ),
            ],
        );
        checked(&pdf, &small_limits()).unwrap();
    }

    #[test]
    fn steno_letters_pass_with_room_to_spare() {
        let pdf = crate::export::render_pdf(&sample_letter(), &sample_letterhead(Some(png_logo())))
            .unwrap();
        let limits = DocumentLimits::default();
        let scan = scan_file(&pdf, &limits).unwrap();
        assert!(scan.objects > 5 && scan.streams > 2, "{scan:?}");
        let document = Document::load_mem(&pdf).unwrap();
        check_pages(&document, &scan, &limits).unwrap();
    }

    #[test]
    fn each_limit_is_named() {
        let limits = small_limits();
        let deep = format!("{}{}", "[".repeat(9), "]".repeat(9));
        let nested_body = page_pdf(
            "5 0 R",
            "",
            vec![stream_object("", b"q Q"), deep.clone().into_bytes()],
        );
        assert_eq!(
            limit_of(scan_file(&nested_body, &limits)),
            Limit::NestingDepth
        );
        let exactly_at_limit = format!("{}{}", "[".repeat(8), "]".repeat(8));
        let at_limit = page_pdf(
            "5 0 R",
            "",
            vec![stream_object("", b"q Q"), exactly_at_limit.into_bytes()],
        );
        checked(&at_limit, &limits).unwrap();

        let nested_content = page_pdf(
            "5 0 R",
            "",
            vec![stream_object(
                "/Filter /FlateDecode",
                &zlib(format!("{deep} TJ").as_bytes()),
            )],
        );
        assert_eq!(
            limit_of(checked(&nested_content, &limits)),
            Limit::NestingDepth
        );

        let many_objects: Vec<Vec<u8>> = (0..60).map(|_| b"null".to_vec()).collect();
        let crowded = page_pdf(
            "5 0 R",
            "",
            [vec![stream_object("", b"q Q")], many_objects].concat(),
        );
        assert_eq!(limit_of(scan_file(&crowded, &limits)), Limit::PdfObjects);

        let bomb = page_pdf(
            "5 0 R",
            "",
            vec![stream_object(
                "/Filter /FlateDecode",
                &zlib_of_repeated(b' ', 2 << 20),
            )],
        );
        assert!(
            scan_file(&bomb, &limits).is_ok(),
            "content is measured once it would be read"
        );
        assert_eq!(limit_of(checked(&bomb, &limits)), Limit::DecompressedBytes);

        let shared = stream_object("/Filter /FlateDecode", &zlib(&vec![b' '; 16 * 1024]));
        let repeated = page_pdf(&format!("[{}]", "5 0 R ".repeat(5)), "", vec![shared]);
        assert_eq!(
            limit_of(checked(&repeated, &limits)),
            Limit::PageContentBytes
        );
        let three_times = page_pdf(
            &format!("[{}]", "5 0 R ".repeat(3)),
            "",
            vec![stream_object(
                "/Filter /FlateDecode",
                &zlib(&vec![b' '; 16 * 1024]),
            )],
        );
        checked(&three_times, &limits).unwrap();
    }

    #[test]
    fn forms_drawing_forms_are_counted_by_use_and_loops_are_refused() {
        let limits = small_limits();
        let form = |resources: &str, content: &[u8]| {
            stream_object(
                &format!("/Type /XObject /Subtype /Form /BBox [0 0 9 9] {resources}"),
                content,
            )
        };
        let fan_out = page_pdf(
            "5 0 R",
            "/XObject << /A 6 0 R >>",
            vec![
                stream_object("", b"/A Do"),
                form(
                    "/Resources << /XObject << /B 7 0 R >> >>",
                    "/B Do ".repeat(30).as_bytes(),
                ),
                form("", &vec![b' '; 4096]),
            ],
        );
        assert_eq!(
            limit_of(checked(&fan_out, &limits)),
            Limit::PageContentBytes
        );
        let looping = page_pdf(
            "5 0 R",
            "/XObject << /A 6 0 R >>",
            vec![
                stream_object("", b"/A Do"),
                form("/Resources << /XObject << /A 6 0 R >> >>", b"/A Do"),
            ],
        );
        assert_eq!(limit_of(checked(&looping, &limits)), Limit::NestingDepth);
    }
}
