//! The pages in headless Chromium (driven through chromedriver with fantoccini), against
//! the example server and its in-process sandbox:
//!
//! - `journeys`: the design's journeys (connect, disconnect with confirmation, reconnect
//!   an expired account, bulk disconnect of selected accounts, connecting several
//!   platforms in one go) and the platform-side ones (removing the app, data deletion);
//! - `a11y`: accessibility: axe-core's WCAG 2.2 AA rules on every page and state, light and
//!   dark, no sideways scrolling from 320 px on, keyboard-only use, focus kept after
//!   actions, announcements instead of a live grid.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`cargo xtask test` installs them), and `npm`
//! for axe-core (installed pinned at first use, see `axe`). Without them these tests
//! FAIL; set `INTEGRATIONS_SKIP_BROWSER=1` to skip them explicitly. Paths can be
//! overridden with `CHROMEDRIVER` and `CHROMIUM`. Screenshots go to `examples/artifacts/`.

#[path = "../support/mod.rs"]
mod support;

mod a11y;
mod axe;
mod health;
mod journeys;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use integrations_core::UserId;
use integrations_examples::server::{RunningServer, ServerConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use support::start;

/// One browser at a time: three Chromiums on a 2-core runner only slow each other down.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(15);

fn skip() -> bool {
    if std::env::var("INTEGRATIONS_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("browser tests SKIPPED: INTEGRATIONS_SKIP_BROWSER=1");
        return true;
    }
    false
}

fn artifacts_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts");
    std::fs::create_dir_all(&dir).expect("create examples/artifacts");
    dir
}

/// chromedriver on a free port, killed (with its browser) on drop.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn tool(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.exists(),
        "{} not found at {} (install Debian's chromium and chromium-driver, set {var}, or set \
         INTEGRATIONS_SKIP_BROWSER=1 to skip the browser tests)",
        if var == "CHROMEDRIVER" {
            "chromedriver"
        } else {
            "chromium"
        },
        path.display()
    );
    path
}

async fn start_driver() -> Driver {
    let driver = tool("CHROMEDRIVER", "/usr/bin/chromedriver");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(&driver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = std::env::temp_dir().join(format!(
        "integrations-chromium-{}-{port}",
        std::process::id()
    ));
    let d = Driver {
        child,
        port,
        profile,
    };
    // Bounded wait for the driver to listen.
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not listen on {port} within 5 s");
}

async fn browser(driver: &Driver) -> Client {
    let chromium = tool("CHROMIUM", "/usr/bin/chromium");
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            // Start on a blank page, not the search engine's new-tab page (a lookup of a
            // host on the internet).
            "prefs": {
                "session.restore_on_startup": 4,
                "session.startup_urls": ["about:blank"],
                "homepage": "about:blank",
                "homepage_is_newtabpage": false
            },
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1360,1020",
                format!("--user-data-dir={}", driver.profile.display()),
            ]
        }
    });
    // The network log (`failed_requests`).
    let mut caps = caps;
    caps["goog:loggingPrefs"] = serde_json::json!({ "performance": "ALL" });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    let mut builder = ClientBuilder::new(HttpConnector::new());
    builder.capabilities(caps);
    builder
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with Chromium")
}

/// Runs a journey with a fresh browser, closing it whatever happens.
async fn with_browser<F, Fut>(journey: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if skip() {
        return;
    }
    let _one = ONE_BROWSER.lock().await;
    let driver = start_driver().await;
    let client = browser(&driver).await;
    let outcome = tokio::spawn(journey(client.clone())).await;
    let _ = client.close().await;
    drop(driver);
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn card(provider: &str) -> String {
    format!("article.card[data-provider=\"{provider}\"]")
}

async fn wait_css(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
        Ok(e) => e,
        Err(e) => {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let _ = save_screenshot(c, "failure.png").await;
            panic!("no {css} at {url} within {WAIT:?}: {e}");
        }
    }
}

async fn save_screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.expect("a screenshot");
    let path = artifacts_dir().join(name);
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    path
}

/// The whole page, not only what the viewport shows.
async fn full_page_screenshot(c: &Client, name: &str) -> PathBuf {
    use base64::Engine as _;
    let shot = cdp(
        c,
        "Page.captureScreenshot",
        serde_json::json!({ "format": "png", "captureBeyondViewport": true }),
    )
    .await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("PNG data"))
        .expect("base64 PNG");
    let path = artifacts_dir().join(name);
    std::fs::write(&path, png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    path
}

async fn sign_in(c: &Client, server: &RunningServer, user: i64) {
    c.goto(&format!("{}/integrations", server.url()))
        .await
        .unwrap();
    // Not signed in: the page sends the browser to the demo sign-in form.
    let input = wait_css(c, "input#user").await;
    input.clear().await.unwrap();
    input.send_keys(&user.to_string()).await.unwrap();
    c.find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_css(c, "article.card[data-state]").await;
}

/// Clicks "Add app"/"Reconnect" (`button`) and allows on the sandbox consent page.
async fn consent_allow(c: &Client, button: fantoccini::elements::Element) {
    button.click().await.unwrap();
    let allow = wait_css(c, "button.allow").await;
    let heading = c
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        heading.contains("(sandbox)"),
        "the sandbox consent page: {heading}"
    );
    allow.click().await.unwrap();
}

/// On the sandbox consent page titled `title` (waited for: the browser may still be on the
/// previous page), presses Allow or Deny (`decision`).
async fn consent_on(c: &Client, title: &str, decision: &str) {
    let heading = format!("{title} (sandbox)");
    wait_true(
        c,
        &format!("the consent page of {title}"),
        &format!(
            "const h = document.querySelector('h1');
             return !!h && h.textContent === {} && !!document.querySelector('button.allow');",
            serde_json::json!(heading)
        ),
    )
    .await;
    c.find(Locator::Css(&format!(
        "button[name=sandbox_decision][value={decision}]"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
}

/// Ticks the checkbox of an account row (`data-key` `provider:select:account`).
async fn select_account(c: &Client, provider: &str, account: &str) {
    let key = format!("{provider}:select:{account}");
    let box_ = wait_css(c, &format!("input[data-key=\"{key}\"]")).await;
    box_.click().await.unwrap();
    assert_eq!(
        box_.prop("checked").await.unwrap().as_deref(),
        Some("true"),
        "{key} checked"
    );
}

async fn connect_instagram(c: &Client) {
    let add = wait_css(
        c,
        &format!(
            "{} [data-action=connect]",
            card("instagram") + "[data-state=\"disconnected\"]"
        ),
    )
    .await;
    assert_eq!(add.text().await.unwrap(), "Add app");
    consent_allow(c, add).await;
    wait_css(c, &(card("instagram") + "[data-state=\"connected\"]")).await;
}

async fn badge(c: &Client, provider: &str) -> String {
    c.find(Locator::Css(&format!(
        "{} [data-role=status]",
        card(provider)
    )))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

/// Connects `sandbox_user` on `provider` for `user` behind the page's back (set-up only).
async fn connect_directly(server: &RunningServer, user: i64, provider: &str, sandbox_user: &str) {
    let integrations = &server.integrations;
    let start = integrations
        .connect(UserId(user), provider, None)
        .await
        .unwrap();
    let mut url = start.auth_url.clone();
    url.query_pairs_mut()
        .append_pair("sandbox_auto", "allow")
        .append_pair("sandbox_user", sandbox_user);
    let params = integrations_examples::follow_authorization(
        &url,
        &format!("{}/api/integrations/callback/", server.url()),
    )
    .await
    .unwrap();
    integrations
        .callback(UserId(user), provider, &params)
        .await
        .unwrap();
}

/// A Chrome DevTools command through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": self.params });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

async fn cdp(c: &Client, cmd: &'static str, params: serde_json::Value) -> serde_json::Value {
    c.issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Lays the page out `width` CSS pixels wide, as a phone does (`mobile`: the viewport
/// meta tag applies).
async fn viewport(c: &Client, width: u32, height: u32) {
    cdp(
        c,
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 720
        }),
    )
    .await;
}

/// `prefers-color-scheme: dark` (or `light`).
async fn color_scheme(c: &Client, scheme: &str) {
    cdp(
        c,
        "Emulation.setEmulatedMedia",
        serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
    )
    .await;
}

/// Presses and releases `key` wherever focus is, as a keyboard does.
async fn press(c: &Client, key: Key) {
    let key: char = key.into();
    let actions = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(actions).await.expect("a key press");
}

/// `data-key` (the page's name for a card's control), `id` or tag and text of the
/// focused element.
async fn focused(c: &Client) -> String {
    c.execute(
        "const a = document.activeElement;
         if (!a || a === document.body) return 'body';
         return a.dataset.key || (a.id ? '#' + a.id : a.tagName.toLowerCase() + ' ' + a.textContent.trim());",
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Tabs forward until `target` (as [`focused`] names it) has focus; on our pages
/// (`ring`) each stop must show a focus ring of at least 2 px. Panics after `max` presses.
async fn tab_to(c: &Client, target: &str, max: usize, ring: bool) -> usize {
    for n in 1..=max {
        press(c, Key::Tab).await;
        let here = focused(c).await;
        if !ring {
            if here == target {
                return n;
            }
            continue;
        }
        let ring = c
            .execute(
                "const s = getComputedStyle(document.activeElement);
                 return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            ring,
            serde_json::json!(true),
            "no visible focus ring on {here}"
        );
        if here == target {
            return n;
        }
    }
    save_screenshot(c, "failure.png").await;
    panic!("{target} not reached with {max} Tab presses");
}

/// Waits until [`focused`] names `target`.
async fn wait_focus(c: &Client, target: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let here = focused(c).await;
        if here == target {
            return;
        }
        if std::time::Instant::now() > deadline {
            save_screenshot(c, "failure.png").await;
            panic!("focus is on {here}, not {target}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `script` returns `true`.
async fn wait_true(c: &Client, what: &str, script: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if c.execute(script, vec![]).await.unwrap() == serde_json::json!(true) {
            return;
        }
        if std::time::Instant::now() > deadline {
            save_screenshot(c, "failure.png").await;
            panic!("not within {WAIT:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads (and empties) chromedriver's performance log.
#[derive(Debug)]
struct PerformanceLog;

impl fantoccini::wd::WebDriverCompatibleCommand for PerformanceLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = serde_json::json!({ "type": "performance" });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// The requests answered with 4xx or 5xx, or failed, since the last call: `url status`.
async fn failed_requests(c: &Client) -> Vec<String> {
    let entries = c
        .issue_cmd(PerformanceLog)
        .await
        .expect("the performance log");
    let mut urls = std::collections::HashMap::new();
    let mut failed = Vec::new();
    for entry in entries.as_array().into_iter().flatten() {
        let Some(message) = entry["message"].as_str() else {
            continue;
        };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(message) else {
            continue;
        };
        let params = &event["message"]["params"];
        match event["message"]["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                urls.insert(
                    params["requestId"].to_string(),
                    params["request"]["url"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            Some("Network.responseReceived") => {
                let status = params["response"]["status"].as_u64().unwrap_or_default();
                if status >= 400 {
                    failed.push(format!(
                        "{} {status}",
                        params["response"]["url"].as_str().unwrap_or_default()
                    ));
                }
            }
            Some("Network.loadingFailed") => {
                let url = urls
                    .get(&params["requestId"].to_string())
                    .cloned()
                    .unwrap_or_default();
                failed.push(format!(
                    "{url} {}",
                    params["errorText"].as_str().unwrap_or_default()
                ));
            }
            _ => {}
        }
    }
    failed
}
