//! What a follower answers itself: the API's reads, served from the store the leader writes
//! (the gateway, [`crate::api::gateway`], decides which requests those are). Views come from a
//! daemon made only for reading ([`Daemon::for_reading`]); the traffic splits and alarms it
//! shows are read from the platforms (on AWS, the same aliases and alarms the leader sets).
//! Services on the local platform run on the leader's host, so a follower shows no live split
//! for them.
//!
//! invariant: a follower's reader changes nothing: its store refuses every write
//! ([`Store::refusing_writes`]) and its platforms refuse every change ([`NeverActs`]).

use std::sync::Arc;

use axum::Router;

use crate::api::{self, ApiState};
use crate::config::Config;
use crate::control::Daemon;
use crate::dashboard::feed::OverviewFeed;
use crate::dashboard::sessions::Sessions;
use crate::platform::factory;
use crate::platform::fenced::{fenced, ActPermit};
use crate::platform::local::LocalPlatform;
use crate::platform::secrets::Secrets;
use crate::store::Store;

/// The permit of an instance that follows: it may never change anything on the platforms.
pub struct NeverActs;

impl ActPermit for NeverActs {
    fn may_act(&self) -> Result<(), String> {
        Err("this instance follows; only the leader changes anything".into())
    }
}

/// The API as a follower serves it: every route, reading from `store` (for `instance`) and
/// the platforms, with writes refused. Fails when no leader has written to the store yet.
pub async fn reading_api(
    config: &Config,
    store: &Store,
    secrets: &Secrets,
    instance: &str,
) -> anyhow::Result<Router> {
    // No local service is started or bound: those run on the leader's host.
    let no_local_services = LocalPlatform::start(Vec::new(), config.data_dir.join("logs")).await?;
    let platforms = fenced(
        factory::service_platforms(config, no_local_services, secrets).await,
        Arc::new(NeverActs),
    );
    let daemon =
        Daemon::for_reading(config.clone(), store.refusing_writes(instance), platforms).await?;
    // The live overview is the leader's (the gateway hands it over), so this feed never
    // publishes: with its stop signal dropped its task ends at once, and `current()` computes
    // the overview when asked.
    let (_, stop) = tokio::sync::watch::channel(false);
    let (feed, _task) = OverviewFeed::start(daemon.clone(), stop);
    Ok(api::router(ApiState {
        daemon,
        sessions: Arc::new(Sessions::new()),
        feed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TokenRole;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    const CONFIG: &str = "services:\n  steno:\n    initial_version: v1\n";
    const TOKEN: &str = "opsd_follower_test_token";

    async fn call(
        api: &Router,
        method: &str,
        path: &str,
        json: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(Body::from(json.to_string()))
            .unwrap();
        let response = api.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_follower_reads_what_the_leader_wrote_and_writes_nothing() {
        let data = tempfile::tempdir().unwrap();
        let config = Config::parse(
            "opsd.yaml",
            CONFIG,
            data.path(),
            std::path::Path::new("/usr/bin/steno"),
        )
        .unwrap();
        let store = crate::store::test_store().await;
        let too_early = reading_api(&config, &store, &Secrets::default(), "follower").await;
        assert!(
            too_early.is_err_and(|error| error.to_string().contains("no leader has written")),
            "a store no leader wrote to has nothing to read"
        );

        // What a leader writes when it starts: the fingerprint key and the stable release.
        store.fingerprint_key().await.unwrap();
        let stable = crate::platform::ReleaseSpec::new("steno", "v1");
        store
            .set_stable_release(
                "steno",
                "v1",
                &serde_json::to_value(&stable).unwrap(),
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        store
            .insert_token(
                &crate::auth::sha256_hex(TOKEN.as_bytes()),
                "ci",
                TokenRole::Operator,
            )
            .await
            .unwrap();

        let api = reading_api(&config, &store, &Secrets::default(), "follower")
            .await
            .unwrap();
        let (status, body) = call(&api, "GET", "/v1/status", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["services"][0]["stable_version"], "v1", "{body}");
        let (status, body) = call(&api, "GET", "/v1/services/steno/history", "").await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Should a change reach the reader, it is refused and nothing is written.
        let (status, body) =
            call(&api, "POST", "/v1/freeze", r#"{"reason": "release train"}"#).await;
        assert!(status.is_server_error(), "{status} {body}");
        assert!(body.to_string().contains("epoch 0"), "{body}");
        assert!(store.freezes().await.unwrap().is_empty());
    }
}
