//! The design's journeys: connect, disconnect with confirmation, reconnect an expired
//! account, disconnect several selected accounts with one confirmation, connect several
//! platforms in one go; and what the platforms do (the user removes the app there, asks
//! for their data to be deleted).

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

/// Counts the dialogs the page opens from now on (`window.dialogsOpened`).
async fn count_dialogs(c: &Client) {
    c.execute(
        "window.dialogsOpened = 0;
         const open = HTMLDialogElement.prototype.showModal;
         HTMLDialogElement.prototype.showModal = function () {
           window.dialogsOpened += 1;
           return open.call(this);
         };
         return true;",
        vec![],
    )
    .await
    .unwrap();
}

async fn text_of(c: &Client, css: &str) -> String {
    wait_css(c, css).await.text().await.unwrap()
}

#[tokio::test]
async fn journey_bulk_disconnect_of_three_accounts() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        let sandbox = s.sandbox().unwrap();
        sign_in(&c, &s, 7).await;
        connect_directly(&s, 7, "instagram", "demo").await;
        connect_directly(&s, 7, "instagram", "studio.two").await;
        connect_directly(&s, 7, "reddit", "demo").await;
        connect_directly(&s, 7, "tiktok", "demo").await;
        c.refresh().await.unwrap();
        wait_css(&c, &format!("{} li.account", card("tiktok"))).await;
        let id = |platform, user| sandbox.user_info(platform, user).account_id;
        let (instagram, two) = (
            id(Platform::Instagram, "demo"),
            id(Platform::Instagram, "studio.two"),
        );
        let (reddit, tiktok) = (id(Platform::Reddit, "demo"), id(Platform::TikTok, "demo"));

        // Nothing selected: no bar.
        assert!(
            c.find(Locator::Css("#bulkbar:not([hidden])"))
                .await
                .is_err()
        );
        let label = wait_css(&c, &format!("input[data-key=\"reddit:select:{reddit}\"]"))
            .await
            .attr("aria-label")
            .await
            .unwrap();
        assert_eq!(label.as_deref(), Some("Select @demo on Reddit"));

        select_account(&c, "instagram", &instagram).await;
        select_account(&c, "reddit", &reddit).await;
        select_account(&c, "tiktok", &tiktok).await;
        wait_css(&c, "#bulkbar:not([hidden])").await;
        assert_eq!(text_of(&c, "#bulk-count").await, "3 selected");
        assert_eq!(
            wait_css(&c, "#bulk-disconnect")
                .await
                .attr("aria-label")
                .await
                .unwrap()
                .as_deref(),
            Some("Disconnect 3 selected accounts")
        );
        save_screenshot(&c, "integrations-bulk-selection.png").await;

        // One confirmation for the three.
        count_dialogs(&c).await;
        wait_css(&c, "#bulk-disconnect")
            .await
            .click()
            .await
            .unwrap();
        wait_css(&c, "dialog#confirm[open]").await;
        assert_eq!(
            text_of(&c, "#confirm-title").await,
            "Disconnect 3 accounts?"
        );
        let text = text_of(&c, "#confirm-text").await;
        // (TikTok's sandbox user states its handle as "Demo".)
        for who in ["@demo on Instagram", "@demo on Reddit", "@demo on TikTok"] {
            assert!(
                text.to_lowercase().contains(&who.to_lowercase()),
                "{who} in {text}"
            );
        }
        assert!(!text.contains("studio.two"), "{text}");
        save_screenshot(&c, "integrations-bulk-confirm.png").await;
        c.find(Locator::Css("#confirm-ok"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        wait_true(
            &c,
            "the summary",
            "const n = document.getElementById('notice');
             return !n.hidden &&
               document.getElementById('notice-text').textContent === '3 accounts disconnected.';",
        )
        .await;
        save_screenshot(&c, "integrations-bulk-summary.png").await;
        let opened = c
            .execute("return window.dialogsOpened;", vec![])
            .await
            .unwrap();
        assert_eq!(opened, serde_json::json!(1), "one confirmation");

        // Exactly those three are gone; the fourth stays, on the server and on the page.
        let left = s.integrations.status(UserId(7)).await.unwrap();
        assert_eq!(
            left.iter()
                .map(|v| (v.provider.as_str(), v.provider_account_id.as_str()))
                .collect::<Vec<_>>(),
            vec![("instagram", two.as_str())]
        );
        wait_css(&c, &(card("reddit") + "[data-state=\"disconnected\"]")).await;
        wait_css(&c, &(card("tiktok") + "[data-state=\"disconnected\"]")).await;
        let rows = c
            .find_all(Locator::Css(&format!("{} li.account", card("instagram"))))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].attr("data-account").await.unwrap().as_deref(),
            Some(two.as_str())
        );
        assert_eq!(badge(&c, "instagram").await, "Connected");
        // Nothing is left selected: the bar is gone.
        wait_css(&c, "#bulkbar[hidden]").await;
        let checked = c
            .execute(
                "return document.querySelectorAll('input.account-select:checked').length;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(checked, serde_json::json!(0));

        // A partial outcome lists what was not done, and why: Reddit, reconnected and
        // selected, is disconnected elsewhere before the bulk disconnect reaches it.
        connect_directly(&s, 7, "reddit", "demo").await;
        c.refresh().await.unwrap();
        wait_css(&c, &format!("{} li.account", card("reddit"))).await;
        select_account(&c, "instagram", &two).await;
        select_account(&c, "reddit", &reddit).await;
        s.integrations
            .disconnect(UserId(7), "reddit", &reddit)
            .await
            .unwrap();
        wait_css(&c, "#bulk-disconnect").await.click().await.unwrap();
        wait_css(&c, "dialog#confirm[open]").await;
        assert_eq!(text_of(&c, "#confirm-title").await, "Disconnect 2 accounts?");
        c.find(Locator::Css("#confirm-ok"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_true(
            &c,
            "the summary with the failure",
            "const n = document.getElementById('notice');
             return !n.hidden && n.classList.contains('error') &&
               document.getElementById('notice-text').textContent ===
               '1 account disconnected. Could not disconnect @demo on Reddit: Integration not found.';",
        )
        .await;
        save_screenshot(&c, "integrations-bulk-partial.png").await;
        assert!(s.integrations.status(UserId(7)).await.unwrap().is_empty());
        wait_css(&c, "#bulkbar[hidden]").await;
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

/// Opens "Connect several…", ticks `platforms` and starts.
async fn connect_several(c: &Client, platforms: &[&str]) {
    wait_css(c, "#connect-many:not([hidden])")
        .await
        .click()
        .await
        .unwrap();
    wait_css(c, "dialog#connect-many-dialog[open]").await;
    for p in platforms {
        wait_css(c, &format!("#connect-many-choices input[value=\"{p}\"]"))
            .await
            .click()
            .await
            .unwrap();
    }
    c.find(Locator::Css("#connect-many-start"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn queue_in_storage(c: &Client) -> serde_json::Value {
    c.execute(
        "return window.sessionStorage.getItem('integrations.connectQueue');",
        vec![],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn journey_connect_two_platforms_in_one_go() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        sign_in(&c, &s, 8).await;

        // Only platforms not yet connected are offered; choosing none is refused.
        wait_css(&c, "#connect-many:not([hidden])")
            .await
            .click()
            .await
            .unwrap();
        wait_css(&c, "dialog#connect-many-dialog[open]").await;
        let offered = c
            .execute(
                "return [...document.querySelectorAll('#connect-many-choices input')]
                   .map((b) => b.value + ' ' + b.closest('label').textContent.trim());",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            offered,
            serde_json::json!([
                "instagram Instagram",
                "tiktok TikTok",
                "reddit Reddit",
                "onlyfans OnlyFans"
            ])
        );
        save_screenshot(&c, "integrations-connect-several.png").await;
        c.find(Locator::Css("#connect-many-start"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_css(&c, "#connect-many-error:not([hidden])").await;
        wait_css(&c, "dialog#connect-many-dialog[open]").await;
        press(&c, Key::Escape).await;
        wait_true(
            &c,
            "the dialog closes",
            "return !document.getElementById('connect-many-dialog').open;",
        )
        .await;

        // Instagram and TikTok: one consent page after the other, then the summary.
        connect_several(&c, &["instagram", "tiktok"]).await;
        consent_on(&c, "Instagram", "allow").await;
        consent_on(&c, "TikTok", "allow").await;
        wait_true(
            &c,
            "the summary",
            "const n = document.getElementById('notice');
             return !n.hidden && document.getElementById('notice-text').textContent ===
               'Connected: Instagram, TikTok.';",
        )
        .await;
        wait_css(&c, &(card("instagram") + "[data-state=\"connected\"]")).await;
        wait_css(&c, &(card("tiktok") + "[data-state=\"connected\"]")).await;
        save_screenshot(&c, "integrations-connect-several-summary.png").await;
        assert_eq!(
            queue_in_storage(&c).await,
            serde_json::Value::Null,
            "cleared"
        );
        let mut connected: Vec<String> = s
            .integrations
            .status(UserId(8))
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.provider.as_str().to_owned())
            .collect();
        connected.sort();
        assert_eq!(connected, ["instagram", "tiktok"]);

        // A step the user declines is reported, and the next one still runs.
        connect_several(&c, &["reddit", "onlyfans"]).await;
        consent_on(&c, "Reddit", "deny").await;
        consent_on(&c, "OnlyFans (gateway)", "allow").await;
        wait_true(
            &c,
            "the summary with the declined step",
            "const n = document.getElementById('notice');
             return !n.hidden && document.getElementById('notice-text').textContent ===
               'Connected: OnlyFans. Not connected: Reddit (cancelled).';",
        )
        .await;
        wait_css(&c, &(card("onlyfans") + "[data-state=\"connected\"]")).await;
        assert_eq!(
            queue_in_storage(&c).await,
            serde_json::Value::Null,
            "cleared"
        );
        assert_eq!(s.integrations.status(UserId(8)).await.unwrap().len(), 3);
        // Only Reddit is left to offer.
        wait_css(&c, "#connect-many:not([hidden])")
            .await
            .click()
            .await
            .unwrap();
        wait_css(&c, "dialog#connect-many-dialog[open]").await;
        let offered = c
            .execute(
                "return [...document.querySelectorAll('#connect-many-choices input')]
                   .map((b) => b.value);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(offered, serde_json::json!(["reddit"]));
        press(&c, Key::Escape).await;
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}
