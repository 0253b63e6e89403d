//! Finding special damages (medical charges, lost wages, other expenses) and dates in the text of source documents.
//!
//! The scan is line by line and linear in the size of the text. For every line that carries a
//! money amount it decides whether the amount is a loss (an item), a summary of other lines
//! (a total, balance, payment or adjustment), or not a loss at all (a pay rate, a policy limit,
//! a police estimate), and classifies each item as medical, lost wages or other.

use std::sync::LazyLock;

use chrono::NaiveDate;
use regex::{Captures, Regex};

use crate::model::{SourceDocument, SpecialsCategory, SpecialsItem, SpecialsSource};

/// The largest single amount Steno accepts anywhere: $100,000,000.00.
pub const MAX_AMOUNT_CENTS: i64 = 10_000_000_000;

/// Longest description kept for an item, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 120;

/// Dates: `01/05/2026`, `1/5/26`, `01-05-2026`, `2026-01-05`, `January 5, 2026`, `Jan. 5, 2026`.
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        \b(?P<us_month>\d{1,2})/(?P<us_day>\d{1,2})/(?P<us_year>\d{4}|\d{2})\b
        | \b(?P<dash_month>\d{1,2})-(?P<dash_day>\d{1,2})-(?P<dash_year>\d{4})\b
        | \b(?P<iso_year>\d{4})-(?P<iso_month>\d{1,2})-(?P<iso_day>\d{1,2})\b
        | \b(?P<name_month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?
             |aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)
          \.?\s+(?P<name_day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<name_year>\d{4})\b",
    )
    .expect("date pattern is valid")
});

/// Amounts written as money: `$1,234.56`, `$ 1234`, `USD 1,234.56`, `1,234.56 USD`, with an
/// optional `-` written right before the `$`, or `(`, marking a credit.
static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)
        (?P<negative>-|\(\s*)?
        (?:
            \$\s?(?P<dollars>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<dollar_cents>\d{1,2}))?
          | \bUSD\s?(?P<usd_first>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<usd_first_cents>\d{2}))?
          | \b(?P<usd_last>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<usd_last_cents>\d{2}))?\s?USD\b
        )",
    )
    .expect("money pattern is valid")
});

/// Bare amounts with cents, as printed in a charges column: `1,250.00`, `-45.00`.
static COLUMN_AMOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?P<negative>-|\()?\b(?P<whole>\d{1,3}(?:,\d{3})+|\d+)\.(?P<cents>\d{2})\b")
        .expect("column amount pattern is valid")
});

/// Text right after an amount that makes it a rate: `$240.00 per day`, `$30/hr`, `$52,000 annually`.
static RATE_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:(?:/\s*|per\s+|an?\s+|each\s+)(?:hr|hour|day|wk|week|mo|month|yr|year|annum|shift)s?\b|(?:hourly|daily|weekly|bi-?weekly|monthly|annually|yearly)\b)",
    )
    .expect("rate pattern is valid")
});

/// Text right before an amount that makes it a rate: `hourly rate of $30`, `annual salary $52,000`,
/// `8 hrs x $24.00`, `2 @ $6.50`.
static RATE_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\brate(?:\s+of\s+pay)?|\bhourly|\bannual(?:\s+salary)?|\bsalary\s+of|\bwages?\s+of|\bearns|\bearning|\bbase\s+pay|(?:^|\s)(?:x|×|@))\s*(?:of|is|was|:|=)?\s*$",
    )
    .expect("rate label pattern is valid")
});

/// Text right before an amount that marks it as the line's own result: `total $2,880.00`, `= $2,880.00`.
static TOTAL_BEFORE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:\btotal(?:\s+of)?|=)\s*(?:is|was|:)?\s*$")
        .expect("total label pattern is valid")
});

/// Text right after a bare number that makes it a quantity, not money: `40.00 hrs`, `0.50 mg`.
static UNIT_AFTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:%|(?:hrs?|hours?|units?|qty|mg|ml|mcg|tabs?|tablets?|caps?|capsules?|days?|miles?|mi|lbs?|kg)\b)",
    )
    .expect("unit pattern is valid")
});

/// Text right after an amount that marks a credit: `$50.00 CR`.
static CREDIT_AFTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*(?:cr|credit)\b").expect("credit pattern is valid"));

/// Lines that summarise other lines, recognised by how they start (dates and codes skipped).
static SUMMARY_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^[^a-z]*(?:grand\s+total|sub-?\s?totals?|totals?|balance|amount\s+(?:due|paid|owed)|payments?|paid|adjustments?|adj\b|insurance\s+(?:payment|paid|adjustment)|ins\.?\s+(?:pmt|paid|adj)|credits?|write[- ]?offs?|discounts?|previous\s+balance|prior\s+balance|patient\s+(?:responsibility|payment|paid)|you\s+owe|net\s+(?:pay|amount))\b",
    )
    .expect("summary start pattern is valid")
});

/// Lines that summarise other lines, recognised by a phrase anywhere in them.
static SUMMARY_ANYWHERE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:sub-?\s?total|grand\s+total|total\s+(?:charges|due|amount|billed|balance|payments?|adjustments?|lost\s+wages|wage\s+loss|owed)|amount\s+due|balance\s+(?:due|forward)|account\s+balance|payments?\s+(?:received|applied)|insurance\s+(?:payment|paid|adjustment)|contractual\s+adjustment|write[- ]?off|you\s+owe|statement\s+total)\b",
    )
    .expect("summary phrase pattern is valid")
});

/// Summary lines that state what was charged (a total), as opposed to what was paid or credited.
static TOTAL_KIND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:grand\s+total|sub-?\s?total|total|amount\s+due|balance\s+due|total\s+due)\b",
    )
    .expect("total kind pattern is valid")
});
static PAYMENT_KIND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:payments?|paid|adjustments?|credits?|write[- ]?offs?|discounts?|insurance)\b",
    )
    .expect("payment kind pattern is valid")
});

/// Amounts that are not damages: policy limits, coverage, fines, pay-stub deductions and year-to-date figures.
static NOT_DAMAGES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:policy\s+limits?|limits?\s+of\s+(?:liability|coverage)|liability\s+limits?|coverage|per\s+person|per\s+occurrence|per\s+accident|deductible|premium|bodily\s+injury\s+liability|underinsured|uninsured|fines?|bail|bond|ytd|year\s+to\s+date|withholding|fica|social\s+security|medicare\s+tax|federal\s+(?:income\s+)?tax|state\s+(?:income\s+)?tax|net\s+pay)\b",
    )
    .expect("not-damages pattern is valid")
});

/// Estimates are not incurred losses unless the document is itself a bill.
static ESTIMATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\bestimat(?:e|ed|es|ion)\b").expect("estimate pattern is valid")
});

/// A police-report line that is clearly a bill (a towing invoice quoted in the report).
static CLEARLY_A_BILL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:invoice[ds]?|billed|receipt|paid)\b").expect("bill line pattern is valid")
});

static POLICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:police|sheriff|trooper|highway\s+patrol|state\s+patrol|law\s+enforcement)\b",
    )
    .expect("police pattern is valid")
});
static REPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:report|officer|deputy|badge)\b").expect("report pattern is valid")
});
static STRONG_BILL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:invoice|receipt|itemi[sz]ed|statement\s+of\s+(?:charges|account))\b")
        .expect("strong bill pattern is valid")
});
static BILL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:statement|invoice|bill|billing|billed|itemi[sz]ed|receipt|amount\s+due|balance\s+due|charges|account\s+(?:number|no|#))\b",
    )
    .expect("bill pattern is valid")
});

/// Words that make a line about lost earnings.
static WAGE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:wages?|salary|salaries|pay\s+period|pay\s*stubs?|paychecks?|earnings|time\s+off|missed\s+(?:work|\d+\s+(?:full\s+)?(?:work\s*)?(?:days?|shifts?|hours?|weeks?))|lost\s+(?:income|earnings|time)|wage\s+loss|payroll|gross\s+pay|pto|sick\s+(?:leave|days?)|off\s+work|out\s+of\s+work|unable\s+to\s+work|days?\s+missed)\b",
    )
    .expect("wage pattern is valid")
});

/// Words that make a whole document about employment (besides the line words above).
static WAGE_DOCUMENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:employer|employee|employed|employment|human\s+resources|job\s+title|hourly\s+rate)\b",
    )
    .expect("employment pattern is valid")
});

/// Words that make a line or document about medical care.
static MEDICAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:treatments?|treated|visits?|therap(?:y|ies|ist|eutic)|imaging|x-?rays?|radiolog\w*|ct\s+scan|cat\s+scan|ultrasound|pharmacy|pharmacist|prescriptions?|prescribed|medications?|hospital|emergency|clinic|physician|doctor|chiropract\w*|ambulance|surgery|surgical|surgeon|consult\w*|evaluation|examination|exam|injections?|laboratory|lab|cpt|hcpcs|diagnos\w*|patient|orthop(?:a)?edic\w*|neurolog\w*|urgent\s+care|medical|rehab\w*|follow[- ]up)\b",
    )
    .expect("medical pattern is valid")
});

/// Medical abbreviations, matched with their capitals only.
static MEDICAL_ABBREVIATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:ER|ED|PT|OT|Rx|RX|EMS|CT|MRI)\b").expect("abbreviation pattern is valid")
});

/// A procedure code (CPT `99283`, HCPCS `A0427`) opening a line once its dates are removed.
static LEADING_PROCEDURE_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[^A-Za-z0-9]*(?:\d{5}|[A-V]\d{4})(?:-[A-Z0-9]{2})?\b")
        .expect("procedure code pattern is valid")
});

/// What may stand between the two dates of a range: `to`, `through`, `thru`, `-`, `–`, `and`.
static DATE_RANGE_CONNECTOR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:to|through|thru|until|and|-|–|—)\s*$")
        .expect("date range pattern is valid")
});

/// A preposition left in front of punctuation once a date is removed: "accident of, Jordan".
static DANGLING_PREPOSITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\s+\b(?:for|from|on|of|dated|between|to|through)(?P<punctuation>[:,;])")
        .expect("dangling preposition pattern is valid")
});

/// Pay-stub lines that record earnings rather than a loss.
static EARNINGS_RECORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:gross\s+pay|regular\s+(?:hours|pay|earnings)|overtime|current\s+earnings|hours\s+worked)\b",
    )
    .expect("earnings record pattern is valid")
});
/// Words that make an earnings line a loss after all: "lost gross pay".
static LOSS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:lost|loss|missed|unpaid|off\s+work|time\s+off)\b")
        .expect("loss pattern is valid")
});

/// A line naming the date of service for the lines that follow it.
static SERVICE_DATE_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:date\s+of\s+service|service\s+date|dos|visit\s+date|date\s+of\s+visit|date\s+filled|fill\s+date)\b",
    )
    .expect("service date label pattern is valid")
});

/// Column names of money columns in a table header, two-word names first.
static MONEY_COLUMN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:total\s+charges?|total\s+amount|total\s+due|amount\s+(?:billed|charged|paid|due)|insurance\s+(?:paid|payments?|adjustments?)|ins\.?\s+(?:paid|pmt|adj)|patient\s+(?:paid|balance|responsibility|resp)|unit\s+price|balance\s+due|charges?|amount|amt|fees?|billed|total|price|cost|paid|payments?|adjustments?|adj|balance|copay|insurance)\b",
    )
    .expect("money column pattern is valid")
});
/// Money columns that hold what was charged.
static CHARGE_COLUMN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:total\s+charges?|total\s+amount|amount\s+(?:billed|charged)|charges?|amount|amt|fees?|billed|total|price|cost)$",
    )
    .expect("charge column pattern is valid")
});
/// Other words of a table header.
static HEADER_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:date|dates|description|service|services|code|cpt|hcpcs|qty|quantity|units?|item|items|procedure|provider|dos|hours|week|period|rx|drug|medication)\b",
    )
    .expect("header word pattern is valid")
});

/// One money amount found on a line, with its byte span.
#[derive(Debug, Clone, Copy)]
struct AmountToken {
    start: usize,
    end: usize,
    cents: i64,
    negative: bool,
    is_rate: bool,
    after_total_label: bool,
}

/// A date found on a line, with its byte span; `date` is `None` for impossible dates like 13/45/2026.
#[derive(Debug, Clone, Copy)]
struct DateSpan {
    start: usize,
    end: usize,
    date: Option<NaiveDate>,
}

/// The money columns of a table, learnt from its header line.
#[derive(Debug, Clone, Copy)]
struct ColumnHeader {
    money_columns: usize,
    charge_column: usize,
}

/// What kind of document a text is, judged once from the whole text.
#[derive(Debug, Clone, Copy)]
struct DocumentProfile {
    category: SpecialsCategory,
    is_bill: bool,
    is_police_report: bool,
}

impl DocumentProfile {
    fn of(text: &str) -> Self {
        let wage_hits = WAGE_LINE.find_iter(text).count() + WAGE_DOCUMENT.find_iter(text).count();
        let medical_hits =
            MEDICAL.find_iter(text).count() + MEDICAL_ABBREVIATION.find_iter(text).count();
        let category = if wage_hits > 0 && wage_hits >= medical_hits {
            SpecialsCategory::LostWages
        } else if medical_hits > 0 {
            SpecialsCategory::Medical
        } else {
            SpecialsCategory::Other
        };
        let is_police_report =
            POLICE.is_match(text) && REPORT.is_match(text) && !STRONG_BILL.is_match(text);
        DocumentProfile {
            category,
            is_bill: BILL.is_match(text) && !is_police_report,
            is_police_report,
        }
    }
}

/// Whether a document reads as medical records or a provider's bill (used to pick diagnosis quotes).
pub fn is_medical_document(text: &str) -> bool {
    let profile = DocumentProfile::of(text);
    profile.category == SpecialsCategory::Medical && !profile.is_police_report
}

/// Whether a document reads as a police or crash report.
pub fn is_police_report(text: &str) -> bool {
    DocumentProfile::of(text).is_police_report
}

/// Finds the special damages in the documents, in document order and then line order.
///
/// Each line with a money amount yields at most one item, dated with the first date on the line
/// (or the most recent "date of service" line above it). Totals, balances, payments and
/// adjustments are skipped so a bill is not counted twice, unless a document has no line items
/// at all, in which case its largest total is kept as its single item. Pay rates, policy limits,
/// fines, pay-stub deductions, estimates outside a bill and amounts in police reports (other than
/// a quoted invoice or receipt) are not damages and are skipped.
pub fn find_specials(documents: &[SourceDocument]) -> Vec<SpecialsItem> {
    documents.iter().flat_map(document_specials).collect()
}

fn document_specials(document: &SourceDocument) -> Vec<SpecialsItem> {
    let profile = DocumentProfile::of(&document.text);
    let mut line_items = Vec::new();
    let mut totals: Vec<SpecialsItem> = Vec::new();
    let mut header: Option<ColumnHeader> = None;
    let mut service_date_above: Option<NaiveDate> = None;

    for raw_line in document.text.lines() {
        let line = raw_line.trim();
        if line.is_empty() {
            continue;
        }
        let dates = date_spans(line);
        let first_date = dates.iter().find_map(|span| span.date);
        if SERVICE_DATE_LABEL.is_match(line) {
            if let Some(date) = first_date {
                service_date_above = Some(date);
            }
        }

        let mut tokens = money_tokens(line, &dates);
        if tokens.is_empty() {
            if let Some(found) = column_header(line) {
                header = Some(found);
                continue;
            }
            let opens_with_date = dates.first().is_some_and(|span| span.start == 0);
            if header.is_some() || (profile.is_bill && opens_with_date) {
                tokens = column_tokens(line, &dates);
            }
        }
        if tokens.is_empty() {
            continue;
        }
        if NOT_DAMAGES.is_match(line)
            || (profile.is_police_report && !CLEARLY_A_BILL.is_match(line))
            || (ESTIMATE.is_match(line) && !profile.is_bill)
            || (EARNINGS_RECORD.is_match(line) && !LOSS.is_match(line))
        {
            continue;
        }
        let Some(chosen) = choose_amount(&tokens, header) else {
            continue;
        };
        if chosen.negative || chosen.cents <= 0 {
            continue;
        }

        let without_dates = remove_spans(line, &dates, &[]);
        let category = classify_line(line, &without_dates, profile);
        let item = SpecialsItem {
            category,
            description: describe(line, &dates, &tokens, category),
            amount_cents: chosen.cents,
            service_date: first_date.or(service_date_above),
            source: SpecialsSource::Document {
                document_id: document.id.clone(),
                filename: document.filename.clone(),
            },
        };
        let is_summary =
            SUMMARY_START.is_match(&without_dates) || SUMMARY_ANYWHERE.is_match(&without_dates);
        if is_summary {
            if TOTAL_KIND.is_match(line) && !PAYMENT_KIND.is_match(line) {
                totals.push(item);
            }
        } else {
            line_items.push(item);
        }
    }

    if line_items.is_empty() {
        let mut largest: Option<SpecialsItem> = None;
        for total in totals {
            if largest
                .as_ref()
                .is_none_or(|kept| total.amount_cents > kept.amount_cents)
            {
                largest = Some(total);
            }
        }
        return largest.into_iter().collect();
    }
    line_items
}

fn classify_line(line: &str, without_dates: &str, profile: DocumentProfile) -> SpecialsCategory {
    let speaks_of_wages = WAGE_LINE.is_match(line);
    let speaks_of_care = MEDICAL.is_match(line)
        || MEDICAL_ABBREVIATION.is_match(line)
        || LEADING_PROCEDURE_CODE.is_match(without_dates);
    match (speaks_of_wages, speaks_of_care) {
        (true, false) => SpecialsCategory::LostWages,
        (false, true) => SpecialsCategory::Medical,
        (true, true) if profile.category == SpecialsCategory::Other => SpecialsCategory::LostWages,
        _ => profile.category,
    }
}

/// Picks the line's amount: the one labelled as the line's total, else the charge column of a
/// table, else the first amount that is not a rate.
fn choose_amount(tokens: &[AmountToken], header: Option<ColumnHeader>) -> Option<AmountToken> {
    let candidates: Vec<AmountToken> = tokens.iter().copied().filter(|t| !t.is_rate).collect();
    if candidates.is_empty() {
        return None;
    }
    if let Some(labelled) = candidates.iter().find(|t| t.after_total_label) {
        return Some(*labelled);
    }
    if let Some(header) = header {
        // Money columns are the rightmost columns of a table, so align from the right.
        if candidates.len() >= header.money_columns {
            let index = candidates.len() - header.money_columns + header.charge_column;
            return candidates.get(index).copied();
        }
    }
    candidates.first().copied()
}

fn column_header(line: &str) -> Option<ColumnHeader> {
    if COLUMN_AMOUNT.is_match(line) || line.ends_with('.') || line.split_whitespace().count() > 12 {
        return None;
    }
    if !HEADER_WORD.is_match(line) {
        return None;
    }
    let columns: Vec<&str> = MONEY_COLUMN.find_iter(line).map(|m| m.as_str()).collect();
    let charge_column = columns.iter().position(|name| {
        let normalised = name.split_whitespace().collect::<Vec<_>>().join(" ");
        CHARGE_COLUMN.is_match(&normalised)
    })?;
    Some(ColumnHeader {
        money_columns: columns.len(),
        charge_column,
    })
}

fn date_spans(line: &str) -> Vec<DateSpan> {
    DATE.captures_iter(line)
        .filter_map(|captures| {
            let whole = captures.get(0)?;
            Some(DateSpan {
                start: whole.start(),
                end: whole.end(),
                date: date_from_captures(&captures),
            })
        })
        .collect()
}

fn overlaps_a_date(start: usize, end: usize, dates: &[DateSpan]) -> bool {
    dates
        .iter()
        .any(|span| start < span.end && span.start < end)
}

fn money_tokens(line: &str, dates: &[DateSpan]) -> Vec<AmountToken> {
    let mut tokens = Vec::new();
    for captures in MONEY.captures_iter(line) {
        let Some(whole) = captures.get(0) else {
            continue;
        };
        if overlaps_a_date(whole.start(), whole.end(), dates) {
            continue;
        }
        let (whole_part, cents_part) = if let Some(dollars) = captures.name("dollars") {
            (dollars.as_str(), captures.name("dollar_cents"))
        } else if let Some(first) = captures.name("usd_first") {
            (first.as_str(), captures.name("usd_first_cents"))
        } else if let Some(last) = captures.name("usd_last") {
            (last.as_str(), captures.name("usd_last_cents"))
        } else {
            continue;
        };
        let Some(cents) = cents_from_parts(whole_part, cents_part.map(|m| m.as_str())) else {
            continue;
        };
        let after = &line[whole.end()..];
        let negative = captures.name("negative").is_some() || CREDIT_AFTER.is_match(after);
        tokens.push(token(line, whole.start(), whole.end(), cents, negative));
    }
    tokens
}

fn column_tokens(line: &str, dates: &[DateSpan]) -> Vec<AmountToken> {
    let mut tokens = Vec::new();
    for captures in COLUMN_AMOUNT.captures_iter(line) {
        let (Some(whole), Some(whole_part), Some(cents_part)) = (
            captures.get(0),
            captures.name("whole"),
            captures.name("cents"),
        ) else {
            continue;
        };
        if overlaps_a_date(whole.start(), whole.end(), dates) {
            continue;
        }
        let before = &line[..whole_part.start()];
        let after = &line[whole.end()..];
        // Part of a longer number or version string such as `1.2.34` or `01.05.2026`.
        if before.ends_with(|c: char| c == '.' || c.is_ascii_digit())
            || after.starts_with(|c: char| c == '.' || c.is_ascii_digit())
        {
            continue;
        }
        if UNIT_AFTER.is_match(after) {
            continue;
        }
        let Some(cents) = cents_from_parts(whole_part.as_str(), Some(cents_part.as_str())) else {
            continue;
        };
        let negative = captures.name("negative").is_some()
            || CREDIT_AFTER.is_match(after)
            || after.starts_with('-');
        tokens.push(token(line, whole.start(), whole.end(), cents, negative));
    }
    tokens
}

fn token(line: &str, start: usize, end: usize, cents: i64, negative: bool) -> AmountToken {
    let before = tail(line, start, 40);
    let after = &line[end..];
    AmountToken {
        start,
        end,
        cents,
        negative,
        is_rate: RATE_AFTER.is_match(after) || RATE_BEFORE.is_match(before),
        after_total_label: TOTAL_BEFORE.is_match(before),
    }
}

/// The last `max_bytes` (or fewer, to stay on a character boundary) of `line[..end]`.
fn tail(line: &str, end: usize, max_bytes: usize) -> &str {
    let mut start = end.saturating_sub(max_bytes);
    while start < end && !line.is_char_boundary(start) {
        start += 1;
    }
    &line[start..end]
}

/// Converts `"1,234"` and `Some("5")` to `123450` cents; `None` when out of range.
pub fn cents_from_parts(whole: &str, cents: Option<&str>) -> Option<i64> {
    let digits: String = whole.chars().filter(|c| *c != ',').collect();
    if digits.is_empty() || digits.len() > 12 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let dollars: i64 = digits.parse().ok()?;
    let cents = match cents {
        None => 0,
        Some(text) if text.len() == 1 => text.parse::<i64>().ok()? * 10,
        Some(text) if text.len() == 2 => text.parse::<i64>().ok()?,
        Some(_) => return None,
    };
    let total = dollars.checked_mul(100)?.checked_add(cents)?;
    (total <= MAX_AMOUNT_CENTS).then_some(total)
}

/// The first money amount (`$1,234.56`, `$ 1234`, `1,234.56 USD`) in `text`, in cents.
pub fn parse_amount_cents(text: &str) -> Option<i64> {
    let dates = date_spans(text);
    money_tokens(text, &dates)
        .into_iter()
        .find(|t| !t.negative)
        .map(|t| t.cents)
}

/// Every valid date in `text`, in order of appearance.
pub fn find_dates(text: &str) -> Vec<NaiveDate> {
    DATE.captures_iter(text)
        .filter_map(|captures| date_from_captures(&captures))
        .collect()
}

/// `text` as exactly one date (surrounding spaces and a final period allowed), else `None`.
pub fn parse_single_date(text: &str) -> Option<NaiveDate> {
    let trimmed = text.trim().trim_end_matches('.').trim();
    let captures = DATE.captures(trimmed)?;
    let whole = captures.get(0)?;
    if whole.start() != 0 || whole.end() != trimmed.len() {
        return None;
    }
    date_from_captures(&captures)
}

fn date_from_captures(captures: &Captures<'_>) -> Option<NaiveDate> {
    let number = |name: &str| -> Option<u32> { captures.name(name)?.as_str().parse().ok() };
    let (year, month, day) = if captures.name("us_month").is_some() {
        let year_text = captures.name("us_year")?.as_str();
        let mut year: i32 = year_text.parse().ok()?;
        if year_text.len() == 2 {
            year += if year < 70 { 2000 } else { 1900 };
        }
        (year, number("us_month")?, number("us_day")?)
    } else if captures.name("dash_month").is_some() {
        let year: i32 = captures.name("dash_year")?.as_str().parse().ok()?;
        (year, number("dash_month")?, number("dash_day")?)
    } else if captures.name("iso_year").is_some() {
        let year: i32 = captures.name("iso_year")?.as_str().parse().ok()?;
        (year, number("iso_month")?, number("iso_day")?)
    } else {
        let year: i32 = captures.name("name_year")?.as_str().parse().ok()?;
        let month = month_number(captures.name("name_month")?.as_str())?;
        (year, month, number("name_day")?)
    };
    NaiveDate::from_ymd_opt(year, month, day)
}

fn month_number(name: &str) -> Option<u32> {
    let prefix: String = name
        .chars()
        .take(3)
        .collect::<String>()
        .to_ascii_lowercase();
    let month = match prefix.as_str() {
        "jan" => 1,
        "feb" => 2,
        "mar" => 3,
        "apr" => 4,
        "may" => 5,
        "jun" => 6,
        "jul" => 7,
        "aug" => 8,
        "sep" => 9,
        "oct" => 10,
        "nov" => 11,
        "dec" => 12,
        _ => return None,
    };
    Some(month)
}

/// `line` without its date spans and the given amounts. Two dates joined by "to", "through"
/// or a dash lose the connector as well.
fn remove_spans(line: &str, dates: &[DateSpan], amounts: &[AmountToken]) -> String {
    let mut spans: Vec<(usize, usize)> = dates.iter().map(|d| (d.start, d.end)).collect();
    for pair in dates.windows(2) {
        let between = &line[pair[0].end..pair[1].start];
        if DATE_RANGE_CONNECTOR.is_match(between) {
            spans.push((pair[0].end, pair[1].start));
        }
    }
    spans.extend(amounts.iter().map(|amount| (amount.start, amount.end)));
    spans.sort_unstable();
    let mut kept = String::with_capacity(line.len());
    let mut cursor = 0;
    for (start, end) in spans {
        if start > cursor {
            kept.push_str(&line[cursor..start]);
        }
        cursor = cursor.max(end);
        kept.push(' ');
    }
    if cursor < line.len() {
        kept.push_str(&line[cursor..]);
    }
    kept
}

/// The line's words without its dates and amounts (pay rates are kept, as they explain the
/// figure), tidied and bounded in length.
fn describe(
    line: &str,
    dates: &[DateSpan],
    tokens: &[AmountToken],
    category: SpecialsCategory,
) -> String {
    let amounts: Vec<AmountToken> = tokens.iter().copied().filter(|t| !t.is_rate).collect();
    let remaining = remove_spans(line, dates, &amounts).replace(['|', '\t'], " ");
    let collapsed = remaining
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
        .replace(" ;", ";")
        .replace(" :", ":")
        .replace(" .", ".");
    let mut description = DANGLING_PREPOSITION
        .replace_all(&collapsed, "$punctuation")
        .into_owned();
    for _ in 0..2 {
        description = trim_separators(&description).to_string();
        description = drop_dangling_label(&description).to_string();
    }
    description = trim_separators(&description).to_string();
    if description.is_empty() {
        return match category {
            SpecialsCategory::Medical => "Medical charge".to_string(),
            SpecialsCategory::LostWages => "Lost wages".to_string(),
            SpecialsCategory::Other => "Expense".to_string(),
        };
    }
    bound_length(&description, MAX_DESCRIPTION_CHARS)
}

fn trim_separators(text: &str) -> &str {
    text.trim_matches(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                ':' | ';' | ',' | '-' | '–' | '—' | '|' | '=' | '*' | '#' | '$' | '@' | '.' | '~'
            )
    })
}

/// Drops a trailing label word left behind by the amount: "..., total" → "...".
fn drop_dangling_label(text: &str) -> &str {
    const LABELS: [&str; 17] = [
        "total", "at", "of", "for", "on", "from", "to", "through", "dated", "is", "was", "amount",
        "charge", "charges", "cost", "usd", "x",
    ];
    let Some((head, last)) = text.rsplit_once(' ') else {
        return text;
    };
    if LABELS.iter().any(|label| last.eq_ignore_ascii_case(label)) {
        head
    } else {
        text
    }
}

/// Cuts `text` to at most `max_chars` characters, at a word boundary when possible, marking the cut with "...".
pub fn bound_length(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let keep = max_chars.saturating_sub(3);
    let cut: String = text.chars().take(keep).collect();
    let at_word = match cut.rfind(' ') {
        Some(space) if space > keep / 2 => &cut[..space],
        _ => cut.as_str(),
    };
    format!("{}...", trim_separators(at_word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(id: &str, filename: &str, text: &str) -> SourceDocument {
        SourceDocument {
            id: id.into(),
            filename: filename.into(),
            text: text.into(),
        }
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    const HOSPITAL_BILL: &str = "\
Springfield General Hospital
Itemized Statement
Patient: Jordan Rivera          Account No. 448812
Statement date: 04/30/2025

Date        Code    Description                          Charges
03/14/2025  99284   Emergency department visit, level 4  $1,850.00
03/14/2025  72040   X-ray cervical spine, 2-3 views        $412.50
03/14/2025  73110   X-ray wrist, 3 views                   $298.00
03/14/2025  29125   Application of short arm splint        $365.00
3/14/25     J1885   Ketorolac injection                     $48.75

Total charges                                            $2,974.25
Insurance payment 04/02/2025                            -$1,200.00
Amount due                                               $1,774.25
";

    #[test]
    fn itemised_hospital_bill_keeps_lines_and_skips_totals() {
        let items = find_specials(&[document("d1", "hospital.pdf", HOSPITAL_BILL)]);
        let amounts: Vec<i64> = items.iter().map(|i| i.amount_cents).collect();
        assert_eq!(amounts, vec![185_000, 41_250, 29_800, 36_500, 4_875]);
        assert!(items
            .iter()
            .all(|i| i.category == SpecialsCategory::Medical));
        assert!(items
            .iter()
            .all(|i| i.service_date == Some(date(2025, 3, 14))));
        assert_eq!(
            items[0].description,
            "99284 Emergency department visit, level 4"
        );
        assert_eq!(
            items[0].source,
            SpecialsSource::Document {
                document_id: "d1".into(),
                filename: "hospital.pdf".into()
            }
        );
        let sum: i64 = amounts.iter().sum();
        assert_eq!(sum, 297_425);
    }

    #[test]
    fn physical_therapy_statement_with_bare_charge_column() {
        let text = "\
Riverside Physical Therapy
Statement of Account - Jordan Rivera
DOS         CPT     Service                      Units   Charge   Paid    Balance
04/01/2025  97161   PT evaluation, low complexity  1     225.00   0.00    225.00
04/03/2025  97110   Therapeutic exercise           2     180.00   0.00    180.00
04/08/2025  97140   Manual therapy                 1      95.00  95.00      0.00
Balance due                                                              405.00
";
        let items = find_specials(&[document("d2", "pt-statement.pdf", text)]);
        let amounts: Vec<i64> = items.iter().map(|i| i.amount_cents).collect();
        assert_eq!(amounts, vec![22_500, 18_000, 9_500]);
        assert_eq!(items[1].service_date, Some(date(2025, 4, 3)));
        assert!(items
            .iter()
            .all(|i| i.category == SpecialsCategory::Medical));
        assert!(items[2].description.contains("Manual therapy"));
    }

    #[test]
    fn pharmacy_receipt_uses_the_fill_date_above() {
        let text = "\
Walgreens Pharmacy #04417
Receipt
Date filled: Jan 6, 2026
Rx 1188123 Cyclobenzaprine 10mg 30 tabs     $18.40
Rx 1188124 Ibuprofen 800mg 60 tabs          $12.99
Subtotal                                    $31.39
Tax                                          $0.00
Total                                       $31.39
Paid VISA ****4421                          $31.39
";
        let items = find_specials(&[document("d3", "pharmacy.jpg", text)]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].amount_cents, 1_840);
        assert_eq!(items[1].amount_cents, 1_299);
        assert_eq!(items[0].service_date, Some(date(2026, 1, 6)));
        assert_eq!(items[0].category, SpecialsCategory::Medical);
        assert_eq!(
            items[0].description,
            "Rx 1188123 Cyclobenzaprine 10mg 30 tabs"
        );
    }

    #[test]
    fn employer_wage_loss_letter_counts_the_total_not_the_rate() {
        let text = "\
Acme Logistics, Human Resources
January 30, 2026
To whom it may concern:
Jordan Rivera has been employed as a warehouse associate since 2019.
Following the accident of January 5, 2026, Jordan missed 12 days at $240.00 per day, total $2,880.00.
Jordan's hourly rate is $30.00.
Please contact me with any questions.
";
        let items = find_specials(&[document("d4", "wage-letter.pdf", text)]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].amount_cents, 288_000);
        assert_eq!(items[0].category, SpecialsCategory::LostWages);
        assert_eq!(items[0].service_date, Some(date(2026, 1, 5)));
        assert_eq!(
            items[0].description,
            "Following the accident, Jordan missed 12 days at $240.00 per day"
        );
    }

    #[test]
    fn police_report_amounts_are_not_damages() {
        let text = "\
Springfield Police Department - Traffic Collision Report
Report number 25-03144    Reporting officer: Sgt. L. Ortiz, badge 2291
Date of collision: 03/14/2025
Vehicle 1 (Casey Morgan) failed to stop at the red signal and struck Vehicle 2.
Estimated vehicle damage: $4,500
Insurance: Granite Mutual, bodily injury liability limits $25,000/$50,000
Driver of Vehicle 1 was cited for violation of VC 21453(a).
";
        let items = find_specials(&[document("d5", "police-report.pdf", text)]);
        assert!(items.is_empty(), "{items:?}");
    }

    #[test]
    fn garbage_text_yields_nothing() {
        let documents = [
            document(
                "g1",
                "noise.txt",
                "%%EOF \u{0}\u{1} ��� $$$ $ , . 12/99/2025 $abc",
            ),
            document("g2", "empty.txt", ""),
            document(
                "g3",
                "numbers.txt",
                "123456789012345678901234567890 $99999999999999999",
            ),
        ];
        assert!(find_specials(&documents).is_empty());
    }

    #[test]
    fn a_document_with_only_a_total_keeps_it() {
        let text = "\
Metro Ambulance Services
Invoice 7781 for transport on 03/14/2025
Total amount due: $1,275.00
";
        let items = find_specials(&[document("d6", "ambulance.pdf", text)]);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].amount_cents, 127_500);
        assert_eq!(items[0].category, SpecialsCategory::Medical);
    }

    #[test]
    fn order_follows_documents_then_lines() {
        let bill = document(
            "a",
            "a.pdf",
            "Clinic visit 02/01/2025 $100.00\nClinic visit 02/08/2025 $50.00",
        );
        let repair = document(
            "b",
            "repair-invoice.pdf",
            "Joe's Body Shop\nInvoice 5512\nRear bumper replacement $1,234.56\nPaint 1,000.00 USD",
        );
        let items = find_specials(&[bill, repair]);
        let amounts: Vec<i64> = items.iter().map(|i| i.amount_cents).collect();
        assert_eq!(amounts, vec![10_000, 5_000, 123_456, 100_000]);
        assert_eq!(items[2].category, SpecialsCategory::Other);
        assert_eq!(items[3].description, "Paint");
    }

    #[test]
    fn amounts_parse_in_every_written_form() {
        assert_eq!(parse_amount_cents("$1,234.56"), Some(123_456));
        assert_eq!(parse_amount_cents("$ 1234"), Some(123_400));
        assert_eq!(parse_amount_cents("1,234.56 USD"), Some(123_456));
        assert_eq!(parse_amount_cents("USD 85,000"), Some(8_500_000));
        assert_eq!(parse_amount_cents("$5.5"), Some(550));
        assert_eq!(parse_amount_cents("no money here"), None);
        assert_eq!(parse_amount_cents("$1000000000000"), None);
    }

    #[test]
    fn dates_parse_in_every_written_form() {
        let text = "01/05/2026, 1/5/26, 2026-01-05, January 5, 2026, Jan 5, 2026, Jan. 5th, 2026, 13/45/2026";
        let dates = find_dates(text);
        assert_eq!(dates.len(), 6);
        assert!(dates.iter().all(|d| *d == date(2026, 1, 5)));
        assert_eq!(
            parse_single_date(" March 1, 2026. "),
            Some(date(2026, 3, 1))
        );
        assert_eq!(parse_single_date("2026-03-01 please"), None);
    }

    #[test]
    fn descriptions_are_bounded() {
        let long_words = "word ".repeat(80);
        let text = format!("Clinic visit {long_words} $75.00");
        let items = find_specials(&[document("d", "long.pdf", &text)]);
        assert_eq!(items.len(), 1);
        assert!(items[0].description.chars().count() <= MAX_DESCRIPTION_CHARS);
        assert!(items[0].description.ends_with("..."));
    }
}
