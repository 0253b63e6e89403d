//! Domain types shared by drafting, export and the HTTP layer: matters, source documents, letter drafts.
//!
//! Money is always whole cents in an `i64`; dates without a time are `chrono::NaiveDate`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// The facts of a personal-injury matter, as entered by a lawyer in the matter form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MatterFacts {
    pub claimant_name: String,
    pub defendant_name: String,
    /// The insurer the letter is addressed to; the defendant is addressed when absent.
    pub insurer_name: Option<String>,
    /// The insurer's claim number, quoted in the reference block when known.
    pub claim_number: Option<String>,
    pub incident_date: NaiveDate,
    pub incident_place: String,
    /// What happened and why the defendant is at fault, in the lawyer's words.
    pub incident_description: String,
    pub injuries: String,
    pub treatment: String,
    /// Specials typed into the form rather than found in a document.
    pub manual_specials: Vec<ManualSpecial>,
    /// A total demand chosen by the lawyer; when absent the engine computes one.
    pub demand_amount_cents: Option<i64>,
    /// Days the recipient has to respond; 30 when absent.
    pub response_days: Option<u32>,
}

/// One special damages item entered in the matter form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ManualSpecial {
    pub category: SpecialsCategory,
    pub description: String,
    pub amount_cents: i64,
    pub service_date: Option<NaiveDate>,
}

/// An uploaded source document with the text extracted from it at upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceDocument {
    pub id: String,
    pub filename: String,
    pub text: String,
}

/// What kind of loss a specials item is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SpecialsCategory {
    Medical,
    LostWages,
    Other,
}

impl SpecialsCategory {
    pub fn label(self) -> &'static str {
        match self {
            SpecialsCategory::Medical => "Medical",
            SpecialsCategory::LostWages => "Lost wages",
            SpecialsCategory::Other => "Other",
        }
    }
}

/// Where a specials item came from, so the letter can cite it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SpecialsSource {
    Document {
        document_id: String,
        filename: String,
    },
    Form,
}

/// One itemised special damages line of a letter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SpecialsItem {
    pub category: SpecialsCategory,
    pub description: String,
    pub amount_cents: i64,
    pub service_date: Option<NaiveDate>,
    pub source: SpecialsSource,
}

/// A titled part of the letter body ("Facts", "Liability", ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LetterSection {
    pub heading: String,
    pub paragraphs: Vec<String>,
}

/// A complete demand letter: what every revision stores and what export renders.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LetterDraft {
    pub letter_date: NaiveDate,
    /// Address block of the recipient, one line each.
    pub recipient: Vec<String>,
    /// "Re:" block lines: claimant, date of loss, claim number.
    pub reference: Vec<String>,
    pub salutation: String,
    pub sections: Vec<LetterSection>,
    pub specials: Vec<SpecialsItem>,
    pub total_medical_cents: i64,
    pub total_lost_wages_cents: i64,
    pub total_specials_cents: i64,
    pub total_demand_cents: i64,
    pub response_deadline: NaiveDate,
    pub closing: String,
    pub signature: Vec<String>,
}

impl LetterDraft {
    /// The letter as plain text, in reading order; used by the UI preview and for search.
    pub fn plain_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format_long_date(self.letter_date));
        out.push_str("\n\n");
        for line in &self.recipient {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        for line in &self.reference {
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.salutation);
        out.push_str("\n\n");
        for section in &self.sections {
            out.push_str(&section.heading.to_uppercase());
            out.push('\n');
            for paragraph in &section.paragraphs {
                out.push_str(paragraph);
                out.push_str("\n\n");
            }
        }
        if !self.specials.is_empty() {
            out.push_str("ITEMISED SPECIAL DAMAGES\n");
            for item in &self.specials {
                out.push_str(&specials_line(item));
                out.push('\n');
            }
            out.push_str(&format!(
                "Total special damages: {}\n\n",
                format_cents(self.total_specials_cents)
            ));
        }
        out.push_str(&self.closing);
        out.push_str("\n\n");
        for line in &self.signature {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// One specials item as a single line: date, description, amount and source.
pub fn specials_line(item: &SpecialsItem) -> String {
    let date = item
        .service_date
        .map(|d| d.format("%m/%d/%Y").to_string())
        .unwrap_or_else(|| "n/a".to_string());
    let source = match &item.source {
        SpecialsSource::Document { filename, .. } => filename.as_str(),
        SpecialsSource::Form => "matter form",
    };
    format!(
        "{date}  {}  {}  {}  (source: {source})",
        item.category.label(),
        item.description,
        format_cents(item.amount_cents)
    )
}

/// Formats cents as US dollars with thousands separators: `123456` → `$1,234.56`.
pub fn format_cents(cents: i64) -> String {
    let negative = cents < 0;
    let abs = cents.unsigned_abs();
    let dollars = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!(
        "{}${grouped}.{:02}",
        if negative { "-" } else { "" },
        abs % 100
    )
}

/// Formats a date the way letters print it: `January 5, 2026`.
pub fn format_long_date(date: NaiveDate) -> String {
    date.format("%B %-d, %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_grouped_by_thousands() {
        assert_eq!(format_cents(0), "$0.00");
        assert_eq!(format_cents(5), "$0.05");
        assert_eq!(format_cents(123456), "$1,234.56");
        assert_eq!(format_cents(100_000_000), "$1,000,000.00");
        assert_eq!(format_cents(-2550), "-$25.50");
    }

    #[test]
    fn long_date_has_no_leading_zero() {
        let date = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        assert_eq!(format_long_date(date), "January 5, 2026");
    }
}
