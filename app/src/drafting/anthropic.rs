//! The Anthropic drafting engine: a Messages API client that has the model write a letter's prose and revise drafts, with retries, timeouts and token accounting.
//!
//! The figures of a letter (specials, totals, demand, deadline) and its address, reference,
//! salutation, closing and signature come from [`LetterFrame`], exactly as in the offline
//! engine; the model only writes the body sections. Revised drafts from the model are checked
//! before they are accepted: the totals must add up to the itemised specials, the demand may
//! only change when the instruction asks for it, and the deadline must follow the letter date.

use std::fmt;
use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

use super::frame::{
    amount_in_words, specials_totals, LetterFrame, DEMAND_HEADING, FACTS_HEADING, INJURIES_HEADING,
    LIABILITY_HEADING, SPECIALS_HEADING,
};
use super::instructions::instruction_changes_demand;
use super::specials::MAX_AMOUNT_CENTS;
use super::{validate_instruction, DraftOutcome, DraftingEngine, DraftingError, TokenUsage};
use crate::model::{
    format_cents, format_long_date, LetterDraft, LetterSection, MatterFacts, SourceDocument,
    SpecialsSource,
};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// How much of each document, and of all documents together, is sent to the model, in characters.
const DOCUMENT_EXCERPT_CHARS: usize = 6_000;
const ALL_EXCERPTS_CHARS: usize = 60_000;
/// Specials items listed individually in the drafting prompt.
const SPECIALS_LISTED: usize = 200;
/// Bounds on a model-written body.
const MAX_SECTIONS: usize = 30;
const MAX_HEADING_CHARS: usize = 200;
/// How much of an unusable answer or error body is quoted back in an error message.
const PREVIEW_CHARS: usize = 300;

const DRAFT_SYSTEM_PROMPT: &str = "You write the body of demand letters for a personal-injury \
law firm. The letter goes to the at-fault party's liability insurer (or to the at-fault party) \
and is read by a claims adjuster. Write in a professional, measured and persuasive tone. Use \
only the facts, figures and document excerpts you are given: never invent facts, diagnoses, \
providers, amounts, dates or names. Quote the medical records only verbatim from the excerpts \
and name the document you quote. State every amount and date exactly as given. Do not write \
the date, address block, reference block, salutation, closing, signature or an itemised list of \
expenses: they are added separately. Answer with one JSON object and nothing else, of the form \
{\"sections\":[{\"heading\":\"...\",\"paragraphs\":[\"...\"]}]}, with these sections in this \
order: \"Facts of the Incident\", \"Liability\", \"Injuries and Treatment\", \"Special \
Damages\", \"Demand\". The Demand section must state the demand amount and the response \
deadline exactly as given.";

const REFINE_SYSTEM_PROMPT: &str = "You revise demand letters for a personal-injury law firm. \
You receive the current letter as JSON and a lawyer's instruction. Apply the instruction and \
change nothing else. Answer with the complete revised letter as one JSON object and nothing \
else, with exactly the same fields and formats as the input: dates as YYYY-MM-DD, money as \
integer cents, specials categories as \"medical\", \"lost_wages\" or \"other\". The fields \
total_medical_cents, total_lost_wages_cents and total_specials_cents must equal the sums of the \
specials amounts for medical items, for lost_wages items, and for all items. Change \
total_demand_cents only if the instruction asks to change the demand, and then also update the \
amount wherever the letter states it. If you change response_deadline, also update the date \
wherever the letter states it. Never invent facts, amounts or dates.";

/// How failed calls are retried: HTTP 429, 529 and 5xx answers are retried up to `max_retries`
/// times, waiting as long as the `retry-after` header asks (at most `max_delay`), or else
/// `base_delay` doubled on each retry (at most `max_delay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry).
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let wanted = retry_after.unwrap_or_else(|| {
            self.base_delay
                .saturating_mul(2u32.saturating_pow(retry.min(16)))
        });
        wanted.min(self.max_delay)
    }
}

/// Drafts and refines letters with Anthropic's Messages API.
#[derive(Clone)]
pub struct AnthropicEngine {
    base_url: String,
    api_key: String,
    model: String,
    http: reqwest::Client,
    timeout: Duration,
    retry: RetryPolicy,
    max_tokens: u32,
}

impl fmt::Debug for AnthropicEngine {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AnthropicEngine")
            .field("base_url", &self.base_url)
            .field("api_key", &"[redacted]")
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

/// The useful part of a Messages API answer.
#[derive(Debug, Clone, PartialEq)]
struct ModelAnswer {
    text: String,
    stop_reason: Option<String>,
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(default)]
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<UsageBody>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct UsageBody {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ModelSections {
    sections: Vec<LetterSection>,
}

impl AnthropicEngine {
    /// A client for `base_url` (default [`DEFAULT_BASE_URL`]) and `model` (default
    /// [`DEFAULT_MODEL`]), with a 60-second timeout and the default [`RetryPolicy`].
    pub fn new(
        api_key: impl Into<String>,
        base_url: Option<String>,
        model: Option<String>,
    ) -> Result<Self, DraftingError> {
        let api_key = api_key.into().trim().to_string();
        if api_key.is_empty() {
            return Err(DraftingError::Configuration(
                "ANTHROPIC_API_KEY is empty; set it, or unset it to use the offline engine"
                    .to_string(),
            ));
        }
        if !api_key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(DraftingError::Configuration(
                "ANTHROPIC_API_KEY contains spaces or characters that cannot be sent in a \
                 header; copy the key again"
                    .to_string(),
            ));
        }
        let base_url = base_url
            .map(|url| url.trim().trim_end_matches('/').to_string())
            .filter(|url| !url.is_empty())
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(DraftingError::Configuration(format!(
                "ANTHROPIC_BASE_URL \"{base_url}\" is not an http(s) URL; set it to the API's \
                 address, or unset it to use the default"
            )));
        }
        let model = model
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .unwrap_or_else(|| DEFAULT_MODEL.to_string());
        let http = reqwest::Client::builder().build().map_err(|error| {
            DraftingError::Configuration(format!("the HTTP client could not be built: {error}"))
        })?;
        Ok(AnthropicEngine {
            base_url,
            api_key,
            model,
            http,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            max_tokens: DEFAULT_MAX_TOKENS,
        })
    }

    /// Sets how long one call may take before it fails with [`DraftingError::Timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how failed calls are retried.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the `max_tokens` of each call.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens.max(1);
        self
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One Messages API call, retried on overload and server errors.
    async fn call(&self, system: &str, user_content: String) -> Result<ModelAnswer, DraftingError> {
        let url = format!("{}/v1/messages", self.base_url);
        let body = json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "messages": [{ "role": "user", "content": user_content }],
        })
        .to_string();
        let mut retries_done = 0;
        loop {
            let sent = self
                .http
                .post(&url)
                .header("x-api-key", &self.api_key)
                .header("anthropic-version", ANTHROPIC_VERSION)
                .header("content-type", "application/json")
                .timeout(self.timeout)
                .body(body.clone())
                .send()
                .await;
            let response = sent.map_err(|error| self.transport_error(&error))?;
            let status = response.status().as_u16();
            if response.status().is_success() {
                let text = response
                    .text()
                    .await
                    .map_err(|error| self.transport_error(&error))?;
                return parse_messages_response(&text);
            }
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let message = error_message(&response.text().await.unwrap_or_default());
            let retryable = status == 429 || status == 529 || (500..=599).contains(&status);
            match status {
                401 | 403 => return Err(DraftingError::Authentication { status, message }),
                _ if retryable && retries_done < self.retry.max_retries => {
                    let delay = self.retry.delay(retries_done, retry_after);
                    tracing::warn!(
                        status,
                        retry = retries_done + 1,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "AI drafting service is busy; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    retries_done += 1;
                }
                _ => return Err(DraftingError::Upstream { status, message }),
            }
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> DraftingError {
        if error.is_timeout() {
            DraftingError::Timeout {
                seconds: self.timeout.as_secs().max(1),
            }
        } else {
            DraftingError::Unreachable(error.to_string())
        }
    }
}

#[async_trait::async_trait]
impl DraftingEngine for AnthropicEngine {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    async fn draft(
        &self,
        facts: &MatterFacts,
        documents: &[SourceDocument],
        letter_date: NaiveDate,
    ) -> Result<DraftOutcome, DraftingError> {
        let frame = LetterFrame::build(facts, documents, letter_date)?;
        let answer = self
            .call(DRAFT_SYSTEM_PROMPT, draft_request(facts, documents, &frame))
            .await?;
        let sections = parse_sections(&answer)?;
        Ok(DraftOutcome {
            draft: frame.into_draft(sections),
            usage: answer.usage,
            engine: self.name(),
        })
    }

    async fn refine(
        &self,
        current: &LetterDraft,
        instruction: &str,
        today: NaiveDate,
    ) -> Result<DraftOutcome, DraftingError> {
        validate_instruction(instruction)?;
        let current_json = serde_json::to_string_pretty(current).map_err(|error| {
            DraftingError::InvalidInstruction(format!(
                "the current draft could not be prepared for revision ({error}); reload the \
                 matter and try again"
            ))
        })?;
        let user_content = format!(
            "Instruction from the lawyer:\n{}\n\nToday's date: {}\n\nCurrent letter (JSON):\n{current_json}",
            instruction.trim(),
            today.format("%Y-%m-%d")
        );
        let answer = self.call(REFINE_SYSTEM_PROMPT, user_content).await?;
        let revised = parse_revised_draft(&answer, current, instruction)?;
        Ok(DraftOutcome {
            draft: revised,
            usage: answer.usage,
            engine: self.name(),
        })
    }
}

/// The drafting request: what to write, the computed figures, and the documents' text.
fn draft_request(facts: &MatterFacts, documents: &[SourceDocument], frame: &LetterFrame) -> String {
    let specials: Vec<serde_json::Value> = frame
        .specials
        .iter()
        .take(SPECIALS_LISTED)
        .map(|item| {
            let source = match &item.source {
                SpecialsSource::Document { filename, .. } => filename.as_str(),
                SpecialsSource::Form => "matter form",
            };
            json!({
                "category": item.category.label(),
                "description": item.description,
                "amount": format_cents(item.amount_cents),
                "date": item.service_date.map(format_long_date),
                "source": source,
            })
        })
        .collect();
    let mut budget = ALL_EXCERPTS_CHARS;
    let mut excerpts = Vec::new();
    for document in documents {
        if budget == 0 {
            break;
        }
        let excerpt: String = document
            .text
            .chars()
            .take(DOCUMENT_EXCERPT_CHARS.min(budget))
            .collect();
        budget = budget.saturating_sub(excerpt.chars().count());
        excerpts.push(json!({ "filename": document.filename, "excerpt": excerpt }));
    }
    let demand_basis = if frame.demand_chosen_by_lawyer {
        "chosen by the lawyer"
    } else {
        "proposed by the firm from the documented losses"
    };
    let matter = json!({
        "letter_date": format_long_date(frame.letter_date),
        "claimant": facts.claimant_name.trim(),
        "defendant": facts.defendant_name.trim(),
        "insurer": facts.insurer_name.as_deref().map(str::trim),
        "incident": {
            "date": format_long_date(facts.incident_date),
            "place": facts.incident_place.trim(),
            "description": facts.incident_description.trim(),
        },
        "injuries": facts.injuries.trim(),
        "treatment": facts.treatment.trim(),
        "figures": {
            "medical_specials": format_cents(frame.totals.medical_cents),
            "lost_wages": format_cents(frame.totals.lost_wages_cents),
            "other_specials": format_cents(frame.totals.other_cents),
            "total_specials": format_cents(frame.totals.all_cents),
            "demand": format_cents(frame.total_demand_cents),
            "demand_in_words": amount_in_words(frame.total_demand_cents),
            "demand_basis": demand_basis,
            "response_deadline": format_long_date(frame.response_deadline),
        },
        "specials_items": specials,
        "documents": excerpts,
    });
    let matter_text = serde_json::to_string_pretty(&matter).unwrap_or_else(|_| matter.to_string());
    format!(
        "Write the sections \"{FACTS_HEADING}\", \"{LIABILITY_HEADING}\", \"{INJURIES_HEADING}\", \
         \"{SPECIALS_HEADING}\" and \"{DEMAND_HEADING}\" of a demand letter for this matter. In \
         \"{SPECIALS_HEADING}\", summarise the medical expenses and lost wages and cite the \
         documents they come from by filename. Answer with the JSON object only.\n\nMatter:\n{matter_text}"
    )
}

fn parse_messages_response(body: &str) -> Result<ModelAnswer, DraftingError> {
    let response: MessagesResponse = serde_json::from_str(body).map_err(|error| {
        DraftingError::MalformedResponse(format!(
            "the response is not a Messages API answer ({error}); it began: {}",
            preview(body)
        ))
    })?;
    let text: String = response
        .content
        .iter()
        .filter(|block| block.kind == "text")
        .filter_map(|block| block.text.as_deref())
        .collect::<Vec<_>>()
        .join("");
    if text.trim().is_empty() {
        return Err(DraftingError::MalformedResponse(
            "the answer contains no text".to_string(),
        ));
    }
    Ok(ModelAnswer {
        text,
        stop_reason: response.stop_reason,
        usage: response.usage.map(|usage| TokenUsage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        }),
    })
}

/// The message of an API error body, or the start of the body when it is not the usual shape.
fn error_message(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(parsed) if !parsed.error.message.trim().is_empty() => {
            preview(parsed.error.message.trim())
        }
        _ if body.trim().is_empty() => "no details given".to_string(),
        _ => preview(body.trim()),
    }
}

fn preview(text: &str) -> String {
    let mut cut: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().count() > PREVIEW_CHARS {
        cut.push_str("...");
    }
    cut
}

/// The JSON in a model's text: inside a ``` fence if there is one, else from the first `{` to
/// the last `}`.
fn json_payload(text: &str) -> &str {
    let trimmed = text.trim();
    if let Some(fence) = trimmed.find("```") {
        let after_fence = &trimmed[fence + 3..];
        let body = match after_fence.find('\n') {
            Some(newline) => &after_fence[newline + 1..],
            None => after_fence,
        };
        let inner = match body.find("```") {
            Some(end) => &body[..end],
            None => body,
        };
        return inner.trim();
    }
    match (trimmed.find('{'), trimmed.rfind('}')) {
        (Some(start), Some(end)) if start < end => &trimmed[start..=end],
        _ => trimmed,
    }
}

fn unusable_json(answer: &ModelAnswer, error: &serde_json::Error) -> DraftingError {
    let cut_off = if answer.stop_reason.as_deref() == Some("max_tokens") {
        " (the answer was cut off at the token limit)"
    } else {
        ""
    };
    DraftingError::MalformedResponse(format!(
        "the model's answer is not the requested JSON: {error}{cut_off}; it began: {}",
        preview(answer.text.trim())
    ))
}

fn parse_sections(answer: &ModelAnswer) -> Result<Vec<LetterSection>, DraftingError> {
    let parsed: ModelSections = serde_json::from_str(json_payload(&answer.text))
        .map_err(|error| unusable_json(answer, &error))?;
    clean_sections(parsed.sections)
}

/// Trims headings and paragraphs, drops empty paragraphs, and rejects bodies that are empty,
/// oversized, or have a section without heading or text.
fn clean_sections(sections: Vec<LetterSection>) -> Result<Vec<LetterSection>, DraftingError> {
    if sections.is_empty() {
        return Err(DraftingError::MalformedResponse(
            "the answer has no sections".to_string(),
        ));
    }
    if sections.len() > MAX_SECTIONS {
        return Err(DraftingError::MalformedResponse(format!(
            "the answer has {} sections, more than the {MAX_SECTIONS} a letter may have",
            sections.len()
        )));
    }
    let mut cleaned = Vec::with_capacity(sections.len());
    for (index, section) in sections.into_iter().enumerate() {
        let heading = section.heading.trim().to_string();
        if heading.is_empty() || heading.chars().count() > MAX_HEADING_CHARS {
            return Err(DraftingError::MalformedResponse(format!(
                "section {} has an empty or overlong heading",
                index + 1
            )));
        }
        let paragraphs: Vec<String> = section
            .paragraphs
            .iter()
            .map(|paragraph| paragraph.trim().to_string())
            .filter(|paragraph| !paragraph.is_empty())
            .collect();
        if paragraphs.is_empty() {
            return Err(DraftingError::MalformedResponse(format!(
                "the section \"{heading}\" has no text"
            )));
        }
        cleaned.push(LetterSection {
            heading,
            paragraphs,
        });
    }
    Ok(cleaned)
}

/// Parses a revised draft and checks it can be trusted.
fn parse_revised_draft(
    answer: &ModelAnswer,
    current: &LetterDraft,
    instruction: &str,
) -> Result<LetterDraft, DraftingError> {
    let mut revised: LetterDraft = serde_json::from_str(json_payload(&answer.text))
        .map_err(|error| unusable_json(answer, &error))?;
    revised.sections = clean_sections(revised.sections)?;

    if let Some(item) = revised
        .specials
        .iter()
        .find(|item| item.amount_cents <= 0 || item.amount_cents > MAX_AMOUNT_CENTS)
    {
        return Err(DraftingError::MalformedResponse(format!(
            "the specials item \"{}\" has the impossible amount {}",
            item.description,
            format_cents(item.amount_cents)
        )));
    }
    let totals = specials_totals(&revised.specials);
    if totals.medical_cents != revised.total_medical_cents
        || totals.lost_wages_cents != revised.total_lost_wages_cents
        || totals.all_cents != revised.total_specials_cents
    {
        return Err(DraftingError::MalformedResponse(format!(
            "the revised totals (medical {}, lost wages {}, all specials {}) do not add up to \
             the itemised specials (medical {}, lost wages {}, all specials {})",
            format_cents(revised.total_medical_cents),
            format_cents(revised.total_lost_wages_cents),
            format_cents(revised.total_specials_cents),
            format_cents(totals.medical_cents),
            format_cents(totals.lost_wages_cents),
            format_cents(totals.all_cents)
        )));
    }
    if revised.total_demand_cents != current.total_demand_cents
        && !instruction_changes_demand(instruction)
    {
        return Err(DraftingError::MalformedResponse(format!(
            "the model changed the demand from {} to {} although the instruction did not ask \
             for it",
            format_cents(current.total_demand_cents),
            format_cents(revised.total_demand_cents)
        )));
    }
    if revised.total_demand_cents <= 0 || revised.total_demand_cents > MAX_AMOUNT_CENTS {
        return Err(DraftingError::MalformedResponse(format!(
            "the revised demand {} is out of range",
            format_cents(revised.total_demand_cents)
        )));
    }
    if revised.response_deadline <= revised.letter_date {
        return Err(DraftingError::MalformedResponse(format!(
            "the revised response deadline {} is not after the letter date {}",
            format_long_date(revised.response_deadline),
            format_long_date(revised.letter_date)
        )));
    }
    Ok(revised)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::Router;
    use serde_json::Value;

    use super::super::offline::OfflineEngine;
    use super::super::tests::sample_facts;
    use super::*;

    const TEST_KEY: &str = "test-key";

    #[derive(Clone)]
    struct Reply {
        status: u16,
        retry_after: Option<&'static str>,
        body: String,
        delay: Duration,
    }

    impl Reply {
        fn ok(text: &str) -> Self {
            Reply {
                status: 200,
                retry_after: None,
                body: message_body(text),
                delay: Duration::ZERO,
            }
        }

        fn error(status: u16, retry_after: Option<&'static str>) -> Self {
            Reply {
                status,
                retry_after,
                body: json!({
                    "type": "error",
                    "error": { "type": "overloaded_error", "message": "Overloaded" }
                })
                .to_string(),
                delay: Duration::ZERO,
            }
        }
    }

    #[derive(Default)]
    struct MockState {
        replies: VecDeque<Reply>,
        requests: Vec<Value>,
    }

    type Mock = Arc<Mutex<MockState>>;

    fn message_body(text: &str) -> String {
        json!({
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": DEFAULT_MODEL,
            "content": [{ "type": "text", "text": text }],
            "stop_reason": "end_turn",
            "usage": { "input_tokens": 1200, "output_tokens": 800 }
        })
        .to_string()
    }

    fn bad_request(message: &str) -> Response {
        (
            StatusCode::BAD_REQUEST,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}})
                .to_string(),
        )
            .into_response()
    }

    /// Answers like the Messages API after checking the headers and the body's shape.
    async fn messages(State(mock): State<Mock>, headers: HeaderMap, body: Bytes) -> Response {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        if header("x-api-key") != TEST_KEY {
            return (
                StatusCode::UNAUTHORIZED,
                json!({"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
                    .to_string(),
            )
                .into_response();
        }
        if header("anthropic-version") != ANTHROPIC_VERSION {
            return bad_request("missing anthropic-version");
        }
        if header("content-type") != "application/json" {
            return bad_request("content-type must be application/json");
        }
        let Ok(request) = serde_json::from_slice::<Value>(&body) else {
            return bad_request("body is not JSON");
        };
        let shape_ok = request["model"].is_string()
            && request["max_tokens"].as_u64().is_some_and(|n| n > 0)
            && request["system"].is_string()
            && request["messages"].as_array().is_some_and(|messages| {
                messages.len() == 1
                    && messages[0]["role"] == "user"
                    && messages[0]["content"].is_string()
            });
        if !shape_ok {
            return bad_request("model, max_tokens, system and one user message are required");
        }
        let reply = {
            let mut state = mock.lock().unwrap();
            state.requests.push(request);
            state.replies.pop_front()
        };
        let Some(reply) = reply else {
            return (StatusCode::INTERNAL_SERVER_ERROR, "no scripted reply").into_response();
        };
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let mut response =
            (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
        response.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/json"),
        );
        if let Some(seconds) = reply.retry_after {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static(seconds));
        }
        response
    }

    async fn start_mock(replies: Vec<Reply>) -> (String, Mock) {
        let mock: Mock = Arc::new(Mutex::new(MockState {
            replies: replies.into(),
            requests: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/messages", post(messages))
            .with_state(mock.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (format!("http://{address}"), mock)
    }

    fn engine(base_url: &str, key: &str) -> AnthropicEngine {
        AnthropicEngine::new(key, Some(format!("{base_url}/")), None)
            .unwrap()
            .with_timeout(Duration::from_secs(5))
            .with_retry_policy(RetryPolicy {
                max_retries: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            })
    }

    fn letter_date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
    }

    fn documents() -> Vec<SourceDocument> {
        vec![
            SourceDocument {
                id: "doc-1".into(),
                filename: "er-bill.pdf".into(),
                text: "Springfield General Hospital\nItemized Statement\n\
                       03/14/2025 99284 Emergency department visit $1,850.00\n\
                       Total charges $1,850.00\n"
                    .into(),
            },
            SourceDocument {
                id: "doc-2".into(),
                filename: "wage-letter.pdf".into(),
                text: "Acme Logistics Human Resources\n\
                       Jordan Rivera missed 12 days at $240.00 per day, total $2,880.00.\n"
                    .into(),
            },
        ]
    }

    const MODEL_SECTIONS: &str = r#"{"sections":[
        {"heading":"Facts of the Incident","paragraphs":["On March 14, 2025, Casey Morgan ran a red light."]},
        {"heading":"Liability","paragraphs":["Liability is clear."]},
        {"heading":"Injuries and Treatment","paragraphs":["Jordan Rivera was treated in the emergency department."]},
        {"heading":"Special Damages","paragraphs":["Medical expenses of $1,850.00 (er-bill.pdf)."," "]},
        {"heading":"Demand","paragraphs":["We demand $8,500.00 by July 1, 2025."]}
    ]}"#;

    #[tokio::test]
    async fn draft_takes_prose_from_the_model_and_figures_from_steno() {
        let fenced = format!("Here is the letter:\n```json\n{MODEL_SECTIONS}\n```");
        let (base_url, mock) = start_mock(vec![Reply::ok(&fenced)]).await;
        let facts = sample_facts();
        let outcome = engine(&base_url, TEST_KEY)
            .draft(&facts, &documents(), letter_date())
            .await
            .unwrap();

        assert_eq!(outcome.engine, "anthropic");
        assert_eq!(
            outcome.usage,
            Some(TokenUsage {
                input_tokens: 1200,
                output_tokens: 800
            })
        );
        let draft = outcome.draft;
        assert_eq!(draft.sections.len(), 5);
        assert_eq!(draft.sections[1].paragraphs, vec!["Liability is clear."]);
        assert_eq!(
            draft.sections[3].paragraphs.len(),
            1,
            "blank paragraph dropped"
        );

        let offline = OfflineEngine
            .draft_letter(&facts, &documents(), letter_date())
            .unwrap();
        assert_eq!(draft.specials, offline.specials);
        assert_eq!(draft.total_medical_cents, 185_000);
        assert_eq!(draft.total_lost_wages_cents, 288_000);
        assert_eq!(draft.total_specials_cents, offline.total_specials_cents);
        assert_eq!(draft.total_demand_cents, offline.total_demand_cents);
        assert_eq!(draft.response_deadline, offline.response_deadline);
        assert_eq!(draft.recipient, offline.recipient);
        assert_eq!(draft.reference, offline.reference);
        assert_eq!(draft.salutation, offline.salutation);
        assert_eq!(draft.signature, offline.signature);

        let requests = mock.lock().unwrap().requests.clone();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0]["model"], DEFAULT_MODEL);
        assert_eq!(requests[0]["max_tokens"], DEFAULT_MAX_TOKENS);
        let content = requests[0]["messages"][0]["content"].as_str().unwrap();
        assert!(content.contains("Jordan Rivera"));
        assert!(content.contains("wage-letter.pdf"));
        assert!(content.contains(&format_cents(offline.total_demand_cents)));
        assert!(content.contains("July 1, 2025"));
    }

    #[tokio::test]
    async fn refine_accepts_a_consistent_revision() {
        let current = OfflineEngine
            .draft_letter(&sample_facts(), &documents(), letter_date())
            .unwrap();
        let mut expected = current.clone();
        expected.response_deadline = NaiveDate::from_ymd_opt(2025, 7, 16).unwrap();
        expected.sections[1]
            .paragraphs
            .push("The defendant admitted fault.".into());
        let answer = serde_json::to_string(&expected).unwrap();
        let (base_url, mock) = start_mock(vec![Reply::ok(&answer)]).await;

        let outcome = engine(&base_url, TEST_KEY)
            .refine(&current, "give them 45 days", letter_date())
            .await
            .unwrap();
        assert_eq!(outcome.draft, expected);
        assert_eq!(outcome.usage.map(|u| u.output_tokens), Some(800));

        let requests = mock.lock().unwrap().requests.clone();
        let content = requests[0]["messages"][0]["content"].as_str().unwrap();
        assert!(content.contains("give them 45 days"));
        assert!(content.contains("\"total_demand_cents\""));
        assert!(content.contains("2025-06-01"));
    }

    #[tokio::test]
    async fn refine_rejects_totals_that_do_not_add_up_and_unrequested_demand_changes() {
        let current = OfflineEngine
            .draft_letter(&sample_facts(), &documents(), letter_date())
            .unwrap();
        let mut wrong_totals = current.clone();
        wrong_totals.total_specials_cents += 100;
        let mut new_demand = current.clone();
        new_demand.total_demand_cents = 9_900_000;
        let (base_url, _mock) = start_mock(vec![
            Reply::ok(&serde_json::to_string(&wrong_totals).unwrap()),
            Reply::ok(&serde_json::to_string(&new_demand).unwrap()),
            Reply::ok(&serde_json::to_string(&new_demand).unwrap()),
        ])
        .await;
        let engine = engine(&base_url, TEST_KEY);

        let error = engine
            .refine(&current, "make it firmer", letter_date())
            .await
            .unwrap_err();
        assert!(matches!(error, DraftingError::MalformedResponse(_)));
        assert!(error.to_string().contains("do not add up"));

        let error = engine
            .refine(&current, "make it firmer", letter_date())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("did not ask"));

        let outcome = engine
            .refine(&current, "increase the demand to $99,000", letter_date())
            .await
            .unwrap();
        assert_eq!(outcome.draft.total_demand_cents, 9_900_000);
    }

    #[tokio::test]
    async fn rejected_key_is_an_authentication_error_without_retries() {
        let (base_url, mock) = start_mock(vec![]).await;
        let error = engine(&base_url, "wrong-key")
            .draft(&sample_facts(), &documents(), letter_date())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            DraftingError::Authentication { status: 401, .. }
        ));
        assert!(error.to_string().contains("ANTHROPIC_API_KEY was rejected"));
        assert!(error.to_string().contains("invalid x-api-key"));
        assert_eq!(mock.lock().unwrap().requests.len(), 0);
    }

    #[tokio::test]
    async fn overload_and_server_errors_are_retried() {
        let (base_url, mock) = start_mock(vec![
            Reply::error(529, Some("0")),
            Reply::error(503, None),
            Reply::ok(MODEL_SECTIONS),
        ])
        .await;
        let outcome = engine(&base_url, TEST_KEY)
            .draft(&sample_facts(), &documents(), letter_date())
            .await
            .unwrap();
        assert_eq!(outcome.draft.sections.len(), 5);
        assert_eq!(mock.lock().unwrap().requests.len(), 3);
    }

    #[tokio::test]
    async fn retries_stop_after_three() {
        let (base_url, mock) = start_mock(vec![
            Reply::error(429, Some("1")),
            Reply::error(503, None),
            Reply::error(503, None),
            Reply::error(503, None),
            Reply::ok(MODEL_SECTIONS),
        ])
        .await;
        let started = std::time::Instant::now();
        let error = engine(&base_url, TEST_KEY)
            .draft(&sample_facts(), &documents(), letter_date())
            .await
            .unwrap_err();
        assert!(matches!(error, DraftingError::Upstream { status: 503, .. }));
        assert_eq!(mock.lock().unwrap().requests.len(), 4);
        // retry-after: 1 is honoured but capped by the test policy's 5 ms maximum.
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn non_json_answer_is_malformed() {
        let (base_url, _mock) = start_mock(vec![Reply::ok(
            "Dear adjuster, I am happy to help with that letter.",
        )])
        .await;
        let error = engine(&base_url, TEST_KEY)
            .draft(&sample_facts(), &documents(), letter_date())
            .await
            .unwrap_err();
        match &error {
            DraftingError::MalformedResponse(message) => {
                assert!(message.contains("not the requested JSON"));
                assert!(message.contains("Dear adjuster"));
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert_eq!(error.http_status(), 502);
    }

    #[tokio::test]
    async fn sections_without_text_are_malformed() {
        let (base_url, _mock) = start_mock(vec![Reply::ok(
            r#"{"sections":[{"heading":"Facts","paragraphs":[]}]}"#,
        )])
        .await;
        let error = engine(&base_url, TEST_KEY)
            .draft(&sample_facts(), &documents(), letter_date())
            .await
            .unwrap_err();
        assert!(error.to_string().contains("has no text"));
    }

    #[tokio::test]
    async fn slow_answers_time_out() {
        let mut slow = Reply::ok(MODEL_SECTIONS);
        slow.delay = Duration::from_secs(3);
        let (base_url, _mock) = start_mock(vec![slow]).await;
        let error = engine(&base_url, TEST_KEY)
            .with_timeout(Duration::from_millis(100))
            .draft(&sample_facts(), &documents(), letter_date())
            .await
            .unwrap_err();
        assert!(matches!(error, DraftingError::Timeout { .. }), "{error:?}");
        assert_eq!(error.http_status(), 504);
    }

    #[tokio::test]
    async fn unreachable_service_is_reported() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let error = engine(&format!("http://{address}"), TEST_KEY)
            .draft(&sample_facts(), &documents(), letter_date())
            .await
            .unwrap_err();
        assert!(matches!(error, DraftingError::Unreachable(_)), "{error:?}");
    }

    #[tokio::test]
    async fn invalid_matter_fails_before_any_call() {
        let (base_url, mock) = start_mock(vec![]).await;
        let mut facts = sample_facts();
        facts.defendant_name = " ".into();
        let error = engine(&base_url, TEST_KEY)
            .draft(&facts, &documents(), letter_date())
            .await
            .unwrap_err();
        assert!(matches!(error, DraftingError::InvalidMatter(_)));
        let error = engine(&base_url, TEST_KEY)
            .refine(
                &OfflineEngine
                    .draft_letter(&sample_facts(), &documents(), letter_date())
                    .unwrap(),
                "",
                letter_date(),
            )
            .await
            .unwrap_err();
        assert!(matches!(error, DraftingError::InvalidInstruction(_)));
        assert!(mock.lock().unwrap().requests.is_empty());
    }

    #[test]
    fn configuration_is_checked() {
        assert!(AnthropicEngine::new("", None, None).is_err());
        assert!(AnthropicEngine::new("key with space", None, None).is_err());
        assert!(AnthropicEngine::new("k", Some("ftp://example".into()), None).is_err());
        let engine = AnthropicEngine::new("k", None, Some(" ".into())).unwrap();
        assert_eq!(engine.model(), DEFAULT_MODEL);
        assert_eq!(engine.base_url(), DEFAULT_BASE_URL);
        assert!(!format!("{engine:?}").contains("\"k\""));
    }

    #[test]
    fn retry_delays_honour_retry_after_within_the_cap() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, None), Duration::from_secs(1));
        assert_eq!(policy.delay(2, None), Duration::from_secs(4));
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            policy.delay(0, Some(Duration::from_secs(600))),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn json_is_found_inside_fences_and_prose() {
        assert_eq!(json_payload("```json\n{\"a\":1}\n```"), "{\"a\":1}");
        assert_eq!(json_payload("Sure! {\"a\":1} Done."), "{\"a\":1}");
        assert_eq!(json_payload("```\n{\"a\":1}"), "{\"a\":1}");
    }
}
