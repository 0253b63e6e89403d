//! The web UI flow with a session cookie: register, upload, create a matter, generate, refine,
//! download, change the password, log out; plus login redirects and error pages.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::fixtures::HOSPITAL_BILL;
use crate::on_both_backends;
use crate::support::{Answer, Browser, TestApp};

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
    let mut browser = Browser::open(&app).await;

    let registered = browser
        .post_form(
            &app,
            "/register",
            "firm_name=Rivera+%26+Hale+LLP&firm_address=100+Main+Street&admin_name=Avery&admin_email=avery%40riverahale.test&admin_password=correct+horse+battery",
        )
        .await;
    assert_eq!(location(&registered), "/app");
    let set_cookie = registered.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP without STENO_PUBLIC_URL"
    );
    assert!(browser.session_cookie.is_some());

    let dashboard = browser.get(&app, "/app").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.text().contains("Source documents"));

    let uploaded = browser
        .post_multipart(
            &app,
            "/app/documents",
            "file",
            "hospital-bill.txt",
            HOSPITAL_BILL.as_bytes(),
        )
        .await;
    let document_page = location(&uploaded);
    let document_id = document_page.rsplit('/').next().unwrap().to_string();
    assert!(browser
        .get(&app, &document_page)
        .await
        .text()
        .contains("CT scan cervical spine"));

    let new_matter = browser.get(&app, "/app/matters/new").await.text();
    assert!(new_matter.contains(&document_id));
    let created = browser
        .post_form(
            &app,
            "/app/matters",
            &format!(
                "claimant_name=Jordan+Rivera&defendant_name=Casey+Morgan&insurer_name=Granite+Mutual&incident_date=2025-03-14\
                 &incident_place=Main+Street&incident_description=Ran+a+red+light&injuries=Cervical+strain&treatment=Therapy\
                 &manual_specials=lost_wages+%7C+3+days+%7C+720.00&document_ids={document_id}"
            ),
        )
        .await;
    let matter_page = location(&created);
    assert!(browser
        .get(&app, &matter_page)
        .await
        .text()
        .contains("Generate demand letter"));

    let generated = browser
        .post_form(&app, &format!("{matter_page}/letters"), "")
        .await;
    let letter_page = location(&generated);
    let letter = browser.get(&app, &letter_page).await.text();
    assert!(
        letter.contains("Jordan Rivera") && letter.contains("Download PDF"),
        "{letter}"
    );
    assert!(letter.contains("revision 1 of 1"));

    let refined = browser
        .post_form(
            &app,
            &format!("{letter_page}/refine"),
            "instruction=give+them+45+days",
        )
        .await;
    assert_eq!(location(&refined), letter_page);
    assert!(browser
        .get(&app, &letter_page)
        .await
        .text()
        .contains("revision 2 of 2"));

    let pdf = browser
        .get(&app, &format!("{letter_page}/export/pdf"))
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    let docx = browser
        .get(&app, &format!("{letter_page}/export/docx?revision=1"))
        .await;
    assert_eq!(docx.status, StatusCode::OK);
    assert!(docx.bytes.starts_with(b"PK"));

    let unsupported = browser
        .post_form(
            &app,
            &format!("{letter_page}/refine"),
            "instruction=sing+it",
        )
        .await;
    assert_eq!(unsupported.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unsupported.text().contains("Something went wrong"));

    let firm = browser.get(&app, "/app/firm").await.text();
    assert!(firm.contains("Invite a colleague"));
    let invited = browser
        .post_form(
            &app,
            "/app/invitations",
            "email=blake%40riverahale.test&role=member",
        )
        .await;
    assert!(invited.text().contains("/invite/accept?token="));

    let account = browser.get(&app, "/app/account").await.text();
    assert!(account.contains("Change your password"));
    let before_change = browser.session_cookie.clone().unwrap();
    let changed = browser
        .post_form(
            &app,
            "/app/account/password",
            "current_password=correct+horse+battery&new_password=violet+kettles+hum+at+dawn",
        )
        .await;
    assert_eq!(location(&changed), "/app/account?changed=1");
    let after_change = browser.session_cookie.clone().unwrap();
    assert_ne!(
        before_change, after_change,
        "a new session replaces the old"
    );
    let old_session = app
        .send(
            Request::get("/app")
                .header(header::COOKIE, format!("steno_session={before_change}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(location(&old_session), "/login?expired=1");

    let logged_out = browser.post_form(&app, "/logout", "").await;
    assert_eq!(location(&logged_out), "/login");
    assert!(logged_out.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let after_logout = app
        .send(
            Request::get("/app")
                .header(header::COOKIE, format!("steno_session={after_change}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        location(&after_logout),
        "/login?expired=1",
        "the logged-out session's token is revoked, not only its cookie cleared"
    );

    let bad_login = browser
        .post_form(
            &app,
            "/login",
            "email=avery%40riverahale.test&password=wrong+password",
        )
        .await;
    assert_eq!(bad_login.status, StatusCode::UNAUTHORIZED);
    assert!(bad_login.text().contains("invalid email or password"));

    let stale = app
        .send(
            Request::get("/app")
                .header(header::COOKIE, "steno_session=garbage")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(location(&stale), "/login?expired=1");
}
on_both_backends!(the_whole_flow_works_in_the_browser);
