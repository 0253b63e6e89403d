//! opsd's side of the router processes ([`super::router_process`]): one `opsd router` per
//! service, started by opsd or re-adopted from a previous opsd through its record (pid, start
//! time, listen address), told where releases listen and how to split, asked for its counters,
//! and stopped when opsd is stopped on purpose.
//!
//! invariant: a router is re-adopted only when its record's process still runs, answers on its
//! control socket for the same service, and listens where opsd.yaml says; otherwise it is
//! stopped and a new one started.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::process_records::{
    file_name_safe, read_record, remove_record, write_record, ProcessIdentity,
};
use super::router::RouteConfig;
use super::router_process::{RouterHealth, SamplesQuery, UsageQuery};
use crate::core::traffic::{SecondSample, TrafficSample};
use crate::platform::{PlatformError, TrafficSplit};

/// How long a new router process may take to answer on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// The timeout of one call to a router.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a router may take to drain and exit once told to stop.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What opsd records about a router process it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RouterRecord {
    service: String,
    listen: SocketAddr,
    excluded_paths: Vec<String>,
    process: ProcessIdentity,
    public_addr: SocketAddr,
}

/// Where the routers keep their records and sockets, and the program that runs them.
#[derive(Debug, Clone)]
pub struct RouterProcessSetup {
    /// The `opsd` executable (`opsd router ...` is run).
    pub program: PathBuf,
    /// Records and control sockets, one pair per service.
    pub state_dir: PathBuf,
    /// `router-<service>.log` for each router's output.
    pub log_dir: PathBuf,
}

/// Every service's router process.
pub struct RouterFleet {
    routers: HashMap<String, RouterHandle>,
    setup: RouterProcessSetup,
    /// Set once the fleet is stopped on purpose: no router is started again after that.
    stopping: AtomicBool,
}

struct RouterHandle {
    route: RouteConfig,
    control: PathBuf,
    record_path: PathBuf,
    /// Replaced when the router is started again after it died.
    record: Mutex<RouterRecord>,
    /// The last split sent, sent again when the release addresses change or the router is
    /// started again.
    split: Mutex<Option<TrafficSplit>>,
    /// The last release addresses sent.
    upstreams: Mutex<HashMap<String, SocketAddr>>,
}

impl RouterFleet {
    /// Re-adopts or starts the router of every route.
    pub async fn start(
        routes: Vec<RouteConfig>,
        setup: &RouterProcessSetup,
    ) -> Result<RouterFleet, PlatformError> {
        let mut routers = HashMap::new();
        for route in routes {
            if routers.contains_key(&route.service) {
                return Err(PlatformError::Operation {
                    operation: format!("start the router of {}", route.service),
                    message: "the service is configured twice".to_string(),
                });
            }
            let handle = adopt_or_start(&route, setup).await?;
            routers.insert(route.service.clone(), handle);
        }
        Ok(RouterFleet {
            routers,
            setup: setup.clone(),
            stopping: AtomicBool::new(false),
        })
    }

    /// Starts again, on the same public address, every router whose process died, and gives
    /// it the release addresses and the split it had; returns the services whose router was
    /// started again.
    pub async fn restart_dead_routers(&self) -> Vec<String> {
        let mut restarted = Vec::new();
        for (service, router) in &self.routers {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let record = router.record();
            if record.process.is_alive() {
                continue;
            }
            tracing::error!(service = %service, pid = record.process.pid, "the router process died; starting it again on the same address");
            let mut route = router.route.clone();
            route.listen = record.public_addr;
            let started = match start_router(&route, &router.control, &self.setup).await {
                Ok(started) => started,
                Err(error) => {
                    tracing::error!(service = %service, error = %error, "cannot start the router again");
                    continue;
                }
            };
            let started = RouterRecord {
                listen: router.route.listen,
                ..started
            };
            if let Err(error) = write_record(&router.record_path, &started) {
                tracing::error!(service = %service, error = %error, "cannot record the restarted router");
            }
            *lock(&router.record) = started;
            let upstreams = lock(&router.upstreams).clone();
            let split = lock(&router.split).clone();
            let mut configured = router
                .call_no_answer(Method::PUT, "/upstreams", Some(&upstreams))
                .await;
            if let (Ok(()), Some(split)) = (&configured, split) {
                configured = router
                    .call_no_answer(Method::PUT, "/split", Some(&split))
                    .await;
            }
            match configured {
                Ok(()) => restarted.push(service.clone()),
                Err(error) => {
                    tracing::error!(service = %service, error = %error, "cannot give the restarted router its split")
                }
            }
        }
        restarted
    }

    /// The bound public address of a service.
    pub fn public_address(&self, service: &str) -> Option<SocketAddr> {
        self.routers
            .get(service)
            .map(|router| router.record().public_addr)
    }

    /// Every service's bound public address.
    pub fn public_addresses(&self) -> Vec<(String, SocketAddr)> {
        let mut addresses: Vec<(String, SocketAddr)> = self
            .routers
            .iter()
            .map(|(service, router)| (service.clone(), router.record().public_addr))
            .collect();
        addresses.sort();
        addresses
    }

    /// The process id of a service's router.
    pub fn pid_of(&self, service: &str) -> Option<u32> {
        self.routers
            .get(service)
            .map(|router| router.record().process.pid)
    }

    /// Tells a service's router where its live releases listen (replacing what it knew) and
    /// sends the last split again, so a release that moved is reached where it is now.
    pub async fn set_upstreams(
        &self,
        service: &str,
        upstreams: &HashMap<String, SocketAddr>,
    ) -> Result<(), PlatformError> {
        let router = self.router("set the upstreams", service)?;
        router
            .call_no_answer(Method::PUT, "/upstreams", Some(upstreams))
            .await?;
        *lock(&router.upstreams) = upstreams.clone();
        let split = lock(&router.split).clone();
        if let Some(split) = split {
            let all_known = std::iter::once(&split.stable)
                .chain(split.canary.as_ref())
                .all(|release| upstreams.contains_key(release));
            if all_known {
                router
                    .call_no_answer(Method::PUT, "/split", Some(&split))
                    .await?;
            }
        }
        Ok(())
    }

    pub async fn set_split(
        &self,
        service: &str,
        split: &TrafficSplit,
    ) -> Result<(), PlatformError> {
        let router = self.router("set the traffic split", service)?;
        router
            .call_no_answer(Method::PUT, "/split", Some(split))
            .await?;
        *lock(&router.split) = Some(split.clone());
        Ok(())
    }

    pub async fn current_split(
        &self,
        service: &str,
    ) -> Result<Option<TrafficSplit>, PlatformError> {
        self.router("read the traffic split", service)?
            .call(Method::GET, "/split", None::<&()>)
            .await
    }

    pub async fn samples(
        &self,
        service: &str,
        release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError> {
        let query = SamplesQuery {
            release: release_id.to_string(),
            from: from_second,
            to: to_second,
        };
        let path = format!("/samples?{}", query_string(&query)?);
        self.router("read the traffic samples", service)?
            .call(Method::GET, &path, None::<&()>)
            .await
    }

    /// Each release's traffic over the last 60 seconds; empty when the router cannot be asked.
    pub async fn router_stats(&self, service: &str) -> Vec<(String, TrafficSample)> {
        let Ok(router) = self.router("read the router's statistics", service) else {
            return Vec::new();
        };
        router
            .call(Method::GET, "/stats", None::<&()>)
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(service = %service, error = %error, "cannot read the router's statistics");
                Vec::new()
            })
    }

    /// Each release's traffic over the seconds `from..to`.
    pub async fn usage_between(
        &self,
        service: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, TrafficSample)>, PlatformError> {
        let path = format!("/usage?{}", query_string(&UsageQuery { from, to })?);
        self.router("read the usage", service)?
            .call(Method::GET, &path, None::<&()>)
            .await
    }

    /// Whether the fleet has been stopped on purpose.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Stops every router (each drains its open requests first) and forgets its record.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for (service, router) in &self.routers {
            stop_router(service, &router.control, &router.record()).await;
            remove_record(&router.record_path);
        }
    }

    fn router(&self, operation: &str, service: &str) -> Result<&RouterHandle, PlatformError> {
        self.routers
            .get(service)
            .ok_or_else(|| PlatformError::Operation {
                operation: format!("{operation} of {service}"),
                message: format!("there is no router for {service}"),
            })
    }
}

impl RouterHandle {
    fn record(&self) -> RouterRecord {
        lock(&self.record).clone()
    }

    async fn call<A: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&A>,
    ) -> Result<T, PlatformError> {
        let answer = call_router(&self.control, method, path, body).await?;
        serde_json::from_slice(&answer).map_err(|error| {
            self.error(
                path,
                format!("answered something that is not the expected JSON: {error}"),
            )
        })
    }

    async fn call_no_answer<A: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&A>,
    ) -> Result<(), PlatformError> {
        call_router(&self.control, method, path, body)
            .await
            .map(|_| ())
    }

    fn error(&self, path: &str, message: String) -> PlatformError {
        PlatformError::Operation {
            operation: format!("call {path} on the router of {}", self.route.service),
            message,
        }
    }
}

/// The router of `route` from a previous opsd if it is still the right one, else a new one.
async fn adopt_or_start(
    route: &RouteConfig,
    setup: &RouterProcessSetup,
) -> Result<RouterHandle, PlatformError> {
    let name = file_name_safe(&route.service);
    let record_path = setup.state_dir.join(format!("{name}.json"));
    let control = setup.state_dir.join(format!("{name}.sock"));
    if let Some(record) = read_record::<RouterRecord>(&record_path) {
        if record.process.is_alive() {
            let same_route =
                record.listen == route.listen && record.excluded_paths == route.excluded_paths;
            let health: Result<RouterHealth, PlatformError> =
                call_router_json(&control, Method::GET, "/health").await;
            match health {
                Ok(health)
                    if same_route
                        && health.service == route.service
                        && health.pid == record.process.pid =>
                {
                    tracing::info!(service = %route.service, pid = health.pid, addr = %health.public_addr, "re-adopted the router left running by the previous opsd");
                    let split = call_router_json(&control, Method::GET, "/split")
                        .await
                        .unwrap_or(None);
                    return Ok(RouterHandle {
                        route: route.clone(),
                        control,
                        record_path,
                        record: Mutex::new(record),
                        split: Mutex::new(split),
                        upstreams: Mutex::new(HashMap::new()),
                    });
                }
                _ => {
                    tracing::warn!(service = %route.service, pid = record.process.pid, "the router left running is not the one opsd.yaml asks for; replacing it");
                    stop_router(&route.service, &control, &record).await;
                }
            }
        }
        remove_record(&record_path);
    }
    let record = start_router(route, &control, setup).await?;
    write_record(&record_path, &record).map_err(|error| PlatformError::Operation {
        operation: format!("record the router of {}", route.service),
        message: format!("{}: {error}", record_path.display()),
    })?;
    Ok(RouterHandle {
        route: route.clone(),
        control,
        record_path,
        record: Mutex::new(record),
        split: Mutex::new(None),
        upstreams: Mutex::new(HashMap::new()),
    })
}

/// Starts `opsd router` for `route` in a process group of its own (so a Ctrl-C at opsd's
/// terminal does not reach it) and waits until it answers on `control`.
async fn start_router(
    route: &RouteConfig,
    control: &Path,
    setup: &RouterProcessSetup,
) -> Result<RouterRecord, PlatformError> {
    let failed = |message: String| PlatformError::Operation {
        operation: format!("start the router of {}", route.service),
        message,
    };
    crate::private_files::ensure_private_dir(&setup.log_dir)
        .map_err(|error| failed(format!("{}: {error}", setup.log_dir.display())))?;
    let log_path = setup
        .log_dir
        .join(format!("router-{}.log", file_name_safe(&route.service)));
    let log = crate::private_files::open_private_append(&log_path)
        .map_err(|error| failed(format!("{}: {error}", log_path.display())))?;
    let log_for_stderr = log
        .try_clone()
        .map_err(|error| failed(format!("{}: {error}", log_path.display())))?;
    let mut command = std::process::Command::new(&setup.program);
    command
        .arg("router")
        .arg("--service")
        .arg(&route.service)
        .arg("--listen")
        .arg(route.listen.to_string())
        .arg("--control")
        .arg(control);
    for path in &route.excluded_paths {
        command.arg("--exclude").arg(path);
    }
    command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_for_stderr);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|error| failed(format!("cannot run {}: {error}", setup.program.display())))?;
    let pid = child.id();
    let process = ProcessIdentity::of(pid)
        .ok_or_else(|| failed(format!("it exited at once; see {}", log_path.display())))?;
    // Reaps the router whenever it exits, for as long as this opsd runs.
    let (exited_sender, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let status = child.wait();
        let _ = exited_sender.send(status);
    });
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(status) = exited.try_recv() {
            let status = status.map_or_else(|error| error.to_string(), |status| status.to_string());
            return Err(failed(format!(
                "it exited ({status}); last lines of {}:\n{}",
                log_path.display(),
                log_tail(&log_path)
            )));
        }
        if let Ok(health) = call_router_json::<RouterHealth>(control, Method::GET, "/health").await
        {
            if health.pid == pid {
                tracing::info!(service = %route.service, pid, addr = %health.public_addr, log = %log_path.display(), "router process started");
                return Ok(RouterRecord {
                    service: route.service.clone(),
                    listen: route.listen,
                    excluded_paths: route.excluded_paths.clone(),
                    process,
                    public_addr: health.public_addr,
                });
            }
        }
        if tokio::time::Instant::now() >= deadline {
            process.stop(Duration::ZERO).await;
            return Err(failed(format!(
                "it did not answer on {} within {} s; last lines of {}:\n{}",
                control.display(),
                START_TIMEOUT.as_secs(),
                log_path.display(),
                log_tail(&log_path)
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks a router to stop (it drains first), then makes sure its process is gone.
async fn stop_router(service: &str, control: &Path, record: &RouterRecord) {
    if !record.process.is_alive() {
        return;
    }
    if let Err(error) = call_router(control, Method::POST, "/stop", None::<&()>).await {
        tracing::warn!(service = %service, error = %error, "cannot ask the router to stop; signalling it");
        record.process.signal_group(libc::SIGTERM);
    }
    if !record.process.stop_after(STOP_GRACE).await {
        tracing::error!(service = %service, pid = record.process.pid, "the router did not stop");
    } else {
        tracing::info!(service = %service, pid = record.process.pid, "router process stopped");
    }
}

/// Stops the router processes recorded in `state_dir` without an opsd running (`opsd down`);
/// returns the services whose router was stopped.
pub async fn stop_recorded_routers(state_dir: &Path) -> Vec<String> {
    let mut stopped = Vec::new();
    for (path, record) in super::process_records::read_records::<RouterRecord>(state_dir) {
        let control = path.with_extension("sock");
        if record.process.is_alive() {
            stop_router(&record.service, &control, &record).await;
            stopped.push(record.service.clone());
        }
        remove_record(&path);
    }
    stopped
}

async fn call_router_json<T: DeserializeOwned>(
    control: &Path,
    method: Method,
    path: &str,
) -> Result<T, PlatformError> {
    let answer = call_router(control, method, path, None::<&()>).await?;
    serde_json::from_slice(&answer).map_err(|error| PlatformError::Operation {
        operation: format!("call {path} on the router at {}", control.display()),
        message: format!("the answer is not the expected JSON: {error}"),
    })
}

/// One HTTP request to a router's control socket; the body of a 2xx answer.
async fn call_router<A: Serialize>(
    control: &Path,
    method: Method,
    path: &str,
    body: Option<&A>,
) -> Result<Bytes, PlatformError> {
    let failed = |message: String| PlatformError::Operation {
        operation: format!("call {path} on the router at {}", control.display()),
        message,
    };
    let body = match body {
        Some(body) => Bytes::from(
            serde_json::to_vec(body).map_err(|error| failed(format!("cannot encode: {error}")))?,
        ),
        None => Bytes::new(),
    };
    let exchange = async {
        let stream = tokio::net::UnixStream::connect(control)
            .await
            .map_err(|error| failed(error.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|error| failed(error.to_string()))?;
        let driver = tokio::spawn(connection);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "router")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|error| failed(error.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| failed(error.to_string()))?;
        let status = response.status();
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|error| failed(error.to_string()))?
            .to_bytes();
        driver.abort();
        if status == StatusCode::CONFLICT {
            return Err(failed(String::from_utf8_lossy(&answer).into_owned()));
        }
        if !status.is_success() {
            return Err(failed(format!(
                "answered {status}: {}",
                String::from_utf8_lossy(&answer)
            )));
        }
        Ok(answer)
    };
    tokio::time::timeout(CALL_TIMEOUT, exchange)
        .await
        .map_err(|_| failed(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))?
}

fn query_string<T: Serialize>(query: &T) -> Result<String, PlatformError> {
    encode_query(query).map_err(|message| PlatformError::Operation {
        operation: "encode a router query".to_string(),
        message,
    })
}

/// `key=value&...` of a flat JSON object, values percent-encoded.
fn encode_query<T: Serialize>(query: &T) -> Result<String, String> {
    let value = serde_json::to_value(query).map_err(|error| error.to_string())?;
    let object = value
        .as_object()
        .ok_or_else(|| "a query is not an object".to_string())?;
    let pairs: Vec<String> = object
        .iter()
        .map(|(key, value)| {
            let text = match value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            format!("{key}={}", percent_encode(&text))
        })
        .collect();
    Ok(pairs.join("&"))
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
