//! Decoding a PDF stream's filters chunk by chunk under a byte budget, as the PDF library would
//! decode them, so Steno learns how large a stream inflates without ever holding its output.

use std::io::Read;

use flate2::read::ZlibDecoder;

/// A stream filter, as far as the PDF library decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    Flate,
    Ascii85,
    /// Anything else: the library leaves the stream (or the rest of its chain) undecoded.
    Other,
}

impl Filter {
    pub fn from_name(name: &[u8]) -> Filter {
        match name {
            b"FlateDecode" | b"Fl" => Filter::Flate,
            b"ASCII85Decode" | b"A85" => Filter::Ascii85,
            _ => Filter::Other,
        }
    }
}

/// Why decoding stopped early.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecodeStop<E> {
    /// The decoded bytes passed the budget.
    OverBudget,
    /// The chunk handler refused a chunk.
    Sink(E),
}

const CHUNK_BYTES: usize = 64 * 1024;

/// Decodes `raw` through `filters` (in decoding order) and hands each decoded chunk to `sink`;
/// returns the decoded size. Only the filters the PDF library decodes are applied: decoding
/// stops at the first other filter, so the size is of the last layer the library would build.
/// Damaged compressed data ends the output where it breaks, as in the library.
pub(crate) fn decode_in_chunks<E>(
    raw: &[u8],
    filters: &[Filter],
    budget: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, DecodeStop<E>> {
    let decodable = filters
        .iter()
        .position(|filter| *filter == Filter::Other)
        .map_or(filters, |first_other| &filters[..first_other]);
    // ASCII85 is only decoded as the first filter (it shrinks its input, which is at most the
    // upload); a chain with ASCII85 later is measured up to it.
    let (first_layer, rest): (std::borrow::Cow<'_, [u8]>, &[Filter]) = match decodable.split_first()
    {
        Some((Filter::Ascii85, rest)) => (decode_ascii85(raw).into(), rest),
        _ => (raw.into(), decodable),
    };
    let flate_layers = rest
        .iter()
        .position(|filter| *filter != Filter::Flate)
        .unwrap_or(rest.len());
    let mut reader: Box<dyn Read + '_> = Box::new(&first_layer[..]);
    for _ in 0..flate_layers {
        reader = Box::new(ZlibDecoder::new(reader));
    }
    let mut buffer = vec![0u8; CHUNK_BYTES];
    let mut total: u64 = 0;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) | Err(_) => return Ok(total),
            Ok(read) => read,
        };
        total += read as u64;
        if total > budget {
            return Err(DecodeStop::OverBudget);
        }
        sink(&buffer[..read]).map_err(DecodeStop::Sink)?;
    }
}

/// ASCII85 as the PDF library reads it: whitespace ignored, `z` for four zero bytes, `~>` ends.
fn decode_ascii85(input: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(input.len() / 5 * 4 + 4);
    let mut group: u64 = 0;
    let mut count = 0;
    for &byte in input {
        match byte {
            b'~' => break,
            b'z' if count == 0 => output.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group = group * 85 + u64::from(byte - b'!');
                count += 1;
                if count == 5 {
                    output.extend_from_slice(&(group as u32).to_be_bytes());
                    group = 0;
                    count = 0;
                }
            }
            _ => {}
        }
    }
    if count > 1 {
        for _ in count..5 {
            group = group * 85 + 84;
        }
        output.extend_from_slice(&(group as u32).to_be_bytes()[..count - 1]);
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn decoded(raw: &[u8], filters: &[Filter], budget: u64) -> Result<Vec<u8>, DecodeStop<()>> {
        let mut output = Vec::new();
        decode_in_chunks(raw, filters, budget, |chunk| {
            output.extend_from_slice(chunk);
            Ok::<(), ()>(())
        })?;
        Ok(output)
    }

    #[test]
    fn flate_chains_are_decoded_layer_by_layer() {
        let text = b"BT /F1 12 Tf (hello) Tj ET".repeat(100);
        assert_eq!(
            decoded(&zlib(&text), &[Filter::Flate], 1 << 20).unwrap(),
            text
        );
        let twice = zlib(&zlib(&text));
        assert_eq!(
            decoded(&twice, &[Filter::Flate, Filter::Flate], 1 << 20).unwrap(),
            text
        );
        assert_eq!(decoded(b"plain", &[], 100).unwrap(), b"plain");
    }

    #[test]
    fn the_budget_stops_a_bomb_without_holding_it() {
        let bomb = zlib(&vec![0u8; 8 << 20]);
        assert!(bomb.len() < 64 * 1024);
        let mut largest_chunk = 0;
        let stop = decode_in_chunks(&bomb, &[Filter::Flate], 1 << 20, |chunk| {
            largest_chunk = largest_chunk.max(chunk.len());
            Ok::<(), ()>(())
        })
        .unwrap_err();
        assert_eq!(stop, DecodeStop::OverBudget);
        assert!(largest_chunk <= CHUNK_BYTES);
        let double = zlib(&bomb);
        assert_eq!(
            decoded(&double, &[Filter::Flate, Filter::Flate], 1 << 20).unwrap_err(),
            DecodeStop::OverBudget
        );
    }

    #[test]
    fn other_filters_end_the_decodable_chain() {
        let text = b"0 0 m 10 10 l S".to_vec();
        let raw = zlib(&text);
        assert_eq!(
            decoded(&raw, &[Filter::Flate, Filter::Other, Filter::Flate], 100).unwrap(),
            text
        );
        assert_eq!(decoded(&raw, &[Filter::Other], 1000).unwrap(), raw);
    }

    #[test]
    fn ascii85_first_then_flate() {
        assert_eq!(decode_ascii85(b"87cURDZ~>"), b"Hello");
        assert_eq!(decode_ascii85(b"z!!~>"), [0, 0, 0, 0, 0]);
        let text = b"q 1 0 0 1 0 0 cm Q".to_vec();
        let compressed = zlib(&text);
        let encoded = encode_ascii85(&compressed);
        assert_eq!(
            decoded(&encoded, &[Filter::Ascii85, Filter::Flate], 1000).unwrap(),
            text
        );
    }

    fn encode_ascii85(bytes: &[u8]) -> Vec<u8> {
        let mut output = Vec::new();
        for chunk in bytes.chunks(4) {
            let mut group = [0u8; 4];
            group[..chunk.len()].copy_from_slice(chunk);
            let mut value = u32::from_be_bytes(group) as u64;
            let mut digits = [0u8; 5];
            for digit in digits.iter_mut().rev() {
                *digit = (value % 85) as u8 + b'!';
                value /= 85;
            }
            output.extend_from_slice(&digits[..chunk.len() + 1]);
        }
        output.extend_from_slice(b"~>");
        output
    }

    #[test]
    fn filter_names_are_recognised() {
        assert_eq!(Filter::from_name(b"FlateDecode"), Filter::Flate);
        assert_eq!(Filter::from_name(b"A85"), Filter::Ascii85);
        assert_eq!(Filter::from_name(b"DCTDecode"), Filter::Other);
    }
}
