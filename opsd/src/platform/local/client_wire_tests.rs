//! The router's own HTTP/1.1 server side (`client_connection.rs`, `client_http1.rs`,
//! `client_body.rs`) seen from a client writing bytes by hand: pipelined requests, chunked
//! uploads, `100 Continue`, HTTP/1.0, requests built to be read two ways, answers given before
//! the body was read, and clients that are slow or silent.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::client_connection::ConnectionLimits;
use super::router::tests::{
    router_for, router_with_limits, split, start_upstream, total, Behaviour,
};
use super::router::TrafficRouter;

const RELEASE: &str = "web@patient";

async fn router() -> TrafficRouter {
    let upstream = start_upstream("patient", Behaviour::Answer).await;
    let (router, _) = router_for(&[(RELEASE, upstream.addr)]).await;
    split(&router, RELEASE, None, 0).await;
    router
}

fn public(router: &TrafficRouter) -> SocketAddr {
    router.public_address("web").unwrap()
}

/// Writes `wire` on a new connection and reads until the router closes it (at most 10 s).
async fn exchange(router: &TrafficRouter, wire: &[u8]) -> String {
    let mut stream = TcpStream::connect(public(router)).await.unwrap();
    stream.write_all(wire).await.unwrap();
    read_to_close(&mut stream).await
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the router did not close the connection within 10 s")
        .expect("reading from the router failed");
    String::from_utf8_lossy(&received).to_string()
}

/// Reads until `marker` was received (at most 10 s); what was read.
async fn read_until(stream: &mut TcpStream, marker: &str) -> String {
    let mut received = Vec::new();
    let reading = async {
        while !String::from_utf8_lossy(&received).contains(marker) {
            let mut piece = [0u8; 4096];
            let read = stream.read(&mut piece).await.unwrap();
            assert!(
                read > 0,
                "closed before {marker:?}: {:?}",
                String::from_utf8_lossy(&received)
            );
            received.extend_from_slice(&piece[..read]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("the marker did not arrive within 10 s");
    String::from_utf8_lossy(&received).to_string()
}

/// The status codes of the answers in `text`, in order.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text[at + 9..at + 12].parse().ok())
        .collect()
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_on_one_connection() {
    let router = router().await;
    let answers = exchange(
        &router,
        b"GET /first HTTP/1.1\r\nHost: steno.example\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: steno.example\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n2;note=x\r\nde\r\n0\r\nX-Trailer: dropped\r\n\r\n\
          HEAD /third HTTP/1.1\r\nHost: steno.example\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: steno.example\r\nContent-Length: 3\r\n\r\nxyz\
          GET /last HTTP/1.1\r\nHost: steno.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        statuses(&answers),
        vec![200, 200, 200, 200, 200],
        "{answers}"
    );
    let bodies: Vec<&str> = answers
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|answer| answer.split_once("\r\n\r\n").unwrap().1)
        .collect();
    // "abcde" is 5 bytes summing to 495; "xyz" 3 bytes summing to 363. HEAD gets no body.
    assert_eq!(
        bodies,
        vec!["patient", "5 495", "", "3 363", "patient"],
        "{answers}"
    );
    let head_answer = answers.split("HTTP/1.1 ").nth(3).unwrap().to_lowercase();
    assert!(
        head_answer.contains("content-length: 7\r\n"),
        "{head_answer}"
    );
    let last = answers.rsplit("HTTP/1.1 ").next().unwrap();
    assert!(last.contains("connection: close\r\n"), "{last}");
    let earlier = &answers[..answers.len() - last.len()];
    assert!(!earlier.contains("connection: close"), "{earlier}");
    assert_eq!(total(&router, RELEASE).await.requests, 5);
}

#[tokio::test]
async fn requests_two_servers_could_read_differently_never_reach_a_release() {
    let router = router().await;
    for (head, status, named) in [
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
            400,
            "both Content-Length and Transfer-Encoding",
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            501,
            "no Transfer-Encoding but chunked",
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc",
            400,
            "Content-Length values that differ",
        ),
        (
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            400,
            "unreadable",
        ),
        ("\x16\x03\x01\x00\x25\x01\x00\x00\x21\x03\x03", 400, "unreadable"),
        ("GET / HTTP/2.0\r\n\r\n", 505, "HTTP/1.0 and HTTP/1.1 only"),
    ] {
        let answer = exchange(&router, head.as_bytes()).await;
        assert_eq!(statuses(&answer), vec![status], "{head:?} gave {answer}");
        assert!(answer.contains(named), "{head:?} gave {answer}");
        assert!(answer.contains("connection: close\r\n"), "{answer}");
    }
    assert_eq!(total(&router, RELEASE).await.requests, 0);
}

#[tokio::test]
async fn a_client_that_expects_100_continue_gets_it_and_then_the_answer() {
    let router = router().await;
    let mut stream = TcpStream::connect(public(&router)).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let interim = read_until(&mut stream, "\r\n\r\n").await;
    assert_eq!(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"abcd").await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    assert!(answer.ends_with("\r\n\r\n4 394"), "{answer}");
}

#[tokio::test]
async fn http_1_0_clients_get_answers_they_can_read() {
    let router = router().await;
    let answer = exchange(&router, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(answer.contains("content-length: 7\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(answer.ends_with("patient"), "{answer}");

    let mut stream = TcpStream::connect(public(&router)).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let first = read_until(&mut stream, "patient").await;
    assert!(first.contains("connection: keep-alive\r\n"), "{first}");
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let second = read_to_close(&mut stream).await;
    assert!(second.ends_with("patient"), "{second}");
}

#[tokio::test]
async fn an_answer_given_before_the_body_was_read_closes_the_connection() {
    let router = router().await;
    let mut stream = TcpStream::connect(public(&router)).await.unwrap();
    // The release answers without reading the body; the rest of it never comes.
    stream
        .write_all(
            b"POST /not-reading HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\npartial",
        )
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(answer.ends_with("patient"), "{answer}");
}

#[tokio::test]
async fn silent_and_slow_clients_are_let_go() {
    let upstream = start_upstream("patient", Behaviour::Answer).await;
    let limits = ConnectionLimits {
        idle: Duration::from_millis(300),
        head: Duration::from_millis(300),
        ..ConnectionLimits::default()
    };
    let (router, _) = router_with_limits(&[(RELEASE, upstream.addr)], limits).await;
    split(&router, RELEASE, None, 0).await;

    // Connected and silent: closed without a word.
    assert_eq!(exchange(&router, b"").await, "");
    // Half a head: a 408 naming the limit.
    let answer = exchange(&router, b"GET / HTTP/1.1\r\nHost: x\r\n").await;
    assert_eq!(statuses(&answer), vec![408], "{answer}");
    assert!(answer.contains("within 300 ms"), "{answer}");
    // A kept-alive connection after its answer: closed once idle.
    let answer = exchange(&router, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(statuses(&answer), vec![200], "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
}

#[tokio::test]
async fn a_kept_alive_idle_connection_is_closed_when_the_router_stops() {
    let router = router().await;
    let mut stream = TcpStream::connect(public(&router)).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    read_until(&mut stream, "patient").await;
    router.shutdown().await;
    assert_eq!(read_to_close(&mut stream).await, "");
}

#[tokio::test]
async fn a_broken_request_body_is_the_clients_fault_not_the_canarys() {
    let stable = start_upstream("stable", Behaviour::Answer).await;
    let canary = start_upstream("canary", Behaviour::Answer).await;
    let (router, _) = router_for(&[("web@stable", stable.addr), ("web@canary", canary.addr)]).await;
    split(&router, "web@stable", Some("web@canary"), 100).await;
    for wire in [
        &b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"[..],
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX",
    ] {
        let answer = exchange(&router, wire).await;
        assert_eq!(statuses(&answer), vec![400], "{answer}");
        assert!(answer.contains("bad_request_body"), "{answer}");
        assert!(answer.contains("chunked body is broken"), "{answer}");
    }
    let canary_seen = total(&router, "web@canary").await;
    assert_eq!((canary_seen.requests, canary_seen.errors), (0, 0));
    assert_eq!(total(&router, "web@stable").await.requests, 0);

    let answer = exchange(
        &router,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    )
    .await;
    assert!(answer.ends_with("2 218"), "{answer}");
    assert_eq!(total(&router, "web@canary").await.requests, 1);
}

/// An answer of 32 MiB, more than the sockets between a client and the router hold.
fn huge_answer(_: &str) -> &'static [u8] {
    static ANSWER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(|| {
        let mut answer =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 32 << 20).into_bytes();
        answer.resize(answer.len() + (32 << 20), b'x');
        answer
    })
}

#[tokio::test]
async fn a_stalled_body_and_an_unread_answer_are_let_go() {
    let upstream = start_upstream("patient", Behaviour::Answer).await;
    let (huge, _) = super::router_wire_tests::start_raw_upstream(huge_answer, None).await;
    let limits = ConnectionLimits {
        body_idle: Duration::from_millis(300),
        send: Duration::from_millis(300),
        ..ConnectionLimits::default()
    };
    let (router, table) = router_with_limits(&[(RELEASE, upstream.addr)], limits).await;
    split(&router, RELEASE, None, 0).await;

    // A body that stops halfway: 408 naming the limit, not the release's failure.
    let answer = exchange(
        &router,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
    )
    .await;
    assert_eq!(statuses(&answer), vec![408], "{answer}");
    assert!(answer.contains("sent nothing for 300 ms"), "{answer}");
    let seen = total(&router, RELEASE).await;
    assert_eq!((seen.requests, seen.errors), (0, 0));

    // A client that asks for a huge answer and does not read it is dropped, not waited for.
    table.lock().unwrap().insert("web@huge".to_string(), huge);
    split(&router, "web@huge", None, 0).await;
    let mut stream = TcpStream::connect(public(&router)).await.unwrap();
    stream
        .write_all(b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut received = 0usize;
    let mut piece = vec![0u8; 1 << 16];
    let reading = async {
        loop {
            match stream.read(&mut piece).await {
                Ok(0) | Err(_) => break,
                Ok(read) => received += read,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), reading)
        .await
        .expect("the router let the connection go");
    assert!(
        received < 32 << 20,
        "the whole answer came: {received} bytes"
    );
}

#[tokio::test]
async fn a_refusal_is_a_whole_json_answer_that_closes() {
    let router = router().await;
    let wire = exchange(&router, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").await;
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(length) = parsed.parse(wire.as_bytes()).unwrap() else {
        panic!("partial refusal: {wire}");
    };
    assert_eq!(parsed.code, Some(400));
    let body: serde_json::Value = serde_json::from_slice(&wire.as_bytes()[length..]).unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Content-Length \"x\""));
    assert!(wire.contains("connection: close\r\n"), "{wire}");
    assert!(
        wire.contains("content-type: application/json\r\n"),
        "{wire}"
    );
}
