//! Accessibility, checked the way a front-end reviewer does: axe-core's WCAG 2.2 AA rules
//! on every page and state (light and dark), no sideways scrolling from 320 px on, 44 px
//! touch targets on small screens, keyboard-only use with a visible focus ring, focus kept
//! after actions, one live region that announces results instead of a live grid, and no
//! failed request (a missing icon) while the pages load.

use super::*;
use integrations_sandbox::{Faults, Platform};
use serde_json::json;

/// The sandbox's account id of `user` on `platform`.
fn account(s: &RunningServer, platform: Platform, user: &str) -> String {
    s.sandbox().unwrap().user_info(platform, user).account_id
}

/// Two Instagram accounts, Reddit and TikTok connected; OnlyFans refused (its card shows
/// the error the redirect brought back). The page is open on it, for `user`, signed in.
async fn busy_user(c: &Client, s: &RunningServer, user: i64) {
    connect_directly(s, user, "instagram", "demo").await;
    connect_directly(s, user, "instagram", "studio.two").await;
    connect_directly(s, user, "reddit", "demo").await;
    connect_directly(s, user, "tiktok", "demo").await;
    c.goto(&format!(
        "{}/integrations?provider=onlyfans&error=cancelled",
        s.url()
    ))
    .await
    .unwrap();
    wait_css(c, &format!("{} .card-error", card("onlyfans"))).await;
    wait_css(c, &format!("{} li.account", card("tiktok"))).await;
}

/// Clicks the control named `key` (`data-key`), found again if a render replaced it
/// between finding and clicking.
async fn click_key(c: &Client, key: &str) {
    for _ in 0..5 {
        let button = wait_css(c, &format!("[data-key=\"{key}\"]")).await;
        match button.click().await {
            Ok(()) => return,
            Err(e) if e.to_string().contains("stale element") => continue,
            Err(e) => panic!("click {key}: {e}"),
        }
    }
    panic!("{key} kept being replaced");
}

/// Focuses the control named `key` and presses Enter, as a keyboard user does.
async fn enter_on(c: &Client, key: &str) {
    wait_css(c, &format!("[data-key=\"{key}\"]")).await;
    c.execute(
        "document.querySelector('[data-key=\"' + arguments[0] + '\"]').focus();",
        vec![json!(key)],
    )
    .await
    .unwrap();
    wait_focus(c, key).await;
    press(c, Key::Enter).await;
}

async fn notice_is(c: &Client, text: &str) {
    wait_true(
        c,
        &format!("the notice says {text:?}"),
        &format!(
            "const n = document.getElementById('notice');
             return !n.hidden && document.getElementById('notice-text').textContent === {};",
            json!(text)
        ),
    )
    .await;
}

async fn announced(c: &Client, text: &str) {
    wait_true(
        c,
        &format!("#announce says {text:?}"),
        &format!(
            "return document.getElementById('announce').textContent === {};",
            json!(text)
        ),
    )
    .await;
}

/// The elements wider than the viewport (empty when nothing scrolls sideways).
async fn sideways_overflow(c: &Client) -> serde_json::Value {
    c.execute(
        "const root = document.documentElement;
         const width = root.clientWidth;
         if (root.scrollWidth <= width) return [];
         const wide = [...document.querySelectorAll('body *')]
           .filter((e) => e.getBoundingClientRect().right > width + 0.5)
           .slice(0, 8)
           .map((e) => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') +
             ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
         return [root.scrollWidth + ' px wide in ' + width + ' px'].concat(wide);",
        vec![],
    )
    .await
    .unwrap()
}

/// Buttons and inputs on screen lower than `min` CSS pixels.
async fn small_targets(c: &Client, min: u32) -> serde_json::Value {
    c.execute(
        "const min = arguments[0];
         return [...document.querySelectorAll('button, input:not([type=hidden]), .chip')]
           .filter((e) => e.offsetParent !== null || e.closest('dialog[open]'))
           .filter((e) => e.getBoundingClientRect().height < min - 0.5)
           .map((e) => (e.getAttribute('aria-label') || e.textContent.trim() || e.id) + ': ' +
             e.getBoundingClientRect().height + 'px');",
        vec![json!(min)],
    )
    .await
    .unwrap()
}

fn write_report(name: &str, reports: &[axe::Report]) {
    let text: Vec<String> = reports.iter().map(axe::Report::describe).collect();
    let path = artifacts_dir().join(name);
    std::fs::write(
        &path,
        format!(
            "axe-core {} (WCAG 2.0/2.1/2.2 A and AA rules)\n{}\n",
            axe::VERSION,
            text.join("\n")
        ),
    )
    .expect("write the axe report");
    println!("axe report: {}", path.display());
}

#[tokio::test]
async fn every_page_and_state_passes_axe_wcag_2_2_aa() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        let url = s.url();
        let mut reports = Vec::new();

        c.goto(&format!("{url}/signin")).await.unwrap();
        wait_css(&c, "input#user").await;
        reports.push(axe::run(&c, "sign-in page").await);

        sign_in(&c, &s, 30).await;
        reports.push(axe::run(&c, "signed in, nothing connected").await);
        wait_css(&c, "#search")
            .await
            .send_keys("zzz")
            .await
            .unwrap();
        wait_css(&c, "#empty:not([hidden])").await;
        reports.push(axe::run(&c, "search matching nothing").await);

        busy_user(&c, &s, 30).await;
        reports.push(axe::run(&c, "connections, an error on a card").await);

        // Accounts selected: the selection bar, then its one confirmation.
        let reddit = account(&s, Platform::Reddit, "demo");
        let tiktok = account(&s, Platform::TikTok, "demo");
        select_account(&c, "reddit", &reddit).await;
        select_account(&c, "tiktok", &tiktok).await;
        wait_css(&c, "#bulkbar:not([hidden])").await;
        reports.push(axe::run(&c, "two accounts selected, the selection bar").await);
        wait_css(&c, "#bulk-disconnect")
            .await
            .click()
            .await
            .unwrap();
        wait_css(&c, "dialog#confirm[open]").await;
        reports.push(axe::run(&c, "bulk disconnect dialog open").await);
        press(&c, Key::Escape).await;
        wait_css(&c, "#bulk-clear").await.click().await.unwrap();
        wait_css(&c, "#bulkbar[hidden]").await;

        // "Connect several…": the platforms to choose, and choosing none.
        wait_css(&c, "#connect-many").await.click().await.unwrap();
        wait_css(&c, "dialog#connect-many-dialog[open]").await;
        wait_css(&c, "#connect-many-start")
            .await
            .click()
            .await
            .unwrap();
        wait_css(&c, "#connect-many-error:not([hidden])").await;
        reports.push(axe::run(&c, "connect several dialog, nothing chosen").await);
        press(&c, Key::Escape).await;
        wait_true(
            &c,
            "the dialog closes",
            "return !document.getElementById('connect-many-dialog').open;",
        )
        .await;

        // Instagram refreshes only tokens a day old: the answer is information.
        let instagram = account(&s, Platform::Instagram, "demo");
        click_key(&c, &format!("instagram:refresh:{instagram}")).await;
        wait_css(&c, &format!("{} .card-info", card("instagram"))).await;
        save_screenshot(&c, "integrations-info.png").await;
        reports.push(axe::run(&c, "a refresh refused as too early").await);

        // An action in flight.
        let sandbox = s.sandbox().unwrap();
        sandbox.set_faults(
            Some(Platform::Reddit),
            Faults {
                latency: Duration::from_secs(4),
                ..Default::default()
            },
        );
        let reddit = account(&s, Platform::Reddit, "demo");
        click_key(&c, &format!("reddit:refresh:{reddit}")).await;
        wait_css(&c, &(card("reddit") + "[data-state=\"loading\"]")).await;
        reports.push(axe::run(&c, "a refresh in progress").await);
        assert_eq!(
            c.execute(
                &format!(
                    "return document.querySelector('{}').dataset.state;",
                    card("reddit")
                ),
                vec![]
            )
            .await
            .unwrap(),
            json!("loading"),
            "axe ran while the refresh was in progress"
        );
        notice_is(&c, "Reddit connection refreshed.").await;
        wait_css(&c, &(card("reddit") + "[data-state=\"connected\"]")).await;
        sandbox.clear_faults(None);

        click_key(&c, &format!("reddit:disconnect:{reddit}")).await;
        wait_css(&c, "dialog#confirm[open]").await;
        reports.push(axe::run(&c, "disconnect dialog open").await);
        press(&c, Key::Escape).await;
        wait_true(
            &c,
            "the dialog closes",
            "return !document.getElementById('confirm').open;",
        )
        .await;

        // The API cannot be reached: the page says so and offers to try again.
        cdp(&c, "Network.enable", json!({})).await;
        cdp(
            &c,
            "Network.setBlockedURLs",
            json!({ "urls": ["*/api/integrations/status"] }),
        )
        .await;
        c.refresh().await.unwrap();
        let title = wait_css(&c, "#empty:not([hidden]) #empty-title").await;
        assert_eq!(
            title.text().await.unwrap(),
            "Could not load your integrations"
        );
        reports.push(axe::run(&c, "the API unreachable").await);
        cdp(&c, "Network.setBlockedURLs", json!({ "urls": [] })).await;

        // The check itself: the footer hint at its old colour (3.1:1) is caught.
        c.refresh().await.unwrap();
        wait_css(&c, ".card-hint").await;
        c.execute(
            "for (const e of document.querySelectorAll('.card-hint')) e.style.color = '#8a93a1';",
            vec![],
        )
        .await
        .unwrap();
        let old = axe::run(&c, "the old footer colour (must fail)").await;
        assert!(
            old.violations.iter().any(|v| v["id"] == "color-contrast"),
            "axe must find the old contrast failure: {}",
            old.describe()
        );

        write_report("axe-light.txt", &reports);
        axe::assert_clean(&reports);
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn dark_mode() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        color_scheme(&c, "dark").await;
        let mut reports = Vec::new();
        c.goto(&format!("{}/signin", s.url())).await.unwrap();
        wait_css(&c, "input#user").await;
        save_screenshot(&c, "signin-dark.png").await;
        reports.push(axe::run(&c, "dark: sign-in page").await);

        sign_in(&c, &s, 31).await;
        busy_user(&c, &s, 31).await;
        let background = c
            .execute(
                "return getComputedStyle(document.documentElement).backgroundColor;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(background, json!("rgb(15, 18, 22)"), "the dark background");
        save_screenshot(&c, "integrations-dark.png").await;
        reports.push(axe::run(&c, "dark: connections, an error on a card").await);
        let reddit = account(&s, Platform::Reddit, "demo");
        select_account(&c, "reddit", &reddit).await;
        wait_css(&c, "#bulkbar:not([hidden])").await;
        save_screenshot(&c, "integrations-dark-selection.png").await;
        reports.push(axe::run(&c, "dark: an account selected, the selection bar").await);
        wait_css(&c, "#bulk-clear").await.click().await.unwrap();

        let instagram = account(&s, Platform::Instagram, "demo");
        click_key(&c, &format!("instagram:refresh:{instagram}")).await;
        wait_css(&c, &format!("{} .card-info", card("instagram"))).await;
        reports.push(axe::run(&c, "dark: a refresh refused as too early").await);

        click_key(&c, &format!("instagram:disconnect:{instagram}")).await;
        wait_css(&c, "dialog#confirm[open]").await;
        save_screenshot(&c, "integrations-dark-dialog.png").await;
        reports.push(axe::run(&c, "dark: disconnect dialog open").await);
        press(&c, Key::Escape).await;

        wait_css(&c, "#search")
            .await
            .send_keys("zzz")
            .await
            .unwrap();
        wait_css(&c, "#empty:not([hidden])").await;
        reports.push(axe::run(&c, "dark: search matching nothing").await);

        write_report("axe-dark.txt", &reports);
        axe::assert_clean(&reports);
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn no_sideways_scrolling_from_320_px_and_44_px_targets_on_small_screens() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        let mut reports = Vec::new();
        viewport(&c, 320, 640).await;
        c.goto(&format!("{}/signin", s.url())).await.unwrap();
        wait_css(&c, "input#user").await;
        assert_eq!(sideways_overflow(&c).await, json!([]), "sign-in at 320 px");
        save_screenshot(&c, "signin-320.png").await;

        sign_in(&c, &s, 32).await;
        busy_user(&c, &s, 32).await;
        for (width, height) in [(320, 640), (375, 812), (768, 1024), (1440, 1000)] {
            viewport(&c, width, height).await;
            wait_true(
                &c,
                &format!("the page laid out {width} px wide"),
                &format!("return document.documentElement.clientWidth === {width};"),
            )
            .await;
            assert_eq!(
                sideways_overflow(&c).await,
                json!([]),
                "the page at {width} px"
            );
            if width <= 375 {
                assert_eq!(
                    small_targets(&c, 44).await,
                    json!([]),
                    "44 px targets at {width} px"
                );
            } else {
                assert_eq!(small_targets(&c, 24).await, json!([]), "WCAG 2.5.8");
            }
            full_page_screenshot(&c, &format!("integrations-{width}.png")).await;
        }

        viewport(&c, 320, 640).await;
        reports.push(axe::run(&c, "320 px: connections, an error on a card").await);
        let instagram = account(&s, Platform::Instagram, "demo");
        select_account(&c, "instagram", &instagram).await;
        wait_css(&c, "#bulkbar:not([hidden])").await;
        assert_eq!(
            sideways_overflow(&c).await,
            json!([]),
            "the selection bar at 320 px"
        );
        assert_eq!(
            small_targets(&c, 44).await,
            json!([]),
            "the selection bar's buttons and the checkboxes"
        );
        save_screenshot(&c, "integrations-320-selection.png").await;
        reports.push(axe::run(&c, "320 px: an account selected").await);
        wait_css(&c, "#bulk-clear").await.click().await.unwrap();
        wait_css(&c, "#bulkbar[hidden]").await;
        click_key(&c, &format!("instagram:disconnect:{instagram}")).await;
        wait_css(&c, "dialog#confirm[open]").await;
        assert_eq!(
            sideways_overflow(&c).await,
            json!([]),
            "the dialog at 320 px"
        );
        assert_eq!(
            small_targets(&c, 44).await,
            json!([]),
            "the dialog's buttons"
        );
        save_screenshot(&c, "integrations-320-dialog.png").await;
        reports.push(axe::run(&c, "320 px: disconnect dialog open").await);
        press(&c, Key::Escape).await;

        write_report("axe-320.txt", &reports);
        axe::assert_clean(&reports);
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn focus_stays_on_the_control_after_refresh_and_disconnect() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        sign_in(&c, &s, 33).await;
        busy_user(&c, &s, 33).await;

        // A refresh: the grid is rebuilt, focus stays on the same button.
        let reddit = account(&s, Platform::Reddit, "demo");
        let refresh = format!("reddit:refresh:{reddit}");
        enter_on(&c, &refresh).await;
        notice_is(&c, "Reddit connection refreshed.").await;
        wait_css(&c, &(card("reddit") + "[data-state=\"connected\"]")).await;
        wait_focus(&c, &refresh).await;

        // A refused refresh: information on the card, not an error; focus stays.
        let demo = account(&s, Platform::Instagram, "demo");
        let two = account(&s, Platform::Instagram, "studio.two");
        let refresh = format!("instagram:refresh:{demo}");
        enter_on(&c, &refresh).await;
        let info = wait_css(&c, &format!("{} .card-info", card("instagram"))).await;
        assert_eq!(
            info.text().await.unwrap(),
            "This connection was renewed recently. It will be refreshed automatically later."
        );
        wait_css(&c, &(card("instagram") + "[data-state=\"connected\"]")).await;
        assert_eq!(badge(&c, "instagram").await, "Connected");
        assert!(
            c.find_all(Locator::Css(&format!("{} .card-error", card("instagram"))))
                .await
                .unwrap()
                .is_empty()
        );
        wait_focus(&c, &refresh).await;

        // The dialog: Escape closes it and focus goes back to its button.
        let first = format!("instagram:disconnect:{demo}");
        enter_on(&c, &first).await;
        wait_css(&c, "dialog#confirm[open]").await;
        wait_focus(&c, "button Cancel").await;
        press(&c, Key::Escape).await;
        wait_focus(&c, &first).await;

        // The same when the grid was rebuilt behind the open dialog (a slow refresh of
        // another card finished meanwhile): focus goes to the new grid's button.
        let sandbox = s.sandbox().unwrap();
        sandbox.set_faults(
            Some(Platform::TikTok),
            Faults {
                latency: Duration::from_secs(3),
                ..Default::default()
            },
        );
        let tiktok = account(&s, Platform::TikTok, "demo");
        click_key(&c, &format!("tiktok:refresh:{tiktok}")).await;
        wait_css(&c, &(card("tiktok") + "[data-state=\"loading\"]")).await;
        enter_on(&c, &first).await;
        wait_css(&c, "dialog#confirm[open]").await;
        assert_eq!(
            c.execute(
                &format!(
                    "return document.querySelector('{}').dataset.state;",
                    card("tiktok")
                ),
                vec![]
            )
            .await
            .unwrap(),
            json!("loading"),
            "the refresh is still running behind the dialog"
        );
        wait_css(&c, &(card("tiktok") + "[data-state=\"connected\"]")).await;
        sandbox.clear_faults(None);
        press(&c, Key::Escape).await;
        wait_focus(&c, &first).await;

        // A confirmed disconnect: the row is gone; focus moves to the account that took
        // its place.
        press(&c, Key::Enter).await;
        wait_focus(&c, "button Cancel").await;
        press(&c, Key::Tab).await;
        wait_focus(&c, "#confirm-ok").await;
        press(&c, Key::Enter).await;
        notice_is(&c, "Instagram disconnected.").await;
        wait_true(
            &c,
            "one Instagram account left",
            &format!(
                "return document.querySelectorAll('{} li.account').length === 1;",
                card("instagram").replace('\'', "\\'")
            ),
        )
        .await;
        let next = format!("instagram:disconnect:{two}");
        wait_focus(&c, &next).await;

        // The last account: focus goes to the card's "Add app".
        press(&c, Key::Enter).await;
        wait_focus(&c, "button Cancel").await;
        press(&c, Key::Tab).await;
        press(&c, Key::Enter).await;
        wait_css(&c, &(card("instagram") + "[data-state=\"disconnected\"]")).await;
        wait_focus(&c, "instagram:connect:").await;
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn keyboard_only_sign_in_connect_refresh_disconnect() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        c.goto(&format!("{}/integrations", s.url())).await.unwrap();
        wait_css(&c, "input#user").await;
        tab_to(&c, "#user", 5, true).await;
        press(&c, Key::Backspace).await;
        for digit in "34".chars() {
            let actions = KeyActions::new("keyboard".into())
                .then(KeyAction::Down { value: digit })
                .then(KeyAction::Up { value: digit });
            c.perform_actions(actions).await.unwrap();
        }
        press(&c, Key::Enter).await;
        wait_css(&c, "article.card[data-state]").await;
        assert_eq!(s.integrations.status(UserId(34)).await.unwrap().len(), 0);

        // Connect Reddit: Tab to its card's button, Enter, then Allow on the consent page.
        let tabs = tab_to(&c, "reddit:connect:", 40, true).await;
        println!("Reddit's \"Add app\" after {tabs} Tab presses");
        press(&c, Key::Enter).await;
        wait_css(&c, "button.allow").await;
        tab_to(&c, "button Allow", 10, false).await;
        press(&c, Key::Enter).await;
        wait_css(&c, &(card("reddit") + "[data-state=\"connected\"]")).await;
        notice_is(&c, "Reddit connected as @demo.").await;

        // Refresh it: focus stays on the button.
        let reddit = account(&s, Platform::Reddit, "demo");
        let refresh = format!("reddit:refresh:{reddit}");
        tab_to(&c, &refresh, 40, true).await;
        press(&c, Key::Enter).await;
        notice_is(&c, "Reddit connection refreshed.").await;
        wait_focus(&c, &refresh).await;

        // Disconnect it: the next Tab stop, the dialog, its "Disconnect".
        tab_to(&c, &format!("reddit:disconnect:{reddit}"), 1, true).await;
        press(&c, Key::Enter).await;
        wait_css(&c, "dialog#confirm[open]").await;
        wait_focus(&c, "button Cancel").await;
        tab_to(&c, "#confirm-ok", 1, true).await;
        press(&c, Key::Enter).await;
        notice_is(&c, "Reddit disconnected.").await;
        wait_css(&c, &(card("reddit") + "[data-state=\"disconnected\"]")).await;
        wait_focus(&c, "reddit:connect:").await;
        assert!(s.integrations.status(UserId(34)).await.unwrap().is_empty());
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn results_are_announced_and_every_control_says_what_it_acts_on() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        sign_in(&c, &s, 35).await;
        connect_directly(&s, 35, "instagram", "demo").await;
        connect_directly(&s, 35, "instagram", "studio.two").await;
        connect_directly(&s, 35, "reddit", "demo").await;
        c.refresh().await.unwrap();
        wait_css(&c, &format!("{} li.account", card("reddit"))).await;

        // One live region, and it is not the grid.
        let live = c
            .execute(
                "return [...document.querySelectorAll(
                   '[aria-live], [role=status], [role=alert], [role=log]')].map((e) => e.id);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(live, json!(["announce"]));

        // Searching says how many apps are shown; the summary is left alone.
        c.execute(
            "window.summaryText = document.getElementById('summary').firstChild; return 1;",
            vec![],
        )
        .await
        .unwrap();
        wait_css(&c, "#search")
            .await
            .send_keys("redd")
            .await
            .unwrap();
        announced(&c, "1 of 4 apps shown.").await;
        let same = c
            .execute(
                "return document.getElementById('summary').firstChild === window.summaryText;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            same,
            json!(true),
            "the summary is not rebuilt on each keystroke"
        );

        c.refresh().await.unwrap();
        wait_css(&c, &format!("{} li.account", card("reddit"))).await;
        wait_css(&c, ".chip[data-filter=available]")
            .await
            .click()
            .await
            .unwrap();
        announced(&c, "2 of 4 apps shown.").await;
        wait_css(&c, ".chip[data-filter=all]")
            .await
            .click()
            .await
            .unwrap();
        announced(&c, "All 4 apps shown.").await;

        // Every button of the grid has its own name, saying which account or platform.
        let names = c
            .execute(
                "return [...document.querySelectorAll('#grid button')]
                   .map((b) => b.getAttribute('aria-label'));",
                vec![],
            )
            .await
            .unwrap();
        let names: Vec<String> = serde_json::from_value(names).unwrap();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in [
            "Refresh @demo on Reddit",
            "Disconnect @demo from Reddit",
            "Refresh @demo on Instagram",
            "Disconnect @studio.two from Instagram",
            "Add account to Instagram",
            "Add app TikTok",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }

        // The dialog is described by its text.
        let reddit = account(&s, Platform::Reddit, "demo");
        click_key(&c, &format!("reddit:disconnect:{reddit}")).await;
        wait_css(&c, "dialog#confirm[open]").await;
        let description = c
            .execute(
                "const d = document.getElementById('confirm');
                 return document.getElementById(d.getAttribute('aria-describedby')).textContent;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            description.as_str().unwrap_or_default().contains("@demo"),
            "{description}"
        );
        press(&c, Key::Escape).await;

        // Navigation entries without a link do not look like links.
        let plain = c
            .execute(
                "return [...document.querySelectorAll('.topnav span.topnav-item')]
                   .map((e) => getComputedStyle(e).cursor);",
                vec![],
            )
            .await
            .unwrap();
        for cursor in plain.as_array().unwrap() {
            assert_eq!(cursor, "default");
        }
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn no_request_fails_while_the_pages_load() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        sign_in(&c, &s, 36).await;
        connect_directly(&s, 36, "reddit", "demo").await;
        c.refresh().await.unwrap();
        wait_css(&c, &format!("{} li.account", card("reddit"))).await;
        c.goto(&format!("{}/signin", s.url())).await.unwrap();
        wait_css(&c, "input#user").await;
        // The icon is asked for after the load event: give it a moment to be logged.
        tokio::time::sleep(Duration::from_millis(500)).await;
        // Without an icon in the page, Chromium asks for /favicon.ico and gets a 404.
        let failed = failed_requests(&c).await;
        assert!(failed.is_empty(), "{failed:?}");
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}

#[tokio::test]
async fn keyboard_only_select_accounts_and_disconnect_them_together() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        sign_in(&c, &s, 37).await;
        busy_user(&c, &s, 37).await;
        let demo = account(&s, Platform::Instagram, "demo");
        let two = account(&s, Platform::Instagram, "studio.two");
        let reddit = account(&s, Platform::Reddit, "demo");

        // Space ticks a row's checkbox; the next Tab stop is the same row's first action.
        let first = format!("instagram:select:{demo}");
        wait_css(&c, &format!("[data-key=\"{first}\"]")).await;
        c.execute(
            "document.querySelector('[data-key=\"' + arguments[0] + '\"]').focus();",
            vec![json!(first)],
        )
        .await
        .unwrap();
        wait_focus(&c, &first).await;
        press(&c, Key::Space).await;
        wait_css(&c, "#bulkbar:not([hidden])").await;
        tab_to(&c, &format!("instagram:refresh:{demo}"), 1, true).await;
        tab_to(&c, &format!("reddit:select:{reddit}"), 10, true).await;
        press(&c, Key::Space).await;
        wait_true(
            &c,
            "two selected",
            "return document.getElementById('bulk-count').textContent === '2 selected';",
        )
        .await;

        // From the search box, Tab reaches the bar before the grid.
        c.execute("document.getElementById('search').focus();", vec![])
            .await
            .unwrap();
        tab_to(&c, "#bulk-disconnect", 10, true).await;
        press(&c, Key::Enter).await;
        wait_css(&c, "dialog#confirm[open]").await;
        wait_focus(&c, "button Cancel").await;
        press(&c, Key::Escape).await;
        wait_focus(&c, "#bulk-disconnect").await;
        press(&c, Key::Enter).await;
        wait_focus(&c, "button Cancel").await;
        tab_to(&c, "#confirm-ok", 1, true).await;
        press(&c, Key::Enter).await;
        notice_is(&c, "2 accounts disconnected.").await;
        announced(&c, "2 accounts disconnected.").await;

        // The bar is gone; focus went on to the grid, not to the page.
        wait_css(&c, "#bulkbar[hidden]").await;
        wait_focus(&c, &format!("instagram:select:{two}")).await;
        let left: Vec<String> = s
            .integrations
            .status(UserId(37))
            .await
            .unwrap()
            .into_iter()
            .map(|v| v.provider_account_id)
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(!left.contains(&demo) && !left.contains(&reddit), "{left:?}");
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}
