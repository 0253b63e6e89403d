//! The stock wording that closes a letter's Demand section, in three tones: the offline engine writes it, and a refinement recognises it and rewrites it in another tone.
//!
//! The paragraphs depend only on the tone, the demand amount and the response deadline, so
//! [`demand_paragraphs`] can regenerate every variant of a draft's wording and find which one the
//! draft holds.

use chrono::NaiveDate;

use super::frame::amount_in_words;
use crate::model::{format_cents, format_long_date};

/// The tone of the stock paragraphs that close the Demand section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Conciliatory,
    Standard,
    Firm,
}

impl Tone {
    pub const ALL: [Tone; 3] = [Tone::Conciliatory, Tone::Standard, Tone::Firm];

    /// One step firmer: conciliatory → standard → firm.
    pub fn firmer(self) -> Tone {
        match self {
            Tone::Conciliatory => Tone::Standard,
            Tone::Standard | Tone::Firm => Tone::Firm,
        }
    }

    /// One step softer: firm → standard → conciliatory.
    pub fn softer(self) -> Tone {
        match self {
            Tone::Firm => Tone::Standard,
            Tone::Standard | Tone::Conciliatory => Tone::Conciliatory,
        }
    }
}

/// The three stock paragraphs that close the Demand section in a given tone: the demand
/// itself, the response deadline, and the closing offer of information. They depend only on the
/// demand amount and the deadline, so a refinement can recognise and rewrite them.
pub fn demand_paragraphs(tone: Tone, demand_cents: i64, deadline: NaiveDate) -> [String; 3] {
    let amount = format!(
        "{} ({})",
        amount_in_words(demand_cents),
        format_cents(demand_cents)
    );
    let deadline = format_long_date(deadline);
    match tone {
        Tone::Standard => [
            format!(
                "Based on the foregoing, our client demands {amount} in full and final \
                 settlement of all claims arising from this incident."
            ),
            format!("Please respond to this demand in writing on or before {deadline}."),
            "Please contact our office if you need any further information to evaluate this \
             claim."
                .to_string(),
        ],
        Tone::Firm => [
            format!(
                "Our client demands {amount} in full and final settlement of all claims arising \
                 from this incident. This figure is supported by the enclosed records and \
                 reflects the seriousness of our client's injuries."
            ),
            format!(
                "This demand will remain open until {deadline}. If we do not receive your \
                 written response by that date, we will advise our client to pursue all \
                 available remedies, including litigation, without further notice."
            ),
            "Any additional information you need to evaluate this claim should be requested \
             promptly so that it does not delay your response."
                .to_string(),
        ],
        Tone::Conciliatory => [
            format!(
                "In the interest of resolving this matter fairly and without litigation, our \
                 client is prepared to settle all claims arising from this incident for {amount}."
            ),
            format!("We would appreciate your written response by {deadline}."),
            "Thank you for your attention to this claim. We welcome the opportunity to discuss \
             a fair resolution, and please do not hesitate to contact our office with any \
             questions."
                .to_string(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_steps() {
        assert_eq!(Tone::Standard.firmer(), Tone::Firm);
        assert_eq!(Tone::Firm.firmer(), Tone::Firm);
        assert_eq!(Tone::Firm.softer(), Tone::Standard);
        assert_eq!(Tone::Conciliatory.softer(), Tone::Conciliatory);
    }
}
