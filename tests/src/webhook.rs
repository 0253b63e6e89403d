//! A Slack-compatible webhook receiver for end-to-end tests: it serves on 127.0.0.1 from its own
//! runtime and keeps every JSON body POSTed to it.

use std::sync::{Arc, Mutex};

use serde_json::Value;

/// A webhook receiver on 127.0.0.1 that keeps every body it is POSTed.
pub struct Webhook {
    pub url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Webhook {
    pub fn start() -> Webhook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = Arc::clone(&bodies);
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let kept = Arc::clone(&kept);
                async move {
                    kept.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        runtime.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Webhook {
            url: format!("http://{address}/hook"),
            bodies,
            _runtime: runtime,
        }
    }

    /// Bodies received so far.
    pub fn count(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    /// Every body received so far as JSON text, oldest first.
    pub fn texts(&self) -> Vec<String> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .map(|body| body.to_string())
            .collect()
    }

    /// The newest body as JSON text (empty before the first).
    pub fn last_text(&self) -> String {
        self.bodies
            .lock()
            .unwrap()
            .last()
            .map(|body| body.to_string())
            .unwrap_or_default()
    }
}
