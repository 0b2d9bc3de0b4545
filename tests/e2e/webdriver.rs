//! Headless Chromium driven over WebDriver (W3C): Debian's `chromium` and
//! `chromium-driver`, started per test on a free port of 127.0.0.1 and
//! stopped by pid. Where they are not installed a test says so and
//! returns, except under `CI=true`, where that fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::free_port;
use crate::http;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session, ended (and its driver stopped) when dropped.
pub struct Browser {
    driver: Child,
    addr: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or returns
    /// `None` (saying why) where they are not installed and this is not CI.
    pub fn start() -> Option<Browser> {
        Browser::start_with(&[])
    }

    /// [`Browser::start`] with more Chromium flags (`--force-dark-mode`).
    pub fn start_with(flags: &[&str]) -> Option<Browser> {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(tool).exists() {
                let why = format!("{tool} is not installed (Debian: chromium chromium-driver)");
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("skipped: {why}");
                return None;
            }
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().expect("a browser profile folder");
        // The flags keep Chromium off the network: nothing but loopback.
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        args.extend(flags.iter().map(|f| f.to_string()));
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            _profile: profile,
        };
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            } } })),
        );
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        // Finding an element waits for it (a page still loading after a click).
        browser.call(
            "POST",
            &browser.session("/timeouts"),
            Some(json!({ "implicit": 5000 })),
        );
        Some(browser)
    }

    /// One WebDriver command; its `value`, or a panic with the error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let text = body.map(|b| b.to_string());
        let reply = http::request(
            &self.addr,
            method,
            path,
            &[],
            text.as_deref().map(|t| ("application/json", t)),
        );
        let parsed: Value = serde_json::from_str(&reply.body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", reply.body));
        assert_eq!(reply.status, 200, "{method} {path}: {parsed}");
        parsed["value"].clone()
    }

    fn session(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    /// Opens `url`.
    pub fn open(&self, url: &str) {
        self.call("POST", &self.session("/url"), Some(json!({ "url": url })));
    }

    /// The address shown.
    pub fn url(&self) -> String {
        self.call("GET", &self.session("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (up to 10 s) until the address shown contains `part`: a
    /// click that navigates returns before the new page is there.
    pub fn wait_for_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.url();
            if url.contains(part) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still at {url}, waiting for {part}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first element `css` selects.
    pub fn find(&self, css: &str) -> String {
        self.find_by("css selector", css)
    }

    /// The first element an XPath expression selects.
    pub fn find_xpath(&self, xpath: &str) -> String {
        self.find_by("xpath", xpath)
    }

    fn find_by(&self, using: &str, what: &str) -> String {
        let found = self.call(
            "POST",
            &self.session("/element"),
            Some(json!({ "using": using, "value": what })),
        );
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {what}: {found}"))
            .to_string()
    }

    /// Clicks an element.
    pub fn click(&self, element: &str) {
        self.call(
            "POST",
            &self.session(&format!("/element/{element}/click")),
            Some(json!({})),
        );
    }

    /// Types into an element.
    pub fn type_into(&self, element: &str, text: &str) {
        self.call(
            "POST",
            &self.session(&format!("/element/{element}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// An element's rendered text.
    pub fn text(&self, element: &str) -> String {
        self.call(
            "GET",
            &self.session(&format!("/element/{element}/text")),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// The computed value of a CSS property of an element.
    pub fn css(&self, element: &str, property: &str) -> String {
        self.call(
            "GET",
            &self.session(&format!("/element/{element}/css/{property}")),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Whether a script opened a dialog.
    pub fn alert_open(&self) -> bool {
        let reply = http::request(&self.addr, "GET", &self.session("/alert/text"), &[], None);
        reply.status == 200
    }

    /// Saves a PNG of the window to `dir/name.png`; returns its path.
    pub fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let data = self.call("GET", &self.session("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .expect("a base64 screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        std::fs::create_dir_all(dir).expect("the screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http::request(&self.addr, "DELETE", &self.session(""), &[], None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
