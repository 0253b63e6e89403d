//! Firm isolation: a user of firm B can never read, list, change, export or learn of firm A's
//! documents, matters or letters, through any API or UI route. Firm A's records answer exactly
//! like records that do not exist.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use crate::letters::matter_with_documents;
use crate::on_both_backends;
use crate::support::{Answer, Browser, TestApp, TEST_HOST, TEST_ORIGIN};

const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// A web UI request by the holder of `token`, from a browser with a valid CSRF cookie and token,
/// so that only firm scoping decides the answer.
async fn ui_call(app: &TestApp, method: Method, path: &str, token: &str, form: &str) -> Answer {
    let mut browser = Browser::open(app).await;
    browser.session_cookie = Some(token.to_string());
    let body = if method == Method::POST {
        format!("csrf_token={}&{form}", browser.csrf_token)
    } else {
        form.to_string()
    };
    app.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, TEST_HOST)
            .header(header::ORIGIN, TEST_ORIGIN)
            .header(header::COOKIE, browser.cookie_header())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

async fn firms_cannot_see_each_other(app: TestApp) {
    let (token_a, _) = app.register("Firm A LLP", "a@firm-a.test").await;
    let (token_b, _) = app.register("Firm B LLP", "b@firm-b.test").await;
    let (matter_a, documents_a) = matter_with_documents(&app, &token_a).await;
    let letter_a = app
        .post(
            &format!("/v1/matters/{matter_a}/letters"),
            &token_a,
            json!({}),
        )
        .await
        .json()["letter"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let document_a = documents_a[0].clone();

    // Every API route that takes an id answers firm B as if firm A's record did not exist.
    let api_routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, "/v1/documents/{document}".into(), None),
        (Method::GET, "/v1/documents/{document}/content".into(), None),
        (Method::DELETE, "/v1/documents/{document}".into(), None),
        (Method::GET, "/v1/matters/{matter}".into(), None),
        (
            Method::POST,
            "/v1/matters/{matter}/letters".into(),
            Some(json!({})),
        ),
        (Method::GET, "/v1/letters/{letter}".into(), None),
        (Method::GET, "/v1/letters/{letter}/revisions".into(), None),
        (Method::GET, "/v1/letters/{letter}/revisions/1".into(), None),
        (
            Method::POST,
            "/v1/letters/{letter}/refine".into(),
            Some(json!({"instruction": "give them 45 days"})),
        ),
        (
            Method::GET,
            "/v1/letters/{letter}/export?format=pdf".into(),
            None,
        ),
        (
            Method::GET,
            "/v1/letters/{letter}/export?format=docx".into(),
            None,
        ),
    ];
    for (method, template, body) in api_routes {
        let real = template
            .replace("{document}", &document_a)
            .replace("{matter}", &matter_a)
            .replace("{letter}", &letter_a);
        let fake = template
            .replace("{document}", UNKNOWN_ID)
            .replace("{matter}", UNKNOWN_ID)
            .replace("{letter}", UNKNOWN_ID);
        let attempt = app
            .call(method.clone(), &real, Some(&token_b), body.clone())
            .await;
        let baseline = app.call(method.clone(), &fake, Some(&token_b), body).await;
        assert_eq!(
            attempt.status,
            StatusCode::NOT_FOUND,
            "{method} {template}: {}",
            attempt.text()
        );
        let attempt_message = attempt.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&document_a, "ID")
            .replace(&matter_a, "ID")
            .replace(&letter_a, "ID");
        let baseline_message = baseline.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace(UNKNOWN_ID, "ID");
        assert_eq!(
            attempt_message, baseline_message,
            "{method} {template} must not reveal existence"
        );
    }

    // Lists show firm B nothing of firm A.
    for path in ["/v1/documents", "/v1/matters", "/v1/letters"] {
        let listed = app.get(path, &token_b).await.json();
        let items = listed
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_array()
            .unwrap()
            .clone();
        assert!(items.is_empty(), "{path} leaked {items:?}");
    }
    let filtered = app
        .get(&format!("/v1/letters?matter_id={matter_a}"), &token_b)
        .await
        .json();
    assert!(filtered["letters"].as_array().unwrap().is_empty());
    let users = app.get("/v1/users", &token_b).await.json();
    assert_eq!(users["users"].as_array().unwrap().len(), 1);

    // Firm A's documents cannot be attached to firm B's matters.
    let stolen = app
        .post(
            "/v1/matters",
            &token_b,
            json!({
                "claimant_name": "X", "defendant_name": "Y", "incident_date": "2025-01-01",
                "incident_place": "Z", "incident_description": "d", "injuries": "i", "treatment": "t",
                "document_ids": [document_a],
            }),
        )
        .await;
    let stolen_message = stolen.assert_error(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(stolen_message.contains("not found"));

    // The web UI refuses the same way.
    for (method, path, form) in [
        (
            Method::GET,
            format!("/app/documents/{document_a}"),
            String::new(),
        ),
        (
            Method::GET,
            format!("/app/matters/{matter_a}"),
            String::new(),
        ),
        (
            Method::POST,
            format!("/app/matters/{matter_a}/letters"),
            String::new(),
        ),
        (
            Method::GET,
            format!("/app/letters/{letter_a}"),
            String::new(),
        ),
        (
            Method::POST,
            format!("/app/letters/{letter_a}/refine"),
            "instruction=give+them+45+days".to_string(),
        ),
        (
            Method::GET,
            format!("/app/letters/{letter_a}/export/pdf"),
            String::new(),
        ),
    ] {
        let answer = ui_call(&app, method.clone(), &path, &token_b, &form).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {path}");
        assert!(
            !answer.text().contains("Jordan Rivera"),
            "{method} {path} leaked firm A's data"
        );
    }
    let dashboard = ui_call(&app, Method::GET, "/app", &token_b, "").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(!dashboard.text().contains("hospital-bill.txt"));

    // Firm A's records are untouched.
    let letter = app
        .get(&format!("/v1/letters/{letter_a}"), &token_a)
        .await
        .json();
    assert_eq!(letter["revisions"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get(&format!("/v1/documents/{document_a}"), &token_a)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/v1/letters", &token_a).await.json()["letters"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
on_both_backends!(firms_cannot_see_each_other);
