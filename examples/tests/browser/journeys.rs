//! The design's three journeys: connect, disconnect with confirmation, reconnect an
//! expired account.

use super::*;
use integrations_core::{Clock, ManualClock};
use integrations_sandbox::Platform;

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
        assert_eq!(s.integrations.status(UserId(2)).await.unwrap().len(), 1);

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
        assert!(s.integrations.status(UserId(2)).await.unwrap().is_empty());
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
        let status = s.integrations.status(UserId(3)).await.unwrap();
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
        let status = s.integrations.status(UserId(3)).await.unwrap();
        assert_eq!(status.len(), 1, "the same account, re-authorized");
        assert_eq!(status[0].status.as_str(), "connected");
        assert!(status[0].expires_at.unwrap() > clock.now());
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

/// The apps page of the sandbox's `platform`, where a sandbox user removes the app.
async fn apps_page(c: &Client, sandbox: &integrations_sandbox::SandboxHandle, platform: &str) {
    c.goto(&format!("{}/_sandbox/{platform}/apps", sandbox.base_url()))
        .await
        .unwrap();
}

/// Clicks a button of the apps page and waits for the delivery it sent to show in the
/// log with the server's answer.
async fn click_and_wait_delivery(c: &Client, testid: &str, event: &str) -> String {
    let before = c
        .find_all(Locator::Css("#log li[data-id]"))
        .await
        .unwrap()
        .len();
    c.find(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_true(
        c,
        &format!("{before} deliveries then one more"),
        &format!("return document.querySelectorAll('#log li[data-id]').length > {before};"),
    )
    .await;
    let newest = wait_css(c, &format!("#log li[data-event=\"{event}\"]")).await;
    newest
        .attr("data-status")
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test]
async fn journey_the_user_removes_the_app_on_the_platform() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        let sandbox = s.sandbox().unwrap();
        let url = s.url();
        sign_in(&c, &s, 4).await;
        connect_instagram(&c).await;
        connect_directly(&s, 4, "tiktok", "demo").await;
        c.refresh().await.unwrap();
        wait_css(&c, &(card("tiktok") + "[data-state=\"connected\"]")).await;

        // On each platform's apps page, the user removes the app: the platform calls
        // the server's webhook route, signed.
        apps_page(&c, &sandbox, "instagram").await;
        assert_eq!(
            click_and_wait_delivery(&c, "remove-demo", "deauthorize").await,
            "200"
        );
        save_screenshot(&c, "sandbox-apps-instagram.png").await;
        apps_page(&c, &sandbox, "tiktok").await;
        assert_eq!(
            click_and_wait_delivery(&c, "remove-demo", "authorization.removed").await,
            "200"
        );

        // Reloaded, both cards show the revoked state with the platform's reason.
        c.goto(&format!("{url}/integrations")).await.unwrap();
        for (provider, reason) in [
            (
                "instagram",
                integrations_instagram::DEAUTHORIZED_REASON.to_owned(),
            ),
            ("tiktok", integrations_tiktok::removal_reason(1)),
        ] {
            let row = wait_css(
                &c,
                &format!(
                    "{}[data-state=\"expired\"] li.account[data-status=\"needs_reconnect\"]",
                    card(provider)
                ),
            )
            .await;
            let text = row.text().await.unwrap();
            assert!(text.contains("Access revoked"), "{provider}: {text}");
            let error = row.find(Locator::Css(".account-error")).await.unwrap();
            assert_eq!(error.text().await.unwrap(), reason, "{provider}");
            let reconnect = row
                .find(Locator::Css("[data-action=connect]"))
                .await
                .unwrap();
            assert_eq!(reconnect.text().await.unwrap(), "Reconnect");
        }
        save_screenshot(&c, "integrations-revoked-by-platform.png").await;
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn journey_a_data_deletion_request() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        let sandbox = s.sandbox().unwrap();
        let url = s.url();
        sign_in(&c, &s, 5).await;
        connect_directly(&s, 5, "instagram", "demo").await;
        connect_directly(&s, 5, "instagram", "second").await;
        c.goto(&format!("{url}/integrations")).await.unwrap();
        let second = sandbox.user_info(Platform::Instagram, "second").account_id;
        wait_css(
            &c,
            &format!(
                "{} li.account[data-account=\"{second}\"]",
                card("instagram")
            ),
        )
        .await;

        // The user removes the app and asks Meta to delete their data.
        apps_page(&c, &sandbox, "instagram").await;
        assert_eq!(
            click_and_wait_delivery(&c, "delete-second", "data_deletion").await,
            "200"
        );
        let entry = wait_css(&c, "#log li[data-event=\"data_deletion\"]").await;
        let code = entry
            .attr("data-confirmation-code")
            .await
            .unwrap()
            .expect("the server answered with a confirmation code");
        assert_eq!(code.len(), 12);

        // The account is gone from the page; the other stays.
        c.goto(&format!("{url}/integrations")).await.unwrap();
        wait_css(&c, &(card("instagram") + "[data-state=\"connected\"]")).await;
        let rows = c
            .find_all(Locator::Css(&format!("{} li.account", card("instagram"))))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(
            c.find(Locator::Css(&format!(
                "li.account[data-account=\"{second}\"]"
            )))
            .await
            .is_err()
        );

        // The status page Meta links to, opened without a session.
        c.delete_all_cookies().await.unwrap();
        c.goto(&format!(
            "{url}/api/integrations/data-deletion/instagram?code={code}"
        ))
        .await
        .unwrap();
        let body = wait_css(&c, "main").await.text().await.unwrap();
        assert!(body.contains("Status: completed"), "{body}");
        assert!(body.contains(&code));
        assert!(!body.contains(&second), "no personal data: {body}");
        save_screenshot(&c, "data-deletion-status.png").await;
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}
