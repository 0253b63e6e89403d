//! A small WebDriver client for the dashboard's browser tests: starts `chromedriver` on a free
//! loopback port and one headless Chromium session, and offers what the tests do with a page
//! (go to a URL, find by CSS selector, click, type, press keys on the focused element and Tab
//! through the page, read text, run a script, wait for a condition, take a screenshot, read the
//! browser console). Fails loudly when Chromium or its driver is missing:
//! `scripts/install-test-deps.sh` installs both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key W3C WebDriver names element references with.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium driven through chromedriver. Closed (session and driver) on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::blocking::Client,
    _profile: tempfile::TempDir,
}

/// A reference to an element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

fn program(name: &str, fallback: &str) -> PathBuf {
    let path = std::env::var_os(name)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(fallback));
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-test-deps.sh (Debian's chromium and chromium-driver), or set {name}",
        path.display()
    );
    path
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub fn start() -> Browser {
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .ok()
                .and_then(|response| response.json::<Value>().ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let created = browser.call("POST", "/session", Some(capabilities));
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session in {created}"))
            .to_string();
        browser
    }

    /// One WebDriver command; panics with the driver's message when it fails.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|failure| panic!("{method} {path}: {failure}"))
    }

    /// One WebDriver command; the driver's status and answer when it fails.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => self.http.get(&url),
            "DELETE" => self.http.delete(&url),
            _ => self
                .http
                .post(&url)
                .json(&body.unwrap_or_else(|| json!({}))),
        };
        let response = request
            .send()
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        let status = response.status();
        let answer: Value = response.json().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(answer["value"].clone())
        } else {
            Err(format!("{status} {answer}"))
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({"url": url})));
    }

    pub fn current_url(&self) -> String {
        self.session_call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Every element matching `selector`.
    pub fn find_all(&self, selector: &str) -> Vec<Element> {
        self.session_call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": selector})),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|found| {
            found[ELEMENT_KEY]
                .as_str()
                .map(|id| Element(id.to_string()))
        })
        .collect()
    }

    /// The first element matching `selector`, waiting up to `timeout` for it to appear.
    pub fn wait_for(&self, selector: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.find_all(selector).into_iter().next() {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "no element matches {selector:?} after {timeout:?}; the page says:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the page's text contains `wanted`.
    pub fn wait_for_text(&self, wanted: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.page_text();
            if text.contains(wanted) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the page never said {wanted:?} within {timeout:?}; it says:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Clicks the first element matching `selector`, found again when the live page redrew it
    /// between finding and clicking.
    pub fn click_on(&self, selector: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let element = self.wait_for(selector, timeout);
            let path = format!("/session/{}/element/{}/click", self.session, element.0);
            match self.try_call("POST", &path, None) {
                Ok(_) => return,
                Err(failure) if failure.contains("stale element") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(failure) => panic!("clicking {selector:?}: {failure}"),
            }
        }
    }

    pub fn click(&self, element: &Element) {
        self.session_call("POST", &format!("/element/{}/click", element.0), None);
    }

    /// Types into the first element matching `selector` once it takes input: a page that redraws
    /// itself (the dashboard refreshes its views) may swap the element between finding it and
    /// typing, so a stale or not yet interactable element is found again until `timeout`.
    pub fn type_into_selector(&self, selector: &str, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let element = self.wait_for(selector, timeout);
            let typed = self.try_call(
                "POST",
                &format!("/session/{}/element/{}/value", self.session, element.0),
                Some(json!({"text": text})),
            );
            match typed {
                Ok(_) => return,
                Err(failure)
                    if (failure.contains("not interactable")
                        || failure.contains("stale element"))
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(failure) => panic!("typing into {selector:?}: {failure}"),
            }
        }
    }

    pub fn type_into(&self, element: &Element, text: &str) {
        self.session_call(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({"text": text})),
        );
    }

    /// Presses keys as a person would, on whatever has the focus (WebDriver key codes, like
    /// [`TAB`] and [`ENTER`], or plain text).
    pub fn press(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|key| {
                let key = key.to_string();
                [
                    json!({"type": "keyDown", "value": key}),
                    json!({"type": "keyUp", "value": key}),
                ]
            })
            .collect();
        self.session_call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
        self.session_call("DELETE", "/actions", None);
    }

    /// Presses Tab until the focused element matches `selector` (at most `presses` times);
    /// panics naming what had the focus when it never does.
    pub fn tab_to(&self, selector: &str, presses: usize) {
        let mut seen = Vec::new();
        for _ in 0..presses {
            self.press(TAB);
            let focused = self.execute(
                "const node = document.activeElement; \
                 return [node.matches(arguments[0]), node.tagName + ' ' + (node.id || node.textContent.trim().slice(0, 30))]",
                json!([selector]),
            );
            if focused[0] == true {
                return;
            }
            seen.push(focused[1].as_str().unwrap_or_default().to_string());
        }
        panic!("Tab never reached {selector:?}; the focus went through {seen:?}");
    }

    pub fn text(&self, element: &Element) -> String {
        self.session_call("GET", &format!("/element/{}/text", element.0), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The visible text of the whole page.
    pub fn page_text(&self) -> String {
        self.execute(
            "return document.body ? document.body.innerText : ''",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Runs `script` (a function body) in the page with `args`.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.session_call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Saves a PNG of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.session_call("GET", "/screenshot", None);
        let png = decode_base64(encoded.as_str().unwrap_or_default());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Browser console entries at SEVERE level since the last call (errors, failed loads).
    pub fn console_errors(&self) -> Vec<String> {
        self.session_call("POST", "/se/log", Some(json!({"type": "browser"})))
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// The Tab key, for [`Browser::press`].
pub const TAB: &str = "\u{E004}";
/// The Enter key, for [`Browser::press`].
pub const ENTER: &str = "\u{E007}";

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(format!("{}/session/{}", self.base, self.session))
                .send();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Standard base64 (with padding) to bytes.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut bytes = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for sextet in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | sextet;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::decode_base64;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8="), b"hello");
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ="), b"hello world");
        assert_eq!(decode_base64("YWJj"), b"abc");
    }
}
