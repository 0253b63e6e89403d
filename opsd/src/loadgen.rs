//! The load generator: open-loop Steno traffic at a fixed rate (public pages and health, plus
//! signed-in API reads when it can register a firm) for demos and benchmarks, with a report of
//! status classes, errors, latency quantiles and the rate achieved.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Requests allowed to wait for an answer at once unless a spec says otherwise.
pub const DEFAULT_MAX_OUTSTANDING: usize = 256;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// What load to send where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadSpec {
    /// Base URL of the Steno to load, e.g. `http://127.0.0.1:8080`.
    pub target: String,
    /// Requests started per second, whatever the answers' latency.
    pub rps: u32,
    pub duration: Duration,
    /// Requests waiting for an answer at most; a request due while this many wait is dropped.
    pub max_outstanding: usize,
    pub request_timeout: Duration,
}

impl LoadSpec {
    pub fn new(target: impl Into<String>, rps: u32, duration: Duration) -> LoadSpec {
        LoadSpec {
            target: target.into(),
            rps,
            duration,
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// A snapshot once per second while the load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LoadProgress {
    pub sent: u64,
    /// Answers below 400.
    pub ok: u64,
    /// 5xx answers and requests that got no answer.
    pub errors: u64,
    pub dropped: u64,
    pub elapsed: Duration,
}

/// Answers by status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatusClasses {
    pub informational: u64,
    pub success: u64,
    pub redirection: u64,
    pub client_error: u64,
    pub server_error: u64,
}

/// The outcome of a load run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    pub target: String,
    pub requested_rps: u32,
    /// Requests the schedule called for.
    pub scheduled: u64,
    pub sent: u64,
    /// Requests not sent because `max_outstanding` requests were already waiting.
    pub dropped: u64,
    pub statuses: StatusClasses,
    /// Requests that got no answer (refused, reset, timed out).
    pub transport_errors: u64,
    /// 5xx answers plus transport errors.
    pub errors: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Requests answered (any status) per second of the run.
    pub achieved_rps: f64,
    pub elapsed_secs: f64,
    /// Whether a firm was registered, so signed-in routes were part of the mix.
    pub authenticated: bool,
    /// Why signed-in routes were left out, when they were.
    pub authentication_note: Option<String>,
}

/// One kind of request in the mix.
#[derive(Debug, Clone, Copy)]
struct RouteChoice {
    path: &'static str,
    signed_in: bool,
}

/// Public routes, each listed as often as its share of the mix.
const PUBLIC_ROUTES: [&str; 5] = ["/v1/health", "/login", "/v1/health", "/register", "/login"];
/// Signed-in API reads, each listed as often as its share of the mix.
const SIGNED_IN_ROUTES: [&str; 5] = [
    "/v1/documents",
    "/v1/matters",
    "/v1/me",
    "/v1/documents",
    "/v1/matters",
];

#[derive(Default)]
struct Tally {
    statuses: StatusClasses,
    transport_errors: u64,
    latencies_ms: Vec<f64>,
    last_answer: Option<Instant>,
}

impl Tally {
    fn ok(&self) -> u64 {
        self.statuses.informational + self.statuses.success + self.statuses.redirection
    }

    fn errors(&self) -> u64 {
        self.statuses.server_error + self.transport_errors
    }

    fn record(&mut self, outcome: Result<u16, ()>, latency: Duration) {
        match outcome {
            Ok(status) => {
                let class = match status {
                    100..=199 => &mut self.statuses.informational,
                    200..=299 => &mut self.statuses.success,
                    300..=399 => &mut self.statuses.redirection,
                    400..=499 => &mut self.statuses.client_error,
                    _ => &mut self.statuses.server_error,
                };
                *class += 1;
                self.latencies_ms.push(latency.as_secs_f64() * 1000.0);
            }
            Err(()) => self.transport_errors += 1,
        }
        self.last_answer = Some(Instant::now());
    }
}

/// Sends `spec.rps` requests per second for `spec.duration` on a fixed schedule, calling
/// `progress` once per second, and reports what came back.
pub async fn run_load(spec: LoadSpec, mut progress: impl FnMut(LoadProgress)) -> LoadReport {
    let base = spec.target.trim_end_matches('/').to_string();
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(spec.request_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(spec.max_outstanding)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!(error = %error, "load client could not be configured; using defaults");
            reqwest::Client::new()
        }
    };
    let (token, authentication_note) = match register_firm(&client, &base).await {
        Ok(token) => (Some(token), None),
        Err(reason) => {
            tracing::warn!(target = %base, reason = %reason, "load runs without signed-in routes");
            (None, Some(reason))
        }
    };
    let mix = route_mix(token.is_some());
    let token: Arc<str> = Arc::from(token.unwrap_or_default());
    let scheduled = if spec.rps == 0 {
        0
    } else {
        (f64::from(spec.rps) * spec.duration.as_secs_f64()).round() as u64
    };
    let tally = Arc::new(Mutex::new(Tally::default()));
    let outstanding = Arc::new(Semaphore::new(spec.max_outstanding.max(1)));
    let mut requests = JoinSet::new();
    let mut sent = 0u64;
    let mut dropped = 0u64;
    let started = Instant::now();
    let start = tokio::time::Instant::now();
    let mut next_progress = start + PROGRESS_INTERVAL;
    let snapshot = |sent: u64, dropped: u64| {
        let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
        LoadProgress {
            sent,
            ok: tally.ok(),
            errors: tally.errors(),
            dropped,
            elapsed: started.elapsed(),
        }
    };
    for index in 0..scheduled {
        let due = start + Duration::from_secs_f64(index as f64 / f64::from(spec.rps));
        while next_progress <= due {
            tokio::time::sleep_until(next_progress).await;
            progress(snapshot(sent, dropped));
            next_progress += PROGRESS_INTERVAL;
        }
        tokio::time::sleep_until(due).await;
        while requests.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&outstanding).try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        sent += 1;
        let route = mix[(index % mix.len() as u64) as usize];
        let mut request = client.get(format!("{base}{}", route.path));
        if route.signed_in {
            request = request.bearer_auth(&*token);
        }
        let tally = Arc::clone(&tally);
        requests.spawn(async move {
            let sent_at = Instant::now();
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    // Read the body so the connection can be reused; its content does not matter.
                    let _ = response.bytes().await;
                    Ok(status)
                }
                Err(_) => Err(()),
            };
            let latency = sent_at.elapsed();
            tally
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(outcome, latency);
            drop(permit);
        });
    }
    loop {
        tokio::select! {
            joined = requests.join_next() => {
                if joined.is_none() {
                    break;
                }
            }
            _ = tokio::time::sleep_until(next_progress) => {
                progress(snapshot(sent, dropped));
                next_progress += PROGRESS_INTERVAL;
            }
        }
    }
    progress(snapshot(sent, dropped));
    let Tally {
        statuses,
        transport_errors,
        latencies_ms: mut latencies,
        last_answer,
    } = std::mem::take(&mut *tally.lock().unwrap_or_else(PoisonError::into_inner));
    let elapsed = last_answer
        .map_or(Duration::ZERO, |last| {
            last.saturating_duration_since(started)
        })
        .max(spec.duration);
    let answered = latencies.len() as u64;
    latencies.sort_by(f64::total_cmp);
    LoadReport {
        target: base,
        requested_rps: spec.rps,
        scheduled,
        sent,
        dropped,
        statuses,
        transport_errors,
        errors: statuses.server_error + transport_errors,
        latency_p50_ms: quantile(&latencies, 0.50),
        latency_p95_ms: quantile(&latencies, 0.95),
        latency_p99_ms: quantile(&latencies, 0.99),
        achieved_rps: if elapsed.is_zero() {
            0.0
        } else {
            answered as f64 / elapsed.as_secs_f64()
        },
        elapsed_secs: started.elapsed().as_secs_f64(),
        authenticated: authentication_note.is_none(),
        authentication_note,
    }
}

/// Registers a throwaway firm and returns its admin's access token.
async fn register_firm(client: &reqwest::Client, base: &str) -> Result<String, String> {
    let suffix: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    let password: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let body = serde_json::json!({
        "firm_name": format!("Load Test Firm {suffix}"),
        "admin_name": "Load Tester",
        "admin_email": format!("load-{}@example.test", suffix.to_lowercase()),
        "admin_password": password,
    });
    let response = client
        .post(format!("{base}/v1/firms"))
        .json(&body)
        .send()
        .await
        .map_err(|error| format!("registering a firm failed: {error}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("registering a firm answered {status}"));
    }
    let session: serde_json::Value = response
        .json()
        .await
        .map_err(|error| format!("the registration answer was not JSON: {error}"))?;
    session
        .get("access_token")
        .and_then(|token| token.as_str())
        .map(str::to_string)
        .ok_or_else(|| "the registration answer had no access_token".to_string())
}

/// The requests to cycle through: public routes interleaved with signed-in ones when possible.
fn route_mix(signed_in: bool) -> Vec<RouteChoice> {
    let public = PUBLIC_ROUTES.iter().map(|path| RouteChoice {
        path,
        signed_in: false,
    });
    if !signed_in {
        return public.collect();
    }
    let private = SIGNED_IN_ROUTES.iter().map(|path| RouteChoice {
        path,
        signed_in: true,
    });
    public
        .zip(private)
        .flat_map(|(public, private)| [public, private])
        .collect()
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::{get, post};

    use super::*;

    #[derive(Clone, Default)]
    struct Hits {
        public: Arc<AtomicU64>,
        signed_in: Arc<AtomicU64>,
        refused: Arc<AtomicU64>,
    }

    /// A stand-in for Steno: public pages, firm registration, and bearer-token reads.
    async fn start_tiny_steno(registration_open: bool) -> (String, Hits) {
        let hits = Hits::default();
        let public = {
            let hits = hits.clone();
            move || async move {
                hits.public.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        };
        let signed_in = {
            let hits = hits.clone();
            move |headers: HeaderMap| async move {
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    == Some("Bearer load-token")
                {
                    hits.signed_in.fetch_add(1, Ordering::Relaxed);
                    (StatusCode::OK, "{}")
                } else {
                    hits.refused.fetch_add(1, Ordering::Relaxed);
                    (StatusCode::UNAUTHORIZED, "{}")
                }
            }
        };
        let register = move |axum::Json(body): axum::Json<serde_json::Value>| async move {
            let complete = ["firm_name", "admin_name", "admin_email", "admin_password"]
                .iter()
                .all(|field| body[field].as_str().is_some_and(|value| !value.is_empty()));
            if registration_open && complete {
                (
                    StatusCode::CREATED,
                    axum::Json(serde_json::json!({ "access_token": "load-token" })),
                )
            } else {
                (
                    StatusCode::FORBIDDEN,
                    axum::Json(serde_json::json!({ "error": "closed" })),
                )
            }
        };
        let app = axum::Router::new()
            .route("/v1/health", get(public.clone()))
            .route("/login", get(public.clone()))
            .route("/register", get(public))
            .route("/v1/documents", get(signed_in.clone()))
            .route("/v1/matters", get(signed_in.clone()))
            .route("/v1/me", get(signed_in))
            .route("/v1/firms", post(register));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/"), hits)
    }

    #[tokio::test]
    async fn holds_the_requested_rate_with_signed_in_routes() {
        let (target, hits) = start_tiny_steno(true).await;
        let mut updates = Vec::new();
        let report = run_load(
            LoadSpec::new(target, 200, Duration::from_secs(2)),
            |progress| updates.push(progress),
        )
        .await;
        assert!(report.authenticated, "{:?}", report.authentication_note);
        assert_eq!(report.scheduled, 400);
        assert_eq!(report.sent + report.dropped, 400);
        assert!(report.dropped <= 4, "{report:?}");
        assert_eq!(report.errors, 0, "{report:?}");
        assert_eq!(report.statuses.client_error, 0, "{report:?}");
        assert_eq!(report.statuses.success, report.sent);
        let signed_in = hits.signed_in.load(Ordering::Relaxed);
        assert_eq!(signed_in + hits.public.load(Ordering::Relaxed), report.sent);
        assert!(
            signed_in >= report.sent / 2 - 2,
            "{signed_in} signed-in reads"
        );
        assert_eq!(hits.refused.load(Ordering::Relaxed), 0);
        assert!(
            (180.0..=210.0).contains(&report.achieved_rps),
            "achieved {} rps",
            report.achieved_rps
        );
        assert!(report.elapsed_secs < 4.0, "{report:?}");
        let (p50, p99) = (
            report.latency_p50_ms.unwrap(),
            report.latency_p99_ms.unwrap(),
        );
        assert!(p50 <= p99);
        assert!(!updates.is_empty());
        assert!(updates.windows(2).all(|pair| pair[0].sent <= pair[1].sent));
        assert_eq!(updates.last().unwrap().sent, report.sent);
    }

    #[tokio::test]
    async fn falls_back_to_public_routes_and_counts_failures() {
        let (target, hits) = start_tiny_steno(false).await;
        let report = run_load(
            LoadSpec::new(target, 100, Duration::from_millis(500)),
            |_| {},
        )
        .await;
        assert!(!report.authenticated);
        assert!(report
            .authentication_note
            .as_deref()
            .unwrap()
            .contains("403"));
        assert_eq!(report.statuses.success, 50);
        assert_eq!(hits.public.load(Ordering::Relaxed), 50);
        assert_eq!(hits.signed_in.load(Ordering::Relaxed), 0);

        // Nothing listens: every request is a transport error, and none hangs.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let report = run_load(
            LoadSpec::new(format!("http://{closed}"), 50, Duration::from_millis(200)),
            |_| {},
        )
        .await;
        assert_eq!((report.sent, report.transport_errors), (10, 10));
        assert_eq!(report.errors, 10);
        assert_eq!(report.latency_p50_ms, None);
    }

    #[tokio::test]
    async fn drops_requests_beyond_the_outstanding_limit() {
        let app = axum::Router::new().fallback(|| async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            "slow"
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let mut spec = LoadSpec::new(format!("http://{addr}"), 100, Duration::from_millis(500));
        spec.max_outstanding = 5;
        let started = Instant::now();
        let report = run_load(spec, |_| {}).await;
        // Open loop: the schedule is kept and the excess dropped, not queued.
        assert_eq!(report.scheduled, 50);
        assert!(report.dropped >= 30, "{report:?}");
        assert_eq!(report.sent + report.dropped, 50);
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&values, 0.5), Some(50.0));
        assert_eq!(quantile(&values, 0.99), Some(99.0));
        assert_eq!(quantile(&values, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_mix_interleaves_signed_in_reads() {
        let mix = route_mix(true);
        assert_eq!(mix.len(), 10);
        assert!(mix.iter().step_by(2).all(|route| !route.signed_in));
        assert!(mix.iter().skip(1).step_by(2).all(|route| route.signed_in));
        assert!(route_mix(false).iter().all(|route| !route.signed_in));
    }
}
