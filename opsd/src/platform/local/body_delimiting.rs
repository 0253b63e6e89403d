//! What is left of a body and what the next bytes in a buffer give towards it: by a length, by
//! the chunked coding (`chunked_coding.rs`) or until the connection closes. Shared by the
//! request bodies the router reads from clients (`client_body.rs`) and the answers it reads from
//! releases (`upstream_body.rs`), which differ only in where more bytes come from and what a
//! failure says.

use bytes::{Bytes, BytesMut};
use hyper::body::SizeHint;

use super::chunked_coding::{ChunkedDecoder, Decoded};

/// What is left of a body.
#[derive(Debug)]
pub(super) enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

/// What the buffer gave towards the body.
pub(super) enum Step {
    Data(Bytes),
    End,
    NeedMore,
    /// A broken chunked coding, and what is wrong with it.
    Invalid(String),
}

impl Remaining {
    /// Takes what the buffer holds of the body: some data, the end, or nothing until more
    /// arrives. A length-delimited body takes no byte beyond its length.
    pub(super) fn step(&mut self, buffer: &mut BytesMut) -> Step {
        match self {
            Remaining::Done | Remaining::Length(0) => Step::End,
            _ if buffer.is_empty() && !matches!(self, Remaining::Chunked(_)) => Step::NeedMore,
            Remaining::Length(left) => {
                let take =
                    usize::try_from(*left).map_or(buffer.len(), |left| left.min(buffer.len()));
                *left -= take as u64;
                Step::Data(buffer.split_to(take).freeze())
            }
            Remaining::UntilClose => Step::Data(buffer.split().freeze()),
            Remaining::Chunked(decoder) => match decoder.decode(buffer) {
                Ok(Decoded::Data(data)) => Step::Data(data),
                Ok(Decoded::End) => Step::End,
                Ok(Decoded::NeedMore) => Step::NeedMore,
                Err(problem) => Step::Invalid(problem),
            },
        }
    }

    /// Whether nothing is left (a length-delimited body whose last byte was handed on).
    pub(super) fn is_end(&self) -> bool {
        matches!(self, Remaining::Done | Remaining::Length(0))
    }

    pub(super) fn size_hint(&self) -> SizeHint {
        match self {
            Remaining::Length(left) => SizeHint::with_exact(*left),
            Remaining::Done => SizeHint::with_exact(0),
            Remaining::Chunked(_) | Remaining::UntilClose => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(mut remaining: Remaining, wire: &[u8]) -> (Vec<u8>, bool, usize) {
        let mut buffer = BytesMut::from(wire);
        let mut data = Vec::new();
        loop {
            match remaining.step(&mut buffer) {
                Step::Data(bytes) => data.extend_from_slice(&bytes),
                Step::End => return (data, true, buffer.len()),
                Step::NeedMore => return (data, false, buffer.len()),
                Step::Invalid(problem) => panic!("{problem}"),
            }
        }
    }

    #[test]
    fn each_delimiting_takes_exactly_its_body() {
        assert_eq!(
            steps(Remaining::Length(5), b"helloGET /"),
            (b"hello".to_vec(), true, 5)
        );
        assert_eq!(
            steps(Remaining::Length(9), b"hello"),
            (b"hello".to_vec(), false, 0)
        );
        assert_eq!(
            steps(
                Remaining::Chunked(ChunkedDecoder::default()),
                b"2\r\nok\r\n0\r\n\r\nnext"
            ),
            (b"ok".to_vec(), true, 4)
        );
        assert_eq!(
            steps(Remaining::UntilClose, b"all of it"),
            (b"all of it".to_vec(), false, 0)
        );
        assert_eq!(steps(Remaining::Done, b"next"), (Vec::new(), true, 4));
        assert_eq!(Remaining::Length(3).size_hint().exact(), Some(3));
        assert_eq!(Remaining::UntilClose.size_hint().exact(), None);
    }
}
