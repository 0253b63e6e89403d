//! The server-rendered web UI for the whole flow: register or log in, upload documents, create a
//! matter, generate a letter, refine it, download it as DOCX or PDF, change the password and log
//! out. It calls the same operations as the JSON API; the session is an HttpOnly cookie holding
//! the access token, and every form carries a CSRF token (see `csrf`).

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use serde::Deserialize;

use super::api::file_response;
use super::client::Client;
use super::cookies::{session_cookie_name, set_cookie};
use super::csrf::{self, CsrfToken};
use super::extractors::{session_token, UiUser};
use super::upload::read_upload;
use crate::accounts::{self, RegisterFirm, Session};
use crate::client_identity::ClientContext;
use crate::db::firms::Role;
use crate::db::{documents, firms, letters, matters};
use crate::error::AppError;
use crate::model::{
    format_cents, format_long_date, specials_line, ManualSpecial, SpecialsCategory,
};
use crate::service::{self, CurrentUser, ExportFormat, MatterInput};
use crate::state::AppState;

/// The web UI's routes, every one behind the CSRF protection.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/app") }))
        .route("/login", get(login_page).post(login_submit))
        .route("/register", get(register_page).post(register_submit))
        .route("/logout", post(logout))
        .route("/invite/accept", get(accept_page).post(accept_submit))
        .route("/app", get(dashboard))
        .route("/app/documents", post(upload_submit))
        .route("/app/documents/{id}", get(document_page))
        .route("/app/matters/new", get(new_matter_page))
        .route("/app/matters", post(new_matter_submit))
        .route("/app/matters/{id}", get(matter_page))
        .route("/app/matters/{id}/letters", post(generate_submit))
        .route("/app/letters/{id}", get(letter_page))
        .route("/app/letters/{id}/refine", post(refine_submit))
        .route("/app/letters/{id}/export/{format}", get(export_download))
        .route("/app/firm", get(firm_page).post(firm_submit))
        .route("/app/firm/logo", post(logo_submit))
        .route("/app/invitations", post(invite_submit))
        .route("/app/account", get(account_page))
        .route("/app/account/password", post(password_submit))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            csrf::protect_forms,
        ))
}

/// An error shown as an HTML page with the right status code.
struct UiError(AppError);

impl<E: Into<AppError>> From<E> for UiError {
    fn from(error: E) -> UiError {
        UiError(error.into())
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self.0, "page failed");
        }
        let mut response = error_page(status, &self.0.public_message());
        super::add_retry_after(&mut response, &self.0);
        response
    }
}

/// An error page with `message` (escaped here) and the given status.
pub(super) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Something went wrong</h1><p class=\"error\">{}</p><p><a href=\"/login\">Log in</a> · <a href=\"/app\">Dashboard</a></p>",
        escape(message)
    );
    (status, Html(layout("Error", None, None, &body))).into_response()
}

type UiResult = Result<Response, UiError>;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2430}\
header{background:#1f3a5f;color:#fff;padding:.8em 1.5em;display:flex;justify-content:space-between;align-items:center}\
header a,header button{color:#fff;background:none;border:none;font:inherit;cursor:pointer;text-decoration:underline}\
main{max-width:960px;margin:1.5em auto;padding:0 1em}\
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:1em 1.5em;margin-bottom:1.2em}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e5e7eb;padding:.4em;text-align:left;vertical-align:top}\
label{display:block;margin:.5em 0 .2em;font-weight:600}input[type=text],input[type=email],input[type=password],input[type=date],input[type=number],textarea{width:100%;padding:.4em;box-sizing:border-box}\
textarea{min-height:5em}button.primary{background:#1f3a5f;color:#fff;border:none;padding:.5em 1.2em;border-radius:4px;cursor:pointer;margin-top:.8em}\
.banner{background:#fff3cd;border-bottom:1px solid #e0c36c;padding:.6em 1.5em}.error{color:#a11}.muted{color:#667}\
.letter{background:#fff;padding:2em;border:1px solid #ccd;white-space:pre-wrap;font-family:Georgia,serif;line-height:1.45}";

/// Who is looking at a page: the user and the CSRF token their forms carry.
type Viewer<'a> = Option<(&'a CurrentUser, &'a CsrfToken)>;

fn layout(title: &str, viewer: Viewer<'_>, banner: Option<&str>, body: &str) -> String {
    let nav = match viewer {
        Some((user, csrf)) => format!(
            "<span>{} · <a href=\"/app\">Dashboard</a> · <a href=\"/app/firm\">Firm</a> · <a href=\"/app/account\">Account</a> · \
             <form method=\"post\" action=\"/logout\" style=\"display:inline\">{}<button>Log out</button></form></span>",
            escape(&user.user.name),
            csrf.field()
        ),
        None => "<span><a href=\"/login\">Log in</a> · <a href=\"/register\">Register a firm</a></span>".to_string(),
    };
    let banner = banner
        .map(|message| {
            format!(
                "<div class=\"banner\" role=\"status\"><strong>Maintenance:</strong> {}</div>",
                escape(message)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · Steno</title><style>{STYLE}</style></head><body>\
         <header><strong>Steno · demand letters</strong>{nav}</header>{banner}<main>{body}</main></body></html>",
        escape(title)
    )
}

fn page(state: &AppState, title: &str, viewer: Viewer<'_>, body: &str) -> Response {
    let banner = state.banner().current();
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(layout(title, viewer, banner.as_deref(), body)),
    )
        .into_response()
}

/// Logs the browser in by setting the session cookie, then goes to `to`.
fn with_session(session: &Session, state: &AppState, client: &ClientContext, to: &str) -> Response {
    let cookie = set_cookie(
        session_cookie_name(client.https),
        &session.access_token,
        Some(state.settings().token_ttl.as_secs()),
        client.https,
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to(to)).into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    expired: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Query(query): Query<LoginQuery>,
) -> Response {
    let notice = if query.expired.is_some() {
        "<p class=\"muted\">Your session ended; please log in again.</p>"
    } else {
        ""
    };
    let body = format!(
        "<section><h1>Log in</h1>{notice}<form method=\"post\" action=\"/login\">{}\
         <label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" required>\
         <label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" required>\
         <button class=\"primary\" type=\"submit\">Log in</button></form>\
         <p class=\"muted\">New firm? <a href=\"/register\">Register it</a>.</p></section>",
        csrf.field()
    );
    page(&state, "Log in", None, &body)
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
}

async fn login_submit(
    State(state): State<AppState>,
    Client(client): Client,
    axum::Form(form): axum::Form<LoginForm>,
) -> UiResult {
    let session = accounts::login(&state, &client, &form.email, &form.password).await?;
    Ok(with_session(&session, &state, &client, "/app"))
}

async fn register_page(State(state): State<AppState>, csrf: CsrfToken) -> Response {
    let body = format!("<section><h1>Register your firm</h1><form method=\"post\" action=\"/register\">{}\
        <label for=\"firm_name\">Firm name</label><input type=\"text\" id=\"firm_name\" name=\"firm_name\" required>\
        <label for=\"firm_address\">Firm address (one line per row, printed on the letterhead)</label><textarea id=\"firm_address\" name=\"firm_address\"></textarea>\
        <label for=\"admin_name\">Your name</label><input type=\"text\" id=\"admin_name\" name=\"admin_name\" required>\
        <label for=\"admin_email\">Your email</label><input type=\"email\" id=\"admin_email\" name=\"admin_email\" required>\
        <label for=\"admin_password\">Password: at least 10 characters, not a common password, a sequence, or built from your email or the firm's name (three or four unrelated words work well)</label><input type=\"password\" id=\"admin_password\" name=\"admin_password\" required minlength=\"10\">\
        <button class=\"primary\" type=\"submit\">Register</button></form></section>", csrf.field());
    page(&state, "Register", None, &body)
}

/// The registration form (it also carries `csrf_token`, which the API's input would refuse).
#[derive(Deserialize)]
struct RegisterForm {
    firm_name: String,
    #[serde(default)]
    firm_address: String,
    admin_name: String,
    admin_email: String,
    admin_password: String,
}

async fn register_submit(
    State(state): State<AppState>,
    Client(client): Client,
    axum::Form(form): axum::Form<RegisterForm>,
) -> UiResult {
    let input = RegisterFirm {
        firm_name: form.firm_name,
        firm_address: form.firm_address,
        admin_name: form.admin_name,
        admin_email: form.admin_email,
        admin_password: form.admin_password,
    };
    let session = accounts::register_firm(&state, &client, input).await?;
    Ok(with_session(&session, &state, &client, "/app"))
}

/// Revokes the session's token (when it is still valid) and clears the cookie.
async fn logout(
    State(state): State<AppState>,
    Client(client): Client,
    request: axum::extract::Request,
) -> UiResult {
    let (parts, _) = request.into_parts();
    if let Some(token) = session_token(&parts) {
        if let Ok(caller) = accounts::authenticate(&state, &token).await {
            accounts::logout(&state, &caller).await?;
        }
    }
    let cookie = set_cookie(session_cookie_name(client.https), "", Some(0), client.https);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

#[derive(Deserialize)]
struct AcceptQuery {
    token: Option<String>,
}

async fn accept_page(
    State(state): State<AppState>,
    csrf: CsrfToken,
    Query(query): Query<AcceptQuery>,
) -> Response {
    let token = escape(query.token.as_deref().unwrap_or_default());
    let body = format!(
        "<section><h1>Join your firm on Steno</h1><form method=\"post\" action=\"/invite/accept\">{}\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <label for=\"name\">Your name</label><input type=\"text\" id=\"name\" name=\"name\" required>\
         <label for=\"password\">Choose a password: at least 10 characters, not a common password, a sequence, or built from your email or the firm's name</label><input type=\"password\" id=\"password\" name=\"password\" required minlength=\"10\">\
         <button class=\"primary\" type=\"submit\">Join</button></form></section>",
        csrf.field()
    );
    page(&state, "Accept invitation", None, &body)
}

#[derive(Deserialize)]
struct AcceptForm {
    token: String,
    name: String,
    password: String,
}

async fn accept_submit(
    State(state): State<AppState>,
    Client(client): Client,
    axum::Form(form): axum::Form<AcceptForm>,
) -> UiResult {
    let session =
        accounts::accept_invitation(&state, &client, &form.token, &form.name, &form.password)
            .await?;
    Ok(with_session(&session, &state, &client, "/app"))
}

async fn dashboard(State(state): State<AppState>, UiUser(user, csrf): UiUser) -> UiResult {
    let documents = documents::list_documents(state.database(), user.firm_id()).await?;
    let matters = matters::list_matters(state.database(), user.firm_id()).await?;
    let mut body = String::from("<section><h1>Source documents</h1>");
    if documents.is_empty() {
        body.push_str("<p class=\"muted\">No documents yet. Upload medical records, bills, police reports or wage statements (PDF, DOCX or plain text).</p>");
    } else {
        body.push_str("<table><tr><th>File</th><th>Kind</th><th>Size</th><th>Uploaded</th></tr>");
        for document in &documents {
            body.push_str(&format!(
                "<tr><td><a href=\"/app/documents/{}\">{}</a></td><td>{}</td><td>{} bytes</td><td>{}</td></tr>",
                escape(&document.id),
                escape(&document.filename),
                escape(&document.kind),
                document.size_bytes,
                escape(&document.created_at)
            ));
        }
        body.push_str("</table>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/app/documents?{}\" enctype=\"multipart/form-data\">\
         <label for=\"file\">Upload a document (up to {} bytes)</label><input type=\"file\" id=\"file\" name=\"file\" required>\
         <button class=\"primary\" type=\"submit\">Upload</button></form></section>",
        csrf.query(),
        state.settings().max_upload_bytes
    ));
    body.push_str("<section><h1>Matters</h1>");
    if matters.is_empty() {
        body.push_str("<p class=\"muted\">No matters yet.</p>");
    } else {
        body.push_str("<table><tr><th>Matter</th><th>Date of loss</th><th>Documents</th></tr>");
        for matter in &matters {
            body.push_str(&format!(
                "<tr><td><a href=\"/app/matters/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                escape(&matter.id),
                escape(&matter.title),
                matter.facts.incident_date,
                matter.document_ids.len()
            ));
        }
        body.push_str("</table>");
    }
    body.push_str("<p><a href=\"/app/matters/new\">New matter</a></p></section>");
    Ok(page(&state, "Dashboard", Some((&user, &csrf)), &body))
}

async fn upload_submit(
    State(state): State<AppState>,
    UiUser(user, _csrf): UiUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> UiResult {
    let multipart = multipart.map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
    let file = read_upload(multipart, "file", state.settings().max_upload_bytes)
        .await?
        .require_file("file")?;
    let document = service::upload_document(
        &state,
        &user,
        &file.filename,
        file.content_type.as_deref(),
        file.bytes,
    )
    .await?;
    Ok(Redirect::to(&format!("/app/documents/{}", document.id)).into_response())
}

async fn document_page(
    State(state): State<AppState>,
    UiUser(user, csrf): UiUser,
    Path(id): Path<String>,
) -> UiResult {
    let document = service::get_document(&state, &user, &id).await?;
    let text = documents::get_document_text(state.database(), user.firm_id(), &id)
        .await?
        .unwrap_or_default();
    let body = format!(
        "<section><h1>{}</h1><p class=\"muted\">{} · {} bytes · uploaded {}</p>\
         <h2>Extracted text</h2><div class=\"letter\">{}</div></section>",
        escape(&document.filename),
        escape(&document.kind),
        document.size_bytes,
        escape(&document.created_at),
        escape(&text)
    );
    Ok(page(
        &state,
        &document.filename,
        Some((&user, &csrf)),
        &body,
    ))
}

async fn new_matter_page(State(state): State<AppState>, UiUser(user, csrf): UiUser) -> UiResult {
    let documents = documents::list_documents(state.database(), user.firm_id()).await?;
    let mut checkboxes = String::new();
    for document in &documents {
        checkboxes.push_str(&format!(
            "<div><input type=\"checkbox\" name=\"document_ids\" value=\"{}\" id=\"d-{}\" checked> <label style=\"display:inline\" for=\"d-{}\">{}</label></div>",
            escape(&document.id),
            escape(&document.id),
            escape(&document.id),
            escape(&document.filename)
        ));
    }
    if checkboxes.is_empty() {
        checkboxes.push_str(
            "<p class=\"muted\">No documents uploaded yet; specials can still be typed below.</p>",
        );
    }
    let text_input = |name: &str, label: &str, kind: &str, required: bool| {
        format!(
            "<label for=\"{name}\">{label}</label><input type=\"{kind}\" id=\"{name}\" name=\"{name}\"{}>",
            if required { " required" } else { "" }
        )
    };
    let area = |name: &str, label: &str| {
        format!("<label for=\"{name}\">{label}</label><textarea id=\"{name}\" name=\"{name}\" required></textarea>")
    };
    let body = format!(
        "<section><h1>New matter</h1><form method=\"post\" action=\"/app/matters\">{}{}{}{}{}{}{}{}{}{}{}\
         <label for=\"manual_specials\">Other specials, one per line: category | description | amount | date (category is medical, lost_wages or other; date optional, YYYY-MM-DD)</label>\
         <textarea id=\"manual_specials\" name=\"manual_specials\"></textarea>\
         {}{}<h2>Source documents</h2>{checkboxes}\
         <button class=\"primary\" type=\"submit\">Create matter</button></form></section>",
        csrf.field(),
        text_input("claimant_name", "Claimant (our client)", "text", true),
        text_input("defendant_name", "Defendant", "text", true),
        text_input("insurer_name", "Insurer (letter recipient)", "text", false),
        text_input("claim_number", "Claim number", "text", false),
        text_input("incident_date", "Date of incident", "date", true),
        text_input("incident_place", "Place of incident", "text", true),
        area("incident_description", "What happened"),
        area("injuries", "Injuries"),
        area("treatment", "Treatment"),
        text_input("title", "Matter title (optional)", "text", false),
        text_input("demand_amount", "Total demand in dollars (optional; computed when empty)", "text", false),
        text_input("response_days", "Days to respond (default 30)", "number", false),
    );
    Ok(page(&state, "New matter", Some((&user, &csrf)), &body))
}

/// Parses a dollar amount such as `1,234.50` or `$85000` into cents.
fn dollars_to_cents(field: &str, text: &str) -> Result<i64, AppError> {
    let cleaned: String = text
        .trim()
        .trim_start_matches('$')
        .chars()
        .filter(|ch| *ch != ',')
        .collect();
    let invalid = || {
        AppError::Unprocessable(format!(
            "{field}: {text:?} is not a dollar amount like 1,234.56"
        ))
    };
    let (whole, fraction) = match cleaned.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (cleaned.as_str(), ""),
    };
    if whole.is_empty()
        || fraction.len() > 2
        || !whole.chars().all(|ch| ch.is_ascii_digit())
        || !fraction.chars().all(|ch| ch.is_ascii_digit())
    {
        return Err(invalid());
    }
    let dollars: i64 = whole.parse().map_err(|_| invalid())?;
    let cents: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<2}").parse().map_err(|_| invalid())?
    };
    dollars
        .checked_mul(100)
        .and_then(|value| value.checked_add(cents))
        .ok_or_else(invalid)
}

/// Parses the "category | description | amount | date" lines of the matter form.
fn parse_manual_specials(text: &str) -> Result<Vec<ManualSpecial>, AppError> {
    let mut specials = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
    {
        let field = format!("other specials, line {}", index + 1);
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        if parts.len() < 3 || parts.len() > 4 {
            return Err(AppError::Unprocessable(format!(
                "{field}: expected `category | description | amount | date`, got {line:?}"
            )));
        }
        let category = match parts[0].to_ascii_lowercase().replace(' ', "_").as_str() {
            "medical" => SpecialsCategory::Medical,
            "lost_wages" | "wages" => SpecialsCategory::LostWages,
            "other" => SpecialsCategory::Other,
            other => {
                return Err(AppError::Unprocessable(format!(
                    "{field}: category {other:?} is not medical, lost_wages or other"
                )))
            }
        };
        let service_date = match parts.get(3).filter(|date| !date.is_empty()) {
            Some(date) => Some(NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| {
                AppError::Unprocessable(format!("{field}: date {date:?} is not YYYY-MM-DD"))
            })?),
            None => None,
        };
        specials.push(ManualSpecial {
            category,
            description: parts[1].to_string(),
            amount_cents: dollars_to_cents(&field, parts[2])?,
            service_date,
        });
    }
    Ok(specials)
}

/// Turns the matter form (with its repeated `document_ids`) into the API's matter input.
fn matter_input_from_form(body: &[u8]) -> Result<MatterInput, AppError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_string())
            .unwrap_or_default()
    };
    let optional = |name: &str| Some(value(name)).filter(|text| !text.is_empty());
    let incident_date =
        NaiveDate::parse_from_str(&value("incident_date"), "%Y-%m-%d").map_err(|_| {
            AppError::Unprocessable(format!(
                "incident_date {:?} is not a date (YYYY-MM-DD)",
                value("incident_date")
            ))
        })?;
    let demand_amount_cents = optional("demand_amount")
        .map(|text| dollars_to_cents("demand_amount", &text))
        .transpose()?;
    let response_days = optional("response_days")
        .map(|text| {
            text.parse::<u32>().map_err(|_| {
                AppError::Unprocessable(format!(
                    "response_days {text:?} is not a whole number of days"
                ))
            })
        })
        .transpose()?;
    Ok(MatterInput {
        title: optional("title"),
        claimant_name: value("claimant_name"),
        defendant_name: value("defendant_name"),
        insurer_name: optional("insurer_name"),
        claim_number: optional("claim_number"),
        incident_date,
        incident_place: value("incident_place"),
        incident_description: value("incident_description"),
        injuries: value("injuries"),
        treatment: value("treatment"),
        manual_specials: parse_manual_specials(&value("manual_specials"))?,
        demand_amount_cents,
        response_days,
        document_ids: pairs
            .iter()
            .filter(|(key, _)| key == "document_ids")
            .map(|(_, value)| value.clone())
            .collect(),
    })
}

async fn new_matter_submit(
    State(state): State<AppState>,
    UiUser(user, _csrf): UiUser,
    body: Bytes,
) -> UiResult {
    let input = matter_input_from_form(&body)?;
    let matter = service::create_matter(&state, &user, input).await?;
    Ok(Redirect::to(&format!("/app/matters/{}", matter.id)).into_response())
}

async fn matter_page(
    State(state): State<AppState>,
    UiUser(user, csrf): UiUser,
    Path(id): Path<String>,
) -> UiResult {
    let matter = service::get_matter(&state, &user, &id).await?;
    let letters = letters::list_letters(state.database(), user.firm_id(), Some(&id)).await?;
    let facts = &matter.facts;
    let mut body = format!(
        "<section><h1>{}</h1><table>\
         <tr><th>Claimant</th><td>{}</td></tr><tr><th>Defendant</th><td>{}</td></tr>\
         <tr><th>Insurer</th><td>{}</td></tr><tr><th>Claim number</th><td>{}</td></tr>\
         <tr><th>Date of incident</th><td>{}</td></tr><tr><th>Place</th><td>{}</td></tr>\
         <tr><th>What happened</th><td>{}</td></tr><tr><th>Injuries</th><td>{}</td></tr><tr><th>Treatment</th><td>{}</td></tr></table></section>",
        escape(&matter.title),
        escape(&facts.claimant_name),
        escape(&facts.defendant_name),
        escape(facts.insurer_name.as_deref().unwrap_or("—")),
        escape(facts.claim_number.as_deref().unwrap_or("—")),
        format_long_date(facts.incident_date),
        escape(&facts.incident_place),
        escape(&facts.incident_description),
        escape(&facts.injuries),
        escape(&facts.treatment),
    );
    body.push_str("<section><h2>Source documents</h2><ul>");
    for document_id in &matter.document_ids {
        if let Ok(document) = service::get_document(&state, &user, document_id).await {
            body.push_str(&format!(
                "<li><a href=\"/app/documents/{}\">{}</a></li>",
                escape(&document.id),
                escape(&document.filename)
            ));
        }
    }
    body.push_str("</ul></section><section><h2>Letters</h2>");
    if letters.is_empty() {
        body.push_str("<p class=\"muted\">No letter yet.</p>");
    } else {
        body.push_str("<ul>");
        for letter in &letters {
            body.push_str(&format!(
                "<li><a href=\"/app/letters/{}\">Letter of {}</a> (revision {})</li>",
                escape(&letter.id),
                escape(&letter.created_at),
                letter.current_revision
            ));
        }
        body.push_str("</ul>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/app/matters/{}/letters\">{}<button class=\"primary\" type=\"submit\">Generate demand letter</button></form></section>",
        escape(&matter.id),
        csrf.field()
    ));
    Ok(page(&state, &matter.title, Some((&user, &csrf)), &body))
}

async fn generate_submit(
    State(state): State<AppState>,
    UiUser(user, _csrf): UiUser,
    Path(id): Path<String>,
) -> UiResult {
    let (letter, _) = service::draft_letter(&state, &user, &id).await?;
    Ok(Redirect::to(&format!("/app/letters/{}", letter.id)).into_response())
}

#[derive(Deserialize)]
struct RevisionQuery {
    revision: Option<i64>,
}

async fn letter_page(
    State(state): State<AppState>,
    UiUser(user, csrf): UiUser,
    Path(id): Path<String>,
    Query(query): Query<RevisionQuery>,
) -> UiResult {
    let (letter, revision) = service::get_revision(&state, &user, &id, query.revision).await?;
    let revisions = letters::list_revisions(state.database(), user.firm_id(), &id).await?;
    let draft = &revision.draft;
    let mut specials = String::new();
    for item in &draft.specials {
        specials.push_str(&format!("<li>{}</li>", escape(&specials_line(item))));
    }
    let mut history = String::from("<ol>");
    for entry in &revisions {
        history.push_str(&format!(
            "<li><a href=\"/app/letters/{}?revision={}\">Revision {}</a> · {} · {}{}</li>",
            escape(&letter.id),
            entry.revision,
            entry.revision,
            escape(&entry.engine),
            escape(&entry.created_at),
            entry
                .instruction
                .as_deref()
                .map(|instruction| format!(" · “{}”", escape(instruction)))
                .unwrap_or_default()
        ));
    }
    history.push_str("</ol>");
    let body = format!(
        "<section><h1>Demand letter · revision {} of {}</h1>\
         <p>Total demand {} · specials {} · respond by {}</p>\
         <p><a href=\"/app/letters/{id}/export/docx?revision={rev}\">Download Word (.docx)</a> · \
         <a href=\"/app/letters/{id}/export/pdf?revision={rev}\">Download PDF</a> · \
         <a href=\"/app/matters/{}\">Back to the matter</a></p>\
         <div class=\"letter\">{}</div></section>\
         <section><h2>Itemised specials</h2><ul>{specials}</ul></section>\
         <section><h2>Refine</h2><form method=\"post\" action=\"/app/letters/{id}/refine\">{csrf_field}\
         <label for=\"instruction\">Instruction (for example: \"give them 45 days\", \"increase the demand to $85,000\", \"make it firmer\")</label>\
         <textarea id=\"instruction\" name=\"instruction\" required></textarea>\
         <button class=\"primary\" type=\"submit\">Refine</button></form></section>\
         <section><h2>Revisions</h2>{history}</section>",
        revision.revision,
        letter.current_revision,
        format_cents(draft.total_demand_cents),
        format_cents(draft.total_specials_cents),
        format_long_date(draft.response_deadline),
        escape(&letter.matter_id),
        escape(&draft.plain_text()),
        id = escape(&letter.id),
        rev = revision.revision,
        csrf_field = csrf.field(),
    );
    Ok(page(&state, "Demand letter", Some((&user, &csrf)), &body))
}

#[derive(Deserialize)]
struct RefineForm {
    instruction: String,
}

async fn refine_submit(
    State(state): State<AppState>,
    UiUser(user, _csrf): UiUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<RefineForm>,
) -> UiResult {
    service::refine_letter(&state, &user, &id, &form.instruction).await?;
    Ok(Redirect::to(&format!("/app/letters/{id}")).into_response())
}

async fn export_download(
    State(state): State<AppState>,
    UiUser(user, _csrf): UiUser,
    Path((id, format)): Path<(String, String)>,
    Query(query): Query<RevisionQuery>,
) -> UiResult {
    let format = ExportFormat::parse(&format)?;
    let file = service::export_letter(&state, &user, &id, query.revision, format).await?;
    Ok(file_response(file.bytes, file.content_type, &file.filename))
}

async fn firm_page(State(state): State<AppState>, UiUser(user, csrf): UiUser) -> UiResult {
    let firm = service::current_firm(&state, &user).await?;
    let users = firms::list_users(state.database(), user.firm_id()).await?;
    let mut people = String::from("<ul>");
    for member in &users {
        people.push_str(&format!(
            "<li>{} &lt;{}&gt; · {}</li>",
            escape(&member.name),
            escape(&member.email),
            member.role.as_str()
        ));
    }
    people.push_str("</ul>");
    let admin_forms = if user.user.role == Role::Admin {
        format!(
            "<section><h2>Letterhead</h2><form method=\"post\" action=\"/app/firm\">{csrf_field}\
             <label for=\"name\">Firm name</label><input type=\"text\" id=\"name\" name=\"name\" value=\"{}\" required>\
             <label for=\"address\">Address (one line per row)</label><textarea id=\"address\" name=\"address\">{}</textarea>\
             <button class=\"primary\" type=\"submit\">Save</button></form>\
             <form method=\"post\" action=\"/app/firm/logo?{csrf_query}\" enctype=\"multipart/form-data\">\
             <label for=\"logo\">Logo (PNG or JPEG, up to 2 MB){}</label><input type=\"file\" id=\"logo\" name=\"logo\" accept=\"image/png,image/jpeg\" required>\
             <button class=\"primary\" type=\"submit\">Upload logo</button></form></section>\
             <section><h2>Invite a colleague</h2><form method=\"post\" action=\"/app/invitations\">{csrf_field}\
             <label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" required>\
             <label for=\"role\">Role</label><select id=\"role\" name=\"role\"><option value=\"member\">member</option><option value=\"admin\">admin</option></select>\
             <button class=\"primary\" type=\"submit\">Create invitation</button></form></section>",
            escape(&firm.name),
            escape(&firm.address),
            if firm.has_logo { " — a logo is set" } else { "" },
            csrf_field = csrf.field(),
            csrf_query = csrf.query(),
        )
    } else {
        String::new()
    };
    let body = format!(
        "<section><h1>{}</h1><p>{}</p><h2>People</h2>{people}</section>{admin_forms}",
        escape(&firm.name),
        escape(&firm.address).replace('\n', "<br>")
    );
    Ok(page(&state, "Firm", Some((&user, &csrf)), &body))
}

#[derive(Deserialize)]
struct FirmForm {
    name: String,
    #[serde(default)]
    address: String,
}

async fn firm_submit(
    State(state): State<AppState>,
    UiUser(user, _csrf): UiUser,
    axum::Form(form): axum::Form<FirmForm>,
) -> UiResult {
    service::update_firm(&state, &user, &form.name, &form.address).await?;
    Ok(Redirect::to("/app/firm").into_response())
}

async fn logo_submit(
    State(state): State<AppState>,
    UiUser(user, _csrf): UiUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> UiResult {
    let multipart = multipart.map_err(|rejection| AppError::BadRequest(rejection.body_text()))?;
    let file = read_upload(multipart, "logo", 2 * 1024 * 1024)
        .await?
        .require_file("logo")?;
    service::set_logo(&state, &user, &file.bytes).await?;
    Ok(Redirect::to("/app/firm").into_response())
}

#[derive(Deserialize)]
struct InviteForm {
    email: String,
    role: String,
}

async fn invite_submit(
    State(state): State<AppState>,
    UiUser(user, csrf): UiUser,
    axum::Form(form): axum::Form<InviteForm>,
) -> UiResult {
    let (invitation, token) = accounts::invite_user(&state, &user, &form.email, &form.role).await?;
    let body = format!(
        "<section><h1>Invitation created</h1><p>Send this link to {} (valid until {}):</p>\
         <p><code>/invite/accept?token={}</code></p><p><a href=\"/app/firm\">Back</a></p></section>",
        escape(&invitation.email),
        escape(&invitation.expires_at),
        escape(&token)
    );
    Ok(page(&state, "Invitation", Some((&user, &csrf)), &body))
}

#[derive(Deserialize)]
struct AccountQuery {
    changed: Option<String>,
}

async fn account_page(
    State(state): State<AppState>,
    UiUser(user, csrf): UiUser,
    Query(query): Query<AccountQuery>,
) -> UiResult {
    let notice = if query.changed.is_some() {
        "<p class=\"muted\">Your password was changed; every other session was logged out.</p>"
    } else {
        ""
    };
    let body = format!(
        "<section><h1>Your account</h1><p>{} &lt;{}&gt; · {}</p>{notice}</section>\
         <section><h2>Change your password</h2><form method=\"post\" action=\"/app/account/password\">{}\
         <label for=\"current_password\">Current password</label><input type=\"password\" id=\"current_password\" name=\"current_password\" required>\
         <label for=\"new_password\">New password: at least 10 characters, not a common password, a sequence, or built from your email or the firm's name</label>\
         <input type=\"password\" id=\"new_password\" name=\"new_password\" required minlength=\"10\">\
         <button class=\"primary\" type=\"submit\">Change password</button></form>\
         <p class=\"muted\">Changing it logs out every session of yours, on every device.</p></section>",
        escape(&user.user.name),
        escape(&user.user.email),
        user.user.role.as_str(),
        csrf.field()
    );
    Ok(page(&state, "Account", Some((&user, &csrf)), &body))
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// Changes the password; the old session cookie is replaced with the new session's.
async fn password_submit(
    State(state): State<AppState>,
    Client(client): Client,
    UiUser(user, _csrf): UiUser,
    axum::Form(form): axum::Form<PasswordForm>,
) -> UiResult {
    let session = accounts::change_password(
        &state,
        &client,
        &user,
        &form.current_password,
        &form.new_password,
    )
    .await?;
    Ok(with_session(
        &session,
        &state,
        &client,
        "/app/account?changed=1",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<b a=\"1\">&'</b>"),
            "&lt;b a=&quot;1&quot;&gt;&amp;&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn dollar_amounts_parse_to_cents() {
        assert_eq!(dollars_to_cents("f", "$1,234.5").unwrap(), 123450);
        assert_eq!(dollars_to_cents("f", "85000").unwrap(), 8_500_000);
        for bad in ["", "12.345", "abc", "-5", "1.2.3"] {
            assert!(dollars_to_cents("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn manual_specials_lines_parse_and_errors_name_the_line() {
        let specials = parse_manual_specials(
            "medical | ER visit | 1,200.00 | 2026-01-05\n\nlost wages | 3 days | 720",
        )
        .unwrap();
        assert_eq!(specials.len(), 2);
        assert_eq!(specials[0].amount_cents, 120_000);
        assert_eq!(specials[1].category, SpecialsCategory::LostWages);
        let error = parse_manual_specials("medical | x | 10\nfood | y | 5").unwrap_err();
        assert!(error.to_string().contains("line 2"));
    }

    #[test]
    fn matter_form_collects_repeated_document_ids() {
        let body = b"claimant_name=Ann&defendant_name=Bob&incident_date=2026-01-02&incident_place=Main+St&incident_description=x&injuries=y&treatment=z&document_ids=a&document_ids=b&demand_amount=&response_days=45";
        let input = matter_input_from_form(body).unwrap();
        assert_eq!(input.document_ids, vec!["a", "b"]);
        assert_eq!(input.response_days, Some(45));
        assert_eq!(input.demand_amount_cents, None);
    }
}
