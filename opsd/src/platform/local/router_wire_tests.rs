//! The router's own HTTP/1.1 client (`upstream_http1.rs`, `upstream_body.rs`) seen through the
//! router: every way a release may delimit its answer, an interim 100, a broken head, a chunked
//! upload, and kept-alive connections the release closed while they were idle.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::router::tests::{
    base_url, http_client, one_connection, router_for, send, split, start_upstream, total,
    Behaviour,
};

/// A release written by hand. It reads each request head (and a Content-Length body), writes
/// what `answer` gives for the request line, then closes the connection, or with `idle` keeps it
/// open that long for the next request. Returns its address and the connections it accepted.
pub(super) async fn start_raw_upstream(
    answer: fn(&str) -> &'static [u8],
    idle: Option<Duration>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_raw(connection, answer, idle));
        }
    });
    (addr, accepted)
}

async fn serve_raw(
    mut connection: TcpStream,
    answer: fn(&str) -> &'static [u8],
    idle: Option<Duration>,
) {
    let wait = idle.unwrap_or(Duration::from_secs(5));
    let mut received = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = received.windows(4).position(|four| four == b"\r\n\r\n") {
                break at + 4;
            }
            if !read_more(&mut connection, &mut received, wait).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&received[..head_end]).to_string();
        let body_length: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .unwrap_or(0);
        while received.len() < head_end + body_length {
            if !read_more(&mut connection, &mut received, wait).await {
                return;
            }
        }
        received.drain(..head_end + body_length);
        let request_line = head.lines().next().unwrap_or_default();
        if connection.write_all(answer(request_line)).await.is_err() || idle.is_none() {
            return;
        }
    }
}

/// Reads what arrives within `wait`; false when the connection ended or nothing came.
async fn read_more(connection: &mut TcpStream, received: &mut Vec<u8>, wait: Duration) -> bool {
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(wait, connection.read(&mut chunk)).await {
        Ok(Ok(read)) if read > 0 => {
            received.extend_from_slice(&chunk[..read]);
            true
        }
        _ => false,
    }
}

fn odd_answers(request_line: &str) -> &'static [u8] {
    match request_line {
        "GET /until-close HTTP/1.1" => {
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the connection ends"
        }
        "GET /chunked HTTP/1.1" => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;note=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: dropped\r\n\r\n"
        }
        "HEAD /head HTTP/1.1" => b"HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n",
        "GET /continue HTTP/1.1" => {
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        }
        "GET /broken HTTP/1.1" => b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    }
}

#[tokio::test]
async fn answers_framed_by_close_chunks_or_length_reach_the_client_whole() {
    let (upstream, _) = start_raw_upstream(odd_answers, None).await;
    let (router, _table) = router_for(&[("web@raw", upstream)]).await;
    split(&router, "web@raw", None, 0).await;
    let client = http_client();
    let url = base_url(&router);
    let text = |path: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.get(format!("{url}{path}")).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };

    assert_eq!(
        text("/until-close").await,
        (200, "until the connection ends".to_string())
    );
    assert_eq!(text("/chunked").await, (200, "hello, world".to_string()));
    assert_eq!(text("/continue").await, (200, "ok".to_string()));
    let head = client.head(format!("{url}/head")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "42");
    assert!(head.bytes().await.unwrap().is_empty());

    let (status, broken) = text("/broken").await;
    assert_eq!(status, 502);
    assert!(
        broken.contains("invalid Content-Length") && broken.contains(&upstream.to_string()),
        "{broken}"
    );
    let counted = total(&router, "web@raw").await;
    assert_eq!((counted.requests, counted.errors), (5, 1));
}

#[tokio::test]
async fn a_chunked_upload_reaches_the_release_whole() {
    let echo = start_upstream("echo", Behaviour::Answer).await;
    let (router, _table) = router_for(&[("web@echo", echo.addr)]).await;
    split(&router, "web@echo", None, 0).await;
    let mut client = TcpStream::connect(router.public_address("web").unwrap())
        .await
        .unwrap();
    client
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: steno.example\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    let checksum: u64 = b"hello, world".iter().map(|byte| u64::from(*byte)).sum();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with(&format!("\r\n\r\n12 {checksum}")),
        "{answer}"
    );
}

fn note_answer(_: &str) -> &'static [u8] {
    b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnote"
}

#[tokio::test]
async fn a_kept_alive_connection_the_release_closed_is_replaced() {
    // The release closes connections idle for 50 ms, as servers with short keep-alive do.
    let (upstream, accepted) =
        start_raw_upstream(note_answer, Some(Duration::from_millis(50))).await;
    let (router, _table) = router_for(&[("web@raw", upstream)]).await;
    split(&router, "web@raw", None, 0).await;
    let mut sender = one_connection(router.public_address("web").unwrap()).await;
    let post = || {
        Request::post("/notes")
            .header("host", "steno.example")
            .body(Full::new(Bytes::from_static(b"a note")))
            .unwrap()
    };

    for _ in 0..2 {
        let (status, _, body) = send(&mut sender, post()).await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"note"[..]));
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "back to back, one connection"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A POST is never sent twice, so it must not go out on the closed connection at all.
    let (status, _, body) = send(&mut sender, post()).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"note"[..]));
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert_eq!(total(&router, "web@raw").await.errors, 0);
}
