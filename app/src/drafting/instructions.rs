//! The offline engine's refine instructions: the supported forms, how a lawyer's text is split and parsed into them, and how each is applied to a draft.
//!
//! Several instructions may be given at once, one per line or separated by `;`. An "add a
//! paragraph" instruction takes the rest of its line, semicolons included. The instructions are
//! all parsed before any is applied, and a draft is only returned when every one applied, so a
//! refinement never half-happens.

use std::sync::LazyLock;

use chrono::{Days, NaiveDate};
use regex::Regex;

use super::demand_wording::{demand_paragraphs, Tone};
use super::frame::{amount_in_words, CLAIM_NUMBER_LABEL, DATE_OF_LOSS_LABEL, DEMAND_HEADING};
use super::specials::{cents_from_parts, parse_single_date, MAX_AMOUNT_CENTS};
use super::{validate_instruction, DraftingError, MAX_NAME_CHARS, MAX_RESPONSE_DAYS};
use crate::model::{format_cents, format_long_date, LetterDraft, LetterSection};

/// Longest claim number accepted, in characters.
pub const MAX_CLAIM_NUMBER_CHARS: usize = 100;

/// The instruction forms the offline engine understands, as shown to the lawyer.
pub const SUPPORTED_FORMS: [&str; 12] = [
    "\"give them 45 days\" (the deadline becomes 45 days after the letter date, or after today if the letter date has passed)",
    "\"extend the deadline by 15 days\"",
    "\"deadline 2026-03-01\" or \"respond by March 1, 2026\"",
    "\"demand $85,000\", \"increase the demand to $85,000\" or \"set the demand to 85,000 USD\"",
    "\"increase the demand by $5,000\" or \"reduce the demand by $5,000\"",
    "\"make it firmer\" or \"more assertive\"",
    "\"make it softer\" or \"more conciliatory\"",
    "\"add a paragraph to <section>: <text>\"",
    "\"remove the <section> section\"",
    "\"rename the recipient to <name>\"",
    "\"set the claim number to <number>\"",
    "\"remove the claim number\"",
];

/// The supported forms as one line of text, for error messages.
pub fn supported_forms_text() -> String {
    SUPPORTED_FORMS.join(", ")
}

static BULLET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+").expect("bullet pattern is valid"));
static ADD_PARAGRAPH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^add\s+(?:a\s+|another\s+|one\s+more\s+)?(?:new\s+)?paragraph\s+(?:to|in|under|into)\s+(?:the\s+)?(?P<section>[^:]+?)(?:\s+section)?\s*:\s*(?P<text>.+)$",
    )
    .expect("add paragraph pattern is valid")
});
static ADD_PARAGRAPH_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:please\s+)?add\s+(?:a\s+|another\s+|one\s+more\s+)?(?:new\s+)?paragraph\b")
        .expect("add paragraph start pattern is valid")
});
static REMOVE_CLAIM_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:remove|delete|drop|clear)\s+(?:the\s+)?claim\s+(?:number|no\.?|#)$")
        .expect("remove claim number pattern is valid")
});
static REMOVE_SECTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:remove|delete|drop)\s+(?:the\s+)?(?:section\s+)?(?P<section>.+?)(?:\s+section)?$",
    )
    .expect("remove section pattern is valid")
});
static RENAME_RECIPIENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:rename|change|set|update)\s+(?:the\s+)?recipient(?:'s\s+name)?\s+(?:to|as)\s+(?P<name>.+)$",
    )
    .expect("rename recipient pattern is valid")
});
static ADDRESS_TO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:address|send)\s+(?:it|the\s+letter|this)\s+to\s+(?P<name>.+)$")
        .expect("address to pattern is valid")
});
static CLAIM_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:set|change|update|add)\s+(?:the\s+)?)?claim\s+(?:number|no\.?|#)\s*(?:to|as|is|:|=)?\s*(?P<number>\S.*)$",
    )
    .expect("claim number pattern is valid")
});
static DEADLINE_DAYS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:give\s+(?:them|the\s+insurer|the\s+recipient|the\s+adjuster|him|her)|allow(?:\s+them)?|(?:set|change|extend|make)\s+(?:the\s+)?(?:response\s+)?(?:deadline|response\s+time|response\s+period)\s+(?:to|of)|response\s+(?:time|period|deadline)(?:\s+of|\s+to|:)?|deadline(?:\s+in|\s+of|:)?)\s+(?P<days>\d{1,4})\s+(?:calendar\s+)?days?(?:\s+to\s+respond)?$",
    )
    .expect("deadline days pattern is valid")
});
static DAYS_TO_RESPOND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?P<days>\d{1,4})\s+(?:calendar\s+)?days?\s+to\s+respond$")
        .expect("days to respond pattern is valid")
});
static DEADLINE_EXTEND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:extend|push(?:\s+back)?|move(?:\s+back)?)\s+(?:the\s+)?(?:response\s+)?deadline\s+by\s+(?:another\s+)?(?P<days>\d{1,4})\s+(?:more\s+)?days?$",
    )
    .expect("deadline extension pattern is valid")
});
static DEADLINE_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?:set|change|move|extend|push)\s+(?:the\s+)?)?(?:response\s+)?(?:deadline|due\s+date)\s*(?:to|is|of|on|:|=)?\s*(?P<date>.+)$",
    )
    .expect("deadline date pattern is valid")
});
static RESPOND_BY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:respond|response\s+due|reply)\s+(?:by|on\s+or\s+before|no\s+later\s+than)\s+(?P<date>.+)$")
        .expect("respond by pattern is valid")
});
static DEMAND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:(?P<verb>increase|raise|bump(?:\s+up)?|lower|reduce|decrease|cut|change|set|update|make)\s+)?(?:the\s+)?(?:total\s+)?(?:settlement\s+)?demand(?:\s+amount)?\s*(?P<preposition>to|by|of|at|is|:|=)?\s*(?P<amount>\S.*)$",
    )
    .expect("demand pattern is valid")
});
/// An amount in an instruction: `$85,000`, `$ 85000.50`, `85,000 USD`, `$85k`, `1.2 million`.
static INSTRUCTION_AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:usd\s?)?\$?\s?(?P<whole>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<fraction>\d{1,2}))?\s*(?P<scale>k|thousand|m|million)?\s*(?:usd|dollars)?$",
    )
    .expect("instruction amount pattern is valid")
});

const TONE_LEAD: &str = r"(?i)^(?:make\s+(?:it|the\s+(?:letter|tone|draft|demand|wording))\s+|use\s+an?\s+|be\s+|sound\s+|tone\s*:\s*)?(?:(?:a\s+)?(?:bit|little|lot|much|slightly|somewhat)\s+)?";
const TONE_TAIL: &str = r"(?:\s+tone)?$";
static TONE_FIRMER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"{TONE_LEAD}(?:firmer|firm|stronger|tougher|more\s+(?:firm|assertive|forceful|aggressive|direct|insistent)|assertive|less\s+(?:conciliatory|soft|friendly|polite)){TONE_TAIL}"
    ))
    .expect("firmer tone pattern is valid")
});
static TONE_SOFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"{TONE_LEAD}(?:softer|gentler|friendlier|warmer|more\s+(?:conciliatory|polite|cooperative|collaborative|diplomatic|friendly)|conciliatory|less\s+(?:aggressive|assertive|confrontational|harsh|firm)){TONE_TAIL}"
    ))
    .expect("softer tone pattern is valid")
});

/// Which way an instruction moves the tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneShift {
    Firmer,
    Softer,
}

/// What an instruction said the demand should do, to catch "increase to" a lower figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandDirection {
    Up,
    Down,
    Either,
}

/// One understood instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// Deadline `days` after the letter date (or after today when the letter date has passed).
    DeadlineInDays(u32),
    /// Deadline moved `days` later than it is now.
    ExtendDeadline(u32),
    DeadlineOn(NaiveDate),
    SetDemand {
        cents: i64,
        direction: DemandDirection,
    },
    ChangeDemandBy(i64),
    Tone(ToneShift),
    AddParagraph {
        section: String,
        text: String,
    },
    RemoveSection(String),
    RenameRecipient(String),
    SetClaimNumber(String),
    RemoveClaimNumber,
}

impl Instruction {
    /// Whether the instruction changes the demand amount.
    pub fn changes_demand(&self) -> bool {
        matches!(
            self,
            Instruction::SetDemand { .. } | Instruction::ChangeDemandBy(_)
        )
    }
}

/// Splits a lawyer's text into single instructions: one per line, and within a line at `;`,
/// except that an "add a paragraph" instruction keeps the rest of its line. List bullets are dropped.
pub fn split_instructions(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for line in text.lines() {
        let line = BULLET.replace(line, "");
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if ADD_PARAGRAPH_START.is_match(line) {
            pieces.push(line.to_string());
            continue;
        }
        for piece in line.split(';') {
            let piece = BULLET.replace(piece, "");
            let piece = piece.trim();
            if !piece.is_empty() {
                pieces.push(piece.to_string());
            }
        }
    }
    pieces
}

/// Reads one instruction; `None` when it matches none of the [`SUPPORTED_FORMS`].
pub fn parse_instruction(text: &str) -> Option<Instruction> {
    // Paragraph text, names and claim numbers keep their final punctuation; the rest is read
    // without it.
    let verbatim = without_politeness(text);
    let text = verbatim.trim_end_matches(['.', '!']).trim();

    if let Some(captures) = ADD_PARAGRAPH.captures(&verbatim) {
        return Some(Instruction::AddParagraph {
            section: captures.name("section")?.as_str().trim().to_string(),
            text: strip_quotes(captures.name("text")?.as_str()).to_string(),
        });
    }
    if REMOVE_CLAIM_NUMBER.is_match(text) {
        return Some(Instruction::RemoveClaimNumber);
    }
    if let Some(captures) = RENAME_RECIPIENT
        .captures(&verbatim)
        .or_else(|| ADDRESS_TO.captures(&verbatim))
    {
        let name = without_sentence_period(captures.name("name")?.as_str());
        return Some(Instruction::RenameRecipient(strip_quotes(name).to_string()));
    }
    if let Some(captures) = CLAIM_NUMBER.captures(text) {
        return Some(Instruction::SetClaimNumber(
            strip_quotes(captures.name("number")?.as_str()).to_string(),
        ));
    }
    if let Some(captures) = DEADLINE_DAYS
        .captures(text)
        .or_else(|| DAYS_TO_RESPOND.captures(text))
    {
        return Some(Instruction::DeadlineInDays(
            captures.name("days")?.as_str().parse().ok()?,
        ));
    }
    if let Some(captures) = DEADLINE_EXTEND.captures(text) {
        return Some(Instruction::ExtendDeadline(
            captures.name("days")?.as_str().parse().ok()?,
        ));
    }
    let deadline_date = DEADLINE_DATE
        .captures(text)
        .or_else(|| RESPOND_BY.captures(text))
        .and_then(|captures| parse_single_date(captures.name("date")?.as_str()));
    if let Some(date) = deadline_date {
        return Some(Instruction::DeadlineOn(date));
    }
    if let Some(instruction) = DEMAND
        .captures(text)
        .and_then(|captures| parse_demand(&captures))
    {
        return Some(instruction);
    }
    if TONE_FIRMER.is_match(text) {
        return Some(Instruction::Tone(ToneShift::Firmer));
    }
    if TONE_SOFTER.is_match(text) {
        return Some(Instruction::Tone(ToneShift::Softer));
    }
    if let Some(captures) = REMOVE_SECTION.captures(text) {
        return Some(Instruction::RemoveSection(
            captures.name("section")?.as_str().trim().to_string(),
        ));
    }
    None
}

fn parse_demand(captures: &regex::Captures<'_>) -> Option<Instruction> {
    let verb = captures
        .name("verb")
        .map(|m| m.as_str().to_ascii_lowercase())
        .unwrap_or_default();
    let preposition = captures
        .name("preposition")
        .map(|m| m.as_str().to_ascii_lowercase())
        .unwrap_or_default();
    let cents = parse_instruction_amount(captures.name("amount")?.as_str())?;
    let direction =
        if verb.starts_with("increase") || verb.starts_with("raise") || verb.starts_with("bump") {
            DemandDirection::Up
        } else if matches!(verb.as_str(), "lower" | "reduce" | "decrease" | "cut") {
            DemandDirection::Down
        } else {
            DemandDirection::Either
        };
    if preposition == "by" {
        return match direction {
            DemandDirection::Up => Some(Instruction::ChangeDemandBy(cents)),
            DemandDirection::Down => Some(Instruction::ChangeDemandBy(-cents)),
            DemandDirection::Either => None,
        };
    }
    Some(Instruction::SetDemand { cents, direction })
}

/// An amount as written in an instruction, in cents: the specials parser's forms plus bare
/// numbers and `k`/`thousand`/`million` suffixes.
pub fn parse_instruction_amount(text: &str) -> Option<i64> {
    let captures = INSTRUCTION_AMOUNT.captures(text.trim())?;
    let base = cents_from_parts(
        captures.name("whole")?.as_str(),
        captures.name("fraction").map(|m| m.as_str()),
    )?;
    let multiplier = match captures
        .name("scale")
        .map(|m| m.as_str().to_ascii_lowercase())
        .as_deref()
    {
        None => 1,
        Some("k") | Some("thousand") => 1_000,
        Some(_) => 1_000_000,
    };
    let cents = base.checked_mul(multiplier)?;
    (cents <= MAX_AMOUNT_CENTS).then_some(cents)
}

/// Whether any instruction in `text` changes the demand amount (used to validate AI revisions).
pub fn instruction_changes_demand(text: &str) -> bool {
    split_instructions(text).iter().any(|piece| {
        parse_instruction(piece).is_some_and(|instruction| instruction.changes_demand())
            || (piece.to_lowercase().contains("demand")
                && piece.chars().any(|c| c.is_ascii_digit()))
    })
}

/// Applies every instruction in `text` to a copy of `current`, or none of them.
pub fn apply_instructions(
    current: &LetterDraft,
    text: &str,
    today: NaiveDate,
) -> Result<LetterDraft, DraftingError> {
    validate_instruction(text)?;
    let pieces = split_instructions(text);
    if pieces.is_empty() {
        return Err(DraftingError::InvalidInstruction(
            "it contains no instruction; type what should change, for example \"give them 45 \
             days\""
                .to_string(),
        ));
    }
    let mut parsed = Vec::with_capacity(pieces.len());
    for piece in &pieces {
        match parse_instruction(piece) {
            Some(instruction) => parsed.push((piece.as_str(), instruction)),
            None => {
                return Err(DraftingError::UnsupportedInstruction {
                    instruction: piece.clone(),
                    supported: supported_forms_text(),
                })
            }
        }
    }
    let mut draft = current.clone();
    for (piece, instruction) in parsed {
        apply(&mut draft, instruction, today).map_err(|reason| {
            DraftingError::InstructionNotApplicable {
                instruction: piece.to_string(),
                reason,
            }
        })?;
    }
    Ok(draft)
}

/// Applies one instruction; the error is the reason it cannot apply, worded for the lawyer.
fn apply(
    draft: &mut LetterDraft,
    instruction: Instruction,
    today: NaiveDate,
) -> Result<(), String> {
    match instruction {
        Instruction::DeadlineInDays(days) => {
            check_days(days)?;
            let start = draft.letter_date.max(today);
            let deadline = start
                .checked_add_days(Days::new(u64::from(days)))
                .ok_or_else(|| "that deadline is outside the supported calendar".to_string())?;
            set_deadline(draft, deadline, today)
        }
        Instruction::ExtendDeadline(days) => {
            check_days(days)?;
            let deadline = draft
                .response_deadline
                .checked_add_days(Days::new(u64::from(days)))
                .ok_or_else(|| "that deadline is outside the supported calendar".to_string())?;
            set_deadline(draft, deadline, today)
        }
        Instruction::DeadlineOn(deadline) => set_deadline(draft, deadline, today),
        Instruction::SetDemand { cents, direction } => {
            let current = draft.total_demand_cents;
            if direction == DemandDirection::Up && cents < current {
                return Err(format!(
                    "the demand is already {}, so this would lower it; say \"set the demand to \
                     {}\" if that is intended",
                    format_cents(current),
                    format_cents(cents)
                ));
            }
            if direction == DemandDirection::Down && cents > current {
                return Err(format!(
                    "the demand is {}, so this would raise it; say \"set the demand to {}\" if \
                     that is intended",
                    format_cents(current),
                    format_cents(cents)
                ));
            }
            set_demand(draft, cents)
        }
        Instruction::ChangeDemandBy(change) => {
            let target = draft.total_demand_cents.saturating_add(change);
            set_demand(draft, target)
        }
        Instruction::Tone(shift) => shift_tone(draft, shift),
        Instruction::AddParagraph { section, text } => {
            if text.trim().is_empty() {
                return Err("the paragraph text is empty; write it after the colon".to_string());
            }
            let index = find_section(&draft.sections, &section)?;
            draft.sections[index]
                .paragraphs
                .push(text.trim().to_string());
            Ok(())
        }
        Instruction::RemoveSection(section) => {
            let index = find_section(&draft.sections, &section)?;
            draft.sections.remove(index);
            Ok(())
        }
        Instruction::RenameRecipient(name) => rename_recipient(draft, &name),
        Instruction::SetClaimNumber(number) => set_claim_number(draft, &number),
        Instruction::RemoveClaimNumber => {
            let before = draft.reference.len();
            draft
                .reference
                .retain(|line| !line.starts_with(CLAIM_NUMBER_LABEL));
            if draft.reference.len() == before {
                return Err("the reference block has no claim number".to_string());
            }
            Ok(())
        }
    }
}

fn check_days(days: u32) -> Result<(), String> {
    if days == 0 || days > MAX_RESPONSE_DAYS {
        return Err(format!(
            "{days} days is not a usable response period; give between 1 and \
             {MAX_RESPONSE_DAYS} days"
        ));
    }
    Ok(())
}

fn set_deadline(
    draft: &mut LetterDraft,
    deadline: NaiveDate,
    today: NaiveDate,
) -> Result<(), String> {
    if deadline <= draft.letter_date {
        return Err(format!(
            "{} is not after the letter date, {}; choose a later date",
            format_long_date(deadline),
            format_long_date(draft.letter_date)
        ));
    }
    if deadline < today {
        return Err(format!(
            "{} has already passed; choose a date after {}",
            format_long_date(deadline),
            format_long_date(today)
        ));
    }
    let latest = draft
        .letter_date
        .max(today)
        .checked_add_days(Days::new(u64::from(MAX_RESPONSE_DAYS)));
    if latest.is_some_and(|latest| deadline > latest) {
        return Err(format!(
            "{} is more than {MAX_RESPONSE_DAYS} days away; choose an earlier date",
            format_long_date(deadline)
        ));
    }
    let old = format_long_date(draft.response_deadline);
    let new = format_long_date(deadline);
    for_each_demand_paragraph(draft, |paragraph| replace_whole(paragraph, &old, &new));
    draft.response_deadline = deadline;
    Ok(())
}

fn set_demand(draft: &mut LetterDraft, cents: i64) -> Result<(), String> {
    if cents <= 0 || cents > MAX_AMOUNT_CENTS {
        return Err(format!(
            "a demand of {} is out of range; choose an amount between $0.01 and {}",
            format_cents(cents),
            format_cents(MAX_AMOUNT_CENTS)
        ));
    }
    let old_words = amount_in_words(draft.total_demand_cents);
    let new_words = amount_in_words(cents);
    let old_figure = format_cents(draft.total_demand_cents);
    let new_figure = format_cents(cents);
    for_each_demand_paragraph(draft, |paragraph| {
        let with_words = replace_whole(paragraph, &old_words, &new_words);
        replace_whole(&with_words, &old_figure, &new_figure)
    });
    draft.total_demand_cents = cents;
    Ok(())
}

fn for_each_demand_paragraph(draft: &mut LetterDraft, rewrite: impl Fn(&str) -> String) {
    for section in draft
        .sections
        .iter_mut()
        .filter(|section| section.heading.trim().eq_ignore_ascii_case(DEMAND_HEADING))
    {
        for paragraph in &mut section.paragraphs {
            *paragraph = rewrite(paragraph);
        }
    }
}

/// Rewrites the stock paragraphs of the Demand section one tone step firmer or softer.
fn shift_tone(draft: &mut LetterDraft, shift: ToneShift) -> Result<(), String> {
    let variants: Vec<(Tone, [String; 3])> = Tone::ALL
        .iter()
        .map(|tone| {
            (
                *tone,
                demand_paragraphs(*tone, draft.total_demand_cents, draft.response_deadline),
            )
        })
        .collect();
    let mut rewritten = 0;
    for section in draft
        .sections
        .iter_mut()
        .filter(|section| section.heading.trim().eq_ignore_ascii_case(DEMAND_HEADING))
    {
        for paragraph in &mut section.paragraphs {
            let found = variants.iter().find_map(|(tone, texts)| {
                texts
                    .iter()
                    .position(|text| text == paragraph)
                    .map(|slot| (*tone, slot))
            });
            let Some((tone, slot)) = found else {
                continue;
            };
            let target = match shift {
                ToneShift::Firmer => tone.firmer(),
                ToneShift::Softer => tone.softer(),
            };
            if let Some((_, texts)) = variants.iter().find(|(tone, _)| *tone == target) {
                paragraph.clone_from(&texts[slot]);
                rewritten += 1;
            }
        }
    }
    if rewritten == 0 {
        return Err(
            "the Demand section no longer contains Steno's standard wording, so the offline \
             engine cannot change its tone; add your own wording with \"add a paragraph to \
             Demand: ...\""
                .to_string(),
        );
    }
    Ok(())
}

/// The index of the section the lawyer named: exact heading, else a heading starting with or
/// containing the name. Unknown or ambiguous names list the headings.
fn find_section(sections: &[LetterSection], name: &str) -> Result<usize, String> {
    let wanted = strip_quotes(name).trim().to_lowercase();
    let wanted = match wanted.as_str() {
        "specials" | "special" | "damages" => "special damages".to_string(),
        "facts" | "incident" | "the facts" => "facts".to_string(),
        _ => wanted,
    };
    let headings: Vec<String> = sections
        .iter()
        .map(|section| section.heading.trim().to_lowercase())
        .collect();
    let rules: [&dyn Fn(&str) -> bool; 3] = [
        &|heading| heading == wanted,
        &|heading| heading.starts_with(&wanted),
        &|heading| heading.contains(&wanted),
    ];
    for rule in rules {
        let matching: Vec<usize> = headings
            .iter()
            .enumerate()
            .filter(|(_, heading)| !wanted.is_empty() && rule(heading))
            .map(|(index, _)| index)
            .collect();
        match matching.as_slice() {
            [] => continue,
            [only] => return Ok(*only),
            _ => {
                let names: Vec<String> = matching
                    .iter()
                    .map(|index| format!("\"{}\"", sections[*index].heading))
                    .collect();
                return Err(format!(
                    "\"{name}\" matches several sections ({}); use the full heading",
                    names.join(", ")
                ));
            }
        }
    }
    let names: Vec<String> = sections
        .iter()
        .map(|section| format!("\"{}\"", section.heading))
        .collect();
    Err(if names.is_empty() {
        format!("there is no section \"{name}\"; the letter has no sections")
    } else {
        format!(
            "there is no section \"{name}\"; the sections are {}",
            names.join(", ")
        )
    })
}

fn rename_recipient(draft: &mut LetterDraft, name: &str) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the recipient name must be between 1 and {MAX_NAME_CHARS} characters"
        ));
    }
    match draft.recipient.first_mut() {
        Some(first) => {
            let personal_salutation = format!("Dear {first}:");
            if draft.salutation == personal_salutation {
                draft.salutation = format!("Dear {name}:");
            }
            *first = name.to_string();
        }
        None => draft.recipient.push(name.to_string()),
    }
    Ok(())
}

fn set_claim_number(draft: &mut LetterDraft, number: &str) -> Result<(), String> {
    let number = number.trim();
    if number.is_empty() || number.chars().count() > MAX_CLAIM_NUMBER_CHARS {
        return Err(format!(
            "the claim number must be between 1 and {MAX_CLAIM_NUMBER_CHARS} characters"
        ));
    }
    let line = format!("{CLAIM_NUMBER_LABEL}{number}");
    if let Some(existing) = draft
        .reference
        .iter_mut()
        .find(|line| line.starts_with(CLAIM_NUMBER_LABEL))
    {
        *existing = line;
        return Ok(());
    }
    let position = draft
        .reference
        .iter()
        .position(|line| line.starts_with(DATE_OF_LOSS_LABEL))
        .unwrap_or(draft.reference.len());
    draft.reference.insert(position, line);
    Ok(())
}

/// Trims, collapses whitespace, and drops a polite "please" at either end.
fn without_politeness(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut result = collapsed.as_str();
    if let (Some(head), Some(rest)) = (result.get(..7), result.get(7..)) {
        if head.eq_ignore_ascii_case("please ") {
            result = rest;
        }
    }
    for suffix in [", please", " please"] {
        let cut = result.len().saturating_sub(suffix.len());
        if let (Some(head), Some(tail)) = (result.get(..cut), result.get(cut..)) {
            if tail.eq_ignore_ascii_case(suffix) {
                result = head;
                break;
            }
        }
    }
    result.trim().to_string()
}

/// Drops a period that ends the instruction's sentence, but keeps one that ends an
/// abbreviation such as "Co." or "Inc.".
fn without_sentence_period(text: &str) -> &str {
    const ABBREVIATIONS: [&str; 8] = ["co.", "inc.", "ltd.", "corp.", "jr.", "sr.", "llc.", "p.c."];
    let trimmed = text.trim().trim_end_matches('!');
    let last_word = trimmed
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    if ABBREVIATIONS.contains(&last_word.as_str()) {
        trimmed
    } else {
        trimmed.trim_end_matches('.')
    }
}

fn strip_quotes(text: &str) -> &str {
    text.trim()
        .trim_matches(|c: char| matches!(c, '"' | '\'' | '“' | '”' | '‘' | '’'))
        .trim()
}

/// Replaces every occurrence of `old` in `text` that is not part of a longer word or number.
pub fn replace_whole(text: &str, old: &str, new: &str) -> String {
    if old.is_empty() {
        return text.to_string();
    }
    let joins_word = |c: char| c.is_alphanumeric() || c == '-';
    let mut result = String::with_capacity(text.len());
    let mut cursor = 0;
    while let Some(offset) = text[cursor..].find(old) {
        let start = cursor + offset;
        let end = start + old.len();
        let before_ok = !text[..start].chars().next_back().is_some_and(joins_word)
            || !old.starts_with(joins_word);
        let after_ok =
            !text[end..].chars().next().is_some_and(joins_word) || !old.ends_with(joins_word);
        result.push_str(&text[cursor..start]);
        if before_ok && after_ok {
            result.push_str(new);
        } else {
            result.push_str(old);
        }
        cursor = end;
    }
    result.push_str(&text[cursor..]);
    result
}

#[cfg(test)]
mod tests {
    use super::super::tests::{drafted_letter, sample_facts};
    use super::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn draft() -> LetterDraft {
        let mut facts = sample_facts();
        facts.demand_amount_cents = Some(5_000_000);
        drafted_letter(&facts, date(2025, 6, 1))
    }

    fn today() -> NaiveDate {
        date(2025, 6, 2)
    }

    fn demand_text(draft: &LetterDraft) -> String {
        draft
            .sections
            .iter()
            .find(|s| s.heading == DEMAND_HEADING)
            .unwrap()
            .paragraphs
            .join("\n")
    }

    #[test]
    fn give_them_days_counts_from_the_later_of_letter_date_and_today() {
        let refined =
            apply_instructions(&draft(), "Give them 45 days.", date(2025, 5, 20)).unwrap();
        assert_eq!(refined.response_deadline, date(2025, 7, 16));
        assert!(demand_text(&refined).contains("July 16, 2025"));
        assert!(!demand_text(&refined).contains("July 1, 2025"));

        let later = apply_instructions(&draft(), "give them 45 days", date(2025, 6, 10)).unwrap();
        assert_eq!(later.response_deadline, date(2025, 7, 25));
    }

    #[test]
    fn deadline_on_a_date_and_extension() {
        let refined = apply_instructions(&draft(), "deadline 2025-08-01", today()).unwrap();
        assert_eq!(refined.response_deadline, date(2025, 8, 1));
        assert!(demand_text(&refined).contains("August 1, 2025"));

        let refined = apply_instructions(&draft(), "respond by August 15, 2025", today()).unwrap();
        assert_eq!(refined.response_deadline, date(2025, 8, 15));

        let refined =
            apply_instructions(&draft(), "extend the deadline by 10 days", today()).unwrap();
        assert_eq!(refined.response_deadline, date(2025, 7, 11));
    }

    #[test]
    fn deadline_in_the_past_is_not_applicable() {
        let error = apply_instructions(&draft(), "deadline 2025-05-01", today()).unwrap_err();
        assert!(matches!(
            error,
            DraftingError::InstructionNotApplicable { .. }
        ));
        assert!(error.to_string().contains("not after the letter date"));
    }

    #[test]
    fn demand_can_be_set_raised_and_lowered() {
        let refined =
            apply_instructions(&draft(), "increase the demand to $85,000", today()).unwrap();
        assert_eq!(refined.total_demand_cents, 8_500_000);
        let text = demand_text(&refined);
        assert!(text.contains("Eighty-Five Thousand Dollars ($85,000.00)"));
        assert!(!text.contains("Fifty Thousand"));
        // Specials are untouched.
        assert_eq!(refined.total_specials_cents, draft().total_specials_cents);

        let refined = apply_instructions(&draft(), "demand $60k", today()).unwrap();
        assert_eq!(refined.total_demand_cents, 6_000_000);
        let refined =
            apply_instructions(&draft(), "set the demand to 75,000 USD", today()).unwrap();
        assert_eq!(refined.total_demand_cents, 7_500_000);
        let refined = apply_instructions(&draft(), "reduce the demand by $5,000", today()).unwrap();
        assert_eq!(refined.total_demand_cents, 4_500_000);

        let error =
            apply_instructions(&draft(), "increase the demand to $40,000", today()).unwrap_err();
        assert!(error.to_string().contains("would lower it"));
    }

    #[test]
    fn tone_rewrites_the_stock_paragraphs() {
        let original = draft();
        let firm = apply_instructions(&original, "make it firmer", today()).unwrap();
        let firm_text = demand_text(&firm);
        assert!(firm_text.contains("pursue all available remedies"));
        assert!(firm_text.contains("Fifty Thousand Dollars ($50,000.00)"));
        assert!(firm_text.contains("July 1, 2025"));

        let back = apply_instructions(&firm, "more conciliatory", today()).unwrap();
        assert_eq!(back, original);
        let soft = apply_instructions(&back, "make it softer", today()).unwrap();
        assert!(demand_text(&soft).contains("prepared to settle"));
        let assertive = apply_instructions(&soft, "more assertive", today()).unwrap();
        assert_eq!(assertive, original);
    }

    #[test]
    fn tone_after_a_demand_change_still_finds_the_stock_wording() {
        let refined = apply_instructions(
            &draft(),
            "demand $85,000; give them 45 days\nmake it firmer",
            today(),
        )
        .unwrap();
        let text = demand_text(&refined);
        assert!(text.contains("Our client demands Eighty-Five Thousand Dollars ($85,000.00)"));
        assert!(text.contains("This demand will remain open until July 17, 2025"));
    }

    #[test]
    fn sections_can_gain_paragraphs_and_be_removed() {
        let refined = apply_instructions(
            &draft(),
            "add a paragraph to Liability: The defendant admitted fault at the scene; a witness confirmed it.\nremove the Injuries section",
            today(),
        )
        .unwrap();
        let liability = refined
            .sections
            .iter()
            .find(|s| s.heading == "Liability")
            .unwrap();
        assert_eq!(
            liability.paragraphs.last().unwrap(),
            "The defendant admitted fault at the scene; a witness confirmed it."
        );
        assert!(refined
            .sections
            .iter()
            .all(|s| s.heading != "Injuries and Treatment"));

        let refined = apply_instructions(
            &draft(),
            "add a paragraph to the facts section: More.",
            today(),
        )
        .unwrap();
        assert_eq!(
            refined.sections[0].paragraphs.last().unwrap().as_str(),
            "More."
        );

        let error =
            apply_instructions(&draft(), "remove the Exhibits section", today()).unwrap_err();
        assert!(error.to_string().contains("the sections are"));
    }

    #[test]
    fn recipient_and_claim_number_can_change() {
        let refined = apply_instructions(
            &draft(),
            "rename the recipient to Harbor Casualty Company; set the claim number to HC-99-1",
            today(),
        )
        .unwrap();
        assert_eq!(refined.recipient[0], "Harbor Casualty Company");
        assert!(refined
            .reference
            .contains(&"Claim number: HC-99-1".to_string()));
        assert!(!refined
            .reference
            .iter()
            .any(|l| l.contains("GM-2025-00417")));

        let without = apply_instructions(&refined, "remove the claim number", today()).unwrap();
        assert!(!without
            .reference
            .iter()
            .any(|l| l.starts_with("Claim number")));
        let again = apply_instructions(&without, "claim number: XY-1", today()).unwrap();
        assert_eq!(again.reference[2], "Claim number: XY-1");
        assert!(again.reference[3].starts_with("Date of loss"));
    }

    #[test]
    fn personal_salutation_follows_the_recipient() {
        let mut facts = sample_facts();
        facts.insurer_name = None;
        let letter = drafted_letter(&facts, date(2025, 6, 1));
        let refined = apply_instructions(
            &letter,
            "rename the recipient to \"Ms. Casey Morgan\"",
            today(),
        )
        .unwrap();
        assert_eq!(refined.salutation, "Dear Ms. Casey Morgan:");
    }

    #[test]
    fn unsupported_instruction_lists_the_forms_and_changes_nothing() {
        let error = apply_instructions(
            &draft(),
            "give them 45 days; write it like a pirate",
            today(),
        )
        .unwrap_err();
        match &error {
            DraftingError::UnsupportedInstruction {
                instruction,
                supported,
            } => {
                assert_eq!(instruction, "write it like a pirate");
                for form in SUPPORTED_FORMS {
                    assert!(supported.contains(form));
                }
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert_eq!(error.http_status(), 422);
        assert!(error.to_string().contains("add a paragraph to <section>"));
    }

    #[test]
    fn empty_and_oversized_instructions_are_rejected() {
        assert!(matches!(
            apply_instructions(&draft(), "  ", today()),
            Err(DraftingError::InvalidInstruction(_))
        ));
        assert!(matches!(
            apply_instructions(&draft(), &"x".repeat(4001), today()),
            Err(DraftingError::InvalidInstruction(_))
        ));
        assert!(matches!(
            apply_instructions(&draft(), ";;\n", today()),
            Err(DraftingError::InvalidInstruction(_))
        ));
    }

    #[test]
    fn instruction_parsing_table() {
        let cases: [(&str, Instruction); 10] = [
            ("give them 45 days", Instruction::DeadlineInDays(45)),
            ("30 days to respond", Instruction::DeadlineInDays(30)),
            (
                "Deadline: March 1, 2026",
                Instruction::DeadlineOn(date(2026, 3, 1)),
            ),
            (
                "demand $85,000.00",
                Instruction::SetDemand {
                    cents: 8_500_000,
                    direction: DemandDirection::Either,
                },
            ),
            (
                "raise the demand by $1,000",
                Instruction::ChangeDemandBy(100_000),
            ),
            (
                "please make it a bit firmer",
                Instruction::Tone(ToneShift::Firmer),
            ),
            ("use a softer tone", Instruction::Tone(ToneShift::Softer)),
            (
                "delete Liability",
                Instruction::RemoveSection("Liability".into()),
            ),
            (
                "address the letter to Harbor Casualty",
                Instruction::RenameRecipient("Harbor Casualty".into()),
            ),
            ("remove the claim no.", Instruction::RemoveClaimNumber),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_instruction(text), Some(expected), "{text}");
        }
        assert_eq!(parse_instruction("make it sing"), None);
        assert!(instruction_changes_demand("first: demand $90,000"));
        assert!(!instruction_changes_demand("give them 45 days"));
    }

    #[test]
    fn whole_word_replacement_leaves_longer_numbers_alone() {
        assert_eq!(
            replace_whole(
                "Five Thousand Dollars and Eighty-Five Thousand Dollars",
                "Five Thousand Dollars",
                "Six Thousand Dollars"
            ),
            "Six Thousand Dollars and Eighty-Five Thousand Dollars"
        );
        assert_eq!(
            replace_whole("$185,000.00 $85,000.00", "$85,000.00", "$1.00"),
            "$185,000.00 $1.00"
        );
    }
}
