//! Uploads: text extraction from plain text, PDF and DOCX, limits and rejected types.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};

use crate::fixtures::{
    docx_with_text, pdf_with_text, tiny_png, HOSPITAL_BILL, THERAPY_STATEMENT, WAGE_LETTER,
};
use crate::on_both_backends;
use crate::support::{multipart_body, TestApp};

async fn uploads_extract_text_from_each_kind(app: TestApp) {
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;

    let text = app
        .upload(
            &token,
            "hospital-bill.txt",
            "text/plain",
            HOSPITAL_BILL.as_bytes(),
        )
        .await;
    assert_eq!(text.status, StatusCode::CREATED, "{}", text.text());
    let text_doc = text.json()["document"].clone();
    assert_eq!(text_doc["kind"], "text");
    assert_eq!(text_doc["size_bytes"], HOSPITAL_BILL.len());

    let pdf_bytes = pdf_with_text(THERAPY_STATEMENT);
    let pdf = app
        .upload(&token, "therapy.pdf", "application/pdf", &pdf_bytes)
        .await;
    assert_eq!(pdf.status, StatusCode::CREATED, "{}", pdf.text());
    let pdf_id = pdf.json()["document"]["id"].as_str().unwrap().to_string();
    let pdf_detail = app
        .get(&format!("/v1/documents/{pdf_id}"), &token)
        .await
        .json();
    assert_eq!(pdf_detail["document"]["kind"], "pdf");
    let pdf_text = pdf_detail["text"].as_str().unwrap();
    assert!(
        pdf_text.contains("Physical therapy evaluation"),
        "{pdf_text}"
    );
    assert!(pdf_text.contains("$275.00"), "{pdf_text}");

    let docx_bytes = docx_with_text(WAGE_LETTER);
    let docx = app
        .upload(
            &token,
            "wages.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            &docx_bytes,
        )
        .await;
    assert_eq!(docx.status, StatusCode::CREATED, "{}", docx.text());
    let docx_id = docx.json()["document"]["id"].as_str().unwrap().to_string();
    let docx_text = app
        .get(&format!("/v1/documents/{docx_id}"), &token)
        .await
        .json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(docx_text.contains("total $2,880.00"), "{docx_text}");

    let listed = app.get("/v1/documents", &token).await.json();
    assert_eq!(listed["documents"].as_array().unwrap().len(), 3);

    let content = app
        .get(&format!("/v1/documents/{pdf_id}/content"), &token)
        .await;
    assert_eq!(content.status, StatusCode::OK);
    assert_eq!(
        content.bytes, pdf_bytes,
        "the original bytes come back unchanged"
    );
    assert_eq!(content.headers[header::CONTENT_TYPE], "application/pdf");

    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/documents/{pdf_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&format!("/v1/documents/{pdf_id}"), &token)
        .await
        .assert_error(StatusCode::NOT_FOUND);
}
on_both_backends!(uploads_extract_text_from_each_kind);

async fn bad_uploads_are_refused_and_change_nothing(app: TestApp) {
    let (token, _) = app
        .register("Rivera & Hale LLP", "avery@riverahale.test")
        .await;

    let png = app
        .upload(&token, "scan.png", "image/png", &tiny_png())
        .await;
    let message = png.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(message.contains("scan.png"), "{message}");

    let fake_pdf = app
        .upload(
            &token,
            "bill.pdf",
            "application/pdf",
            b"%PDF-1.4 this is not really a pdf",
        )
        .await;
    assert!(fake_pdf.status.is_client_error(), "{}", fake_pdf.text());

    let empty = app.upload(&token, "empty.txt", "text/plain", b"").await;
    assert!(empty.status.is_client_error(), "{}", empty.text());

    let binary = app
        .upload(
            &token,
            "blob.txt",
            "text/plain",
            &[0u8, 159, 146, 150, 0, 1],
        )
        .await;
    assert!(binary.status.is_client_error(), "{}", binary.text());

    let too_big = vec![b'a'; app.state.settings().max_upload_bytes + 1];
    let oversized = app.upload(&token, "huge.txt", "text/plain", &too_big).await;
    oversized.assert_error(StatusCode::PAYLOAD_TOO_LARGE);

    let not_multipart = app
        .post("/v1/documents", &token, serde_json::json!({"file": "x"}))
        .await;
    not_multipart.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let (body, boundary) = multipart_body("attachment", "bill.txt", "text/plain", b"hello");
    let wrong_field = app
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/v1/documents")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert!(wrong_field
        .assert_error(StatusCode::BAD_REQUEST)
        .contains("\"file\""));

    let listed = app.get("/v1/documents", &token).await.json();
    assert_eq!(
        listed["documents"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );
    let stored_files = walk_files(&app.data_dir().join("documents"));
    assert!(
        stored_files.is_empty(),
        "no file left in storage: {stored_files:?}"
    );
}
on_both_backends!(bad_uploads_are_refused_and_change_nothing);

pub fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk_files(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}
