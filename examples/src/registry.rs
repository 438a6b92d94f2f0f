//! The provider registry: the one table of platforms the server, the refresher and the
//! quickstart know, and the extra OAuth 2.0 providers a host adds by configuration.
//!
//! Each [`PlatformEntry`] says how its platform is named, how it is configured from the
//! environment and how it is pointed at the local sandbox. A new platform is one crate and
//! one entry in [`PLATFORMS`] (see `docs/adding-a-provider.md`); a platform that speaks
//! standard OAuth 2.0 needs no crate at all: it is one `[[provider]]` table in the file
//! named by `PROVIDERS_FILE` ([`load_providers_file`]), run by
//! [`GenericOAuth2Provider`].

use crate::{SetupError, USER_AGENT};
use integrations_core::generic::{GenericOAuth2Config, GenericOAuth2Provider};
use integrations_core::{ClientSecret, Provider, ProviderError};
use integrations_instagram::{InstagramConfig, InstagramProvider};
use integrations_onlyfans::{OnlyFansConfig, OnlyFansProvider};
use integrations_reddit::{RedditConfig, RedditProvider};
use integrations_sandbox::{
    BaseUrls, Consent, Platform, Sandbox, SandboxClient, SandboxConfig, SandboxHandle,
    WebhookTargets,
};
use integrations_tiktok::{TikTokConfig, TikTokProvider};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// A variable lookup (`std::env::var`, or a fixed table in tests).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

type Built = Result<Arc<dyn Provider>, ProviderError>;

/// One built-in platform.
#[derive(Debug)]
pub struct PlatformEntry {
    /// The provider id (`"reddit"`), the path segment of every route.
    pub id: &'static str,
    /// The name people read (`"Reddit"`).
    pub display_name: &'static str,
    /// The variable prefix (`REDDIT`): `ENABLE_<PREFIX>_INTEGRATION=false` switches the
    /// platform off.
    pub env_prefix: &'static str,
    /// The variable whose presence means "configured from the environment".
    pub credential_var: &'static str,
    /// The platform's emulation in the sandbox.
    pub sandbox: Platform,
    from_lookup: fn(Lookup<'_>) -> Built,
    for_sandbox: fn(Target<'_>, &AppUrls) -> Built,
}

/// The sandbox a provider is pointed at: one running in this process, whose handle also
/// takes the app's webhook routes, or one running elsewhere, known by its base URL only.
#[derive(Clone, Copy)]
enum Target<'a> {
    Local(&'a SandboxHandle),
    Remote(&'a BaseUrls),
}

impl Target<'_> {
    fn urls(&self) -> BaseUrls {
        match self {
            Target::Local(h) => h.urls(),
            Target::Remote(urls) => (*urls).clone(),
        }
    }

    /// The platform's demo client (only its credentials are used: the redirect URI is the
    /// app's).
    fn client(&self, platform: Platform) -> SandboxClient {
        match self {
            Target::Local(h) => h.client(platform),
            Target::Remote(_) => SandboxClient::demo(platform, ""),
        }
    }

    /// Registers the app's webhook routes, as a developer does in the platform's
    /// dashboard; a sandbox in another process takes them through its own controls.
    fn register_webhooks(
        &self,
        platform: Platform,
        targets: Option<WebhookTargets>,
    ) -> Result<(), ProviderError> {
        match (self, targets) {
            (_, None) => Ok(()),
            (Target::Local(h), Some(targets)) => register_webhooks(h, platform, Some(targets)),
            (Target::Remote(_), Some(_)) => Err(ProviderError::Config(format!(
                "the sandbox runs in another process: register the {platform} webhook \
                 targets with its PUT /_sandbox/{platform}/webhooks"
            ))),
        }
    }

    /// The OnlyFans gateway's webhook signing secret, known only in process.
    fn onlyfans_webhook_secret(&self) -> Option<String> {
        match self {
            Target::Local(h) => Some(h.onlyfans_webhook_secret()),
            Target::Remote(_) => None,
        }
    }
}

/// Where the app receives what a platform sends: the OAuth redirect and the platform
/// webhook routes of `integrations-axum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUrls {
    /// The redirect URI (`…/api/integrations/callback/{id}`).
    pub redirect_uri: String,
    /// The webhook routes, when the app serves them.
    pub webhooks: Option<WebhookUrls>,
}

/// The platform webhook routes of `integrations-axum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrls {
    /// The webhook route (`…/api/integrations/webhooks/{id}`).
    pub events: String,
    /// The data-deletion route (`…/api/integrations/data-deletion/{id}`).
    pub data_deletion: String,
}

impl AppUrls {
    /// The routes of the platform `id` under the API mounted at `api` (an absolute URL).
    pub fn new(api: &str, id: &str) -> Self {
        Self {
            redirect_uri: format!("{api}/callback/{id}"),
            webhooks: Some(WebhookUrls {
                events: format!("{api}/webhooks/{id}"),
                data_deletion: format!("{api}/data-deletion/{id}"),
            }),
        }
    }

    /// Only a redirect URI: an app that receives no platform webhooks.
    pub fn redirect_only(redirect_uri: String) -> Self {
        Self {
            redirect_uri,
            webhooks: None,
        }
    }
}

/// Registers the app's webhook routes with the sandbox's emulation of `platform`, as a
/// developer does in the platform's dashboard.
fn register_webhooks(
    sandbox: &SandboxHandle,
    platform: Platform,
    targets: Option<WebhookTargets>,
) -> Result<(), ProviderError> {
    match targets {
        Some(targets) => sandbox
            .set_webhook_targets(platform, targets)
            .map_err(|e| ProviderError::Config(format!("sandbox webhook targets: {e}"))),
        None => Ok(()),
    }
}

impl PlatformEntry {
    /// Builds the provider from the platform's variables (its crate's `from_lookup`).
    pub fn from_lookup(&self, lookup: Lookup<'_>) -> Built {
        (self.from_lookup)(lookup)
    }

    /// Builds the provider pointed at `sandbox`, with `urls.redirect_uri` registered
    /// there and the app's webhook routes registered as the platform's webhook targets.
    pub fn for_sandbox(&self, sandbox: &SandboxHandle, urls: &AppUrls) -> Built {
        (self.for_sandbox)(Target::Local(sandbox), urls)
    }

    /// Builds the provider pointed at a sandbox running in another process at `base_url`
    /// (`http://127.0.0.1:PORT`), with the platform's demo client and `urls.redirect_uri`.
    /// Webhook routes cannot be registered this way: `urls.webhooks` must be `None`
    /// ([`AppUrls::redirect_only`]), else the build fails with a configuration error.
    pub fn for_sandbox_url(&self, base_url: &str, urls: &AppUrls) -> Built {
        (self.for_sandbox)(Target::Remote(&BaseUrls::at(base_url)), urls)
    }

    /// Whether the environment configures this platform: its credential variable is set
    /// and `ENABLE_<PREFIX>_INTEGRATION` is not false.
    pub fn configured(&self, lookup: Lookup<'_>) -> Result<bool, SetupError> {
        Ok(
            lookup(self.credential_var).is_some_and(|v| !v.trim().is_empty())
                && self.enabled(lookup)?,
        )
    }

    /// Whether `ENABLE_<PREFIX>_INTEGRATION` leaves the platform on (unset counts as on);
    /// a value that is not a boolean is an error ([`env_bool`](crate::env_bool)).
    pub fn enabled(&self, lookup: Lookup<'_>) -> Result<bool, SetupError> {
        let name = format!("ENABLE_{}_INTEGRATION", self.env_prefix);
        Ok(crate::env_bool(lookup, &name)?.unwrap_or(true))
    }
}

fn arc<P: Provider + 'static>(p: Result<P, ProviderError>) -> Built {
    Ok(Arc::new(p?))
}

/// The built-in platforms, in the order pages list them.
pub static PLATFORMS: [PlatformEntry; 4] = [
    PlatformEntry {
        id: "instagram",
        display_name: "Instagram",
        env_prefix: "INSTAGRAM",
        credential_var: "INSTAGRAM_CLIENT_ID",
        sandbox: Platform::Instagram,
        from_lookup: |l| arc(InstagramConfig::from_lookup(l).and_then(InstagramProvider::new)),
        for_sandbox: |sandbox, app| {
            let (urls, c) = (sandbox.urls(), sandbox.client(Platform::Instagram));
            let verify_token = integrations_core::oauth::generate_state();
            sandbox.register_webhooks(
                Platform::Instagram,
                app.webhooks.as_ref().map(|w| WebhookTargets {
                    deauthorize_url: Some(w.events.clone()),
                    data_deletion_url: Some(w.data_deletion.clone()),
                    callback_url: Some(w.events.clone()),
                    verify_token: Some(verify_token.clone()),
                    ..WebhookTargets::default()
                }),
            )?;
            let config = InstagramConfig::builder()
                .client_id(c.client_id.clone())
                .client_secret(ClientSecret::new(c.client_secret.clone()))
                .webhook_verify_token(ClientSecret::new(verify_token))
                .redirect_uri(&app.redirect_uri)
                .www_base_url(&urls.instagram_www)
                .api_base_url(&urls.instagram_api)
                .graph_base_url(&urls.instagram_graph)
                .user_agent(USER_AGENT);
            arc(config.build().and_then(InstagramProvider::new))
        },
    },
    PlatformEntry {
        id: "tiktok",
        display_name: "TikTok",
        env_prefix: "TIKTOK",
        credential_var: "TIKTOK_CLIENT_KEY",
        sandbox: Platform::TikTok,
        from_lookup: |l| arc(TikTokConfig::from_lookup(l).and_then(TikTokProvider::new)),
        for_sandbox: |sandbox, app| {
            let (urls, c) = (sandbox.urls(), sandbox.client(Platform::TikTok));
            sandbox.register_webhooks(
                Platform::TikTok,
                app.webhooks.as_ref().map(|w| WebhookTargets {
                    callback_url: Some(w.events.clone()),
                    ..WebhookTargets::default()
                }),
            )?;
            let config = TikTokConfig::builder()
                .client_key(c.client_id.clone())
                .client_secret(ClientSecret::new(c.client_secret.clone()))
                .redirect_uri(&app.redirect_uri)
                .www_base_url(&urls.tiktok_www)
                .api_base_url(&urls.tiktok_open)
                .user_agent(USER_AGENT);
            arc(config.build().and_then(TikTokProvider::new))
        },
    },
    PlatformEntry {
        id: "reddit",
        display_name: "Reddit",
        env_prefix: "REDDIT",
        credential_var: "REDDIT_CLIENT_ID",
        sandbox: Platform::Reddit,
        from_lookup: |l| arc(RedditConfig::from_lookup(l).and_then(RedditProvider::new)),
        // Reddit sends no webhooks.
        for_sandbox: |sandbox, app| {
            let (urls, c) = (sandbox.urls(), sandbox.client(Platform::Reddit));
            let config = RedditConfig::builder()
                .client_id(c.client_id.clone())
                .client_secret(ClientSecret::new(c.client_secret.clone()))
                .redirect_uri(&app.redirect_uri)
                .user_agent(USER_AGENT)
                .www_base_url(&urls.reddit_www)
                .oauth_base_url(&urls.reddit_oauth);
            arc(config.build().and_then(RedditProvider::new))
        },
    },
    PlatformEntry {
        id: "onlyfans",
        display_name: "OnlyFans",
        env_prefix: "ONLYFANS",
        credential_var: "ONLYFANS_API_KEY",
        sandbox: Platform::OnlyFans,
        from_lookup: |l| arc(OnlyFansConfig::from_lookup(l).and_then(OnlyFansProvider::new)),
        for_sandbox: |sandbox, app| {
            let (urls, c) = (sandbox.urls(), sandbox.client(Platform::OnlyFans));
            sandbox.register_webhooks(
                Platform::OnlyFans,
                app.webhooks.as_ref().map(|w| WebhookTargets {
                    callback_url: Some(w.events.clone()),
                    ..WebhookTargets::default()
                }),
            )?;
            let mut config = OnlyFansConfig::builder()
                .api_key(ClientSecret::new(c.client_secret.clone()))
                .redirect_uri(&app.redirect_uri)
                .api_base_url(&urls.onlyfans_gateway);
            if let Some(secret) = sandbox.onlyfans_webhook_secret() {
                config = config.webhook_secret(ClientSecret::new(secret));
            }
            arc(config.build().and_then(OnlyFansProvider::new))
        },
    },
];

/// The built-in platform with this id.
pub fn platform(id: &str) -> Option<&'static PlatformEntry> {
    PLATFORMS.iter().find(|p| p.id == id)
}

/// Where a provider sits in page order: the built-ins first, in table order, then the
/// others.
pub fn order(id: &str) -> usize {
    PLATFORMS
        .iter()
        .position(|p| p.id == id)
        .unwrap_or(PLATFORMS.len())
}

/// The name people read: the table's, or the provider's own
/// ([`Provider::display_name`]).
pub fn display_name(provider: &dyn Provider) -> String {
    match platform(provider.id().as_str()) {
        Some(p) => p.display_name.to_owned(),
        None => provider.display_name().to_owned(),
    }
}

/// Every built-in platform pointed at `sandbox`; `redirect` gives each one's registered
/// redirect URI (no webhook routes are registered: a program without a server).
pub fn sandbox_providers(
    sandbox: &SandboxHandle,
    redirect: impl Fn(Platform) -> String,
) -> Result<Vec<Arc<dyn Provider>>, SetupError> {
    PLATFORMS
        .iter()
        .map(|p| Ok(p.for_sandbox(sandbox, &AppUrls::redirect_only(redirect(p.sandbox)))?))
        .collect()
}

/// Every built-in platform pointed at a sandbox running in another process at `base_url`
/// ([`PlatformEntry::for_sandbox_url`]); `redirect` gives each one's redirect URI.
pub fn sandbox_url_providers(
    base_url: &str,
    redirect: impl Fn(Platform) -> String,
) -> Result<Vec<Arc<dyn Provider>>, SetupError> {
    PLATFORMS
        .iter()
        .map(|p| Ok(p.for_sandbox_url(base_url, &AppUrls::redirect_only(redirect(p.sandbox)))?))
        .collect()
}

/// The built-in platforms the environment configures ([`PlatformEntry::configured`]).
/// A platform whose set is incomplete is an error naming the missing variable.
pub fn providers_from_env(lookup: Lookup<'_>) -> Result<Vec<Arc<dyn Provider>>, SetupError> {
    let mut out = Vec::new();
    for p in &PLATFORMS {
        if p.configured(lookup)? {
            out.push(p.from_lookup(lookup)?);
        }
    }
    Ok(out)
}

/// The providers of a server ([`server_providers`]), where each comes from, and the
/// in-process sandbox the ones without credentials run on.
#[derive(Debug)]
pub struct ProviderSet {
    /// The providers: the enabled built-in platforms in table order, then the extra ones.
    pub providers: Vec<Arc<dyn Provider>>,
    /// Each provider's id and where it points: `"environment"`, `"sandbox"` or
    /// `"configuration"` (an extra provider).
    pub sources: Vec<(String, &'static str)>,
    /// The sandbox, when a platform uses it. Dropping it stops it.
    pub sandbox: Option<Sandbox>,
}

/// The providers of a server at `base_url`: each built-in platform not in `disabled`,
/// built from the environment when `credentials_from_env` and its credentials are set
/// ([`PlatformEntry::configured`]), otherwise pointed at a sandbox started here (with
/// `auto_consent`, and `<base_url>/api/integrations/callback/<id>` as each client's
/// registered redirect URI); then `extra`, whose ids must not repeat a platform's.
pub async fn server_providers(
    base_url: &str,
    disabled: &BTreeSet<String>,
    credentials_from_env: bool,
    auto_consent: Option<Consent>,
    extra: Vec<Arc<dyn Provider>>,
) -> Result<ProviderSet, SetupError> {
    let env = |name: &str| std::env::var(name).ok();
    let api = format!("{base_url}/api/integrations");
    let callback = |id: &str| AppUrls::new(&api, id).redirect_uri;
    let mut built = Vec::new();
    for p in PLATFORMS.iter().filter(|p| !disabled.contains(p.id)) {
        let from_env = credentials_from_env && p.configured(&env)?;
        built.push((
            p,
            if from_env {
                Some(p.from_lookup(&env)?)
            } else {
                None
            },
        ));
    }
    let sandbox = if built.iter().any(|(_, from_env)| from_env.is_none()) {
        let config = SandboxConfig {
            auto_consent,
            redirect_uris: vec![callback("{platform}")],
            ..SandboxConfig::default()
        };
        Some(Sandbox::start_with(config).await?)
    } else {
        None
    };
    let mut set = ProviderSet {
        providers: Vec::new(),
        sources: Vec::new(),
        sandbox,
    };
    for (p, from_env) in built {
        let (provider, source) = match (from_env, &set.sandbox) {
            (Some(provider), _) => (provider, "environment"),
            (None, Some(sandbox)) => (
                p.for_sandbox(&sandbox.handle(), &AppUrls::new(&api, p.id))?,
                "sandbox",
            ),
            // Not reached: the sandbox started for every platform without credentials.
            (None, None) => continue,
        };
        set.providers.push(provider);
        set.sources.push((p.id.to_owned(), source));
    }
    for p in extra {
        if set.providers.iter().any(|q| q.id() == p.id()) {
            return Err(SetupError::DuplicateProvider(p.id().as_str().to_owned()));
        }
        set.sources
            .push((p.id().as_str().to_owned(), "configuration"));
        set.providers.push(p);
    }
    Ok(set)
}

/// The variable naming the extra providers' file.
pub const PROVIDERS_FILE_VAR: &str = "PROVIDERS_FILE";

/// The extra providers of a `PROVIDERS_FILE`: TOML with one `[[provider]]` table per
/// platform, each a [`GenericOAuth2Config`] (its fields and defaults; unknown fields are
/// refused with their name; the secret inline as `client_secret` or, better, named by
/// `client_secret_env`):
///
/// ```toml
/// [[provider]]
/// id = "acme"
/// display_name = "Acme"
/// client_id = "my-client"
/// client_secret_env = "ACME_CLIENT_SECRET"
/// authorize_url = "https://auth.acme.example/oauth/authorize"
/// token_url = "https://auth.acme.example/oauth/token"
/// revoke_url = "https://auth.acme.example/oauth/revoke"
/// redirect_uri = "https://app.example/api/integrations/callback/acme"
/// profile_url = "https://api.acme.example/v2/me"
/// scopes = ["profile"]
/// account_id_pointer = "/data/id"
/// username_pointer = "/data/handle"
/// ```
pub fn parse_providers(text: &str) -> Result<Vec<Arc<dyn Provider>>, SetupError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default)]
        provider: Vec<GenericOAuth2Config>,
    }
    let file: File = toml::from_str(text).map_err(|e| SetupError::ProvidersFile(e.to_string()))?;
    let mut out: Vec<Arc<dyn Provider>> = Vec::new();
    for config in file.provider {
        let id = config.id.clone();
        if platform(id.as_str()).is_some() || out.iter().any(|p| *p.id() == id) {
            return Err(SetupError::ProvidersFile(format!(
                "provider `{id}` is defined twice"
            )));
        }
        let provider = GenericOAuth2Provider::new(config)
            .map_err(|e| SetupError::ProvidersFile(format!("provider `{id}`: {e}")))?;
        out.push(Arc::new(provider));
    }
    Ok(out)
}

/// Reads and parses the file `PROVIDERS_FILE` names ([`parse_providers`]).
pub fn load_providers_file(path: &Path) -> Result<Vec<Arc<dyn Provider>>, SetupError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| SetupError::ProvidersFile(format!("{}: {e}", path.display())))?;
    parse_providers(&text)
        .map_err(|e| SetupError::ProvidersFile(format!("{}: {e}", path.display())))
}

/// The extra providers of the file in `PROVIDERS_FILE`, if the variable is set.
pub fn providers_file_from_env(lookup: Lookup<'_>) -> Result<Vec<Arc<dyn Provider>>, SetupError> {
    match lookup(PROVIDERS_FILE_VAR).filter(|v| !v.trim().is_empty()) {
        Some(path) => load_providers_file(Path::new(path.trim())),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrations_core::testing::env_lookup;

    #[test]
    fn booleans_parse_one_way() {
        for (value, expected) in [
            ("true", Some(true)),
            ("TRUE", Some(true)),
            ("Yes", Some(true)),
            ("on", Some(true)),
            ("1", Some(true)),
            ("false", Some(false)),
            ("OFF", Some(false)),
            ("no", Some(false)),
            ("0", Some(false)),
            ("", None),
        ] {
            let got = crate::env_bool(&env_lookup(&[("X", value)]), "X").unwrap();
            assert_eq!(got, expected, "{value:?}");
        }
        assert_eq!(crate::env_bool(&env_lookup(&[]), "X").unwrap(), None);
        let err = crate::env_bool(
            &env_lookup(&[("SECURE_COOKIES", "maybe")]),
            "SECURE_COOKIES",
        )
        .unwrap_err();
        assert!(err.to_string().contains("SECURE_COOKIES"), "{err}");
    }

    #[test]
    fn the_table_is_consistent() {
        for (i, p) in PLATFORMS.iter().enumerate() {
            assert_eq!(p.sandbox.as_str(), p.id);
            assert_eq!(order(p.id), i);
            assert!(p.credential_var.starts_with(p.env_prefix));
        }
        assert_eq!(order("acme"), PLATFORMS.len());
    }

    #[test]
    fn environment_selects_platforms() {
        let vars = [
            ("TIKTOK_CLIENT_KEY", "k"),
            ("TIKTOK_CLIENT_SECRET", "s"),
            ("TIKTOK_REDIRECT_URI", "https://app.example/callback/tiktok"),
            ("ENABLE_REDDIT_INTEGRATION", "false"),
            ("REDDIT_CLIENT_ID", "r"),
        ];
        let found = providers_from_env(&env_lookup(&vars)).unwrap();
        let ids: Vec<_> = found.iter().map(|p| p.id().as_str().to_owned()).collect();
        assert_eq!(ids, ["tiktok"]);
        let err = providers_from_env(&env_lookup(&vars[..2])).err().unwrap();
        assert!(err.to_string().contains("TIKTOK_REDIRECT_URI"), "{err}");
        let mut typo = vars.to_vec();
        typo.push(("ENABLE_TIKTOK_INTEGRATION", "flase"));
        let err = providers_from_env(&env_lookup(&typo)).err().unwrap();
        assert!(
            err.to_string().contains("ENABLE_TIKTOK_INTEGRATION"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_server_runs_platforms_without_credentials_on_the_sandbox() {
        let disabled = BTreeSet::from(["reddit".to_owned()]);
        let base = "http://127.0.0.1:3000";
        let set = server_providers(base, &disabled, false, None, Vec::new())
            .await
            .unwrap();
        let sources: Vec<_> = set
            .sources
            .iter()
            .map(|(id, s)| (id.as_str(), *s))
            .collect();
        assert_eq!(
            sources,
            [
                ("instagram", "sandbox"),
                ("tiktok", "sandbox"),
                ("onlyfans", "sandbox")
            ]
        );
        assert_eq!(set.providers.len(), 3);
        assert!(set.sandbox.is_some());
        // An extra provider may not take a platform's id.
        let twice = vec![set.providers[1].clone()];
        let err = server_providers(base, &disabled, false, None, twice)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SetupError::DuplicateProvider(id) if id == "tiktok"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn providers_reach_a_sandbox_in_another_process_by_its_url() {
        use integrations_core::{RefreshRequest, RefreshToken};
        use integrations_sandbox::SeedGrants;
        // The sandbox is only known by its URL here, as it would be in another process.
        let sandbox = Sandbox::start().await.unwrap();
        let base = sandbox.base_url().to_owned();
        let redirect = |p: Platform| format!("http://127.0.0.1:3000/callback/{p}");
        let all = sandbox_url_providers(&base, redirect).unwrap();
        let ids: Vec<_> = all.iter().map(|p| p.id().as_str().to_owned()).collect();
        assert_eq!(ids, ["instagram", "tiktok", "reddit", "onlyfans"]);
        // A seeded grant refreshes through the real TikTok provider with the demo client.
        let seed = SeedGrants {
            user_prefix: "remote-".into(),
            first: 0,
            count: 1,
            seed: "registry-test-seed-0001".into(),
            scopes: Vec::new(),
            client_id: None,
        };
        sandbox.seed_grants(Platform::TikTok, &seed).unwrap();
        let refresh_token = RefreshToken::new(seed.tokens(Platform::TikTok, 0).refresh_token);
        let now = chrono::Utc::now();
        let tokens = all[1]
            .refresh(RefreshRequest {
                access_token: None,
                refresh_token: Some(&refresh_token),
                issued_at: now,
                now,
                scopes: &[],
            })
            .await
            .unwrap();
        assert!(tokens.refresh_token.is_some());
        assert_eq!(
            sandbox
                .grant_summary(Platform::TikTok, "remote-")
                .refreshed_once,
            1
        );
        // Webhook routes cannot be registered with a sandbox known only by its URL.
        let tiktok = platform("tiktok").unwrap();
        let err = tiktok
            .for_sandbox_url(&base, &AppUrls::new("http://127.0.0.1:3000/api", "tiktok"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("another process"), "{err}");
    }

    #[test]
    fn providers_file_errors_name_what_is_wrong() {
        let base = r#"
            [[provider]]
            id = "acme"
            client_id = "c"
            authorize_url = "https://a.example/authorize"
            token_url = "https://a.example/token"
            redirect_uri = "https://app.example/cb"
            profile_url = "https://a.example/me"
        "#;
        let ok = parse_providers(base).unwrap();
        assert_eq!(ok[0].id().as_str(), "acme");
        assert_eq!(display_name(ok[0].as_ref()), "acme");
        let typo = format!("{base}account_id_path = \"/id\"\n");
        let e = parse_providers(&typo).err().unwrap().to_string();
        assert!(e.contains("account_id_path"), "{e}");
        let twice = format!("{base}{base}");
        let e = parse_providers(&twice).err().unwrap().to_string();
        assert!(e.contains("defined twice"), "{e}");
        let builtin = base.replace("\"acme\"", "\"reddit\"");
        assert!(parse_providers(&builtin).is_err());
        let bad_url = base.replace("https://a.example/token", "not a url");
        let e = parse_providers(&bad_url).err().unwrap().to_string();
        assert!(e.contains("token_url"), "{e}");
        assert!(parse_providers("").unwrap().is_empty());
    }
}
