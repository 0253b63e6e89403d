//! Drafting engines: the trait the HTTP layer calls, its errors and outcome types, input validation, and engine selection.
//!
//! Two engines implement [`DraftingEngine`]:
//! - [`OfflineEngine`] (the default) drafts deterministically without any network access;
//! - [`AnthropicEngine`] asks Anthropic's Messages API to write the prose, while the figures
//!   (specials, totals, demand, deadline) and the address and reference blocks are computed by
//!   Steno exactly as the offline engine computes them.

pub mod anthropic;
pub mod demand_wording;
pub mod frame;
pub mod instructions;
pub mod offline;
pub mod specials;

use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use crate::model::{LetterDraft, MatterFacts, SourceDocument};

pub use anthropic::{AnthropicEngine, RetryPolicy};
pub use offline::OfflineEngine;

/// Longest refine instruction accepted, in characters.
pub const MAX_INSTRUCTION_CHARS: usize = 4000;
/// Longest party name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest response period accepted, in days.
pub const MAX_RESPONSE_DAYS: u32 = 365;

/// Tokens an AI engine spent on its last call, so Steno can account for AI spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TokenUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What an engine hands back: the draft, the tokens spent (AI engines only) and the engine's name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftOutcome {
    pub draft: LetterDraft,
    pub usage: Option<TokenUsage>,
    pub engine: &'static str,
}

/// Why a draft or a refinement could not be produced. Every message says what to do next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DraftingError {
    #[error("the matter cannot be drafted: {0}")]
    InvalidMatter(String),

    #[error("the instruction cannot be used: {0}")]
    InvalidInstruction(String),

    #[error(
        "Steno did not understand the instruction \"{instruction}\". Rephrase it using one of \
         these forms (several may be given, one per line or separated by \";\"): {supported}"
    )]
    UnsupportedInstruction {
        instruction: String,
        supported: String,
    },

    #[error("the instruction \"{instruction}\" cannot be applied to this draft: {reason}")]
    InstructionNotApplicable { instruction: String, reason: String },

    #[error(
        "ANTHROPIC_API_KEY was rejected by the AI drafting service (HTTP {status}: {message}); \
         set a valid key, or unset it to use the offline engine"
    )]
    Authentication { status: u16, message: String },

    #[error(
        "the AI drafting service answered HTTP {status}: {message}; try again later, or unset \
         ANTHROPIC_API_KEY to use the offline engine"
    )]
    Upstream { status: u16, message: String },

    #[error(
        "the AI drafting service did not answer within {seconds} seconds; try again, or unset \
         ANTHROPIC_API_KEY to use the offline engine"
    )]
    Timeout { seconds: u64 },

    #[error(
        "could not reach the AI drafting service ({0}); check the network and \
         ANTHROPIC_BASE_URL, or unset ANTHROPIC_API_KEY to use the offline engine"
    )]
    Unreachable(String),

    #[error(
        "the AI drafting service returned an answer Steno could not use: {0}; try again, or \
         unset ANTHROPIC_API_KEY to use the offline engine"
    )]
    MalformedResponse(String),

    #[error("the drafting engine is misconfigured: {0}")]
    Configuration(String),
}

impl DraftingError {
    /// The HTTP status the API should answer with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            DraftingError::InvalidMatter(_)
            | DraftingError::InvalidInstruction(_)
            | DraftingError::UnsupportedInstruction { .. }
            | DraftingError::InstructionNotApplicable { .. } => 422,
            DraftingError::Timeout { .. } => 504,
            DraftingError::Authentication { .. }
            | DraftingError::Upstream { .. }
            | DraftingError::Unreachable(_)
            | DraftingError::MalformedResponse(_) => 502,
            DraftingError::Configuration(_) => 500,
        }
    }
}

/// A drafting engine as the HTTP layer holds it: `Arc<dyn DraftingEngine>`.
#[async_trait::async_trait]
pub trait DraftingEngine: Send + Sync {
    /// `"offline"` or `"anthropic"`.
    fn name(&self) -> &'static str;

    /// Drafts a complete demand letter dated `letter_date` from the matter form and its documents.
    async fn draft(
        &self,
        facts: &MatterFacts,
        documents: &[SourceDocument],
        letter_date: NaiveDate,
    ) -> Result<DraftOutcome, DraftingError>;

    /// Applies a lawyer's instruction to a draft and returns the revised draft.
    async fn refine(
        &self,
        current: &LetterDraft,
        instruction: &str,
        today: NaiveDate,
    ) -> Result<DraftOutcome, DraftingError>;
}

/// Picks the engine: the Anthropic engine when an API key is configured, the offline engine
/// otherwise (or when the Anthropic client cannot be built, which is logged).
pub fn engine_from_settings(
    anthropic_api_key: Option<String>,
    anthropic_base_url: Option<String>,
    anthropic_model: Option<String>,
) -> Arc<dyn DraftingEngine> {
    let api_key = anthropic_api_key
        .map(|key| key.trim().to_string())
        .filter(|key| !key.is_empty());
    let Some(api_key) = api_key else {
        return Arc::new(OfflineEngine);
    };
    match AnthropicEngine::new(api_key, anthropic_base_url, anthropic_model) {
        Ok(engine) => Arc::new(engine),
        Err(error) => {
            tracing::warn!(%error, "falling back to the offline drafting engine");
            Arc::new(OfflineEngine)
        }
    }
}

/// Checks the matter form before drafting: names present, amounts positive, periods sane.
pub fn validate_matter(facts: &MatterFacts) -> Result<(), DraftingError> {
    check_name("claimant name", &facts.claimant_name)?;
    check_name("defendant name", &facts.defendant_name)?;
    if let Some(insurer) = &facts.insurer_name {
        if insurer.chars().count() > MAX_NAME_CHARS {
            return Err(DraftingError::InvalidMatter(format!(
                "the insurer name is longer than {MAX_NAME_CHARS} characters; shorten it"
            )));
        }
    }
    if let Some(claim_number) = &facts.claim_number {
        if claim_number.chars().count() > instructions::MAX_CLAIM_NUMBER_CHARS {
            return Err(DraftingError::InvalidMatter(format!(
                "the claim number is longer than {} characters; shorten it",
                instructions::MAX_CLAIM_NUMBER_CHARS
            )));
        }
    }
    if let Some(days) = facts.response_days {
        if days == 0 || days > MAX_RESPONSE_DAYS {
            return Err(DraftingError::InvalidMatter(format!(
                "the response period is {days} days; enter between 1 and {MAX_RESPONSE_DAYS} days"
            )));
        }
    }
    if let Some(demand) = facts.demand_amount_cents {
        if demand <= 0 || demand > specials::MAX_AMOUNT_CENTS {
            return Err(DraftingError::InvalidMatter(format!(
                "the demand amount {} is out of range; enter an amount between $0.01 and {}",
                crate::model::format_cents(demand),
                crate::model::format_cents(specials::MAX_AMOUNT_CENTS)
            )));
        }
    }
    for (index, special) in facts.manual_specials.iter().enumerate() {
        if special.amount_cents <= 0 || special.amount_cents > specials::MAX_AMOUNT_CENTS {
            return Err(DraftingError::InvalidMatter(format!(
                "special damages item {} (\"{}\") has the amount {}; enter an amount between \
                 $0.01 and {}",
                index + 1,
                special.description.trim(),
                crate::model::format_cents(special.amount_cents),
                crate::model::format_cents(specials::MAX_AMOUNT_CENTS)
            )));
        }
    }
    Ok(())
}

fn check_name(label: &str, value: &str) -> Result<(), DraftingError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DraftingError::InvalidMatter(format!(
            "the {label} is empty; enter it in the matter form"
        )));
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(DraftingError::InvalidMatter(format!(
            "the {label} is longer than {MAX_NAME_CHARS} characters; shorten it"
        )));
    }
    Ok(())
}

/// Checks a refine instruction: not empty, at most [`MAX_INSTRUCTION_CHARS`] characters.
pub fn validate_instruction(instruction: &str) -> Result<(), DraftingError> {
    if instruction.trim().is_empty() {
        return Err(DraftingError::InvalidInstruction(
            "it is empty; type what should change, for example \"give them 45 days\"".to_string(),
        ));
    }
    let length = instruction.chars().count();
    if length > MAX_INSTRUCTION_CHARS {
        return Err(DraftingError::InvalidInstruction(format!(
            "it is {length} characters long; keep it to {MAX_INSTRUCTION_CHARS} characters or \
             split it into several refinements"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ManualSpecial, SpecialsCategory};

    /// The offline engine's letter for `facts` without documents, for tests that refine a real
    /// draft.
    pub(crate) fn drafted_letter(facts: &MatterFacts, letter_date: NaiveDate) -> LetterDraft {
        OfflineEngine
            .draft_letter(facts, &[], letter_date)
            .expect("the sample matter drafts")
    }

    pub(crate) fn sample_facts() -> MatterFacts {
        MatterFacts {
            claimant_name: "Jordan Rivera".into(),
            defendant_name: "Casey Morgan".into(),
            insurer_name: Some("Granite Mutual Insurance".into()),
            claim_number: Some("GM-2025-00417".into()),
            incident_date: NaiveDate::from_ymd_opt(2025, 3, 14).unwrap(),
            incident_place: "Main Street and 3rd Avenue, Springfield".into(),
            incident_description: "The defendant ran a red light and struck our client's car."
                .into(),
            injuries: "Cervical strain and a fractured wrist.".into(),
            treatment: "Emergency care, imaging, casting and physical therapy.".into(),
            manual_specials: vec![ManualSpecial {
                category: SpecialsCategory::Other,
                description: "Rental car".into(),
                amount_cents: 45_000,
                service_date: None,
            }],
            demand_amount_cents: None,
            response_days: None,
        }
    }

    #[test]
    fn engine_selection_follows_the_api_key() {
        assert_eq!(engine_from_settings(None, None, None).name(), "offline");
        assert_eq!(
            engine_from_settings(Some("   ".into()), None, None).name(),
            "offline"
        );
        assert_eq!(
            engine_from_settings(Some("sk-test".into()), None, None).name(),
            "anthropic"
        );
    }

    #[test]
    fn empty_names_are_rejected() {
        let mut facts = sample_facts();
        facts.claimant_name = "  ".into();
        let error = validate_matter(&facts).unwrap_err();
        assert!(matches!(error, DraftingError::InvalidMatter(_)));
        assert!(error.to_string().contains("claimant name"));

        let mut facts = sample_facts();
        facts.defendant_name = String::new();
        assert!(validate_matter(&facts)
            .unwrap_err()
            .to_string()
            .contains("defendant name"));
    }

    #[test]
    fn out_of_range_numbers_are_rejected() {
        let mut facts = sample_facts();
        facts.response_days = Some(0);
        assert!(validate_matter(&facts).is_err());

        let mut facts = sample_facts();
        facts.demand_amount_cents = Some(-5);
        assert!(validate_matter(&facts).is_err());

        let mut facts = sample_facts();
        facts.manual_specials[0].amount_cents = 0;
        let error = validate_matter(&facts).unwrap_err();
        assert!(error.to_string().contains("Rental car"));
    }

    #[test]
    fn instructions_must_be_present_and_bounded() {
        assert!(matches!(
            validate_instruction(" \n "),
            Err(DraftingError::InvalidInstruction(_))
        ));
        let long = "a".repeat(MAX_INSTRUCTION_CHARS + 1);
        assert!(matches!(
            validate_instruction(&long),
            Err(DraftingError::InvalidInstruction(_))
        ));
        assert!(validate_instruction("give them 45 days").is_ok());
    }

    #[test]
    fn errors_map_to_http_statuses() {
        let unsupported = DraftingError::UnsupportedInstruction {
            instruction: "x".into(),
            supported: "y".into(),
        };
        assert_eq!(unsupported.http_status(), 422);
        assert_eq!(DraftingError::Timeout { seconds: 60 }.http_status(), 504);
        assert_eq!(
            DraftingError::MalformedResponse("x".into()).http_status(),
            502
        );
    }
}
