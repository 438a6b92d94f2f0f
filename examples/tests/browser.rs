//! The design's three journeys in headless Chromium (driven through chromedriver with
//! fantoccini), against the example server and its in-process sandbox:
//!
//! 1. connect Instagram through the sandbox consent page → the card shows "Connected" and
//!    the username;
//! 2. disconnect with confirmation → the card shows "Add app";
//! 3. an Instagram account past its expiry (its tokens expired at the sandbox and both
//!    clocks moved 61 days on) shows "Reconnect"; reconnecting restores "Connected".
//!
//! Needs Debian's `chromium` and `chromium-driver` (`cargo xtask test` installs them).
//! Without them these tests FAIL; set `INTEGRATIONS_SKIP_BROWSER=1` to skip them
//! explicitly. Paths can be overridden with `CHROMEDRIVER` and `CHROMIUM`. Screenshots go
//! to `examples/artifacts/`.

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use integrations_core::{Clock, ManualClock, UserId};
use integrations_examples::server::{RunningServer, ServerConfig};
use integrations_sandbox::Platform;
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
    let integrations = server.integrations();
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

#[tokio::test]
async fn journey_connect_instagram() {
    let server = start(ServerConfig::default()).await;
    let url = server.url();
    let sandbox = server.sandbox().unwrap();
    let server = Arc::new(server);
    let s = server.clone();
    with_browser(move |c| async move {
        sign_in(&c, &s, 1).await;
        assert_eq!(badge(&c, "instagram").await, "Not connected");
        connect_instagram(&c).await;

        // Back on the page, cleaned of the redirect's query.
        let here = c.current_url().await.unwrap();
        assert_eq!(
            here.as_str().split('#').next(),
            Some(format!("{url}/integrations").as_str())
        );
        assert_eq!(badge(&c, "instagram").await, "Connected");
        let name = c
            .find(Locator::Css(&format!(
                "{} .account-name",
                card("instagram")
            )))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if !name.contains("@demo") {
            save_screenshot(&c, "failure.png").await;
        }
        assert!(name.contains("@demo"), "username on the card: {name}");
        let notice = wait_css(&c, "#notice:not([hidden]) #notice-text").await;
        assert_eq!(
            notice.text().await.unwrap(),
            "Instagram connected as @demo."
        );
        let info = sandbox.user_info(Platform::Instagram, "demo");
        let row = c
            .find(Locator::Css(&format!(
                "{} li.account[data-account=\"{}\"]",
                card("instagram"),
                info.account_id
            )))
            .await
            .expect("the row of the connected account");
        let meta = row.find(Locator::Css(".account-expiry")).await.unwrap();
        let meta = meta.text().await.unwrap();
        assert!(meta.contains("Token expires "), "expiry shown: {meta}");
        let figures = row.find(Locator::Css(".account-meta")).await.unwrap();
        let figures = figures.text().await.unwrap();
        assert!(figures.contains("followers"), "platform figures: {figures}");
        let avatar = row.find(Locator::Css("img.avatar")).await.unwrap();
        assert_eq!(
            avatar.attr("src").await.unwrap(),
            Some(info.avatar_url.clone())
        );

        // The screenshot artifact: several accounts and the design's states.
        connect_directly(&s, 1, "instagram", "studio.two").await;
        connect_directly(&s, 1, "reddit", "demo").await;
        connect_directly(&s, 1, "tiktok", "demo").await;
        c.goto(&format!(
            "{url}/integrations?provider=onlyfans&error=cancelled"
        ))
        .await
        .unwrap();
        let err = wait_css(&c, &format!("{} .card-error", card("onlyfans"))).await;
        assert_eq!(
            err.text().await.unwrap(),
            "Connection cancelled. You can try again anytime."
        );
        assert_eq!(badge(&c, "onlyfans").await, "Error");
        assert_eq!(
            c.find_all(Locator::Css(&format!("{} li.account", card("instagram"))))
                .await
                .unwrap()
                .len(),
            2,
            "two Instagram accounts"
        );
        let reddit_meta = c
            .find(Locator::Css(&format!("{} .account-meta", card("reddit"))))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(reddit_meta.contains("karma"), "{reddit_meta}");
        save_screenshot(&c, "integrations-page.png").await;

        // An action in flight shows the `loading` state: a slow platform keeps Reddit's
        // refresh running long enough to see it.
        sandbox.set_faults(
            Some(Platform::Reddit),
            integrations_sandbox::Faults {
                latency: Duration::from_millis(1500),
                ..Default::default()
            },
        );
        c.find(Locator::Css(&format!(
            "{} [data-action=refresh]",
            card("reddit")
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        let busy = wait_css(
            &c,
            &format!(
                "{}[data-state=\"loading\"] [data-action=refresh][aria-busy=\"true\"]",
                card("reddit")
            ),
        )
        .await;
        assert_eq!(busy.text().await.unwrap(), "Refreshing…");
        assert_eq!(badge(&c, "reddit").await, "Working…");
        wait_css(&c, &(card("reddit") + "[data-state=\"connected\"]")).await;
        let notice = wait_css(&c, "#notice:not([hidden]) #notice-text").await;
        assert_eq!(notice.text().await.unwrap(), "Reddit connection refreshed.");
        sandbox.clear_faults(None);

        // The search box filters the grid; nothing matching shows the empty state.
        let search = c.find(Locator::Css("#search")).await.unwrap();
        search.send_keys("reddit").await.unwrap();
        assert_eq!(
            c.find_all(Locator::Css("article.card"))
                .await
                .unwrap()
                .len(),
            1
        );
        search.send_keys("zzz").await.unwrap();
        wait_css(&c, "#empty:not([hidden])").await;
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn journey_disconnect_with_confirmation() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        sign_in(&c, &s, 2).await;
        connect_instagram(&c).await;
        let disconnect = format!("{} [data-action=disconnect]", card("instagram"));

        // Cancelling the confirmation keeps the connection.
        wait_css(&c, &disconnect).await.click().await.unwrap();
        wait_css(&c, "dialog#confirm[open]").await;
        let text = c.find(Locator::Css("#confirm-text")).await.unwrap();
        assert!(text.text().await.unwrap().contains("@demo"));
        c.find(Locator::Css("dialog#confirm button[value=cancel]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(badge(&c, "instagram").await, "Connected");
        assert_eq!(s.integrations().status(UserId(2)).await.unwrap().len(), 1);

        // Confirming disconnects.
        wait_css(&c, &disconnect).await.click().await.unwrap();
        wait_css(&c, "dialog#confirm[open]").await;
        save_screenshot(&c, "integrations-disconnect-dialog.png").await;
        c.find(Locator::Css("#confirm-ok"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let add = wait_css(
            &c,
            &format!(
                "{}[data-state=\"disconnected\"] [data-action=connect]",
                card("instagram")
            ),
        )
        .await;
        assert_eq!(add.text().await.unwrap(), "Add app");
        assert_eq!(badge(&c, "instagram").await, "Not connected");
        let notice = wait_css(&c, "#notice:not([hidden]) #notice-text").await;
        assert_eq!(notice.text().await.unwrap(), "Instagram disconnected.");
        assert!(s.integrations().status(UserId(2)).await.unwrap().is_empty());
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn journey_reconnect_an_expired_account() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let server = Arc::new(
        start(ServerConfig {
            clock: Some(clock.clone()),
            ..ServerConfig::default()
        })
        .await,
    );
    let s = server.clone();
    with_browser(move |c| async move {
        let sandbox = s.sandbox().unwrap();
        sign_in(&c, &s, 3).await;
        connect_instagram(&c).await;

        // Nobody refreshed the long-lived token for 61 days: the sandbox's tokens expire
        // and both clocks move past the stored expiry (Instagram has no refresh token).
        assert!(sandbox.expire_tokens(Platform::Instagram, "demo") >= 1);
        let later = Duration::from_secs(61 * 24 * 3600);
        sandbox.advance_clock(later);
        clock.advance(chrono::Duration::from_std(later).unwrap());
        let status = s.integrations().status(UserId(3)).await.unwrap();
        assert_eq!(status[0].status.as_str(), "expired");

        c.refresh().await.unwrap();
        let reconnect = wait_css(
            &c,
            &format!(
                "{}[data-state=\"expired\"] li.account[data-status=\"expired\"] [data-action=connect]",
                card("instagram")
            ),
        )
        .await;
        assert_eq!(reconnect.text().await.unwrap(), "Reconnect");
        assert_eq!(badge(&c, "instagram").await, "Expired");
        let meta = c
            .find(Locator::Css(&format!("{} .account-expiry", card("instagram"))))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(meta.contains("Expired"), "{meta}");
        save_screenshot(&c, "integrations-expired.png").await;

        consent_allow(&c, reconnect).await;
        wait_css(&c, &(card("instagram") + "[data-state=\"connected\"]")).await;
        assert_eq!(badge(&c, "instagram").await, "Connected");
        let status = s.integrations().status(UserId(3)).await.unwrap();
        assert_eq!(status.len(), 1, "the same account, re-authorized");
        assert_eq!(status[0].status.as_str(), "connected");
        assert!(status[0].expires_at.unwrap() > clock.now());
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}
