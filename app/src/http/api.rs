//! The JSON API under `/v1`: accounts (login, logout, password change), documents, matters,
//! letters, refinement and export.
//! Every handler authenticates with a bearer token and works only inside the caller's firm; a
//! record of another firm is answered exactly like a record that does not exist (404).

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::Client;
use super::extractors::{ApiJson, ApiUser};
use super::upload::read_upload;
use crate::accounts::{self, RegisterFirm};
use crate::db::{documents, firms, letters, matters};
use crate::error::AppError;
use crate::service::{self, ExportFormat, MatterInput};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/firms", post(register_firm))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/password", post(change_password))
        .route("/v1/me", get(me))
        .route("/v1/firm", get(get_firm).put(update_firm))
        .route("/v1/firm/logo", put(put_logo))
        .route("/v1/users", get(list_users))
        .route("/v1/invitations", post(invite).get(list_invitations))
        .route("/v1/invitations/accept", post(accept_invitation))
        .route("/v1/documents", post(upload_document).get(list_documents))
        .route(
            "/v1/documents/{id}",
            get(get_document).delete(delete_document),
        )
        .route("/v1/documents/{id}/content", get(document_content))
        .route("/v1/matters", post(create_matter).get(list_matters))
        .route("/v1/matters/{id}", get(get_matter))
        .route("/v1/matters/{id}/letters", post(draft_letter))
        .route("/v1/letters", get(list_letters))
        .route("/v1/letters/{id}", get(get_letter))
        .route("/v1/letters/{id}/revisions", get(list_revisions))
        .route("/v1/letters/{id}/revisions/{revision}", get(get_revision))
        .route("/v1/letters/{id}/refine", post(refine_letter))
        .route("/v1/letters/{id}/export", get(export_letter))
}

type ApiResult = Result<Response, AppError>;

fn created(body: Value) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

fn ok(body: Value) -> Response {
    Json(body).into_response()
}

async fn register_firm(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(input): ApiJson<RegisterFirm>,
) -> ApiResult {
    let session = accounts::register_firm(&state, &client, input).await?;
    Ok(created(json!(session)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginInput {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(input): ApiJson<LoginInput>,
) -> ApiResult {
    let session = accounts::login(&state, &client, &input.email, &input.password).await?;
    Ok(ok(json!(session)))
}

/// Revokes the presented token: it is refused from now on by every Steno process.
async fn logout(State(state): State<AppState>, ApiUser(caller): ApiUser) -> ApiResult {
    accounts::logout(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChangeInput {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password; every token the caller held is revoked and a new session is
/// returned.
async fn change_password(
    State(state): State<AppState>,
    Client(client): Client,
    ApiUser(caller): ApiUser,
    ApiJson(input): ApiJson<PasswordChangeInput>,
) -> ApiResult {
    let session = accounts::change_password(
        &state,
        &client,
        &caller,
        &input.current_password,
        &input.new_password,
    )
    .await?;
    Ok(ok(json!(session)))
}

async fn me(State(state): State<AppState>, ApiUser(caller): ApiUser) -> ApiResult {
    let firm = service::current_firm(&state, &caller).await?;
    Ok(ok(json!({ "user": caller.user, "firm": firm })))
}

async fn get_firm(State(state): State<AppState>, ApiUser(caller): ApiUser) -> ApiResult {
    let firm = service::current_firm(&state, &caller).await?;
    Ok(ok(json!({ "firm": firm })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirmInput {
    name: String,
    #[serde(default)]
    address: String,
}

async fn update_firm(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    ApiJson(input): ApiJson<FirmInput>,
) -> ApiResult {
    let firm = service::update_firm(&state, &caller, &input.name, &input.address).await?;
    Ok(ok(json!({ "firm": firm })))
}

async fn put_logo(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    body: Bytes,
) -> ApiResult {
    let firm = service::set_logo(&state, &caller, &body).await?;
    Ok(ok(json!({ "firm": firm })))
}

async fn list_users(State(state): State<AppState>, ApiUser(caller): ApiUser) -> ApiResult {
    let users = firms::list_users(state.database(), caller.firm_id()).await?;
    Ok(ok(json!({ "users": users })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteInput {
    email: String,
    #[serde(default = "member_role")]
    role: String,
}

fn member_role() -> String {
    "member".into()
}

async fn invite(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    ApiJson(input): ApiJson<InviteInput>,
) -> ApiResult {
    let (invitation, token) =
        accounts::invite_user(&state, &caller, &input.email, &input.role).await?;
    Ok(created(json!({
        "invitation": invitation,
        "token": token,
        "accept_url": format!("/invite/accept?token={token}"),
    })))
}

async fn list_invitations(State(state): State<AppState>, ApiUser(caller): ApiUser) -> ApiResult {
    if caller.user.role != firms::Role::Admin {
        return Err(AppError::Forbidden(
            "only a firm admin may list invitations".into(),
        ));
    }
    let invitations = firms::list_invitations(state.database(), caller.firm_id()).await?;
    Ok(ok(json!({ "invitations": invitations })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptInput {
    token: String,
    name: String,
    password: String,
}

async fn accept_invitation(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(input): ApiJson<AcceptInput>,
) -> ApiResult {
    let session =
        accounts::accept_invitation(&state, &client, &input.token, &input.name, &input.password)
            .await?;
    Ok(created(json!(session)))
}

fn multipart_or_error(
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Multipart, AppError> {
    multipart.map_err(|rejection| {
        AppError::UnsupportedMediaType(format!(
            "upload documents as multipart/form-data with a part named \"file\": {}",
            rejection.body_text()
        ))
    })
}

async fn upload_document(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let multipart = multipart_or_error(multipart)?;
    let limit = state.settings().max_upload_bytes;
    let file = read_upload(multipart, "file", limit)
        .await?
        .require_file("file")?;
    let document = service::upload_document(
        &state,
        &caller,
        &file.filename,
        file.content_type.as_deref(),
        file.bytes,
    )
    .await?;
    Ok(created(json!({ "document": document })))
}

async fn list_documents(State(state): State<AppState>, ApiUser(caller): ApiUser) -> ApiResult {
    let documents = documents::list_documents(state.database(), caller.firm_id()).await?;
    Ok(ok(json!({ "documents": documents })))
}

async fn get_document(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(document_id): Path<String>,
) -> ApiResult {
    let document = service::get_document(&state, &caller, &document_id).await?;
    let text = documents::get_document_text(state.database(), caller.firm_id(), &document_id)
        .await?
        .unwrap_or_default();
    Ok(ok(json!({ "document": document, "text": text })))
}

async fn document_content(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(document_id): Path<String>,
) -> ApiResult {
    let (record, bytes) = service::document_content(&state, &caller, &document_id).await?;
    Ok(file_response(
        bytes.to_vec(),
        &record.content_type,
        &record.filename,
    ))
}

async fn delete_document(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(document_id): Path<String>,
) -> ApiResult {
    service::delete_document(&state, &caller, &document_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn create_matter(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    ApiJson(input): ApiJson<MatterInput>,
) -> ApiResult {
    let matter = service::create_matter(&state, &caller, input).await?;
    Ok(created(json!({ "matter": matter })))
}

async fn list_matters(State(state): State<AppState>, ApiUser(caller): ApiUser) -> ApiResult {
    let matters = matters::list_matters(state.database(), caller.firm_id()).await?;
    Ok(ok(json!({ "matters": matters })))
}

async fn get_matter(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(matter_id): Path<String>,
) -> ApiResult {
    let matter = service::get_matter(&state, &caller, &matter_id).await?;
    let letters =
        letters::list_letters(state.database(), caller.firm_id(), Some(&matter_id)).await?;
    Ok(ok(json!({ "matter": matter, "letters": letters })))
}

async fn draft_letter(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(matter_id): Path<String>,
) -> ApiResult {
    let (letter, revision) = service::draft_letter(&state, &caller, &matter_id).await?;
    Ok(created(json!({ "letter": letter, "revision": revision })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LetterFilter {
    matter_id: Option<String>,
}

async fn list_letters(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    query: Result<Query<LetterFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(filter) = query.map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
    let letters = letters::list_letters(
        state.database(),
        caller.firm_id(),
        filter.matter_id.as_deref(),
    )
    .await?;
    Ok(ok(json!({ "letters": letters })))
}

/// A revision without its full draft, for listings.
fn revision_summary(revision: &letters::RevisionRecord) -> Value {
    json!({
        "revision": revision.revision,
        "instruction": revision.instruction,
        "engine": revision.engine,
        "created_by": revision.created_by,
        "created_at": revision.created_at,
        "total_demand_cents": revision.draft.total_demand_cents,
    })
}

async fn get_letter(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(letter_id): Path<String>,
) -> ApiResult {
    let (letter, current) = service::get_revision(&state, &caller, &letter_id, None).await?;
    let revisions = letters::list_revisions(state.database(), caller.firm_id(), &letter_id).await?;
    let summaries: Vec<Value> = revisions.iter().map(revision_summary).collect();
    Ok(ok(json!({
        "letter": letter,
        "revision": current,
        "text": current.draft.plain_text(),
        "revisions": summaries,
    })))
}

async fn list_revisions(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(letter_id): Path<String>,
) -> ApiResult {
    service::get_letter(&state, &caller, &letter_id).await?;
    let revisions = letters::list_revisions(state.database(), caller.firm_id(), &letter_id).await?;
    let summaries: Vec<Value> = revisions.iter().map(revision_summary).collect();
    Ok(ok(json!({ "revisions": summaries })))
}

fn parse_revision(text: &str) -> Result<i64, AppError> {
    text.parse::<i64>()
        .ok()
        .filter(|number| *number >= 1)
        .ok_or_else(|| {
            AppError::BadRequest(format!("revision {text:?} is not a positive whole number"))
        })
}

async fn get_revision(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path((letter_id, revision)): Path<(String, String)>,
) -> ApiResult {
    let number = parse_revision(&revision)?;
    let (letter, revision) =
        service::get_revision(&state, &caller, &letter_id, Some(number)).await?;
    Ok(ok(
        json!({ "letter": letter, "revision": revision, "text": revision.draft.plain_text() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefineInput {
    instruction: String,
}

async fn refine_letter(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(letter_id): Path<String>,
    ApiJson(input): ApiJson<RefineInput>,
) -> ApiResult {
    let (letter, revision) =
        service::refine_letter(&state, &caller, &letter_id, &input.instruction).await?;
    Ok(created(json!({ "letter": letter, "revision": revision })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
    revision: Option<String>,
}

async fn export_letter(
    State(state): State<AppState>,
    ApiUser(caller): ApiUser,
    Path(letter_id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(query) = query.map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
    let format = match query.format.as_deref() {
        Some(format) => ExportFormat::parse(format)?,
        None => format_from_accept(&headers)?,
    };
    let revision = query.revision.as_deref().map(parse_revision).transpose()?;
    let file = service::export_letter(&state, &caller, &letter_id, revision, format).await?;
    Ok(file_response(file.bytes, file.content_type, &file.filename))
}

fn format_from_accept(headers: &HeaderMap) -> Result<ExportFormat, AppError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if accept.contains("application/pdf") {
        Ok(ExportFormat::Pdf)
    } else if accept.contains("wordprocessingml") {
        Ok(ExportFormat::Docx)
    } else {
        Err(AppError::BadRequest(
            "choose the export format with ?format=docx or ?format=pdf".into(),
        ))
    }
}

/// A file download with a safe `Content-Disposition` file name.
pub fn file_response(bytes: Vec<u8>, content_type: &str, filename: &str) -> Response {
    let safe_name: String = filename
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ".-_ ".contains(ch) {
                ch
            } else {
                '_'
            }
        })
        .collect();
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe_name}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}
