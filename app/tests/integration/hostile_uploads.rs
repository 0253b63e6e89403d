//! Hostile uploads against the real router: every input of the generated corpus (deep nesting,
//! repeated references, flate bombs, huge logos, text bombs) is answered 422 naming the limit
//! it reached, stores nothing, and leaves the app answering ordinary requests; stored data from
//! before the limits (an oversized logo, a document with megabytes of text) cannot make drafts or
//! exports hostile; the process limits of the extractor child are named when reached.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use e2e_tests::hostile::{self, HostileInput, Size, Target};
use serde_json::{json, Value};
use sqlx::Row;

use crate::fixtures::HOSPITAL_BILL;
use crate::letters::matter_with_documents;
use crate::on_both_backends;
use crate::support::{Answer, TestApp};

fn corpus() -> &'static [HostileInput] {
    static CORPUS: OnceLock<Vec<HostileInput>> = OnceLock::new();
    CORPUS.get_or_init(|| hostile::corpus(Size::Test))
}

async fn send_hostile(app: &TestApp, token: &str, input: &HostileInput) -> Answer {
    match input.target {
        Target::Document => {
            app.upload(token, &input.filename, input.content_type, &input.bytes)
                .await
        }
        Target::Logo => {
            app.send(
                Request::builder()
                    .method(Method::PUT)
                    .uri("/v1/firm/logo")
                    .header(header::AUTHORIZATION, format!("Bearer {token}"))
                    .header(header::CONTENT_TYPE, input.content_type)
                    .body(Body::from(input.bytes.clone()))
                    .unwrap(),
            )
            .await
        }
    }
}

/// Asserts a 422 whose error names `limit` (name and variable); returns the error body.
pub fn assert_limit(answer: &Answer, limit: &str, context: &str) -> Value {
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{context}: {}",
        answer.text()
    );
    let error = answer.json()["error"].clone();
    assert_eq!(error["code"], "limit_exceeded", "{context}: {error}");
    assert_eq!(error["limit"]["name"], limit, "{context}: {error}");
    let message = error["message"].as_str().unwrap();
    let variable = error["limit"]["variable"].as_str().unwrap();
    assert!(
        message.contains(limit) && message.contains(variable) && variable.starts_with("STENO_"),
        "{context}: {message}"
    );
    assert!(error["limit"]["value"].as_u64().unwrap() > 0, "{context}");
    error
}

/// What the firm has stored: the listed documents, the files in storage, the document rows
/// and the logo.
#[derive(Debug, PartialEq)]
struct Stored {
    listed: Vec<Value>,
    files: Vec<std::path::PathBuf>,
    rows: i64,
    logo: Option<Vec<u8>>,
}

async fn stored(app: &TestApp, token: &str) -> Stored {
    let listed = app.get("/v1/documents", token).await.json()["documents"]
        .as_array()
        .unwrap()
        .clone();
    let rows = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM documents")
        .fetch_one(app.state.database().pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap();
    let firm_id = app.get("/v1/me", token).await.json()["firm"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let logo = steno::db::firms::get_logo(app.state.database(), &firm_id)
        .await
        .unwrap()
        .map(|(bytes, _)| bytes);
    Stored {
        listed,
        files: crate::documents::walk_files(&app.data_dir().join("documents")),
        rows,
        logo,
    }
}

async fn hostile_uploads_are_refused_naming_the_limit_and_change_nothing(app: TestApp) {
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let ordinary = app
        .upload(&token, "bill.txt", "text/plain", HOSPITAL_BILL.as_bytes())
        .await;
    assert_eq!(ordinary.status, StatusCode::CREATED, "{}", ordinary.text());
    let before = stored(&app, &token).await;
    assert_eq!(
        (before.listed.len(), before.files.len(), before.rows),
        (1, 1, 1)
    );
    let classes: std::collections::BTreeSet<&str> =
        corpus().iter().map(|input| input.class).collect();
    assert_eq!(
        classes.len(),
        5,
        "every class of attack is covered: {classes:?}"
    );

    for input in corpus() {
        // An ordinary request sent while the hostile one is in flight is answered.
        let (hostile, bystander) = tokio::join!(
            send_hostile(&app, &token, input),
            app.get("/v1/documents", &token)
        );
        assert_eq!(bystander.status, StatusCode::OK, "beside {}", input.name);
        assert_eq!(bystander.json()["documents"].as_array().unwrap().len(), 1);
        assert_limit(&hostile, input.expected_limit, input.name);
        assert_eq!(
            stored(&app, &token).await,
            before,
            "{} stored nothing",
            input.name
        );
    }

    let metrics = app.call(Method::GET, "/metrics", None, None).await.text();
    for outcome in [
        "nesting_depth",
        "page_content_bytes",
        "decompressed_bytes",
        "extracted_text_bytes",
    ] {
        assert!(
            metrics.contains(&format!("steno_extractions_total{{outcome=\"{outcome}\"}}")),
            "{outcome} counted: {metrics}"
        );
    }
    assert!(metrics.contains("steno_extractor_peak_rss_bytes "));
}
on_both_backends!(hostile_uploads_are_refused_naming_the_limit_and_change_nothing);

async fn put_logo(app: &TestApp, token: &str, bytes: Vec<u8>, content_type: &str) -> Answer {
    app.send(
        Request::put("/v1/firm/logo")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))
            .unwrap(),
    )
    .await
}

/// `(width, height)` from a PNG's header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    let read = |offset: usize| u32::from_be_bytes(bytes[offset..offset + 4].try_into().unwrap());
    (read(16), read(20))
}

async fn large_logos_are_scaled_at_upload(app: TestApp) {
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let wide = hostile::blank_png(3000, 600, true);
    let answer = put_logo(&app, &token, wide, "image/png").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let firm_id = answer.json()["firm"]["id"].as_str().unwrap().to_string();
    let (logo, content_type) = steno::db::firms::get_logo(app.state.database(), &firm_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(content_type, "image/png");
    assert_eq!(png_size(&logo), (1024, 205), "scaled to fit 1024 pixels");

    let at_limit = put_logo(
        &app,
        &token,
        hostile::blank_png(4096, 16, false),
        "image/png",
    )
    .await;
    assert_eq!(at_limit.status, StatusCode::OK, "{}", at_limit.text());
    let over = put_logo(
        &app,
        &token,
        hostile::blank_png(4097, 16, false),
        "image/png",
    )
    .await;
    assert_limit(&over, "logo_dimension_pixels", "4097 pixels wide");
}
on_both_backends!(large_logos_are_scaled_at_upload);

async fn stored_data_cannot_make_drafts_or_exports_hostile(app: TestApp) {
    let (token, session) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let firm_id = session["firm"]["id"].as_str().unwrap().to_string();
    let user_id = session["user"]["id"].as_str().unwrap().to_string();
    let (matter_id, _) = matter_with_documents(&app, &token).await;
    let drafted = app
        .post(
            &format!("/v1/matters/{matter_id}/letters"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{}", drafted.text());
    let letter_id = drafted.json()["letter"]["id"].as_str().unwrap().to_string();
    let export = |format: &'static str| {
        let path = format!("/v1/letters/{letter_id}/export?format={format}");
        let app = &app;
        let token = &token;
        async move { app.get(&path, token).await }
    };

    // A logo stored before uploads were checked, far over the dimension limit: refused from
    // its header at every export, without decoding it.
    let huge = hostile::blank_png(20_000, 20_000, false);
    steno::db::firms::set_logo(app.state.database(), &firm_id, &huge, "image/png")
        .await
        .unwrap();
    for format in ["pdf", "docx"] {
        let error = assert_limit(&export(format).await, "logo_dimension_pixels", format);
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("upload the logo again"),
            "{error}"
        );
    }
    assert_eq!(app.get("/v1/me", &token).await.status, StatusCode::OK);

    // A large logo stored before normalisation existed is scaled for the export.
    let legacy = hostile::blank_png(2400, 600, true);
    steno::db::firms::set_logo(app.state.database(), &firm_id, &legacy, "image/png")
        .await
        .unwrap();
    let pdf = export("pdf").await;
    assert_eq!(pdf.status, StatusCode::OK, "{}", pdf.text());
    let document = lopdf::Document::load_mem(&pdf.bytes).unwrap();
    let image_widths: Vec<i64> = document
        .objects
        .values()
        .filter_map(|object| object.as_stream().ok())
        .filter(|stream| {
            stream.dict.get(b"Subtype").and_then(|s| s.as_name()).ok() == Some(b"Image")
        })
        .map(|stream| stream.dict.get(b"Width").unwrap().as_i64().unwrap())
        .collect();
    assert_eq!(image_widths, vec![1024]);

    // A document stored with megabytes of text (before extraction had limits): the draft is
    // refused before the text is loaded.
    let big_text = "Office visit 04/02/2025 $120.00\n".repeat(9 * 1024 * 1024 / 32);
    let document_id = uuid::Uuid::new_v4().to_string();
    steno::db::documents::insert_document(
        app.state.database(),
        steno::db::documents::NewDocument {
            id: &document_id,
            firm_id: &firm_id,
            filename: "records.txt",
            kind: "text",
            content_type: "text/plain; charset=utf-8",
            size_bytes: big_text.len() as i64,
            sha256: "0",
            storage_key: "none",
            extracted_text: &big_text,
            uploaded_by: &user_id,
            created_at: "2025-06-01T00:00:00Z",
        },
    )
    .await
    .unwrap();
    let matter = app
        .post(
            "/v1/matters",
            &token,
            json!({
                "claimant_name": "Jordan Rivera", "defendant_name": "Casey Morgan",
                "incident_date": "2025-03-14", "incident_place": "Main Street",
                "incident_description": "Red light.", "injuries": "Strain.", "treatment": "Therapy.",
                "document_ids": [document_id],
            }),
        )
        .await;
    assert_eq!(matter.status, StatusCode::CREATED, "{}", matter.text());
    let big_matter = matter.json()["matter"]["id"].as_str().unwrap().to_string();
    let refused = app
        .post(
            &format!("/v1/matters/{big_matter}/letters"),
            &token,
            json!({}),
        )
        .await;
    assert_limit(&refused, "draft_source_bytes", "a 9 MiB source document");
    let letters = app.get("/v1/letters", &token).await.json();
    assert_eq!(
        letters["letters"].as_array().unwrap().len(),
        1,
        "no letter added"
    );
}
on_both_backends!(stored_data_cannot_make_drafts_or_exports_hostile);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_limit_is_configurable() {
    let app = TestApp::sqlite_with(|settings| settings.max_draft_source_bytes = 600).await;
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let (matter_id, _) = matter_with_documents(&app, &token).await;
    let refused = app
        .post(
            &format!("/v1/matters/{matter_id}/letters"),
            &token,
            json!({}),
        )
        .await;
    let error = assert_limit(
        &refused,
        "draft_source_bytes",
        "four documents over 600 bytes",
    );
    assert_eq!(error["limit"]["value"], 600);
    assert_eq!(error["limit"]["variable"], "STENO_MAX_DRAFT_SOURCE_BYTES");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_limit_is_configurable() {
    let app = TestApp::sqlite_with(|settings| settings.max_export_letter_bytes = 300).await;
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let (matter_id, _) = matter_with_documents(&app, &token).await;
    let drafted = app
        .post(
            &format!("/v1/matters/{matter_id}/letters"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{}", drafted.text());
    let letter_id = drafted.json()["letter"]["id"].as_str().unwrap().to_string();
    for format in ["pdf", "docx"] {
        let answer = app
            .get(
                &format!("/v1/letters/{letter_id}/export?format={format}"),
                &token,
            )
            .await;
        let error = assert_limit(&answer, "export_letter_bytes", format);
        assert_eq!(error["limit"]["value"], 300);
    }
}

/// Finds an input of the corpus by name.
fn input(name: &str) -> &'static HostileInput {
    corpus()
        .iter()
        .find(|input| input.name == name)
        .unwrap_or_else(|| panic!("no input {name}"))
}

/// With the parser's own checks widened, the child's process limits stop what gets through,
/// and the answer names the process limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_limits_of_the_child_are_named() {
    let widened = |settings: &mut steno::config::Settings| {
        let document = &mut settings.extractor.document;
        document.max_decompressed_bytes = 1 << 40;
        document.max_page_content_bytes = 1 << 40;
    };
    let memory = TestApp::sqlite_with(|settings| {
        widened(settings);
        settings.extractor.memory_bytes = 160 * 1024 * 1024;
    })
    .await;
    let (token, _) = memory
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    // 80 MiB of content, which the PDF library holds at least twice while decoding it.
    let bomb = input("pdf-flate-bomb-content");
    let answer = send_hostile(&memory, &token, bomb).await;
    let error = assert_limit(&answer, "extract_memory_bytes", bomb.name);
    assert_eq!(error["limit"]["value"], 160 * 1024 * 1024);
    assert_eq!(
        memory.get("/v1/documents", &token).await.status,
        StatusCode::OK
    );

    // 20,000 draws of a 1 MiB form: each is parsed again and dropped, so the work grows and
    // the memory does not; stopped by CPU time or by the wall clock, whichever is tighter.
    let cpu = TestApp::sqlite_with(|settings| {
        widened(settings);
        settings.extractor.cpu_seconds = 1;
    })
    .await;
    let (token, _) = cpu
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let repeated = input("pdf-repeated-form-draws");
    assert_limit(
        &send_hostile(&cpu, &token, repeated).await,
        "extract_cpu_seconds",
        repeated.name,
    );
    let wall_clock = TestApp::sqlite_with(|settings| {
        widened(settings);
        settings.extractor.timeout = std::time::Duration::from_secs(1);
    })
    .await;
    let (token, _) = wall_clock
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    assert_limit(
        &send_hostile(&wall_clock, &token, repeated).await,
        "extract_timeout_seconds",
        repeated.name,
    );
    assert_eq!(
        wall_clock.get("/v1/documents", &token).await.status,
        StatusCode::OK
    );
}

/// A program that is not a steno extractor is refused by the probe with a message naming the
/// setting, and uploads through it fail without storing anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_extractor_program_is_reported() {
    let app = TestApp::sqlite_with(|settings| {
        settings.extractor.program = steno::config::ExtractorProgram::Path("/bin/true".into());
    })
    .await;
    let error = app.state.extractor().probe().await.unwrap_err();
    assert!(error.to_string().contains("STENO_EXTRACTOR"), "{error}");
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let answer = app
        .upload(&token, "bill.txt", "text/plain", HOSPITAL_BILL.as_bytes())
        .await;
    answer.assert_error(StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        app.get("/v1/documents", &token).await.json()["documents"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}
