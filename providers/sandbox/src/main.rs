//! `integrations-sandbox`: runs the development sandbox and prints its base URLs and the
//! demo client credentials.
//!
//! ```text
//! integrations-sandbox [--port N] [--auto allow|deny] [--redirect-uri URI]... [--user NAME]
//!                      [--instagram-deauthorize-url URL] [--instagram-data-deletion-url URL]
//!                      [--instagram-webhooks-url URL] [--instagram-verify-token TOKEN]
//!                      [--tiktok-webhook-url URL] [--onlyfans-webhook-url URL]
//!                      [--onlyfans-webhook-secret whsec_...]
//! ```

use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig, WebhookTargets};
use std::process::ExitCode;

const USAGE: &str = "usage: integrations-sandbox [--port N] [--auto allow|deny] [--redirect-uri URI]... [--user NAME]
  --port N            port on 127.0.0.1 (default 8025; 0 = any free port)
  --auto allow|deny   answer authorize/link pages automatically (default: show a consent page)
  --redirect-uri URI  redirect URI registered for every demo client; `{platform}` is replaced
                      by the platform name (repeatable; default http://127.0.0.1:3000/callback/{platform}
                      and http://localhost:3000/callback/{platform})
  --user NAME         default sandbox user who consents (default: demo)
Webhook targets (also settable at run time: PUT /_sandbox/{platform}/webhooks):
  --instagram-deauthorize-url URL    Instagram \"Deauthorize callback URL\"
  --instagram-data-deletion-url URL  Instagram \"Data deletion request URL\"
  --instagram-webhooks-url URL       Instagram Graph webhooks callback URL
  --instagram-verify-token TOKEN     its verify token
  --tiktok-webhook-url URL           TikTok callback URL
  --onlyfans-webhook-url URL         OnlyFans gateway (OFAuth) webhook URL
  --onlyfans-webhook-secret SECRET   its signing secret, whsec_<base64> (default: new per start)";

/// Webhook settings from the command line.
#[derive(Default)]
struct WebhookArgs {
    instagram: WebhookTargets,
    tiktok: WebhookTargets,
    onlyfans: WebhookTargets,
    onlyfans_secret: Option<String>,
}

fn parse_args() -> Result<(SandboxConfig, WebhookArgs), String> {
    let mut config = SandboxConfig {
        port: 8025,
        ..SandboxConfig::default()
    };
    let mut hooks = WebhookArgs::default();
    let mut uris = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--port" => {
                config.port = value("--port")?
                    .parse()
                    .map_err(|_| "--port must be a number from 0 to 65535".to_owned())?;
            }
            "--auto" => {
                config.auto_consent = match value("--auto")?.as_str() {
                    "allow" => Some(Consent::Allow),
                    "deny" => Some(Consent::Deny),
                    _ => return Err("--auto must be allow or deny".to_owned()),
                };
            }
            "--redirect-uri" => uris.push(value("--redirect-uri")?),
            "--user" => config.default_user = value("--user")?,
            "--instagram-deauthorize-url" => {
                hooks.instagram.deauthorize_url = Some(value(&a)?);
            }
            "--instagram-data-deletion-url" => {
                hooks.instagram.data_deletion_url = Some(value(&a)?);
            }
            "--instagram-webhooks-url" => hooks.instagram.callback_url = Some(value(&a)?),
            "--instagram-verify-token" => hooks.instagram.verify_token = Some(value(&a)?),
            "--tiktok-webhook-url" => hooks.tiktok.callback_url = Some(value(&a)?),
            "--onlyfans-webhook-url" => hooks.onlyfans.callback_url = Some(value(&a)?),
            "--onlyfans-webhook-secret" => hooks.onlyfans_secret = Some(value(&a)?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !uris.is_empty() {
        config.redirect_uris = uris;
    }
    Ok((config, hooks))
}

#[tokio::main]
async fn main() -> ExitCode {
    let (config, hooks) = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let sandbox = match Sandbox::start_with(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let set = [
        (Platform::Instagram, hooks.instagram),
        (Platform::TikTok, hooks.tiktok),
        (Platform::OnlyFans, hooks.onlyfans),
    ]
    .into_iter()
    .try_for_each(|(p, t)| sandbox.set_webhook_targets(p, t))
    .and_then(|()| match &hooks.onlyfans_secret {
        Some(s) => sandbox.set_onlyfans_webhook_secret(s),
        None => Ok(()),
    });
    if let Err(e) = set {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let urls = sandbox.urls();
    println!(
        "integrations-sandbox (DEVELOPMENT ONLY) listening on {}",
        urls.base
    );
    println!("controls: {}/_sandbox", urls.base);
    println!();
    let env_name = |p: Platform| p.as_str().to_uppercase();
    for p in Platform::ALL {
        let c = sandbox.client(p);
        let n = env_name(p);
        match p {
            Platform::Instagram => {
                println!(
                    "# Instagram  (www {}  api {}  graph {})",
                    urls.instagram_www, urls.instagram_api, urls.instagram_graph
                );
                println!("{n}_CLIENT_ID={}", c.client_id);
                println!("{n}_CLIENT_SECRET={}", c.client_secret);
            }
            Platform::TikTok => {
                println!(
                    "# TikTok  (www {}  api {})",
                    urls.tiktok_www, urls.tiktok_open
                );
                println!("{n}_CLIENT_KEY={}", c.client_id);
                println!("{n}_CLIENT_SECRET={}", c.client_secret);
            }
            Platform::Reddit => {
                println!(
                    "# Reddit  (www {}  oauth {})",
                    urls.reddit_www, urls.reddit_oauth
                );
                println!("{n}_CLIENT_ID={}", c.client_id);
                println!("{n}_CLIENT_SECRET={}", c.client_secret);
                println!("{n}_USER_AGENT=\"sandbox:com.example.integrations:v0.1 (by /u/demo)\"");
            }
            Platform::OnlyFans => {
                println!("# OnlyFans gateway  (api {})", urls.onlyfans_gateway);
                println!("{n}_API_KEY={}", c.client_secret);
                println!("{n}_API_BASE_URL={}", urls.onlyfans_gateway);
                println!("{n}_WEBHOOK_SECRET={}", sandbox.onlyfans_webhook_secret());
            }
        }
        println!("{n}_REDIRECT_URI={}", c.redirect_uri);
        println!(
            "# apps page (remove the app, webhooks): {}/_sandbox/{p}/apps",
            urls.base
        );
        println!();
    }
    let _ = tokio::signal::ctrl_c().await;
    println!("shutting down");
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
