//! The deterministic frame of every demand letter: recipient, reference block, salutation, section headings, specials, totals, demand, deadline, closing and signature.
//!
//! Both engines build their drafts on this frame, so the figures in a letter never depend on
//! which engine wrote its prose.

use chrono::{Days, NaiveDate};

use super::specials::{find_specials, MAX_AMOUNT_CENTS};
use super::{validate_matter, DraftingError};
use crate::model::{
    format_cents, format_long_date, LetterDraft, LetterSection, MatterFacts, SourceDocument,
    SpecialsCategory, SpecialsItem, SpecialsSource,
};

/// Days the recipient has to respond when the matter form does not say.
pub const DEFAULT_RESPONSE_DAYS: u32 = 30;
/// The computed demand is rounded up to a multiple of this: $500.00.
pub const DEMAND_ROUNDING_CENTS: i64 = 50_000;
/// Medical specials are multiplied by this in the computed demand.
pub const MEDICAL_MULTIPLIER: i64 = 3;

pub const OUR_CLIENT_LABEL: &str = "Our client: ";
pub const YOUR_INSURED_LABEL: &str = "Your insured: ";
pub const CLAIM_NUMBER_LABEL: &str = "Claim number: ";
pub const DATE_OF_LOSS_LABEL: &str = "Date of loss: ";
pub const INSURER_SALUTATION: &str = "Dear Claims Representative:";
pub const CLOSING: &str = "Sincerely,";

// The headings of the letter's sections, in their order. The offline engine writes these
// sections, the AI engine is asked for them, and refinements find the Demand section by its
// heading.
pub const FACTS_HEADING: &str = "Facts of the Incident";
pub const LIABILITY_HEADING: &str = "Liability";
pub const INJURIES_HEADING: &str = "Injuries and Treatment";
pub const SPECIALS_HEADING: &str = "Special Damages";
pub const DEMAND_HEADING: &str = "Demand";

/// The sums of a list of specials items, by category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpecialsTotals {
    pub medical_cents: i64,
    pub lost_wages_cents: i64,
    pub other_cents: i64,
    pub all_cents: i64,
}

/// Adds up specials items by category (saturating, so absurd inputs cannot overflow).
pub fn specials_totals(items: &[SpecialsItem]) -> SpecialsTotals {
    let mut totals = SpecialsTotals::default();
    for item in items {
        let bucket = match item.category {
            SpecialsCategory::Medical => &mut totals.medical_cents,
            SpecialsCategory::LostWages => &mut totals.lost_wages_cents,
            SpecialsCategory::Other => &mut totals.other_cents,
        };
        *bucket = bucket.saturating_add(item.amount_cents);
        totals.all_cents = totals.all_cents.saturating_add(item.amount_cents);
    }
    totals
}

/// The demand Steno proposes when the lawyer has not chosen one:
///
/// `medical specials × 3 + lost wages + other specials`, rounded up to the next $500.
///
/// The multiplier reflects the customary valuation of pain and suffering as a multiple of the
/// medical expenses; the rounding gives the letter a clean figure. `None` when there is nothing
/// to base a demand on (no specials) or the result would exceed [`MAX_AMOUNT_CENTS`].
pub fn computed_demand_cents(totals: SpecialsTotals) -> Option<i64> {
    let raw = totals
        .medical_cents
        .checked_mul(MEDICAL_MULTIPLIER)?
        .checked_add(totals.lost_wages_cents)?
        .checked_add(totals.other_cents)?;
    if raw <= 0 {
        return None;
    }
    let rounded = raw
        .checked_add(DEMAND_ROUNDING_CENTS - 1)?
        .checked_div(DEMAND_ROUNDING_CENTS)?
        .checked_mul(DEMAND_ROUNDING_CENTS)?;
    (rounded <= MAX_AMOUNT_CENTS).then_some(rounded)
}

/// Everything in a letter that is computed rather than written.
#[derive(Debug, Clone, PartialEq)]
pub struct LetterFrame {
    pub letter_date: NaiveDate,
    pub recipient: Vec<String>,
    pub reference: Vec<String>,
    pub salutation: String,
    pub specials: Vec<SpecialsItem>,
    pub totals: SpecialsTotals,
    pub total_demand_cents: i64,
    /// True when the lawyer chose the demand, false when Steno computed it.
    pub demand_chosen_by_lawyer: bool,
    pub response_deadline: NaiveDate,
    pub closing: String,
    pub signature: Vec<String>,
}

impl LetterFrame {
    /// Validates the matter and computes the frame of its letter dated `letter_date`.
    pub fn build(
        facts: &MatterFacts,
        documents: &[SourceDocument],
        letter_date: NaiveDate,
    ) -> Result<Self, DraftingError> {
        validate_matter(facts)?;
        let claimant = facts.claimant_name.trim();
        let defendant = facts.defendant_name.trim();
        let insurer = non_empty(facts.insurer_name.as_deref());
        let claim_number = non_empty(facts.claim_number.as_deref());

        let (recipient, salutation) = match insurer {
            Some(insurer) => (
                vec![insurer.to_string(), "Claims Department".to_string()],
                INSURER_SALUTATION.to_string(),
            ),
            None => (vec![defendant.to_string()], format!("Dear {defendant}:")),
        };

        let mut reference = vec![format!("{OUR_CLIENT_LABEL}{claimant}")];
        if insurer.is_some() {
            reference.push(format!("{YOUR_INSURED_LABEL}{defendant}"));
        }
        if let Some(claim_number) = claim_number {
            reference.push(format!("{CLAIM_NUMBER_LABEL}{claim_number}"));
        }
        reference.push(format!(
            "{DATE_OF_LOSS_LABEL}{}",
            format_long_date(facts.incident_date)
        ));

        let mut specials = find_specials(documents);
        specials.extend(facts.manual_specials.iter().map(|manual| {
            let description = manual.description.trim();
            SpecialsItem {
                category: manual.category,
                description: if description.is_empty() {
                    manual.category.label().to_string()
                } else {
                    super::specials::bound_length(description, 200)
                },
                amount_cents: manual.amount_cents,
                service_date: manual.service_date,
                source: SpecialsSource::Form,
            }
        }));
        let totals = specials_totals(&specials);

        let (total_demand_cents, demand_chosen_by_lawyer) = match facts.demand_amount_cents {
            Some(chosen) => (chosen, true),
            None => {
                let computed = computed_demand_cents(totals).ok_or_else(|| {
                    if totals.all_cents <= 0 {
                        DraftingError::InvalidMatter(
                            "no special damages were found in the documents or the matter form, \
                             so Steno cannot propose a demand; enter a demand amount in the \
                             matter form, or upload the bills and wage statements"
                                .to_string(),
                        )
                    } else {
                        DraftingError::InvalidMatter(format!(
                            "the computed demand would exceed {}; enter a demand amount in the \
                             matter form",
                            format_cents(MAX_AMOUNT_CENTS)
                        ))
                    }
                })?;
                (computed, false)
            }
        };

        let response_days = facts.response_days.unwrap_or(DEFAULT_RESPONSE_DAYS);
        let response_deadline = letter_date
            .checked_add_days(Days::new(u64::from(response_days)))
            .ok_or_else(|| {
                DraftingError::InvalidMatter(
                    "the response deadline falls outside the supported calendar; check the \
                     letter date and the response period"
                        .to_string(),
                )
            })?;

        Ok(LetterFrame {
            letter_date,
            recipient,
            reference,
            salutation,
            specials,
            totals,
            total_demand_cents,
            demand_chosen_by_lawyer,
            response_deadline,
            closing: CLOSING.to_string(),
            signature: vec![
                "[Attorney name]".to_string(),
                "[Law firm]".to_string(),
                format!("Counsel for {claimant}"),
            ],
        })
    }

    /// The complete draft: this frame with the given body sections.
    pub fn into_draft(self, sections: Vec<LetterSection>) -> LetterDraft {
        LetterDraft {
            letter_date: self.letter_date,
            recipient: self.recipient,
            reference: self.reference,
            salutation: self.salutation,
            sections,
            specials: self.specials,
            total_medical_cents: self.totals.medical_cents,
            total_lost_wages_cents: self.totals.lost_wages_cents,
            total_specials_cents: self.totals.all_cents,
            total_demand_cents: self.total_demand_cents,
            response_deadline: self.response_deadline,
            closing: self.closing,
            signature: self.signature,
        }
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|text| !text.is_empty())
}

/// Joins phrases the way a letter lists them: `a`, `a and b`, `a, b and c`.
pub fn join_with_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [only] => only.clone(),
        [head @ .., last] => format!("{} and {last}", head.join(", ")),
    }
}

/// A money amount written out as on a cheque: `8500000` → `Eighty-Five Thousand Dollars`,
/// `12550` → `One Hundred Twenty-Five and 50/100 Dollars`.
pub fn amount_in_words(cents: i64) -> String {
    let cents = cents.max(0);
    let dollars = cents / 100;
    let remainder = cents % 100;
    let words = number_in_words(dollars);
    let unit = if dollars == 1 && remainder == 0 {
        "Dollar"
    } else {
        "Dollars"
    };
    if remainder == 0 {
        format!("{words} {unit}")
    } else {
        format!("{words} and {remainder:02}/100 {unit}")
    }
}

fn number_in_words(number: i64) -> String {
    if number == 0 {
        return "Zero".to_string();
    }
    const SCALES: [(i64, &str); 4] = [
        (1_000_000_000_000, "Trillion"),
        (1_000_000_000, "Billion"),
        (1_000_000, "Million"),
        (1_000, "Thousand"),
    ];
    let mut parts = Vec::new();
    let mut rest = number;
    for (scale, name) in SCALES {
        if rest >= scale {
            parts.push(format!("{} {name}", below_thousand_in_words(rest / scale)));
            rest %= scale;
        }
    }
    if rest > 0 {
        parts.push(below_thousand_in_words(rest));
    }
    parts.join(" ")
}

fn below_thousand_in_words(number: i64) -> String {
    const ONES: [&str; 20] = [
        "",
        "One",
        "Two",
        "Three",
        "Four",
        "Five",
        "Six",
        "Seven",
        "Eight",
        "Nine",
        "Ten",
        "Eleven",
        "Twelve",
        "Thirteen",
        "Fourteen",
        "Fifteen",
        "Sixteen",
        "Seventeen",
        "Eighteen",
        "Nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety",
    ];
    let word = |index: i64, table: &[&'static str]| -> &'static str {
        usize::try_from(index)
            .ok()
            .and_then(|i| table.get(i).copied())
            .unwrap_or("")
    };
    let mut parts: Vec<String> = Vec::new();
    let hundreds = number / 100;
    let below_hundred = number % 100;
    if hundreds > 0 {
        parts.push(format!("{} Hundred", word(hundreds, &ONES)));
    }
    if below_hundred >= 20 {
        let tens = word(below_hundred / 10, &TENS);
        let ones = below_hundred % 10;
        if ones == 0 {
            parts.push(tens.to_string());
        } else {
            parts.push(format!("{tens}-{}", word(ones, &ONES)));
        }
    } else if below_hundred > 0 {
        parts.push(word(below_hundred, &ONES).to_string());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demand_formula_triples_medical_and_rounds_up_to_500() {
        let totals = SpecialsTotals {
            medical_cents: 297_425,
            lost_wages_cents: 288_000,
            other_cents: 45_000,
            all_cents: 630_425,
        };
        // 2,974.25 × 3 + 2,880.00 + 450.00 = 12,252.75 → 12,500.00
        assert_eq!(computed_demand_cents(totals), Some(1_250_000));
        let exact = SpecialsTotals {
            medical_cents: 50_000,
            lost_wages_cents: 0,
            other_cents: 0,
            all_cents: 50_000,
        };
        assert_eq!(computed_demand_cents(exact), Some(150_000));
        assert_eq!(computed_demand_cents(SpecialsTotals::default()), None);
    }

    #[test]
    fn amounts_are_written_out() {
        assert_eq!(amount_in_words(8_500_000), "Eighty-Five Thousand Dollars");
        assert_eq!(amount_in_words(100), "One Dollar");
        assert_eq!(
            amount_in_words(12_550),
            "One Hundred Twenty-Five and 50/100 Dollars"
        );
        assert_eq!(
            amount_in_words(123_456_700),
            "One Million Two Hundred Thirty-Four Thousand Five Hundred Sixty-Seven Dollars"
        );
        assert_eq!(amount_in_words(0), "Zero Dollars");
    }

    #[test]
    fn lists_are_joined_with_and() {
        let items = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(join_with_and(&items(&[])), "");
        assert_eq!(join_with_and(&items(&["a"])), "a");
        assert_eq!(join_with_and(&items(&["a", "b"])), "a and b");
        assert_eq!(join_with_and(&items(&["a", "b", "c"])), "a, b and c");
    }
}
