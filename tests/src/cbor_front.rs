//! The CBOR front: a loopback HTTP server in front of `moto_server` that lets the Rust CloudWatch
//! SDK (Smithy RPC v2 CBOR) talk to moto (which only speaks CloudWatch's JSON 1.0 protocol), and
//! passes every other request through to moto unchanged.
//!
//! This is schema-free test support code. It does not know the CloudWatch model: it translates
//! values by their CBOR/JSON types and, where JSON loses information the SDK's strict CBOR decoder
//! needs, by the *name* of the member that holds them. Every heuristic is listed here; if a new
//! CloudWatch operation fails to decode through the front, this list is the place to extend.
//!
//! # Routing
//!
//! - A request whose path is `/service/<target>/operation/<Operation>` is an RPC v2 CBOR call. Its
//!   body (empty means `{}`, `Content-Encoding: gzip` is inflated) is decoded to JSON and sent to
//!   moto as `POST /` with `Content-Type: application/x-amz-json-1.0` and
//!   `X-Amz-Target: <target>.<Operation>`. The other request headers are kept (moto reads the
//!   service and region from the `Authorization` credential scope), except `Host`,
//!   `Content-Length`, `Content-Encoding`, `Accept`, `smithy-protocol` and hop-by-hop headers.
//!   moto's answer, success or error, keeps its HTTP status and headers (among them
//!   `x-amzn-query-error`, which the SDK reads the error code from), gets
//!   `smithy-protocol: rpc-v2-cbor` and `content-type: application/cbor`, and its JSON body is
//!   re-encoded as CBOR (an empty body becomes the empty map).
//! - Every other request (Lambda restJson, CloudFront restXml, SNS query, moto's own
//!   `/moto-api/...`) is forwarded as is: method, path and query, headers except `Host`,
//!   `Content-Length`, `Expect` and hop-by-hop headers, body. moto's response comes back as is,
//!   without hop-by-hop headers. Redirects are not followed.
//! - When the front itself fails (moto unreachable, a body that is not CBOR, an answer that is
//!   not JSON), a CBOR call gets a CBOR error map whose `__type` is [`FRONT_ERROR_CODE`] and a
//!   pass-through call gets `502 Bad Gateway` with a plain-text explanation.
//!
//! # Request log
//!
//! Every request the front forwards to moto is recorded in a [`RequestLog`], in the order the
//! front forwards them, as a [`ForwardedRequest`] (service hint, action), so tests can check
//! which AWS calls happened and in what order:
//!
//! - query protocol (RDS, SNS, IAM): the `Action` field of the form body (or of the query string);
//! - JSON and RPC v2 CBOR protocols: the operation of the `X-Amz-Target` header (the part after
//!   the last `.`); its service prefix is the service hint;
//! - REST protocols (Lambda, CloudFront) and moto's own API: `METHOD path`, without the query.
//!
//! The service hint is the service of the `Authorization` header's credential scope (`rds`,
//! `lambda`, `monitoring`, …), else the `X-Amz-Target` prefix, `moto-api` for moto's own API,
//! and empty when the request names none.
//! Requests the front answers itself without forwarding (a body it cannot read or translate)
//! are not recorded. Recording never changes what is forwarded.
//!
//! # CBOR request → JSON
//!
//! - Tag 1 (epoch-seconds timestamp) → a JSON number of epoch seconds: an integer when the value
//!   is whole, otherwise a fraction. moto truncates fractional seconds when it stores data points.
//! - Byte strings → standard base64 strings, which is how JSON 1.0 carries blobs.
//! - Integers → JSON integers; floats → JSON numbers, except NaN and ±infinity, which become the
//!   strings `"NaN"`, `"Infinity"` and `"-Infinity"` (the JSON protocols' spelling).
//! - Any other tag is dropped and its content converted; undefined and other simple values become
//!   `null`; map keys that are not text are turned into their JSON text.
//!
//! # JSON response → CBOR
//!
//! - Integers stay CBOR integers; numbers with a fraction or an exponent (serde_json `is_f64`)
//!   become float64 (the SDK's `double()` rejects integers). Floats are always written as
//!   float64, never shortened to float16/float32.
//! - Timestamps, by member name: members named `…Timestamp` or `…Timestamps` (e.g. `Timestamps` in
//!   `GetMetricData` results, `StateUpdatedTimestamp`, `StateTransitionedTimestamp`,
//!   `AlarmConfigurationUpdatedTimestamp`, `Timestamp` of a datapoint), and the CloudWatch output
//!   members `StartTime`, `EndTime`, `StartDate`, `ExpireDate`, `LastModified`, `CreationDate`,
//!   `LastUpdateDate`, `CreatedAt`, `UpdatedAt`, become tag 1 with a float64 epoch-seconds value.
//!   moto 5.2.5 sends numbers here (whole seconds in `GetMetricData`/`GetMetricStatistics`,
//!   milliseconds as a fraction for alarms); ISO-8601 / RFC 3339 strings and HTTP dates are
//!   accepted too. A list under such a member converts each element.
//! - Doubles, by member name: `Threshold`, `Values`, `Average`, `Maximum`, `Minimum`,
//!   `SampleCount`, `Sum`, `AggregateValue`, `ApproximateAggregateValue`, `ApproximateValue`,
//!   `MaxContributorValue`, `UniqueContributors` and the values of the `ExtendedStatistics` map are
//!   written as float64 even when moto sends a whole number (these are exactly the CloudWatch
//!   output members the SDK decodes with `double()`; none of these names is an integer member).
//! - Blobs, by member name: `MetricWidgetImage` (the only CloudWatch output blob) is base64-decoded
//!   into a byte string. Every other string stays text.
//! - Errors: moto's `{"__type": "GraniteServiceVersion20100801#ResourceNotFound", "message": …}`
//!   becomes the CBOR map with the same keys and the same HTTP status; the SDK strips the namespace
//!   before `#`, so `ProvideErrorMetadata::code()` is `ResourceNotFound`.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_types::date_time::{DateTime, Format};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use ciborium::value::{Integer, Value as Cbor};
use serde_json::{Map, Number, Value as Json};

/// The error code the front answers a CBOR call with when it cannot translate it (as opposed to
/// an error moto reported).
pub const FRONT_ERROR_CODE: &str = "CborFrontTranslationFailure";

/// The largest request body the front buffers (Lambda code uploads pass through it).
const MAX_REQUEST_BODY_BYTES: usize = 256 * 1024 * 1024;

/// How long the front waits for moto to answer one request.
const MOTO_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Headers that describe one connection, not the message; never forwarded in either direction.
const HOP_BY_HOP_HEADERS: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
];

/// Output members the SDK decodes as timestamps although their names do not end in `Timestamp`.
const TIMESTAMP_MEMBERS: [&str; 9] = [
    "StartTime",
    "EndTime",
    "StartDate",
    "ExpireDate",
    "LastModified",
    "CreationDate",
    "LastUpdateDate",
    "CreatedAt",
    "UpdatedAt",
];

/// Output members the SDK decodes with `double()` (or lists of doubles).
const DOUBLE_MEMBERS: [&str; 12] = [
    "Threshold",
    "Values",
    "Average",
    "Maximum",
    "Minimum",
    "SampleCount",
    "Sum",
    "AggregateValue",
    "ApproximateAggregateValue",
    "ApproximateValue",
    "MaxContributorValue",
    "UniqueContributors",
];

/// Output maps whose values the SDK decodes with `double()`.
const DOUBLE_VALUED_MAPS: [&str; 1] = ["ExtendedStatistics"];

/// Output members the SDK decodes as blobs.
const BLOB_MEMBERS: [&str; 1] = ["MetricWidgetImage"];

/// A request or response body the front could not translate, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationError {
    pub message: String,
}

impl TranslationError {
    fn new(message: impl Into<String>) -> TranslationError {
        TranslationError {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for TranslationError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.message)
    }
}

impl std::error::Error for TranslationError {}

/// One request the front forwarded to moto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    /// The AWS service as far as the request tells: its signing name (`rds`, `sns`, `lambda`,
    /// `monitoring`), else the `X-Amz-Target` prefix, `moto-api` for moto's own API, empty when
    /// it names none.
    pub service: String,
    /// The operation (`CreateDBSnapshot`, `DescribeAlarms`) or, for REST calls, `METHOD path`.
    pub action: String,
}

/// The requests a front forwarded, in order. Cloning shares the log.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<Vec<ForwardedRequest>>>,
}

impl RequestLog {
    /// Appends one forwarded request.
    pub fn record(&self, request: ForwardedRequest) {
        self.lock().push(request);
    }

    /// Every request recorded since the start or the last [`RequestLog::clear`], oldest first.
    pub fn entries(&self) -> Vec<ForwardedRequest> {
        self.lock().clone()
    }

    /// The actions of [`RequestLog::entries`], oldest first.
    pub fn actions(&self) -> Vec<String> {
        self.lock()
            .iter()
            .map(|request| request.action.clone())
            .collect()
    }

    /// Forgets every recorded request.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ForwardedRequest>> {
        // A panic while holding the lock cannot leave the list half-written; keep using it.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Starts the front on 127.0.0.1 with a port picked by the operating system, forwarding to
/// `moto_url` (such as `http://127.0.0.1:40123`). Returns the address it listens on and the task
/// serving it; aborting the task stops the front.
pub async fn start_cbor_front(
    moto_url: String,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    start_logged_cbor_front(moto_url, RequestLog::default()).await
}

/// Like [`start_cbor_front`], recording every forwarded request in `log`.
pub async fn start_logged_cbor_front(
    moto_url: String,
    log: RequestLog,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let router = logged_cbor_front_router(moto_url, log)?;
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let address = listener.local_addr()?;
    let serving = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            eprintln!("the CBOR front on {address} stopped: {error}");
        }
    });
    Ok((address, serving))
}

/// The front as an axum router (no I/O until served), forwarding to `moto_url`.
pub fn cbor_front_router(moto_url: String) -> std::io::Result<axum::Router> {
    logged_cbor_front_router(moto_url, RequestLog::default())
}

/// Like [`cbor_front_router`], recording every forwarded request in `log`.
pub fn logged_cbor_front_router(
    moto_url: String,
    log: RequestLog,
) -> std::io::Result<axum::Router> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(MOTO_REQUEST_TIMEOUT)
        .build()
        .map_err(|error| {
            std::io::Error::other(format!("could not build the HTTP client for moto: {error}"))
        })?;
    let front = Arc::new(Front {
        moto_url: moto_url.trim_end_matches('/').to_string(),
        client,
        log,
    });
    Ok(axum::Router::new().fallback(handle).with_state(front))
}

/// Where the front forwards to, and how.
struct Front {
    moto_url: String,
    client: reqwest::Client,
    log: RequestLog,
}

/// `(target, operation)` of an RPC v2 CBOR path `/service/<target>/operation/<operation>`.
pub fn rpc_v2_cbor_operation(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/service/")?;
    let (target, operation) = rest.split_once("/operation/")?;
    let valid = |name: &str| !name.is_empty() && !name.contains('/');
    (valid(target) && valid(operation)).then_some((target, operation))
}

async fn handle(State(front): State<Arc<Front>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let cbor_operation = rpc_v2_cbor_operation(parts.uri.path())
        .map(|(target, operation)| (target.to_string(), operation.to_string()));
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            let message = format!("the front could not read the request body: {error}");
            return match cbor_operation {
                Some(_) => cbor_front_error(StatusCode::BAD_REQUEST, &message),
                None => plain_text(StatusCode::BAD_REQUEST, message),
            };
        }
    };
    match cbor_operation {
        Some((target, operation)) => {
            front
                .forward_cbor_call(&target, &operation, &parts.headers, body)
                .await
        }
        None => front.pass_through(parts, body).await,
    }
}

impl Front {
    /// Sends an RPC v2 CBOR call to moto as JSON 1.0 and translates the answer back.
    async fn forward_cbor_call(
        &self,
        target: &str,
        operation: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Response {
        let body = match inflate_if_gzipped(headers, body) {
            Ok(body) => body,
            Err(error) => return cbor_front_error(StatusCode::BAD_REQUEST, &error.message),
        };
        let json_request = match cbor_request_body_to_json(&body) {
            Ok(json) => json,
            Err(error) => {
                let message = format!("{operation}: {error}");
                return cbor_front_error(StatusCode::BAD_REQUEST, &message);
            }
        };
        let mut forwarded_headers = without_headers(
            headers,
            &[
                "host",
                "content-length",
                "content-type",
                "content-encoding",
                "accept",
                "smithy-protocol",
                "expect",
                "x-amz-target",
            ],
        );
        forwarded_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        let amz_target = format!("{target}.{operation}");
        match HeaderValue::from_str(&amz_target) {
            Ok(value) => {
                forwarded_headers.insert(HeaderName::from_static("x-amz-target"), value);
            }
            Err(_) => {
                let message = format!("the target {amz_target:?} is not a valid header value");
                return cbor_front_error(StatusCode::BAD_REQUEST, &message);
            }
        }
        self.log.record(ForwardedRequest {
            service: credential_scope_service(headers).unwrap_or_else(|| target.to_string()),
            action: operation.to_string(),
        });
        let answer = self
            .client
            .post(format!("{}/", self.moto_url))
            .headers(forwarded_headers)
            .body(json_request.to_string())
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let message = format!(
                    "moto at {} did not answer {amz_target}: {error}; is moto_server still running?",
                    self.moto_url
                );
                return cbor_front_error(StatusCode::BAD_GATEWAY, &message);
            }
        };
        let status = answer.status();
        let moto_headers = answer.headers().clone();
        let moto_body = match answer.bytes().await {
            Ok(body) => body,
            Err(error) => {
                let message = format!("reading moto's answer to {amz_target} failed: {error}");
                return cbor_front_error(StatusCode::BAD_GATEWAY, &message);
            }
        };
        let cbor_body = match json_response_body_to_cbor(&moto_body) {
            Ok(cbor) => cbor,
            Err(error) => {
                let status = if status.is_success() {
                    StatusCode::BAD_GATEWAY
                } else {
                    status
                };
                let message = format!(
                    "moto answered {amz_target} with HTTP {} and a body the front cannot \
                     translate ({error}); moto may not implement this operation. Body: {}",
                    status.as_u16(),
                    excerpt(&moto_body)
                );
                return cbor_front_error(status, &message);
            }
        };
        let mut response = Response::new(Body::from(cbor_body));
        *response.status_mut() = status;
        *response.headers_mut() = without_headers(
            &moto_headers,
            &["content-type", "content-length", "content-encoding"],
        );
        insert_cbor_protocol_headers(response.headers_mut());
        response
    }

    /// Forwards a request to moto unchanged and returns moto's response unchanged.
    async fn pass_through(&self, parts: axum::http::request::Parts, body: Bytes) -> Response {
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|path_and_query| path_and_query.as_str())
            .unwrap_or("/");
        let url = format!("{}{path_and_query}", self.moto_url);
        let headers = without_headers(&parts.headers, &["host", "content-length", "expect"]);
        self.log.record(describe_pass_through(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
        ));
        let answer = self
            .client
            .request(parts.method.clone(), &url)
            .headers(headers)
            .body(body)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                let message = format!(
                    "the CBOR front could not forward {} {path_and_query} to moto at {}: {error}; \
                     is moto_server still running?",
                    parts.method, self.moto_url
                );
                return plain_text(StatusCode::BAD_GATEWAY, message);
            }
        };
        let status = answer.status();
        let headers = without_headers(answer.headers(), &[]);
        let body = match answer.bytes().await {
            Ok(body) => body,
            Err(error) => {
                let message = format!("reading moto's answer to {path_and_query} failed: {error}");
                return plain_text(StatusCode::BAD_GATEWAY, message);
            }
        };
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// The service and action of a request the front passes through unchanged (see "Request log"
/// in the module documentation).
pub fn describe_pass_through(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> ForwardedRequest {
    let path = uri.path();
    let signed_service = credential_scope_service(headers);
    if path.starts_with("/moto-api") {
        return ForwardedRequest {
            service: "moto-api".into(),
            action: format!("{method} {path}"),
        };
    }
    if let Some(target) = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
    {
        let (prefix, operation) = target.rsplit_once('.').unwrap_or(("", target));
        return ForwardedRequest {
            service: signed_service.unwrap_or_else(|| prefix.to_string()),
            action: operation.to_string(),
        };
    }
    let action = uri
        .query()
        .and_then(|query| form_field(query.as_bytes(), "Action"))
        .or_else(|| form_body_action(headers, body));
    ForwardedRequest {
        service: signed_service.unwrap_or_default(),
        action: action.unwrap_or_else(|| format!("{method} {path}")),
    }
}

/// The service of a SigV4 `Authorization` header's credential scope
/// (`Credential=<key>/<date>/<region>/<service>/aws4_request`).
pub fn credential_scope_service(headers: &HeaderMap) -> Option<String> {
    let authorization = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let credential = authorization
        .split([' ', ','])
        .find_map(|part| part.trim().strip_prefix("Credential="))?;
    let scope: Vec<&str> = credential.split('/').collect();
    match scope.as_slice() {
        [.., service, "aws4_request"] if !service.is_empty() => Some((*service).to_string()),
        _ => None,
    }
}

/// The `Action` of a form-encoded (query protocol) body, inflated first when gzipped.
fn form_body_action(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("x-www-form-urlencoded"));
    if !is_form {
        return None;
    }
    let body = inflate_if_gzipped(headers, Bytes::copy_from_slice(body)).ok()?;
    form_field(&body, "Action")
}

/// The decoded value of `name` in `a=1&b=2` form encoding.
fn form_field(form: &[u8], name: &str) -> Option<String> {
    form.split(|byte| *byte == b'&').find_map(|pair| {
        let (key, value) = match pair.iter().position(|byte| *byte == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &[][..]),
        };
        (percent_decoded(key) == name).then(|| percent_decoded(value))
    })
}

/// Form decoding: `+` is a space and `%XX` a byte; malformed escapes stay as they are.
fn percent_decoded(text: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        match text[index] {
            b'+' => bytes.push(b' '),
            b'%' => {
                let escaped = text
                    .get(index + 1..index + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok());
                if let Some(byte) = escaped {
                    bytes.push(byte);
                    index += 2;
                } else {
                    bytes.push(b'%');
                }
            }
            byte => bytes.push(byte),
        }
        index += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A copy of `headers` without hop-by-hop headers and without the `also_dropped` names
/// (lower case).
fn without_headers(headers: &HeaderMap, also_dropped: &[&str]) -> HeaderMap {
    let mut kept = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let name_text = name.as_str();
        if HOP_BY_HOP_HEADERS.contains(&name_text) || also_dropped.contains(&name_text) {
            continue;
        }
        kept.append(name.clone(), value.clone());
    }
    kept
}

fn insert_cbor_protocol_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/cbor"),
    );
    headers.insert(
        HeaderName::from_static("smithy-protocol"),
        HeaderValue::from_static("rpc-v2-cbor"),
    );
}

/// A CBOR error map the SDK reads as error code [`FRONT_ERROR_CODE`] with `message`.
fn cbor_front_error(status: StatusCode, message: &str) -> Response {
    let error = Cbor::Map(vec![
        (
            Cbor::Text("__type".into()),
            Cbor::Text(FRONT_ERROR_CODE.into()),
        ),
        (Cbor::Text("message".into()), Cbor::Text(message.into())),
    ]);
    let mut response = Response::new(Body::from(encode_cbor(&error)));
    *response.status_mut() = status;
    insert_cbor_protocol_headers(response.headers_mut());
    response
}

fn plain_text(status: StatusCode, message: String) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The start of a body, as text, for error messages.
fn excerpt(body: &[u8]) -> String {
    const LIMIT: usize = 300;
    let text = String::from_utf8_lossy(body);
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.into_owned(),
    }
}

/// The body inflated when `Content-Encoding` says gzip (the SDK compresses large
/// `PutMetricData` requests), else unchanged.
fn inflate_if_gzipped(headers: &HeaderMap, body: Bytes) -> Result<Bytes, TranslationError> {
    let gzipped = headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|encoding| encoding.trim().eq_ignore_ascii_case("gzip"));
    if !gzipped {
        return Ok(body);
    }
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut inflated)
        .map_err(|error| {
            TranslationError::new(format!(
                "the request says Content-Encoding: gzip but its body does not inflate: {error}"
            ))
        })?;
    Ok(Bytes::from(inflated))
}

// ---------------------------------------------------------------------------------------------
// CBOR request → JSON

/// Decodes an RPC v2 CBOR request body into the JSON 1.0 body moto expects; empty means `{}`.
pub fn cbor_request_body_to_json(body: &[u8]) -> Result<Json, TranslationError> {
    if body.is_empty() {
        return Ok(Json::Object(Map::new()));
    }
    let value: Cbor = ciborium::de::from_reader(body).map_err(|error| {
        TranslationError::new(format!("the request body is not valid CBOR: {error}"))
    })?;
    Ok(cbor_to_json(&value))
}

/// Converts a CBOR value to JSON by its types (see the module documentation).
pub fn cbor_to_json(value: &Cbor) -> Json {
    match value {
        Cbor::Integer(integer) => integer_to_json(i128::from(*integer)),
        Cbor::Float(float) => float_to_json(*float),
        Cbor::Bytes(bytes) => Json::String(aws_smithy_types::base64::encode(bytes)),
        Cbor::Text(text) => Json::String(text.clone()),
        Cbor::Bool(flag) => Json::Bool(*flag),
        Cbor::Null => Json::Null,
        Cbor::Tag(1, epoch_seconds) => epoch_seconds_to_json(epoch_seconds),
        Cbor::Tag(_, content) => cbor_to_json(content),
        Cbor::Array(items) => Json::Array(items.iter().map(cbor_to_json).collect()),
        Cbor::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| (map_key_text(key), cbor_to_json(value)))
                .collect(),
        ),
        _ => Json::Null,
    }
}

fn integer_to_json(integer: i128) -> Json {
    if let Ok(signed) = i64::try_from(integer) {
        Json::Number(signed.into())
    } else if let Ok(unsigned) = u64::try_from(integer) {
        Json::Number(unsigned.into())
    } else {
        float_to_json(integer as f64)
    }
}

fn float_to_json(float: f64) -> Json {
    match Number::from_f64(float) {
        Some(number) => Json::Number(number),
        None if float.is_nan() => Json::String("NaN".into()),
        None if float > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

/// The content of a tag 1 timestamp as a JSON number of epoch seconds: whole seconds as an
/// integer, otherwise with their fraction.
fn epoch_seconds_to_json(content: &Cbor) -> Json {
    match content {
        Cbor::Float(seconds) if seconds.fract() == 0.0 && seconds.abs() < 9.0e15 => {
            Json::Number((*seconds as i64).into())
        }
        other => cbor_to_json(other),
    }
}

fn map_key_text(key: &Cbor) -> String {
    match key {
        Cbor::Text(text) => text.clone(),
        other => cbor_to_json(other).to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON response → CBOR

/// Re-encodes moto's JSON 1.0 answer as an RPC v2 CBOR body; an empty body becomes `{}`.
pub fn json_response_body_to_cbor(body: &[u8]) -> Result<Vec<u8>, TranslationError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(encode_cbor(&Cbor::Map(Vec::new())));
    }
    let json: Json = serde_json::from_slice(body)
        .map_err(|error| TranslationError::new(format!("the answer is not JSON: {error}")))?;
    Ok(encode_cbor(&json_to_cbor(&json)))
}

/// How a member's value is encoded, decided by the member's name (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberKind {
    Timestamp,
    Double,
    DoubleValuedMap,
    Blob,
    Untyped,
}

fn member_kind(name: &str) -> MemberKind {
    if name.ends_with("Timestamp")
        || name.ends_with("Timestamps")
        || TIMESTAMP_MEMBERS.contains(&name)
    {
        MemberKind::Timestamp
    } else if DOUBLE_MEMBERS.contains(&name) {
        MemberKind::Double
    } else if DOUBLE_VALUED_MAPS.contains(&name) {
        MemberKind::DoubleValuedMap
    } else if BLOB_MEMBERS.contains(&name) {
        MemberKind::Blob
    } else {
        MemberKind::Untyped
    }
}

/// Converts a JSON value to CBOR, using member names for timestamps, doubles and blobs (see the
/// module documentation).
pub fn json_to_cbor(value: &Json) -> Cbor {
    json_member_to_cbor(value, MemberKind::Untyped)
}

fn json_member_to_cbor(value: &Json, kind: MemberKind) -> Cbor {
    match (kind, value) {
        (_, Json::Null) => Cbor::Null,
        (_, Json::Array(items)) => Cbor::Array(
            items
                .iter()
                .map(|item| json_member_to_cbor(item, kind))
                .collect(),
        ),
        (MemberKind::DoubleValuedMap, Json::Object(members)) => Cbor::Map(
            members
                .iter()
                .map(|(name, value)| {
                    (
                        Cbor::Text(name.clone()),
                        json_member_to_cbor(value, MemberKind::Double),
                    )
                })
                .collect(),
        ),
        (_, Json::Object(members)) => Cbor::Map(
            members
                .iter()
                .map(|(name, value)| {
                    (
                        Cbor::Text(name.clone()),
                        json_member_to_cbor(value, member_kind(name)),
                    )
                })
                .collect(),
        ),
        (MemberKind::Timestamp, Json::Number(number)) => match number.as_f64() {
            Some(seconds) => epoch_seconds_to_cbor(seconds),
            None => untyped_json_to_cbor(value),
        },
        (MemberKind::Timestamp, Json::String(text)) => match parse_timestamp_text(text) {
            Some(seconds) => epoch_seconds_to_cbor(seconds),
            None => Cbor::Text(text.clone()),
        },
        (MemberKind::Double, Json::Number(number)) => match number.as_f64() {
            Some(float) => Cbor::Float(float),
            None => untyped_json_to_cbor(value),
        },
        (MemberKind::Double, Json::String(text)) => match text.as_str() {
            "NaN" => Cbor::Float(f64::NAN),
            "Infinity" => Cbor::Float(f64::INFINITY),
            "-Infinity" => Cbor::Float(f64::NEG_INFINITY),
            _ => Cbor::Text(text.clone()),
        },
        (MemberKind::Blob, Json::String(text)) => match aws_smithy_types::base64::decode(text) {
            Ok(bytes) => Cbor::Bytes(bytes),
            Err(_) => Cbor::Text(text.clone()),
        },
        _ => untyped_json_to_cbor(value),
    }
}

/// Converts a scalar by its JSON type alone.
fn untyped_json_to_cbor(value: &Json) -> Cbor {
    match value {
        Json::Null => Cbor::Null,
        Json::Bool(flag) => Cbor::Bool(*flag),
        Json::Number(number) => {
            if let Some(signed) = number.as_i64() {
                Cbor::Integer(Integer::from(signed))
            } else if let Some(unsigned) = number.as_u64() {
                Cbor::Integer(Integer::from(unsigned))
            } else {
                Cbor::Float(number.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(text) => Cbor::Text(text.clone()),
        Json::Array(_) | Json::Object(_) => json_to_cbor(value),
    }
}

fn epoch_seconds_to_cbor(seconds: f64) -> Cbor {
    Cbor::Tag(1, Box::new(Cbor::Float(seconds)))
}

/// Epoch seconds of an ISO-8601 / RFC 3339 date-time, an HTTP date, or a number in a string.
fn parse_timestamp_text(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Some(seconds);
    }
    let mut candidates = vec![text.to_string()];
    // moto (Python `isoformat()`) may leave out the offset or write "+00:00" / a space.
    if !text.ends_with('Z') && !has_utc_offset(text) {
        candidates.push(format!("{}Z", text.replacen(' ', "T", 1)));
    }
    candidates.push(text.replacen(' ', "T", 1));
    candidates
        .iter()
        .find_map(|candidate| DateTime::from_str(candidate, Format::DateTimeWithOffset).ok())
        .or_else(|| DateTime::from_str(text, Format::HttpDate).ok())
        .map(|date_time| date_time.as_secs_f64())
}

fn has_utc_offset(text: &str) -> bool {
    let Some((_, time)) = text.split_once(['T', ' ']) else {
        return false;
    };
    time.contains('+') || time.contains('-')
}

// ---------------------------------------------------------------------------------------------
// CBOR encoding

/// Encodes `value` as CBOR with definite lengths, every float as float64 and every integer in
/// its shortest form.
pub fn encode_cbor(value: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    write_cbor(&mut out, value);
    out
}

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;
const FLOAT64: u8 = 0xfb;

fn write_head(out: &mut Vec<u8>, major: u8, argument: u64) {
    let major = major << 5;
    if argument < 24 {
        out.push(major | argument as u8);
    } else if let Ok(byte) = u8::try_from(argument) {
        out.extend([major | 24, byte]);
    } else if let Ok(short) = u16::try_from(argument) {
        out.push(major | 25);
        out.extend(short.to_be_bytes());
    } else if let Ok(word) = u32::try_from(argument) {
        out.push(major | 26);
        out.extend(word.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend(argument.to_be_bytes());
    }
}

fn write_cbor(out: &mut Vec<u8>, value: &Cbor) {
    match value {
        Cbor::Integer(integer) => {
            let integer = i128::from(*integer);
            if let Ok(unsigned) = u64::try_from(integer) {
                write_head(out, MAJOR_UNSIGNED, unsigned);
            } else if let Ok(magnitude) = u64::try_from(-1 - integer) {
                write_head(out, MAJOR_NEGATIVE, magnitude);
            } else {
                write_cbor(out, &Cbor::Float(integer as f64));
            }
        }
        Cbor::Float(float) => {
            out.push(FLOAT64);
            out.extend(float.to_be_bytes());
        }
        Cbor::Bytes(bytes) => {
            write_head(out, MAJOR_BYTES, bytes.len() as u64);
            out.extend(bytes);
        }
        Cbor::Text(text) => {
            write_head(out, MAJOR_TEXT, text.len() as u64);
            out.extend(text.as_bytes());
        }
        Cbor::Array(items) => {
            write_head(out, MAJOR_ARRAY, items.len() as u64);
            for item in items {
                write_cbor(out, item);
            }
        }
        Cbor::Map(entries) => {
            write_head(out, MAJOR_MAP, entries.len() as u64);
            for (key, value) in entries {
                write_cbor(out, key);
                write_cbor(out, value);
            }
        }
        Cbor::Tag(tag, content) => {
            write_head(out, MAJOR_TAG, *tag);
            write_cbor(out, content);
        }
        Cbor::Bool(flag) => out.push(if *flag { TRUE } else { FALSE }),
        _ => out.push(NULL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(value: &str) -> Cbor {
        Cbor::Text(value.to_string())
    }

    fn decode(bytes: &[u8]) -> Cbor {
        ciborium::de::from_reader(bytes).expect("the front writes valid CBOR")
    }

    fn map_entry<'a>(map: &'a Cbor, name: &str) -> &'a Cbor {
        let Cbor::Map(entries) = map else {
            panic!("expected a CBOR map, got {map:?}")
        };
        entries
            .iter()
            .find(|(key, _)| *key == text(name))
            .map(|(_, value)| value)
            .unwrap_or_else(|| panic!("the map has no {name}: {map:?}"))
    }

    #[test]
    fn recognises_rpc_v2_cbor_paths() {
        assert_eq!(
            rpc_v2_cbor_operation("/service/GraniteServiceVersion20100801/operation/GetMetricData"),
            Some(("GraniteServiceVersion20100801", "GetMetricData"))
        );
        assert_eq!(rpc_v2_cbor_operation("/"), None);
        assert_eq!(rpc_v2_cbor_operation("/2015-03-31/functions"), None);
        assert_eq!(rpc_v2_cbor_operation("/service//operation/X"), None);
        assert_eq!(rpc_v2_cbor_operation("/service/A/operation/B/C"), None);
    }

    #[test]
    fn request_timestamps_become_epoch_seconds() {
        let request = Cbor::Map(vec![
            (
                text("StartTime"),
                Cbor::Tag(1, Box::new(Cbor::Float(1_700_000_000.0))),
            ),
            (
                text("EndTime"),
                Cbor::Tag(1, Box::new(Cbor::Float(1_700_000_060.25))),
            ),
            (
                text("At"),
                Cbor::Tag(1, Box::new(Cbor::Integer(1_700_000_001.into()))),
            ),
        ]);
        let json = cbor_request_body_to_json(&encode_cbor(&request)).unwrap();
        assert_eq!(
            json,
            json!({"StartTime": 1_700_000_000, "EndTime": 1_700_000_060.25, "At": 1_700_000_001})
        );
        assert!(json["StartTime"].is_i64());
    }

    #[test]
    fn request_scalars_keep_their_types() {
        let request = Cbor::Map(vec![
            (text("Period"), Cbor::Integer(60.into())),
            (text("Negative"), Cbor::Integer((-5).into())),
            (text("Value"), Cbor::Float(2.0)),
            (text("Half"), Cbor::Float(0.5)),
            (text("NotANumber"), Cbor::Float(f64::NAN)),
            (text("Enabled"), Cbor::Bool(true)),
            (text("Missing"), Cbor::Null),
            (text("Payload"), Cbor::Bytes(b"hi!".to_vec())),
        ]);
        let json = cbor_request_body_to_json(&encode_cbor(&request)).unwrap();
        assert_eq!(
            json,
            json!({
                "Period": 60, "Negative": -5, "Value": 2.0, "Half": 0.5, "NotANumber": "NaN",
                "Enabled": true, "Missing": null, "Payload": "aGkh"
            })
        );
        assert!(json["Period"].is_i64());
        assert!(json["Value"].is_f64());
    }

    #[test]
    fn request_nesting_and_indefinite_lengths_are_preserved() {
        // {_ "MetricData": [_ {_ "MetricName": "Errors", "Dimensions": [{"Name": "F"}]}]}
        // written with indefinite-length map and array, as some encoders do.
        let mut bytes = vec![0xbf];
        bytes.extend(encode_cbor(&text("MetricData")));
        bytes.push(0x9f);
        bytes.push(0xbf);
        bytes.extend(encode_cbor(&text("MetricName")));
        bytes.extend(encode_cbor(&text("Errors")));
        bytes.extend(encode_cbor(&text("Dimensions")));
        bytes.extend(encode_cbor(&Cbor::Array(vec![Cbor::Map(vec![(
            text("Name"),
            text("F"),
        )])])));
        bytes.extend([0xff, 0xff, 0xff]);
        let json = cbor_request_body_to_json(&bytes).unwrap();
        assert_eq!(
            json,
            json!({"MetricData": [{"MetricName": "Errors", "Dimensions": [{"Name": "F"}]}]})
        );
    }

    #[test]
    fn empty_request_body_is_an_empty_object() {
        assert_eq!(cbor_request_body_to_json(b"").unwrap(), json!({}));
    }

    #[test]
    fn invalid_request_body_is_reported() {
        let error = cbor_request_body_to_json(&[0xff, 0x00]).unwrap_err();
        assert!(error.message.contains("not valid CBOR"), "{error}");
    }

    #[test]
    fn response_numbers_keep_integer_or_become_float64() {
        let cbor = encode_cbor(&json_to_cbor(
            &json!({"Period": 60, "Ratio": 0.5, "Big": 1e3}),
        ));
        let decoded = decode(&cbor);
        assert_eq!(map_entry(&decoded, "Period"), &Cbor::Integer(60.into()));
        assert_eq!(map_entry(&decoded, "Ratio"), &Cbor::Float(0.5));
        assert_eq!(map_entry(&decoded, "Big"), &Cbor::Float(1000.0));
        // Floats are float64 (0xfb) even when a shorter form would be exact.
        assert_eq!(
            encode_cbor(&Cbor::Float(0.5)),
            [0xfb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn response_double_members_are_float64_even_when_whole() {
        let answer = json!({
            "Threshold": 5,
            "Values": [3, 2.5],
            "Datapoints": [{"Sum": 4, "ExtendedStatistics": {"p99": 7}}]
        });
        let decoded = decode(&encode_cbor(&json_to_cbor(&answer)));
        assert_eq!(map_entry(&decoded, "Threshold"), &Cbor::Float(5.0));
        assert_eq!(
            map_entry(&decoded, "Values"),
            &Cbor::Array(vec![Cbor::Float(3.0), Cbor::Float(2.5)])
        );
        let Cbor::Array(datapoints) = map_entry(&decoded, "Datapoints") else {
            panic!("Datapoints is a list")
        };
        assert_eq!(map_entry(&datapoints[0], "Sum"), &Cbor::Float(4.0));
        assert_eq!(
            map_entry(map_entry(&datapoints[0], "ExtendedStatistics"), "p99"),
            &Cbor::Float(7.0)
        );
    }

    #[test]
    fn response_timestamps_become_tag_1_with_float64_seconds() {
        let answer = json!({
            "MetricDataResults": [{"Id": "m1", "Timestamps": [1_700_000_060, 1_700_000_000]}],
            "MetricAlarms": [{
                "StateUpdatedTimestamp": 1_700_000_000.732,
                "AlarmConfigurationUpdatedTimestamp": "2023-11-14T22:13:20.500000+00:00",
                "StateTransitionedTimestamp": "2023-11-14T22:13:20Z",
                "Period": 60
            }],
            "LastModified": "2023-11-14 22:13:20",
            "EndTime": null
        });
        let decoded = decode(&encode_cbor(&json_to_cbor(&answer)));
        let tag = |seconds: f64| Cbor::Tag(1, Box::new(Cbor::Float(seconds)));
        let Cbor::Array(results) = map_entry(&decoded, "MetricDataResults") else {
            panic!("MetricDataResults is a list")
        };
        assert_eq!(
            map_entry(&results[0], "Timestamps"),
            &Cbor::Array(vec![tag(1_700_000_060.0), tag(1_700_000_000.0)])
        );
        assert_eq!(map_entry(&results[0], "Id"), &text("m1"));
        let Cbor::Array(alarms) = map_entry(&decoded, "MetricAlarms") else {
            panic!("MetricAlarms is a list")
        };
        assert_eq!(
            map_entry(&alarms[0], "StateUpdatedTimestamp"),
            &tag(1_700_000_000.732)
        );
        assert_eq!(
            map_entry(&alarms[0], "AlarmConfigurationUpdatedTimestamp"),
            &tag(1_700_000_000.5)
        );
        assert_eq!(
            map_entry(&alarms[0], "StateTransitionedTimestamp"),
            &tag(1_700_000_000.0)
        );
        assert_eq!(map_entry(&alarms[0], "Period"), &Cbor::Integer(60.into()));
        assert_eq!(map_entry(&decoded, "LastModified"), &tag(1_700_000_000.0));
        assert_eq!(map_entry(&decoded, "EndTime"), &Cbor::Null);
        // Tag 1 is the single byte 0xc1 followed by the float64.
        assert_eq!(encode_cbor(&tag(1.5))[..2], [0xc1, 0xfb]);
    }

    #[test]
    fn response_blob_members_are_decoded_from_base64() {
        let decoded = decode(&encode_cbor(&json_to_cbor(
            &json!({"MetricWidgetImage": "aGkh", "Label": "aGkh"}),
        )));
        assert_eq!(
            map_entry(&decoded, "MetricWidgetImage"),
            &Cbor::Bytes(b"hi!".to_vec())
        );
        assert_eq!(map_entry(&decoded, "Label"), &text("aGkh"));
    }

    #[test]
    fn response_errors_keep_type_and_message() {
        let body =
            br#"{"__type": "GraniteServiceVersion20100801#ResourceNotFound", "message": "gone"}"#;
        let decoded = decode(&json_response_body_to_cbor(body).unwrap());
        assert_eq!(
            map_entry(&decoded, "__type"),
            &text("GraniteServiceVersion20100801#ResourceNotFound")
        );
        assert_eq!(map_entry(&decoded, "message"), &text("gone"));
    }

    #[test]
    fn empty_response_body_is_an_empty_map() {
        assert_eq!(json_response_body_to_cbor(b"").unwrap(), [0xa0]);
        assert_eq!(json_response_body_to_cbor(b"{}").unwrap(), [0xa0]);
    }

    #[test]
    fn non_json_response_is_reported() {
        let error = json_response_body_to_cbor(b"<html>500</html>").unwrap_err();
        assert!(error.message.contains("not JSON"), "{error}");
    }

    #[test]
    fn gzipped_request_bodies_are_inflated() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&[0xa0]).unwrap();
        let gzipped = Bytes::from(encoder.finish().unwrap());
        let mut headers = HeaderMap::new();
        assert_eq!(
            inflate_if_gzipped(&headers, gzipped.clone()).unwrap(),
            gzipped
        );
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert_eq!(
            inflate_if_gzipped(&headers, gzipped).unwrap(),
            Bytes::from_static(&[0xa0])
        );
        let error = inflate_if_gzipped(&headers, Bytes::from_static(b"plain")).unwrap_err();
        assert!(error.message.contains("does not inflate"), "{error}");
    }

    #[test]
    fn integers_use_their_shortest_encoding() {
        assert_eq!(encode_cbor(&Cbor::Integer(10.into())), [0x0a]);
        assert_eq!(encode_cbor(&Cbor::Integer(500.into())), [0x19, 0x01, 0xf4]);
        assert_eq!(encode_cbor(&Cbor::Integer((-1).into())), [0x20]);
        assert_eq!(
            encode_cbor(&Cbor::Integer(1_700_000_000.into())),
            [0x1a, 0x65, 0x53, 0xf1, 0x00]
        );
    }

    fn signed_headers(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00"
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&authorization).unwrap(),
        );
        headers
    }

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn query_protocol_requests_are_logged_by_their_action_field() {
        let mut headers = signed_headers("rds");
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let body = b"DBSnapshotIdentifier=opsd-steno-1&Action=CreateDBSnapshot&Version=2014-10-31";
        assert_eq!(
            describe_pass_through(&Method::POST, &uri("/"), &headers, body),
            ForwardedRequest {
                service: "rds".into(),
                action: "CreateDBSnapshot".into()
            }
        );
        // The action may also come in the query string, and is form-decoded.
        let get = describe_pass_through(
            &Method::GET,
            &uri("/?Action=List%54opics&Version=2010-03-31"),
            &signed_headers("sns"),
            b"",
        );
        assert_eq!(
            (get.service.as_str(), get.action.as_str()),
            ("sns", "ListTopics")
        );
        // A form body without an Action field is a REST call as far as the log is concerned.
        let no_action = describe_pass_through(&Method::POST, &uri("/x"), &headers, b"a=1");
        assert_eq!(no_action.action, "POST /x");
    }

    #[test]
    fn json_rest_and_moto_requests_are_logged() {
        let mut headers = signed_headers("logs");
        headers.insert(
            HeaderName::from_static("x-amz-target"),
            HeaderValue::from_static("Logs_20140328.PutLogEvents"),
        );
        assert_eq!(
            describe_pass_through(&Method::POST, &uri("/"), &headers, b"{}"),
            ForwardedRequest {
                service: "logs".into(),
                action: "PutLogEvents".into()
            }
        );
        let mut unsigned = HeaderMap::new();
        unsigned.insert(
            HeaderName::from_static("x-amz-target"),
            HeaderValue::from_static("AmazonSSM.GetParameter"),
        );
        let json = describe_pass_through(&Method::POST, &uri("/"), &unsigned, b"{}");
        assert_eq!(
            (json.service.as_str(), json.action.as_str()),
            ("AmazonSSM", "GetParameter")
        );
        let rest = describe_pass_through(
            &Method::GET,
            &uri("/2015-03-31/functions/?MaxItems=50"),
            &signed_headers("lambda"),
            b"",
        );
        assert_eq!(
            (rest.service.as_str(), rest.action.as_str()),
            ("lambda", "GET /2015-03-31/functions/")
        );
        let moto = describe_pass_through(&Method::POST, &uri("/moto-api/reset"), &unsigned, b"");
        assert_eq!(
            (moto.service.as_str(), moto.action.as_str()),
            ("moto-api", "POST /moto-api/reset")
        );
        assert_eq!(credential_scope_service(&HeaderMap::new()), None);
    }

    #[test]
    fn clones_of_a_request_log_share_it_until_cleared() {
        let log = RequestLog::default();
        let shared = log.clone();
        shared.record(ForwardedRequest {
            service: "rds".into(),
            action: "DescribeDBInstances".into(),
        });
        log.record(ForwardedRequest {
            service: "sns".into(),
            action: "Publish".into(),
        });
        assert_eq!(log.actions(), ["DescribeDBInstances", "Publish"]);
        assert_eq!(shared.entries()[1].service, "sns");
        shared.clear();
        assert!(log.entries().is_empty());
    }

    #[tokio::test]
    async fn the_front_logs_every_request_it_forwards_in_order() {
        // A stand-in for moto that answers every request with an empty JSON object.
        let stand_in = axum::Router::new().fallback(|| async { "{}" });
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .unwrap();
        let stand_in_url = format!("http://{}", listener.local_addr().unwrap());
        let stand_in_task = tokio::spawn(async move {
            let _ = axum::serve(listener, stand_in).await;
        });
        let log = RequestLog::default();
        let (address, front_task) = start_logged_cbor_front(stand_in_url, log.clone())
            .await
            .unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let front = format!("http://{address}");
        let form = client
            .post(format!("{front}/"))
            .headers(signed_headers("rds"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("Action=DescribeDBInstances&Version=2014-10-31")
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), StatusCode::OK);
        assert_eq!(form.text().await.unwrap(), "{}", "passed through unchanged");
        let cbor = client
            .post(format!(
                "{front}/service/GraniteServiceVersion20100801/operation/DescribeAlarms"
            ))
            .headers(signed_headers("monitoring"))
            .send()
            .await
            .unwrap();
        assert_eq!(cbor.status(), StatusCode::OK);
        assert_eq!(cbor.bytes().await.unwrap().as_ref(), [0xa0], "{{}} as CBOR");
        client
            .get(format!("{front}/2015-03-31/functions/"))
            .headers(signed_headers("lambda"))
            .send()
            .await
            .unwrap();
        // A CBOR body the front cannot decode is answered by the front, not forwarded.
        client
            .post(format!("{front}/service/S/operation/Broken"))
            .body(vec![0xff, 0x00])
            .send()
            .await
            .unwrap();
        assert_eq!(
            log.entries(),
            [
                ForwardedRequest {
                    service: "rds".into(),
                    action: "DescribeDBInstances".into()
                },
                ForwardedRequest {
                    service: "monitoring".into(),
                    action: "DescribeAlarms".into()
                },
                ForwardedRequest {
                    service: "lambda".into(),
                    action: "GET /2015-03-31/functions/".into()
                },
            ]
        );
        front_task.abort();
        stand_in_task.abort();
    }
}
