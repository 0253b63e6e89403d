//! The named limits that bound the work one request may make Steno do (extraction, logos,
//! drafting, export): their stable names, the environment variables that set them, their
//! defaults, and the error a request gets when it reaches one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A limit on the work one upload, draft or export may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// Text extracted from one document, in bytes of UTF-8.
    ExtractedTextBytes,
    /// Bytes all compressed streams of one document inflate to (each stream counted once).
    DecompressedBytes,
    /// Nesting of arrays, dictionaries and strings in a PDF, its content streams, page tree and forms.
    NestingDepth,
    /// Objects in one PDF.
    PdfObjects,
    /// Page content the PDF text extractor is asked to process, every use of a stream counted.
    PageContentBytes,
    /// Address space of one extraction child process.
    ExtractMemoryBytes,
    /// CPU time of one extraction child process.
    ExtractCpuSeconds,
    /// Wall-clock time of one extraction child process.
    ExtractTimeoutSeconds,
    /// Stack of one extraction child process (a parser recursing too deeply exhausts it).
    ExtractStackBytes,
    /// Width or height of a logo, in pixels.
    LogoDimensionPixels,
    /// Source-document text one draft may read.
    DraftSourceBytes,
    /// Text of one letter revision an export may render.
    ExportLetterBytes,
}

impl Limit {
    /// The stable name clients see in `error.limit.name`.
    pub fn name(self) -> &'static str {
        match self {
            Limit::ExtractedTextBytes => "extracted_text_bytes",
            Limit::DecompressedBytes => "decompressed_bytes",
            Limit::NestingDepth => "nesting_depth",
            Limit::PdfObjects => "pdf_objects",
            Limit::PageContentBytes => "page_content_bytes",
            Limit::ExtractMemoryBytes => "extract_memory_bytes",
            Limit::ExtractCpuSeconds => "extract_cpu_seconds",
            Limit::ExtractTimeoutSeconds => "extract_timeout_seconds",
            Limit::ExtractStackBytes => "extract_stack_bytes",
            Limit::LogoDimensionPixels => "logo_dimension_pixels",
            Limit::DraftSourceBytes => "draft_source_bytes",
            Limit::ExportLetterBytes => "export_letter_bytes",
        }
    }

    /// The environment variable that sets the limit.
    pub fn variable(self) -> &'static str {
        match self {
            Limit::ExtractedTextBytes => "STENO_MAX_EXTRACTED_TEXT_BYTES",
            Limit::DecompressedBytes => "STENO_MAX_DECOMPRESSED_BYTES",
            Limit::NestingDepth => "STENO_MAX_NESTING_DEPTH",
            Limit::PdfObjects => "STENO_MAX_PDF_OBJECTS",
            Limit::PageContentBytes => "STENO_MAX_PAGE_CONTENT_BYTES",
            Limit::ExtractMemoryBytes => "STENO_EXTRACT_MEMORY_BYTES",
            Limit::ExtractCpuSeconds => "STENO_EXTRACT_CPU_SECS",
            Limit::ExtractTimeoutSeconds => "STENO_EXTRACT_TIMEOUT_SECS",
            Limit::ExtractStackBytes => "STENO_EXTRACT_STACK_BYTES",
            Limit::LogoDimensionPixels => "STENO_MAX_LOGO_DIMENSION",
            Limit::DraftSourceBytes => "STENO_MAX_DRAFT_SOURCE_BYTES",
            Limit::ExportLetterBytes => "STENO_MAX_EXPORT_LETTER_BYTES",
        }
    }

    /// How a value of this limit reads in a message: "2 MiB", "20 seconds", "64 levels".
    pub fn describe_value(self, value: u64) -> String {
        match self {
            Limit::NestingDepth => format!("{value} levels"),
            Limit::PdfObjects => format!("{value} objects"),
            Limit::ExtractCpuSeconds => format!("{value} s of CPU time"),
            Limit::ExtractTimeoutSeconds => format!("{value} s"),
            Limit::LogoDimensionPixels => format!("{value} pixels"),
            _ => describe_bytes(value),
        }
    }
}

/// Bytes as a reader wants them: "2 MiB" when exact, else the plain count.
pub fn describe_bytes(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const KIB: u64 = 1024;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// A request reached a limit: which one, its configured value, and what happened, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitExceeded {
    pub limit: Limit,
    pub value: u64,
    /// What reached the limit, e.g. "the PDF's streams inflate to more than".
    pub what: String,
    /// What the user can do about it.
    pub advice: String,
}

impl LimitExceeded {
    pub fn new(
        limit: Limit,
        value: u64,
        what: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        LimitExceeded {
            limit,
            value,
            what: what.into(),
            advice: advice.into(),
        }
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} the {} limit of {} ({}); {}",
            self.what,
            self.limit.name(),
            self.limit.describe_value(self.value),
            self.limit.variable(),
            self.advice
        )
    }
}

impl std::error::Error for LimitExceeded {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_limit_its_value_and_variable() {
        let hit = LimitExceeded::new(
            Limit::ExtractedTextBytes,
            2 * 1024 * 1024,
            "the text extracted from bill.pdf is larger than",
            "split the document and upload the parts",
        );
        assert_eq!(
            hit.to_string(),
            "the text extracted from bill.pdf is larger than the extracted_text_bytes limit of 2 MiB \
             (STENO_MAX_EXTRACTED_TEXT_BYTES); split the document and upload the parts"
        );
    }

    #[test]
    fn values_are_described_in_their_unit() {
        assert_eq!(Limit::NestingDepth.describe_value(64), "64 levels");
        assert_eq!(Limit::ExtractTimeoutSeconds.describe_value(20), "20 s");
        assert_eq!(Limit::DecompressedBytes.describe_value(1536), "1536 bytes");
        assert_eq!(describe_bytes(3 * 1024), "3 KiB");
        assert_eq!(describe_bytes(1000), "1000 bytes");
    }

    #[test]
    fn names_round_trip_through_json() {
        let json = serde_json::to_string(&Limit::PageContentBytes).unwrap();
        assert_eq!(json, "\"page_content_bytes\"");
        assert_eq!(
            serde_json::from_str::<Limit>(&json).unwrap(),
            Limit::PageContentBytes
        );
    }
}
