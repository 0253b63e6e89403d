//! The operations of Steno, shared by the JSON API and the web UI: the firm profile, uploads,
//! matters, drafting, refinement and export (accounts, logins and tokens are in `accounts`).
//! Each takes the authenticated caller and touches only the caller's firm; input is validated
//! before anything is written.

use bytes::Bytes;
use chrono::{NaiveDate, Utc};
use serde::Deserialize;

pub use crate::accounts::{RegisterFirm, Session};
use crate::auth::{self, Claims};
use crate::db::documents::{self, DocumentRecord, NewDocument};
use crate::db::firms::{self, Firm, Role, User};
use crate::db::letters::{self, LetterRecord, NewRevision, RevisionRecord};
use crate::db::matters::{self, MatterRecord};
use crate::db::{new_id, now_text};
use crate::error::AppError;
use crate::export::logo::{self, LogoError, StoredLogo};
use crate::export::{self, ImageFormat, Letterhead, LogoImage};
use crate::extractor::ExtractorError;
use crate::limits::{Limit, LimitExceeded};
use crate::model::{ManualSpecial, MatterFacts};
use crate::state::AppState;

/// The longest text field accepted from a form or JSON body, in characters.
const MAX_FIELD_CHARS: usize = 20_000;
const MAX_NAME_CHARS: usize = 200;
const MAX_LOGO_BYTES: usize = 2 * 1024 * 1024;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    /// The access token the caller presented (its id and expiry are what logout revokes).
    pub token: Claims,
}

impl CurrentUser {
    pub fn firm_id(&self) -> &str {
        &self.user.firm_id
    }

    pub(crate) fn require_admin(&self) -> Result<(), AppError> {
        if self.user.role == Role::Admin {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "only a firm admin may do this; ask an admin of your firm".into(),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatterInput {
    #[serde(default)]
    pub title: Option<String>,
    pub claimant_name: String,
    pub defendant_name: String,
    #[serde(default)]
    pub insurer_name: Option<String>,
    #[serde(default)]
    pub claim_number: Option<String>,
    pub incident_date: NaiveDate,
    pub incident_place: String,
    pub incident_description: String,
    pub injuries: String,
    pub treatment: String,
    #[serde(default)]
    pub manual_specials: Vec<ManualSpecial>,
    #[serde(default)]
    pub demand_amount_cents: Option<i64>,
    #[serde(default)]
    pub response_days: Option<u32>,
    #[serde(default)]
    pub document_ids: Vec<String>,
}

/// The file formats a letter exports to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Docx,
    Pdf,
}

impl ExportFormat {
    pub fn parse(text: &str) -> Result<ExportFormat, AppError> {
        match text.to_ascii_lowercase().as_str() {
            "docx" => Ok(ExportFormat::Docx),
            "pdf" => Ok(ExportFormat::Pdf),
            other => Err(AppError::BadRequest(format!(
                "format {other:?} is not supported; use docx or pdf"
            ))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Docx => "docx",
            ExportFormat::Pdf => "pdf",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Docx => {
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            }
            ExportFormat::Pdf => "application/pdf",
        }
    }
}

/// An exported letter file.
pub struct ExportedFile {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    pub filename: String,
}

pub(crate) fn required(field: &str, value: &str, max_chars: usize) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::Unprocessable(format!(
            "{field} must not be empty"
        )));
    }
    optional(field, trimmed, max_chars)
}

pub(crate) fn optional(field: &str, value: &str, max_chars: usize) -> Result<String, AppError> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max_chars {
        return Err(AppError::Unprocessable(format!(
            "{field} is too long: at most {max_chars} characters"
        )));
    }
    Ok(trimmed.to_string())
}

/// Updates the caller's firm profile (letterhead name and address).
pub async fn update_firm(
    state: &AppState,
    caller: &CurrentUser,
    name: &str,
    address: &str,
) -> Result<Firm, AppError> {
    caller.require_admin()?;
    let name = required("name", name, MAX_NAME_CHARS)?;
    let address = optional("address", address, 1000)?;
    firms::update_firm(state.database(), caller.firm_id(), &name, &address).await?;
    current_firm(state, caller).await
}

/// Stores the letterhead logo (PNG or JPEG). Its size is checked from the header before any
/// decoding; a PNG is then normalised in the extractor child (scaled to fit
/// `logo::STORED_LOGO_MAX_SIDE`, re-encoded), so exports never decode a large image. A JPEG is
/// stored as it is: Steno never decodes JPEGs, exports embed them unchanged.
pub async fn set_logo(
    state: &AppState,
    caller: &CurrentUser,
    bytes: &[u8],
) -> Result<Firm, AppError> {
    caller.require_admin()?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(AppError::PayloadTooLarge(format!(
            "the logo is {} bytes; the limit is {MAX_LOGO_BYTES} bytes",
            bytes.len()
        )));
    }
    let format = ImageFormat::detect(bytes).ok_or_else(|| {
        AppError::UnsupportedMediaType("the logo must be a PNG or JPEG image".into())
    })?;
    let logo = LogoImage {
        bytes: bytes.to_vec(),
        format,
    };
    logo::check_dimensions(&logo, state.settings().max_logo_dimension).map_err(
        |error| match error {
            LogoError::Limit(hit) => AppError::LimitExceeded(hit),
            LogoError::Image(error) => AppError::Unprocessable(error.to_string()),
        },
    )?;
    let stored = match format {
        ImageFormat::Jpeg => logo.bytes,
        ImageFormat::Png => {
            let normalised = state
                .extractor()
                .normalise_logo(Bytes::copy_from_slice(bytes))
                .await;
            record_extraction(state, &normalised);
            normalised?
        }
    };
    firms::set_logo(
        state.database(),
        caller.firm_id(),
        &stored,
        format.content_type(),
    )
    .await?;
    current_firm(state, caller).await
}

/// Counts an extractor run in the metrics, with the largest child seen so far.
fn record_extraction<T>(state: &AppState, outcome: &Result<T, ExtractorError>) {
    let label = match outcome {
        Ok(_) => "ok",
        Err(error) => error.outcome(),
    };
    state
        .metrics()
        .extraction_finished(label, state.extractor().peak_child_rss_bytes());
}

pub async fn current_firm(state: &AppState, caller: &CurrentUser) -> Result<Firm, AppError> {
    firms::get_firm(state.database(), caller.firm_id())
        .await?
        .ok_or_else(|| AppError::Internal(format!("firm {} is missing", caller.firm_id())))
}

/// Keeps only the final path component of an uploaded file's name.
pub fn clean_filename(raw: &str) -> Result<String, AppError> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|ch| !ch.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        return Err(AppError::BadRequest(
            "the uploaded file has no file name; send it as a multipart field named \"file\" with a filename".into(),
        ));
    }
    Ok(cleaned.chars().take(255).collect())
}

/// Stores an uploaded source document and its extracted text. The file is stored before the row
/// is written and removed again if the row cannot be written, so no half-upload is ever visible.
pub async fn upload_document(
    state: &AppState,
    caller: &CurrentUser,
    raw_filename: &str,
    declared_content_type: Option<&str>,
    bytes: Bytes,
) -> Result<DocumentRecord, AppError> {
    let filename = clean_filename(raw_filename)?;
    let limit = state.settings().max_upload_bytes;
    if bytes.len() > limit {
        return Err(AppError::PayloadTooLarge(format!(
            "{filename} is {} bytes; the upload limit is {limit} bytes",
            bytes.len()
        )));
    }
    // Kind detection and text extraction both read the file: only the extractor child does.
    let extracted = state
        .extractor()
        .extract_document(&filename, declared_content_type, bytes.clone())
        .await;
    record_extraction(state, &extracted);
    let extracted = extracted?;
    let (kind, text) = (extracted.kind, extracted.text);
    let document_id = new_id();
    let storage_key = format!("{}/{}", caller.firm_id(), document_id);
    let size_bytes = bytes.len();
    let sha256 = auth::sha256_hex(&bytes);
    state
        .storage()
        .put(&storage_key, bytes, kind.content_type())
        .await?;
    let created_at = now_text();
    let inserted = documents::insert_document(
        state.database(),
        NewDocument {
            id: &document_id,
            firm_id: caller.firm_id(),
            filename: &filename,
            kind: kind.as_str(),
            content_type: kind.content_type(),
            size_bytes: size_bytes as i64,
            sha256: &sha256,
            storage_key: &storage_key,
            extracted_text: &text,
            uploaded_by: &caller.user.id,
            created_at: &created_at,
        },
    )
    .await;
    if let Err(error) = inserted {
        if let Err(cleanup) = state.storage().delete(&storage_key).await {
            tracing::error!(error = %cleanup, key = %storage_key, "could not remove an orphaned upload");
        }
        return Err(error.into());
    }
    state.metrics().document_uploaded(kind.as_str(), size_bytes);
    tracing::info!(document_id = %document_id, kind = kind.as_str(), size_bytes, "document uploaded");
    documents::get_document(state.database(), caller.firm_id(), &document_id)
        .await?
        .ok_or_else(|| AppError::Internal("the uploaded document vanished".into()))
}

pub async fn get_document(
    state: &AppState,
    caller: &CurrentUser,
    document_id: &str,
) -> Result<DocumentRecord, AppError> {
    documents::get_document(state.database(), caller.firm_id(), document_id)
        .await?
        .ok_or_else(|| AppError::not_found("document", document_id))
}

/// The original bytes of one of the firm's documents.
pub async fn document_content(
    state: &AppState,
    caller: &CurrentUser,
    document_id: &str,
) -> Result<(DocumentRecord, Bytes), AppError> {
    let record = get_document(state, caller, document_id).await?;
    let bytes = state.storage().get(&record.storage_key).await?;
    Ok((record, bytes))
}

/// Deletes a document no matter uses.
pub async fn delete_document(
    state: &AppState,
    caller: &CurrentUser,
    document_id: &str,
) -> Result<(), AppError> {
    let record = get_document(state, caller, document_id).await?;
    let uses = documents::matters_using(state.database(), document_id).await?;
    if uses > 0 {
        return Err(AppError::Conflict(format!(
            "document {document_id} is used by {uses} matter(s) and cannot be deleted"
        )));
    }
    documents::delete_document(state.database(), caller.firm_id(), document_id).await?;
    state.storage().delete(&record.storage_key).await?;
    Ok(())
}

/// Validates a matter form and stores it with its documents.
pub async fn create_matter(
    state: &AppState,
    caller: &CurrentUser,
    input: MatterInput,
) -> Result<MatterRecord, AppError> {
    let facts = MatterFacts {
        claimant_name: required("claimant_name", &input.claimant_name, MAX_NAME_CHARS)?,
        defendant_name: required("defendant_name", &input.defendant_name, MAX_NAME_CHARS)?,
        insurer_name: input
            .insurer_name
            .as_deref()
            .map(|name| optional("insurer_name", name, MAX_NAME_CHARS))
            .transpose()?
            .filter(|name| !name.is_empty()),
        claim_number: input
            .claim_number
            .as_deref()
            .map(|number| optional("claim_number", number, 100))
            .transpose()?
            .filter(|number| !number.is_empty()),
        incident_date: input.incident_date,
        incident_place: required("incident_place", &input.incident_place, 500)?,
        incident_description: required(
            "incident_description",
            &input.incident_description,
            MAX_FIELD_CHARS,
        )?,
        injuries: required("injuries", &input.injuries, MAX_FIELD_CHARS)?,
        treatment: required("treatment", &input.treatment, MAX_FIELD_CHARS)?,
        manual_specials: input.manual_specials,
        demand_amount_cents: input.demand_amount_cents,
        response_days: input.response_days,
    };
    if facts.incident_date > Utc::now().date_naive() {
        return Err(AppError::Unprocessable(format!(
            "incident_date {} is in the future",
            facts.incident_date
        )));
    }
    for (index, special) in facts.manual_specials.iter().enumerate() {
        if special.amount_cents < 0 {
            return Err(AppError::Unprocessable(format!(
                "manual_specials[{index}].amount_cents must not be negative"
            )));
        }
        required(
            &format!("manual_specials[{index}].description"),
            &special.description,
            500,
        )?;
    }
    if matches!(facts.demand_amount_cents, Some(amount) if amount <= 0) {
        return Err(AppError::Unprocessable(
            "demand_amount_cents must be a positive number of cents".into(),
        ));
    }
    if matches!(facts.response_days, Some(days) if days == 0 || days > 365) {
        return Err(AppError::Unprocessable(
            "response_days must be between 1 and 365".into(),
        ));
    }
    if input.document_ids.len() > 200 {
        return Err(AppError::Unprocessable(
            "a matter can have at most 200 documents".into(),
        ));
    }
    let mut document_ids: Vec<String> = Vec::new();
    for (index, document_id) in input.document_ids.iter().enumerate() {
        if document_ids.contains(document_id) {
            continue;
        }
        if documents::get_document(state.database(), caller.firm_id(), document_id)
            .await?
            .is_none()
        {
            return Err(AppError::Unprocessable(format!(
                "document_ids[{index}]: document {document_id} not found"
            )));
        }
        document_ids.push(document_id.clone());
    }
    let title = match input.title.as_deref().map(str::trim) {
        Some(title) if !title.is_empty() => optional("title", title, MAX_NAME_CHARS)?,
        _ => format!("{} v. {}", facts.claimant_name, facts.defendant_name),
    };
    let matter = matters::insert_matter(
        state.database(),
        caller.firm_id(),
        &title,
        &facts,
        &document_ids,
        &caller.user.id,
    )
    .await?;
    tracing::info!(matter_id = %matter.id, documents = document_ids.len(), "matter created");
    Ok(matter)
}

pub async fn get_matter(
    state: &AppState,
    caller: &CurrentUser,
    matter_id: &str,
) -> Result<MatterRecord, AppError> {
    matters::get_matter(state.database(), caller.firm_id(), matter_id)
        .await?
        .ok_or_else(|| AppError::not_found("matter", matter_id))
}

/// Drafts a new letter for a matter from its facts and documents.
pub async fn draft_letter(
    state: &AppState,
    caller: &CurrentUser,
    matter_id: &str,
) -> Result<(LetterRecord, RevisionRecord), AppError> {
    let matter = get_matter(state, caller, matter_id).await?;
    let documents = draft_sources(state, caller, matter_id).await?;
    let today = Utc::now().date_naive();
    let mut outcome = state
        .engine()
        .draft(&matter.facts, &documents, today)
        .await?;
    let firm = current_firm(state, caller).await?;
    outcome.draft.signature = vec![
        caller.user.name.clone(),
        firm.name,
        format!("Counsel for {}", matter.facts.claimant_name),
    ];
    let usage = outcome.usage.as_ref();
    let letter = letters::insert_letter(
        state.database(),
        caller.firm_id(),
        matter_id,
        NewRevision {
            draft: &outcome.draft,
            instruction: None,
            engine: outcome.engine,
            input_tokens: usage.map(|usage| usage.input_tokens as i64),
            output_tokens: usage.map(|usage| usage.output_tokens as i64),
            created_by: &caller.user.id,
        },
    )
    .await?;
    state.metrics().letter_generated(outcome.engine);
    if let Some(usage) = usage {
        state
            .metrics()
            .ai_tokens_used(usage.input_tokens, usage.output_tokens);
        crate::request_usage::record_ai_tokens(usage.input_tokens, usage.output_tokens);
    }
    tracing::info!(letter_id = %letter.id, matter_id = %matter_id, engine = outcome.engine, "letter drafted");
    let revision = letters::get_revision(state.database(), caller.firm_id(), &letter.id, 1)
        .await?
        .ok_or_else(|| AppError::Internal("the first revision vanished".into()))?;
    Ok((letter, revision))
}

/// The matter's documents, refused when their text passes the draft source limit. The
/// database counts the characters first (a character is at least a byte), so oversized text,
/// such as a document stored before extraction had limits, is never loaded.
async fn draft_sources(
    state: &AppState,
    caller: &CurrentUser,
    matter_id: &str,
) -> Result<Vec<crate::model::SourceDocument>, AppError> {
    let limit = state.settings().max_draft_source_bytes;
    let too_much = || {
        AppError::LimitExceeded(LimitExceeded::new(
            Limit::DraftSourceBytes,
            limit,
            "the matter's documents hold more text than",
            "attach fewer or shorter documents to the matter (split long ones) and draft again",
        ))
    };
    let chars =
        documents::matter_source_text_chars(state.database(), caller.firm_id(), matter_id).await?;
    if u64::try_from(chars).unwrap_or(u64::MAX) > limit {
        return Err(too_much());
    }
    let sources =
        documents::matter_source_documents(state.database(), caller.firm_id(), matter_id).await?;
    let bytes: u64 = sources.iter().map(|source| source.text.len() as u64).sum();
    if bytes > limit {
        return Err(too_much());
    }
    Ok(sources)
}

pub async fn get_letter(
    state: &AppState,
    caller: &CurrentUser,
    letter_id: &str,
) -> Result<LetterRecord, AppError> {
    letters::get_letter(state.database(), caller.firm_id(), letter_id)
        .await?
        .ok_or_else(|| AppError::not_found("letter", letter_id))
}

/// One revision of a letter; the current one when `revision` is `None`.
pub async fn get_revision(
    state: &AppState,
    caller: &CurrentUser,
    letter_id: &str,
    revision: Option<i64>,
) -> Result<(LetterRecord, RevisionRecord), AppError> {
    let letter = get_letter(state, caller, letter_id).await?;
    let number = revision.unwrap_or(letter.current_revision);
    let revision = letters::get_revision(state.database(), caller.firm_id(), letter_id, number)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!("letter {letter_id} has no revision {number}"))
        })?;
    Ok((letter, revision))
}

/// Refines the current revision with an instruction, adding a new revision.
pub async fn refine_letter(
    state: &AppState,
    caller: &CurrentUser,
    letter_id: &str,
    instruction: &str,
) -> Result<(LetterRecord, RevisionRecord), AppError> {
    let instruction = required("instruction", instruction, 4000)?;
    let (letter, current) = get_revision(state, caller, letter_id, None).await?;
    let today = Utc::now().date_naive();
    let outcome = state
        .engine()
        .refine(&current.draft, &instruction, today)
        .await?;
    let usage = outcome.usage.as_ref();
    let number = letters::append_revision(
        state.database(),
        caller.firm_id(),
        letter_id,
        letter.current_revision,
        NewRevision {
            draft: &outcome.draft,
            instruction: Some(&instruction),
            engine: outcome.engine,
            input_tokens: usage.map(|usage| usage.input_tokens as i64),
            output_tokens: usage.map(|usage| usage.output_tokens as i64),
            created_by: &caller.user.id,
        },
    )
    .await?;
    state.metrics().letter_refined(outcome.engine);
    if let Some(usage) = usage {
        state
            .metrics()
            .ai_tokens_used(usage.input_tokens, usage.output_tokens);
        crate::request_usage::record_ai_tokens(usage.input_tokens, usage.output_tokens);
    }
    tracing::info!(letter_id = %letter_id, revision = number, "letter refined");
    get_revision(state, caller, letter_id, Some(number)).await
}

/// Renders a letter revision on the firm's letterhead.
pub async fn export_letter(
    state: &AppState,
    caller: &CurrentUser,
    letter_id: &str,
    revision: Option<i64>,
    format: ExportFormat,
) -> Result<ExportedFile, AppError> {
    let (letter, revision) = get_revision(state, caller, letter_id, revision).await?;
    let limit = state.settings().max_export_letter_bytes;
    if export::letter_text_bytes(&revision.draft) > limit {
        return Err(AppError::LimitExceeded(LimitExceeded::new(
            Limit::ExportLetterBytes,
            limit,
            "this revision of the letter holds more text than",
            "shorten the letter and export again",
        )));
    }
    let firm = current_firm(state, caller).await?;
    let logo = export_logo(state, caller).await?;
    let letterhead = Letterhead {
        firm_name: firm.name.clone(),
        address_lines: firm
            .address
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(String::from)
            .collect(),
        logo,
    };
    let draft = revision.draft;
    let bytes = tokio::task::spawn_blocking(move || match format {
        ExportFormat::Docx => export::render_docx(&draft, &letterhead),
        ExportFormat::Pdf => export::render_pdf(&draft, &letterhead),
    })
    .await
    .map_err(|error| AppError::Internal(format!("export task failed: {error}")))??;
    state.metrics().letter_exported(format.extension());
    Ok(ExportedFile {
        bytes,
        content_type: format.content_type(),
        filename: format!(
            "demand-letter-{}-r{}.{}",
            &letter.id[..8.min(letter.id.len())],
            revision.revision,
            format.extension()
        ),
    })
}

/// The firm's logo ready for an export. A stored logo is checked from its header at every
/// export: one over the dimension limit (stored before uploads were checked) is refused, and a
/// PNG Steno did not normalise is normalised in the extractor child for this export.
async fn export_logo(
    state: &AppState,
    caller: &CurrentUser,
) -> Result<Option<LogoImage>, AppError> {
    let Some(logo) = firms::get_logo(state.database(), caller.firm_id())
        .await?
        .and_then(|(bytes, _)| {
            ImageFormat::detect(&bytes).map(|format| LogoImage { bytes, format })
        })
    else {
        return Ok(None);
    };
    let reupload = "an admin must upload the logo again on the firm page";
    let decision =
        logo::stored_logo_use(&logo, state.settings().max_logo_dimension).map_err(|error| {
            match error {
                LogoError::Limit(hit) => AppError::LimitExceeded(LimitExceeded {
                    what: format!("the firm's stored logo: {}", hit.what),
                    advice: reupload.to_string(),
                    ..hit
                }),
                LogoError::Image(error) => error.into(),
            }
        })?;
    match decision {
        StoredLogo::Ready => Ok(Some(logo)),
        StoredLogo::NeedsNormalising => {
            let normalised = state
                .extractor()
                .normalise_logo(Bytes::from(logo.bytes))
                .await;
            record_extraction(state, &normalised);
            let bytes = normalised.map_err(|error| match AppError::from(error) {
                AppError::Unprocessable(message) => AppError::Unprocessable(format!(
                    "the firm's logo cannot be used: {message}; {reupload}"
                )),
                other => other,
            })?;
            Ok(Some(LogoImage {
                bytes,
                format: ImageFormat::Png,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_lose_their_directories() {
        assert_eq!(
            clean_filename("C:\\Users\\x\\bill.pdf").unwrap(),
            "bill.pdf"
        );
        assert_eq!(clean_filename("../../etc/passwd").unwrap(), "passwd");
        assert!(clean_filename("dir/").is_err());
        assert!(clean_filename("..").is_err());
    }

    #[test]
    fn export_formats_parse() {
        assert_eq!(ExportFormat::parse("PDF").unwrap(), ExportFormat::Pdf);
        assert!(ExportFormat::parse("rtf").is_err());
    }
}
