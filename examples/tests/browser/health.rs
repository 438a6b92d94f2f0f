//! The Health page: a platform whose quota is used up (the sandbox's control) shows as
//! throttled with its reset time; one whose calls fail shows as failing with its latest
//! error.

use super::*;
use integrations_sandbox::{Failure, Platform};

#[tokio::test]
async fn journey_the_health_page_shows_throttled_and_failing_platforms() {
    let server = Arc::new(start(ServerConfig::default()).await);
    let s = server.clone();
    with_browser(move |c| async move {
        let sandbox = s.sandbox().unwrap();
        let integrations = s.integrations.clone();
        let url = s.url();
        let user = UserId(6);
        sign_in(&c, &s, 6).await;
        connect_directly(&s, 6, "reddit", "demo").await;
        let account = sandbox.user_info(Platform::Reddit, "demo").account_id;
        let me = || {
            reqwest::Client::new()
                .get(format!("{}/api/v1/me", sandbox.reddit_oauth()))
                .build()
                .unwrap()
        };
        integrations
            .send(user, "reddit", &account, me())
            .await
            .unwrap();
        // Reddit's quota is used up: the next call is answered 429 until the reset.
        let quota = sandbox.exhaust_quota(Platform::Reddit);
        assert!(quota.exhausted);
        assert!(
            integrations
                .send(user, "reddit", &account, me())
                .await
                .is_err()
        );
        // TikTok answers every code exchange with a 5xx.
        for _ in 0..3 {
            let start = integrations.connect(user, "tiktok", None).await.unwrap();
            let mut auth = start.auth_url.clone();
            auth.query_pairs_mut()
                .append_pair("sandbox_auto", "allow")
                .append_pair("sandbox_user", "demo");
            let params = integrations_examples::follow_authorization(
                &auth,
                &format!("{url}/api/integrations/callback/"),
            )
            .await
            .unwrap();
            sandbox.fail_next(Some(Platform::TikTok), 1, Failure::ServerError);
            assert!(
                integrations
                    .callback(user, "tiktok", &params)
                    .await
                    .is_err()
            );
        }

        // From the Integrations page, the Health link.
        c.find(Locator::Css(
            "a.topnav-item[href$=\"/integrations/health\"]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
        let reddit = wait_css(
            &c,
            "article.health-card[data-provider=\"reddit\"][data-state=\"throttled\"]",
        )
        .await;
        let state = reddit.find(Locator::Css(".state")).await.unwrap();
        assert_eq!(state.text().await.unwrap(), "Throttled");
        let reset = reddit.find(Locator::Css(".quota-reset")).await.unwrap();
        let at = reset
            .attr("data-reset-at")
            .await
            .unwrap()
            .expect("a reset time");
        let at: chrono::DateTime<chrono::Utc> = at.parse().unwrap();
        assert!(at > chrono::Utc::now(), "{at}");
        let shown = reset.text().await.unwrap();
        assert!(shown.contains("UTC"), "the reset time is shown: {shown}");
        let reason = reddit.find(Locator::Css(".reason")).await.unwrap();
        assert!(
            reason
                .text()
                .await
                .unwrap()
                .starts_with("the quota is used up until"),
            "{}",
            reason.text().await.unwrap()
        );
        let quota = reddit.find(Locator::Css(".quota")).await.unwrap();
        assert!(quota.text().await.unwrap().contains("100% used"));

        let tiktok = wait_css(
            &c,
            "article.health-card[data-provider=\"tiktok\"][data-state=\"failing\"]",
        )
        .await;
        assert_eq!(
            tiktok
                .find(Locator::Css(".state"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
            "Failing"
        );
        let latest = tiktok
            .find(Locator::Css(
                ".errors li[data-code=\"provider_unavailable\"]",
            ))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(latest.contains("token"), "{latest}");
        assert!(latest.contains("unavailable"), "{latest}");
        // Charts drawn by the served library.
        assert!(
            !c.find_all(Locator::Css("article.health-card .uplot canvas"))
                .await
                .unwrap()
                .is_empty()
        );
        let instagram = wait_css(&c, "article.health-card[data-provider=\"instagram\"]").await;
        assert_eq!(
            instagram.attr("data-state").await.unwrap().as_deref(),
            Some("operational")
        );
        full_page_screenshot(&c, "health-page.png").await;
    })
    .await;
    if let Ok(server) = Arc::try_unwrap(server) {
        server.shutdown().await;
    }
}
