//! The web UI flow with a session cookie: register, upload, create a matter, generate, refine,
//! download; plus login redirects and error pages.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};

use crate::fixtures::HOSPITAL_BILL;
use crate::on_both_backends;
use crate::support::{multipart_body, Answer, TestApp};

async fn form(app: &TestApp, path: &str, cookie: Option<&str>, body: &str) -> Answer {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        builder = builder.header(header::COOKIE, cookie);
    }
    app.send(builder.body(Body::from(body.to_string())).unwrap())
        .await
}

async fn page(app: &TestApp, path: &str, cookie: &str) -> Answer {
    app.send(
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

fn location(answer: &Answer) -> String {
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text());
    answer.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

async fn the_whole_flow_works_in_the_browser(app: TestApp) {
    let anonymous = app
        .send(Request::get("/app").body(Body::empty()).unwrap())
        .await;
    assert_eq!(location(&anonymous), "/login");
    assert!(app
        .send(Request::get("/login").body(Body::empty()).unwrap())
        .await
        .text()
        .contains("<form"));

    let registered = form(
        &app,
        "/register",
        None,
        "firm_name=Rivera+%26+Hale+LLP&firm_address=100+Main+Street&admin_name=Avery&admin_email=avery%40riverahale.test&admin_password=correct+horse+battery",
    )
    .await;
    assert_eq!(location(&registered), "/app");
    let set_cookie = registered.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    let cookie = set_cookie.split(';').next().unwrap().to_string();

    let dashboard = page(&app, "/app", &cookie).await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.text().contains("Source documents"));

    let (body, boundary) = multipart_body(
        "file",
        "hospital-bill.txt",
        "text/plain",
        HOSPITAL_BILL.as_bytes(),
    );
    let uploaded = app
        .send(
            Request::post("/app/documents")
                .header(header::COOKIE, &cookie)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    let document_page = location(&uploaded);
    let document_id = document_page.rsplit('/').next().unwrap().to_string();
    assert!(page(&app, &document_page, &cookie)
        .await
        .text()
        .contains("CT scan cervical spine"));

    let new_matter = page(&app, "/app/matters/new", &cookie).await.text();
    assert!(new_matter.contains(&document_id));
    let created = form(
        &app,
        "/app/matters",
        Some(&cookie),
        &format!(
            "claimant_name=Jordan+Rivera&defendant_name=Casey+Morgan&insurer_name=Granite+Mutual&incident_date=2025-03-14\
             &incident_place=Main+Street&incident_description=Ran+a+red+light&injuries=Cervical+strain&treatment=Therapy\
             &manual_specials=lost_wages+%7C+3+days+%7C+720.00&document_ids={document_id}"
        ),
    )
    .await;
    let matter_page = location(&created);
    assert!(page(&app, &matter_page, &cookie)
        .await
        .text()
        .contains("Generate demand letter"));

    let generated = form(&app, &format!("{matter_page}/letters"), Some(&cookie), "").await;
    let letter_page = location(&generated);
    let letter = page(&app, &letter_page, &cookie).await.text();
    assert!(
        letter.contains("Jordan Rivera") && letter.contains("Download PDF"),
        "{letter}"
    );
    assert!(letter.contains("revision 1 of 1"));

    let refined = form(
        &app,
        &format!("{letter_page}/refine"),
        Some(&cookie),
        "instruction=give+them+45+days",
    )
    .await;
    assert_eq!(location(&refined), letter_page);
    assert!(page(&app, &letter_page, &cookie)
        .await
        .text()
        .contains("revision 2 of 2"));

    let pdf = page(&app, &format!("{letter_page}/export/pdf"), &cookie).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    let docx = page(
        &app,
        &format!("{letter_page}/export/docx?revision=1"),
        &cookie,
    )
    .await;
    assert_eq!(docx.status, StatusCode::OK);
    assert!(docx.bytes.starts_with(b"PK"));

    let unsupported = form(
        &app,
        &format!("{letter_page}/refine"),
        Some(&cookie),
        "instruction=sing+it",
    )
    .await;
    assert_eq!(unsupported.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unsupported.text().contains("Something went wrong"));

    let firm = page(&app, "/app/firm", &cookie).await.text();
    assert!(firm.contains("Invite a colleague"));
    let invited = form(
        &app,
        "/app/invitations",
        Some(&cookie),
        "email=blake%40riverahale.test&role=member",
    )
    .await;
    assert!(invited.text().contains("/invite/accept?token="));

    let logged_out = form(&app, "/logout", Some(&cookie), "").await;
    assert_eq!(location(&logged_out), "/login");
    assert!(logged_out.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));

    let bad_login = form(
        &app,
        "/login",
        None,
        "email=avery%40riverahale.test&password=wrong+password",
    )
    .await;
    assert_eq!(bad_login.status, StatusCode::UNAUTHORIZED);
    assert!(bad_login.text().contains("invalid email or password"));

    let stale = page(&app, "/app", "steno_session=garbage").await;
    assert_eq!(location(&stale), "/login?expired=1");
}
on_both_backends!(the_whole_flow_works_in_the_browser);
