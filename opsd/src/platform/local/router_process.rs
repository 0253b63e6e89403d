//! `opsd router`: one service's public port in a process of its own, so traffic keeps flowing on
//! the last split opsd gave it while opsd is stopped, restarted or killed (the data plane fails
//! static). opsd starts it, tells it where releases listen and how to split, and reads its
//! counters over a Unix socket in opsd's private data directory ([`super::router_fleet`]).
//!
//! invariant: the router forwards only to addresses opsd gave it; it stops on `POST /stop`, on
//! SIGTERM, or once its control socket is gone (no opsd could reach it again).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::router::{RouteConfig, TrafficRouter};
use crate::core::traffic::{SecondSample, TrafficSample};
use crate::platform::{MetricSource, PlatformError, TrafficShifter, TrafficSplit};

/// How often the router looks whether its control socket still exists.
const SOCKET_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// What `opsd router` is started with.
#[derive(Debug, Clone)]
pub struct RouterProcessOptions {
    pub service: String,
    pub listen: SocketAddr,
    /// The Unix socket opsd controls it through.
    pub control: PathBuf,
    pub excluded_paths: Vec<String>,
}

/// What `GET /health` answers: which router this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterHealth {
    pub service: String,
    pub pid: u32,
    pub public_addr: SocketAddr,
}

/// The query of `GET /samples`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SamplesQuery {
    pub release: String,
    pub from: i64,
    pub to: i64,
}

/// The query of `GET /usage`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UsageQuery {
    pub from: i64,
    pub to: i64,
}

type Upstreams = Arc<RwLock<HashMap<String, SocketAddr>>>;

#[derive(Clone)]
struct Control {
    service: String,
    router: Arc<TrafficRouter>,
    upstreams: Upstreams,
    stop: Arc<watch::Sender<bool>>,
}

/// Runs the router until it is told to stop; then lets open requests finish (up to 5 s).
pub async fn serve(options: RouterProcessOptions) -> Result<(), PlatformError> {
    let upstreams: Upstreams = Arc::new(RwLock::new(HashMap::new()));
    let resolving = Arc::clone(&upstreams);
    let resolver = move |release_id: &str| -> Option<SocketAddr> {
        resolving
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(release_id)
            .copied()
    };
    let router = TrafficRouter::bind(
        vec![RouteConfig {
            service: options.service.clone(),
            listen: options.listen,
            excluded_paths: options.excluded_paths.clone(),
        }],
        Arc::new(resolver),
    )
    .await?;
    let router = Arc::new(router);
    let listener = bind_control_socket(&options.control)?;
    let (stop, mut stopping) = watch::channel(false);
    let control = Control {
        service: options.service.clone(),
        router: Arc::clone(&router),
        upstreams,
        stop: Arc::new(stop),
    };
    let app = Router::new()
        .route("/health", get(health))
        .route("/upstreams", put(set_upstreams))
        .route("/split", put(set_split).get(current_split))
        .route("/samples", get(samples))
        .route("/stats", get(stats))
        .route("/usage", get(usage))
        .route("/stop", post(stop_router))
        .with_state(control.clone());
    let mut control_stopping = stopping.clone();
    let control_server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = control_stopping.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|error| operation_error(&options.service, "listen for SIGTERM", error))?;
    let socket_identity = file_identity(&options.control);
    tracing::info!(service = %options.service, pid = std::process::id(), control = %options.control.display(), "router process serving");
    loop {
        tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => break,
            _ = terminate.recv() => {
                tracing::info!(service = %options.service, "router got SIGTERM");
                break;
            }
            _ = tokio::time::sleep(SOCKET_CHECK_INTERVAL) => {
                if file_identity(&options.control) != socket_identity {
                    tracing::warn!(service = %options.service, control = %options.control.display(), "the control socket is gone; no opsd can reach this router, stopping");
                    break;
                }
            }
        }
    }
    control.stop.send_replace(true);
    router.shutdown().await;
    let _ = control_server.await;
    if file_identity(&options.control) == socket_identity {
        let _ = std::fs::remove_file(&options.control);
    }
    tracing::info!(service = %options.service, "router process stopped");
    Ok(())
}

/// Binds the control socket (owner-only), replacing a socket file left by a dead router.
fn bind_control_socket(path: &Path) -> Result<tokio::net::UnixListener, PlatformError> {
    let failed = |error: std::io::Error| PlatformError::Operation {
        operation: format!("listen for opsd on {}", path.display()),
        message: error.to_string(),
    };
    if let Some(dir) = path.parent() {
        crate::private_files::ensure_private_dir(dir).map_err(failed)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(failed(error)),
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(failed)?;
    crate::private_files::restrict_existing_file(path).map_err(failed)?;
    Ok(listener)
}

/// The device and inode of a file, to notice it being removed or replaced.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()))
}

fn operation_error(service: &str, operation: &str, error: impl std::fmt::Display) -> PlatformError {
    PlatformError::Operation {
        operation: format!("{operation} in the router of {service}"),
        message: error.to_string(),
    }
}

async fn health(State(control): State<Control>) -> Json<RouterHealth> {
    Json(RouterHealth {
        service: control.service.clone(),
        pid: std::process::id(),
        public_addr: control
            .router
            .public_address(&control.service)
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
    })
}

async fn set_upstreams(
    State(control): State<Control>,
    Json(upstreams): Json<HashMap<String, SocketAddr>>,
) -> StatusCode {
    *control
        .upstreams
        .write()
        .unwrap_or_else(PoisonError::into_inner) = upstreams;
    StatusCode::NO_CONTENT
}

async fn set_split(State(control): State<Control>, Json(split): Json<TrafficSplit>) -> Response {
    match control.router.set_split(&control.service, &split).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => refused(error),
    }
}

async fn current_split(State(control): State<Control>) -> Response {
    match control.router.current_split(&control.service).await {
        Ok(split) => Json(split).into_response(),
        Err(error) => refused(error),
    }
}

async fn samples(State(control): State<Control>, Query(query): Query<SamplesQuery>) -> Response {
    let samples: Result<Vec<SecondSample>, PlatformError> = control
        .router
        .samples(&control.service, &query.release, query.from, query.to)
        .await;
    match samples {
        Ok(samples) => Json(samples).into_response(),
        Err(error) => refused(error),
    }
}

async fn stats(State(control): State<Control>) -> Json<Vec<(String, TrafficSample)>> {
    Json(control.router.router_stats(&control.service))
}

async fn usage(
    State(control): State<Control>,
    Query(query): Query<UsageQuery>,
) -> Json<Vec<(String, TrafficSample)>> {
    Json(
        control
            .router
            .usage_between(&control.service, query.from, query.to),
    )
}

async fn stop_router(State(control): State<Control>) -> StatusCode {
    control.stop.send_replace(true);
    StatusCode::ACCEPTED
}

fn refused(error: PlatformError) -> Response {
    (StatusCode::CONFLICT, error.to_string()).into_response()
}
