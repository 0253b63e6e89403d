//! Matters, drafting, refinement with kept revisions, and export to DOCX and PDF checked with real
//! tools (`pdftotext`, `unzip`).

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::fixtures::{
    docx_with_text, pdf_with_text, tiny_png, HOSPITAL_BILL, POLICE_REPORT, THERAPY_STATEMENT,
    WAGE_LETTER,
};
use crate::on_both_backends;
use crate::support::{run_tool, TestApp};

/// Uploads the four fixture documents and creates a matter with them; returns (matter id, doc ids).
pub async fn matter_with_documents(app: &TestApp, token: &str) -> (String, Vec<String>) {
    let mut ids = Vec::new();
    for (name, content_type, bytes) in [
        (
            "hospital-bill.txt",
            "text/plain",
            HOSPITAL_BILL.as_bytes().to_vec(),
        ),
        (
            "therapy.pdf",
            "application/pdf",
            pdf_with_text(THERAPY_STATEMENT),
        ),
        (
            "wages.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            docx_with_text(WAGE_LETTER),
        ),
        (
            "police-report.txt",
            "text/plain",
            POLICE_REPORT.as_bytes().to_vec(),
        ),
    ] {
        let answer = app.upload(token, name, content_type, &bytes).await;
        assert_eq!(
            answer.status,
            StatusCode::CREATED,
            "{name}: {}",
            answer.text()
        );
        ids.push(
            answer.json()["document"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let created = app
        .post(
            "/v1/matters",
            token,
            json!({
                "claimant_name": "Jordan Rivera",
                "defendant_name": "Casey Morgan",
                "insurer_name": "Granite Mutual Insurance",
                "claim_number": "GM-2025-00417",
                "incident_date": "2025-03-14",
                "incident_place": "Main Street and 3rd Avenue, Springfield",
                "incident_description": "Casey Morgan ran a red light and struck our client's vehicle.",
                "injuries": "Cervical strain and a fracture of the left distal radius.",
                "treatment": "Emergency care, CT imaging, casting and six weeks of physical therapy.",
                "manual_specials": [
                    {"category": "other", "description": "Rental car", "amount_cents": 42000, "service_date": "2025-03-20"}
                ],
                "document_ids": ids,
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let matter = created.json()["matter"].clone();
    assert_eq!(matter["title"], "Jordan Rivera v. Casey Morgan");
    assert_eq!(matter["document_ids"].as_array().unwrap().len(), 4);
    (matter["id"].as_str().unwrap().to_string(), ids)
}

fn specials_from(revision: &Value) -> Vec<Value> {
    revision["draft"]["specials"].as_array().unwrap().clone()
}

async fn draft_refine_and_export(app: TestApp) {
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let logo = app
        .send(
            axum::http::Request::put("/v1/firm/logo")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "image/png")
                .body(axum::body::Body::from(tiny_png()))
                .unwrap(),
        )
        .await;
    assert_eq!(logo.status, StatusCode::OK, "{}", logo.text());
    assert_eq!(logo.json()["firm"]["has_logo"], true);

    let (matter_id, document_ids) = matter_with_documents(&app, &token).await;
    let drafted = app
        .post(
            &format!("/v1/matters/{matter_id}/letters"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(drafted.status, StatusCode::CREATED, "{}", drafted.text());
    let drafted = drafted.json();
    let letter_id = drafted["letter"]["id"].as_str().unwrap().to_string();
    let first = &drafted["revision"];
    assert_eq!(first["revision"], 1);
    assert_eq!(first["engine"], "offline");

    // Specials are itemised from the documents, each citing the document it came from.
    let specials = specials_from(first);
    let cites = |amount: i64, filename: &str| {
        specials.iter().any(|item| {
            item["amount_cents"] == amount
                && item["source"]["kind"] == "document"
                && item["source"]["filename"] == filename
        })
    };
    assert!(cites(185_000, "hospital-bill.txt"), "{specials:#?}");
    assert!(cites(240_000, "hospital-bill.txt"), "{specials:#?}");
    assert!(cites(27_500, "therapy.pdf"), "{specials:#?}");
    assert!(cites(288_000, "wages.docx"), "{specials:#?}");
    assert!(
        !specials.iter().any(|item| item["amount_cents"] == 456_000),
        "a bill's total is not counted beside its lines: {specials:#?}"
    );
    assert!(specials
        .iter()
        .any(|item| item["source"]["kind"] == "form" && item["amount_cents"] == 42_000));
    let sum: i64 = specials
        .iter()
        .map(|item| item["amount_cents"].as_i64().unwrap())
        .sum();
    assert_eq!(first["draft"]["total_specials_cents"], sum);
    assert_eq!(first["draft"]["total_lost_wages_cents"], 288_000);
    assert!(first["draft"]["total_demand_cents"].as_i64().unwrap() >= sum);

    let letter = app
        .get(&format!("/v1/letters/{letter_id}"), &token)
        .await
        .json();
    let text = letter["text"].as_str().unwrap();
    assert_eq!(
        first["draft"]["signature"],
        json!([
            "Avery Admin",
            "Rivera & Hale LLP",
            "Counsel for Jordan Rivera"
        ]),
        "the letter is signed by the drafting lawyer for the firm"
    );
    for expected in [
        "Jordan Rivera",
        "Casey Morgan",
        "Granite Mutual Insurance",
        "GM-2025-00417",
    ] {
        assert!(
            text.contains(expected),
            "letter text lacks {expected}:\n{text}"
        );
    }

    // Refining adds a revision and keeps the first.
    let deadline_before = first["draft"]["response_deadline"]
        .as_str()
        .unwrap()
        .to_string();
    let refined = app
        .post(
            &format!("/v1/letters/{letter_id}/refine"),
            &token,
            json!({"instruction": "give them 45 days"}),
        )
        .await;
    assert_eq!(refined.status, StatusCode::CREATED, "{}", refined.text());
    let second = refined.json()["revision"].clone();
    assert_eq!(second["revision"], 2);
    assert_eq!(second["instruction"], "give them 45 days");
    assert_ne!(
        second["draft"]["response_deadline"].as_str().unwrap(),
        deadline_before
    );

    let demand = app
        .post(
            &format!("/v1/letters/{letter_id}/refine"),
            &token,
            json!({"instruction": "increase the demand to $85,000"}),
        )
        .await;
    assert_eq!(demand.status, StatusCode::CREATED, "{}", demand.text());
    assert_eq!(
        demand.json()["revision"]["draft"]["total_demand_cents"],
        8_500_000
    );

    let unsupported = app
        .post(
            &format!("/v1/letters/{letter_id}/refine"),
            &token,
            json!({"instruction": "translate it into Klingon poetry"}),
        )
        .await;
    unsupported.assert_error(StatusCode::UNPROCESSABLE_ENTITY);

    let revisions = app
        .get(&format!("/v1/letters/{letter_id}/revisions"), &token)
        .await
        .json();
    assert_eq!(
        revisions["revisions"].as_array().unwrap().len(),
        3,
        "the refused instruction added nothing"
    );
    let kept = app
        .get(&format!("/v1/letters/{letter_id}/revisions/1"), &token)
        .await
        .json();
    assert_eq!(
        kept["revision"]["draft"]["response_deadline"]
            .as_str()
            .unwrap(),
        deadline_before
    );
    app.get(&format!("/v1/letters/{letter_id}/revisions/9"), &token)
        .await
        .assert_error(StatusCode::NOT_FOUND);

    // Exports open with real tools and carry the letterhead and the letter.
    let pdf = app
        .get(
            &format!("/v1/letters/{letter_id}/export?format=pdf"),
            &token,
        )
        .await;
    assert_eq!(pdf.status, StatusCode::OK, "{}", pdf.text());
    assert_eq!(pdf.headers["content-type"], "application/pdf");
    assert!(pdf.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains(".pdf"));
    let pdf_path = app.data_dir().join("letter.pdf");
    std::fs::write(&pdf_path, &pdf.bytes).unwrap();
    let pdf_text = run_tool(
        "pdftotext",
        &["-layout", pdf_path.to_str().unwrap(), "-"],
        "poppler-utils",
    );
    for expected in [
        "Rivera & Hale LLP",
        "100 Main Street",
        "Jordan Rivera",
        "Granite Mutual Insurance",
        "$85,000.00",
        "$1,850.00",
        "wages.docx",
    ] {
        assert!(
            pdf_text.contains(expected),
            "PDF lacks {expected}:\n{pdf_text}"
        );
    }

    let docx = app
        .get(
            &format!("/v1/letters/{letter_id}/export?format=docx&revision=1"),
            &token,
        )
        .await;
    assert_eq!(docx.status, StatusCode::OK, "{}", docx.text());
    let docx_path = app.data_dir().join("letter.docx");
    std::fs::write(&docx_path, &docx.bytes).unwrap();
    let listing = run_tool("unzip", &["-l", docx_path.to_str().unwrap()], "unzip");
    assert!(listing.contains("word/media/logo.png"), "{listing}");
    let xml = run_tool(
        "unzip",
        &["-p", docx_path.to_str().unwrap(), "word/document.xml"],
        "unzip",
    );
    for expected in [
        "Rivera &amp; Hale LLP",
        "Jordan Rivera",
        "GM-2025-00417",
        "$2,880.00",
    ] {
        assert!(xml.contains(expected), "DOCX lacks {expected}");
    }

    app.get(
        &format!("/v1/letters/{letter_id}/export?format=rtf"),
        &token,
    )
    .await
    .assert_error(StatusCode::BAD_REQUEST);

    // A document used by a matter cannot be deleted from under it.
    app.call(
        Method::DELETE,
        &format!("/v1/documents/{}", document_ids[0]),
        Some(&token),
        None,
    )
    .await
    .assert_error(StatusCode::CONFLICT);

    let matter = app
        .get(&format!("/v1/matters/{matter_id}"), &token)
        .await
        .json();
    assert_eq!(matter["letters"].as_array().unwrap().len(), 1);
}
on_both_backends!(draft_refine_and_export);

async fn matter_input_is_validated(app: TestApp) {
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;
    let base = json!({
        "claimant_name": "Jordan Rivera",
        "defendant_name": "Casey Morgan",
        "incident_date": "2025-03-14",
        "incident_place": "Main Street",
        "incident_description": "Red light.",
        "injuries": "Strain.",
        "treatment": "Therapy.",
    });
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("claimant_name", json!("  ")), "claimant_name"),
        (with("incident_date", json!("14/03/2025")), "incident_date"),
        (with("incident_date", json!("2999-01-01")), "future"),
        (with("response_days", json!(0)), "response_days"),
        (
            with("demand_amount_cents", json!(-5)),
            "demand_amount_cents",
        ),
        (
            with("document_ids", json!(["no-such-document"])),
            "document_ids[0]",
        ),
        (with("surprise", json!(true)), "surprise"),
    ];
    for (body, named) in cases {
        let answer = app.post("/v1/matters", &token, body).await;
        assert!(
            answer.status.is_client_error(),
            "{named}: {}",
            answer.text()
        );
        let message = answer.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains(named),
            "error for {named} should name it: {message}"
        );
    }
    let matters = app.get("/v1/matters", &token).await.json();
    assert_eq!(
        matters["matters"].as_array().unwrap().len(),
        0,
        "nothing was written"
    );
    let missing = app
        .call(
            Method::POST,
            "/v1/matters/does-not-exist/letters",
            Some(&token),
            None,
        )
        .await;
    missing.assert_error(StatusCode::NOT_FOUND);
}
on_both_backends!(matter_input_is_validated);

/// A stand-in for the Messages API: every call answers the same letter sections and says it
/// used 1,200 input and 800 output tokens.
async fn messages_api_answering_sections() -> String {
    const SECTIONS: &str = r#"{"sections":[
        {"heading":"Facts of the Incident","paragraphs":["Casey Morgan ran a red light."]},
        {"heading":"Liability","paragraphs":["Liability is clear."]},
        {"heading":"Injuries and Treatment","paragraphs":["Jordan Rivera was treated."]},
        {"heading":"Special Damages","paragraphs":["The bills are enclosed."]},
        {"heading":"Demand","paragraphs":["We demand payment."]}
    ]}"#;
    let app = axum::Router::new().route(
        "/v1/messages",
        axum::routing::post(|| async {
            axum::Json(json!({
                "id": "msg_test",
                "type": "message",
                "role": "assistant",
                "model": "test-model",
                "content": [{ "type": "text", "text": SECTIONS }],
                "stop_reason": "end_turn",
                "usage": { "input_tokens": 1200, "output_tokens": 800 }
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn ai_drafts_report_the_tokens_they_spent_on_the_response() {
    let base_url = messages_api_answering_sections().await;
    let app = TestApp::sqlite_with(|settings| {
        settings.anthropic = Some(steno::config::AnthropicSettings {
            api_key: "test-key".into(),
            base_url: Some(base_url),
            model: None,
        })
    })
    .await;
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
    assert_eq!(drafted.json()["revision"]["input_tokens"], 1200);
    assert_eq!(drafted.headers["x-ai-input-tokens"], "1200");
    assert_eq!(drafted.headers["x-ai-output-tokens"], "800");
    // Requests that spend no tokens carry no token headers.
    let listed = app.get("/v1/letters", &token).await;
    assert!(!listed.headers.contains_key("x-ai-input-tokens"));
}
