//! The offline drafting engine: writes a complete demand letter from the matter form and documents, deterministically and without network access.
//!
//! The same inputs always produce a byte-identical draft. Refinement is handled by
//! [`super::instructions`], which understands a documented set of instruction forms.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::Regex;

use super::demand_wording::{demand_paragraphs, Tone};
use super::frame::{
    join_with_and, LetterFrame, DEMAND_HEADING, FACTS_HEADING, INJURIES_HEADING, LIABILITY_HEADING,
    SPECIALS_HEADING,
};
use super::instructions::apply_instructions;
use super::specials::{is_medical_document, is_police_report};
use super::{DraftOutcome, DraftingEngine, DraftingError};
use crate::model::{
    format_cents, format_long_date, LetterDraft, LetterSection, MatterFacts, SourceDocument,
    SpecialsCategory, SpecialsItem, SpecialsSource,
};

/// Quoted diagnosis sentences kept per document and per letter.
const QUOTES_PER_DOCUMENT: usize = 3;
const QUOTES_PER_LETTER: usize = 12;
/// Quoted sentences are between these lengths, in characters.
const SHORTEST_QUOTE: usize = 12;
const LONGEST_QUOTE: usize = 240;

/// Sentences worth quoting from medical records.
static DIAGNOSIS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:diagnos\w*|impression|assessment|fractur\w*|sprain\w*|strain\w*|contusions?|whiplash|herniat\w*|tears?|torn|concussion|radiculopathy|lacerations?|dislocat\w*)\b",
    )
    .expect("diagnosis pattern is valid")
});

/// Sentences worth quoting from police reports for liability.
static FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:cited|citation|failed\s+to\s+(?:yield|stop)|ran\s+(?:a|the)\s+red|red\s+(?:light|signal)|at\s+fault|contributing\s+factor|violation|following\s+too\s+closely|rear[- ]ended|speeding|under\s+the\s+influence|dui|dwi)\b",
    )
    .expect("fault pattern is valid")
});

/// A list marker opening a line: `1. `, `2) `, `- `, `* `.
static LIST_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:\(?\d{1,2}[.)]|[-*•])\s+").expect("list marker pattern is valid")
});

/// The default engine: deterministic, offline, no configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineEngine;

impl OfflineEngine {
    /// Drafts the letter synchronously; the trait's `draft` wraps this.
    pub fn draft_letter(
        &self,
        facts: &MatterFacts,
        documents: &[SourceDocument],
        letter_date: NaiveDate,
    ) -> Result<LetterDraft, DraftingError> {
        let frame = LetterFrame::build(facts, documents, letter_date)?;
        let sections = vec![
            facts_section(facts),
            liability_section(facts, documents),
            injuries_section(facts, documents),
            specials_section(facts, &frame),
            demand_section(facts, &frame),
        ];
        Ok(frame.into_draft(sections))
    }

    /// Refines the letter synchronously; the trait's `refine` wraps this.
    pub fn refine_letter(
        &self,
        current: &LetterDraft,
        instruction: &str,
        today: NaiveDate,
    ) -> Result<LetterDraft, DraftingError> {
        apply_instructions(current, instruction, today)
    }
}

#[async_trait::async_trait]
impl DraftingEngine for OfflineEngine {
    fn name(&self) -> &'static str {
        "offline"
    }

    async fn draft(
        &self,
        facts: &MatterFacts,
        documents: &[SourceDocument],
        letter_date: NaiveDate,
    ) -> Result<DraftOutcome, DraftingError> {
        Ok(DraftOutcome {
            draft: self.draft_letter(facts, documents, letter_date)?,
            usage: None,
            engine: self.name(),
        })
    }

    async fn refine(
        &self,
        current: &LetterDraft,
        instruction: &str,
        today: NaiveDate,
    ) -> Result<DraftOutcome, DraftingError> {
        Ok(DraftOutcome {
            draft: self.refine_letter(current, instruction, today)?,
            usage: None,
            engine: self.name(),
        })
    }
}

fn facts_section(facts: &MatterFacts) -> LetterSection {
    let claimant = facts.claimant_name.trim();
    let place = facts.incident_place.trim();
    let place_clause = if place.is_empty() {
        String::new()
    } else {
        format!(", at {place}")
    };
    let mut paragraphs = vec![format!(
        "This firm represents {claimant} for the injuries sustained on {}{place_clause}. Please \
         direct all further communication about this claim to our office.",
        format_long_date(facts.incident_date)
    )];
    if let Some(description) = as_sentence(&facts.incident_description) {
        paragraphs.push(description);
    }
    LetterSection {
        heading: FACTS_HEADING.to_string(),
        paragraphs,
    }
}

fn liability_section(facts: &MatterFacts, documents: &[SourceDocument]) -> LetterSection {
    let claimant = facts.claimant_name.trim();
    let defendant = facts.defendant_name.trim();
    let mut paragraphs = vec![format!(
        "{defendant} owed {claimant} a duty to exercise reasonable care and breached that duty. \
         That breach was the direct and proximate cause of the incident and of {}'s injuries and \
         losses.",
        claimant
    )];
    let report_quotes = quotes_by_document(
        documents.iter().filter(|d| is_police_report(&d.text)),
        &FAULT,
    );
    for (filename, quotes) in report_quotes {
        paragraphs.push(quotation(
            &format!("The report in {filename} records"),
            &quotes,
        ));
    }
    let insurer = facts
        .insurer_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    paragraphs.push(match insurer {
        Some(insurer) => {
            format!(
                "We therefore expect {insurer} to accept full liability on behalf of its insured."
            )
        }
        None => "We therefore expect you to accept full responsibility for our client's damages."
            .to_string(),
    });
    LetterSection {
        heading: LIABILITY_HEADING.to_string(),
        paragraphs,
    }
}

fn injuries_section(facts: &MatterFacts, documents: &[SourceDocument]) -> LetterSection {
    let claimant = facts.claimant_name.trim();
    let mut paragraphs = vec![format!(
        "As a direct result of the incident, {claimant} suffered injuries that required medical \
         care."
    )];
    if let Some(injuries) = as_sentence(&facts.injuries) {
        paragraphs.push(format!(
            "Our client's injuries include the following: {injuries}"
        ));
    }
    if let Some(treatment) = as_sentence(&facts.treatment) {
        paragraphs.push(format!("Treatment to date: {treatment}"));
    }
    let medical_quotes = quotes_by_document(
        documents.iter().filter(|d| is_medical_document(&d.text)),
        &DIAGNOSIS,
    );
    for (filename, quotes) in medical_quotes {
        paragraphs.push(quotation(
            &format!("The records in {filename} state"),
            &quotes,
        ));
    }
    LetterSection {
        heading: INJURIES_HEADING.to_string(),
        paragraphs,
    }
}

fn specials_section(facts: &MatterFacts, frame: &LetterFrame) -> LetterSection {
    let claimant = facts.claimant_name.trim();
    let categories = [
        (
            SpecialsCategory::Medical,
            "medical expenses",
            frame.totals.medical_cents,
        ),
        (
            SpecialsCategory::LostWages,
            "lost wages",
            frame.totals.lost_wages_cents,
        ),
        (
            SpecialsCategory::Other,
            "other expenses",
            frame.totals.other_cents,
        ),
    ];
    let mut clauses = Vec::new();
    for (category, label, total) in categories {
        if total <= 0 {
            continue;
        }
        clauses.push(format!(
            "{label} of {} ({})",
            format_cents(total),
            citation(&frame.specials, category)
        ));
    }
    let paragraphs = if clauses.is_empty() {
        vec![
            "Documentation of our client's special damages will be provided under separate cover."
                .to_string(),
        ]
    } else {
        vec![
            format!(
                "To date, {claimant} has incurred special damages of {}: {}.",
                format_cents(frame.totals.all_cents),
                join_with_and(&clauses)
            ),
            "Each item is listed with its date and source in the itemisation of special damages \
             that accompanies this letter."
                .to_string(),
        ]
    };
    LetterSection {
        heading: SPECIALS_HEADING.to_string(),
        paragraphs,
    }
}

/// "see a.pdf and b.pdf", naming each source document once, in order; items typed into the
/// matter form are cited as the itemisation.
fn citation(specials: &[SpecialsItem], category: SpecialsCategory) -> String {
    let mut filenames: Vec<String> = Vec::new();
    let mut from_form = false;
    for item in specials.iter().filter(|item| item.category == category) {
        match &item.source {
            SpecialsSource::Document { filename, .. } => {
                if !filenames.contains(filename) {
                    filenames.push(filename.clone());
                }
            }
            SpecialsSource::Form => from_form = true,
        }
    }
    match (filenames.is_empty(), from_form) {
        (true, _) => "as itemised with this letter".to_string(),
        (false, false) => format!("see {}", join_with_and(&filenames)),
        (false, true) => {
            filenames.push("the itemisation with this letter".to_string());
            format!("see {}", join_with_and(&filenames))
        }
    }
}

fn demand_section(facts: &MatterFacts, frame: &LetterFrame) -> LetterSection {
    let claimant = facts.claimant_name.trim();
    let mut paragraphs = Vec::new();
    if frame.totals.all_cents > 0 {
        paragraphs.push(format!(
            "Beyond the special damages of {}, {claimant} has endured pain, suffering and \
             disruption of daily life that these figures do not capture.",
            format_cents(frame.totals.all_cents)
        ));
    }
    paragraphs.extend(demand_paragraphs(
        Tone::Standard,
        frame.total_demand_cents,
        frame.response_deadline,
    ));
    LetterSection {
        heading: DEMAND_HEADING.to_string(),
        paragraphs,
    }
}

/// The lawyer's text as a sentence: trimmed, whitespace collapsed, ending in punctuation.
fn as_sentence(text: &str) -> Option<String> {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    if collapsed.ends_with(['.', '!', '?', '"', ')']) {
        Some(collapsed)
    } else {
        Some(format!("{collapsed}."))
    }
}

/// `lead: "first" and "second".`, without a second period when the last quote ends a sentence.
fn quotation(lead: &str, quotes: &[String]) -> String {
    let quoted: Vec<String> = quotes.iter().map(|quote| format!("\"{quote}\"")).collect();
    let joined = join_with_and(&quoted);
    let ends_sentence = quotes
        .last()
        .is_some_and(|quote| quote.ends_with(['.', '!', '?']));
    if ends_sentence {
        format!("{lead}: {joined}")
    } else {
        format!("{lead}: {joined}.")
    }
}

/// Short sentences matching `pattern`, grouped by document filename, in document order, without
/// repeating a sentence already quoted.
fn quotes_by_document<'a>(
    documents: impl Iterator<Item = &'a SourceDocument>,
    pattern: &Regex,
) -> Vec<(String, Vec<String>)> {
    let mut seen: Vec<String> = Vec::new();
    let mut grouped = Vec::new();
    for document in documents {
        if seen.len() >= QUOTES_PER_LETTER {
            break;
        }
        let mut quotes = Vec::new();
        'lines: for line in document.text.lines() {
            let line = LIST_MARKER.replace(line, "");
            for sentence in sentences(&line) {
                if quotes.len() >= QUOTES_PER_DOCUMENT || seen.len() >= QUOTES_PER_LETTER {
                    break 'lines;
                }
                let length = sentence.chars().count();
                if !(SHORTEST_QUOTE..=LONGEST_QUOTE).contains(&length)
                    || sentence.contains('$')
                    || !pattern.is_match(&sentence)
                {
                    continue;
                }
                let key = sentence.to_lowercase();
                if seen.contains(&key) {
                    continue;
                }
                seen.push(key);
                quotes.push(sentence);
            }
        }
        if !quotes.is_empty() {
            grouped.push((document.filename.clone(), quotes));
        }
    }
    grouped
}

/// Splits a line into sentences at `.`, `!` or `?` followed by a space; whitespace collapsed,
/// double quotes turned into single quotes so the sentence can be quoted.
fn sentences(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current = String::new();
    let mut characters = line.chars().peekable();
    while let Some(character) = characters.next() {
        current.push(character);
        let ends_sentence = matches!(character, '.' | '!' | '?')
            && characters.peek().is_none_or(|next| next.is_whitespace());
        if ends_sentence {
            found.push(std::mem::take(&mut current));
        }
    }
    found.push(current);
    found
        .into_iter()
        .map(|sentence| {
            sentence
                .replace('"', "'")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|sentence| !sentence.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample_facts;
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    pub(crate) fn sample_documents() -> Vec<SourceDocument> {
        vec![
            SourceDocument {
                id: "doc-1".into(),
                filename: "er-bill.pdf".into(),
                text: "Springfield General Hospital\nItemized Statement\n\
                       03/14/2025  99284  Emergency department visit  $1,850.00\n\
                       03/14/2025  73110  X-ray wrist, 3 views  $298.00\n\
                       Total charges  $2,148.00\n"
                    .into(),
            },
            SourceDocument {
                id: "doc-2".into(),
                filename: "er-notes.pdf".into(),
                text: "Emergency Department Physician Note\n\
                       Patient seen after motor vehicle collision.\n\
                       Impression: Nondisplaced fracture of the left distal radius. Cervical strain.\n\
                       Plan: splint, follow-up with orthopedics, physical therapy.\n"
                    .into(),
            },
            SourceDocument {
                id: "doc-3".into(),
                filename: "wage-letter.pdf".into(),
                text: "Acme Logistics Human Resources\n\
                       Jordan Rivera missed 12 days at $240.00 per day, total $2,880.00.\n"
                    .into(),
            },
            SourceDocument {
                id: "doc-4".into(),
                filename: "police-report.pdf".into(),
                text: "Springfield Police Department Traffic Collision Report\n\
                       Reporting officer: Sgt. L. Ortiz\n\
                       Driver of Vehicle 1 failed to stop for the red signal and was cited.\n\
                       Estimated damage: $4,500\n"
                    .into(),
            },
        ]
    }

    fn letter_date() -> NaiveDate {
        date(2025, 6, 1)
    }

    #[tokio::test]
    async fn draft_has_every_section_and_consistent_totals() {
        let outcome = OfflineEngine
            .draft(&sample_facts(), &sample_documents(), letter_date())
            .await
            .unwrap();
        assert_eq!(outcome.engine, "offline");
        assert!(outcome.usage.is_none());
        let draft = outcome.draft;
        let headings: Vec<&str> = draft.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(
            headings,
            vec![
                FACTS_HEADING,
                LIABILITY_HEADING,
                INJURIES_HEADING,
                SPECIALS_HEADING,
                DEMAND_HEADING
            ]
        );
        assert_eq!(draft.recipient[0], "Granite Mutual Insurance");
        assert_eq!(
            draft.reference,
            vec![
                "Our client: Jordan Rivera",
                "Your insured: Casey Morgan",
                "Claim number: GM-2025-00417",
                "Date of loss: March 14, 2025",
            ]
        );
        assert_eq!(draft.salutation, "Dear Claims Representative:");
        assert_eq!(draft.closing, "Sincerely,");
        assert!(!draft.signature.is_empty());

        // 1,850 + 298 medical; 2,880 wages; 450 rental car from the form.
        assert_eq!(draft.total_medical_cents, 214_800);
        assert_eq!(draft.total_lost_wages_cents, 288_000);
        assert_eq!(draft.total_specials_cents, 214_800 + 288_000 + 45_000);
        let sum: i64 = draft.specials.iter().map(|i| i.amount_cents).sum();
        assert_eq!(sum, draft.total_specials_cents);
        assert_eq!(draft.specials.last().unwrap().source, SpecialsSource::Form);

        // Formula: 2,148 × 3 + 2,880 + 450 = 9,774 → 10,000.
        assert_eq!(draft.total_demand_cents, 1_000_000);
        assert_eq!(draft.response_deadline, date(2025, 7, 1));

        let text = draft.plain_text();
        assert!(text.contains("Ten Thousand Dollars ($10,000.00)"));
        assert!(text.contains("on or before July 1, 2025"));
        assert!(text.contains("medical expenses of $2,148.00 (see er-bill.pdf)"));
        assert!(text.contains("lost wages of $2,880.00 (see wage-letter.pdf)"));
        assert!(text.contains(
            "The records in er-notes.pdf state: \"Impression: Nondisplaced fracture of the left \
             distal radius.\" and \"Cervical strain.\""
        ));
        assert!(text.contains("The report in police-report.pdf records:"));
        assert!(!text.contains("$4,500"));
    }

    #[test]
    fn drafting_is_deterministic() {
        let first = OfflineEngine
            .draft_letter(&sample_facts(), &sample_documents(), letter_date())
            .unwrap();
        let second = OfflineEngine
            .draft_letter(&sample_facts(), &sample_documents(), letter_date())
            .unwrap();
        assert_eq!(first, second);
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&second).unwrap()
        );
    }

    #[test]
    fn chosen_demand_and_response_days_are_used() {
        let mut facts = sample_facts();
        facts.demand_amount_cents = Some(8_500_000);
        facts.response_days = Some(45);
        let draft = OfflineEngine
            .draft_letter(&facts, &sample_documents(), letter_date())
            .unwrap();
        assert_eq!(draft.total_demand_cents, 8_500_000);
        assert_eq!(draft.response_deadline, date(2025, 7, 16));
        assert!(draft
            .plain_text()
            .contains("Eighty-Five Thousand Dollars ($85,000.00)"));
    }

    #[test]
    fn letter_to_the_defendant_without_insurer() {
        let mut facts = sample_facts();
        facts.insurer_name = None;
        facts.claim_number = Some("  ".into());
        let draft = OfflineEngine
            .draft_letter(&facts, &[], letter_date())
            .unwrap();
        assert_eq!(draft.recipient, vec!["Casey Morgan"]);
        assert_eq!(draft.salutation, "Dear Casey Morgan:");
        assert_eq!(
            draft.reference,
            vec!["Our client: Jordan Rivera", "Date of loss: March 14, 2025"]
        );
        // Only the $450 rental car: 450 → 500.
        assert_eq!(draft.total_demand_cents, 50_000);
    }

    #[test]
    fn nothing_to_demand_is_an_error_that_says_what_to_do() {
        let mut facts = sample_facts();
        facts.manual_specials.clear();
        let error = OfflineEngine
            .draft_letter(&facts, &[], letter_date())
            .unwrap_err();
        assert!(matches!(error, DraftingError::InvalidMatter(_)));
        assert!(error.to_string().contains("enter a demand amount"));
    }

    #[test]
    fn invalid_matter_is_rejected() {
        let mut facts = sample_facts();
        facts.claimant_name = String::new();
        assert!(matches!(
            OfflineEngine.draft_letter(&facts, &[], letter_date()),
            Err(DraftingError::InvalidMatter(_))
        ));
    }
}
