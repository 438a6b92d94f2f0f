//! The whole flow in one command, on the embedded SQLite store and the local sandbox:
//! connect one account on each platform, list them, refresh them, show TikTok's refresh
//! token rotation, disconnect one, list again.
//!
//! ```text
//! cargo run -p integrations-examples --bin quickstart [-- --data-dir DIR]
//! ```
//!
//! Data (the SQLite file and, unless `TOKEN_ENCRYPTION_KEY` is set, a generated key) lives
//! in `./quickstart-data/` or `--data-dir` / `INTEGRATIONS_QUICKSTART_DIR`.

use integrations_core::crypto::SecretContext;
use integrations_core::{Error, IntegrationView, Integrations, ProviderError, TokenStore, UserId};
use integrations_examples::{
    fingerprint, follow_authorization, load_or_create_key, sandbox_providers,
};
use integrations_sandbox::{Consent, Platform, Sandbox, SandboxConfig};
use integrations_storage_diesel::DieselStore;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const REDIRECT_BASE: &str = "http://127.0.0.1:3000/callback";
const USER: UserId = UserId(1);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

fn data_dir() -> Result<PathBuf, BoxError> {
    let mut args = std::env::args().skip(1);
    let mut dir = std::env::var_os("INTEGRATIONS_QUICKSTART_DIR").map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--data-dir" => {
                dir = Some(args.next().ok_or("--data-dir needs a path")?.into());
            }
            "-h" | "--help" => {
                println!("usage: quickstart [--data-dir DIR]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    Ok(dir.unwrap_or_else(|| PathBuf::from("quickstart-data")))
}

fn print_table(title: &str, views: &[IntegrationView]) {
    println!("\n{title}");
    println!(
        "  {:<10} {:<22} {:<14} {:<16} EXPIRES",
        "PLATFORM", "ACCOUNT", "USERNAME", "STATUS"
    );
    if views.is_empty() {
        println!("  (no connections)");
    }
    for v in views {
        let expires = v
            .expires_at
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "never".into());
        println!(
            "  {:<10} {:<22} {:<14} {:<16} {}",
            v.provider,
            v.provider_account_id,
            v.username.as_deref().unwrap_or("-"),
            v.status,
            expires
        );
    }
}

async fn refresh_token_fingerprint(
    store: &DieselStore,
    integrations: &Integrations,
    provider: &str,
    account: &str,
) -> Result<Option<String>, BoxError> {
    let pid = integrations_core::ProviderId::new(provider)?;
    let Some(row) = store.find_account(&pid, account).await? else {
        return Ok(None);
    };
    let Some(sealed) = row.refresh_token else {
        return Ok(None);
    };
    let plain = integrations
        .cipher()
        .open(SecretContext::refresh_token(provider, account), &sealed)?;
    Ok(Some(fingerprint(&plain)))
}

async fn run() -> Result<(), BoxError> {
    let dir = data_dir()?;
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("quickstart.db");
    let key_file = dir.join("quickstart.key");

    println!("quickstart: starting the local platform sandbox (development only)");
    let sandbox = Sandbox::start_with(SandboxConfig {
        auto_consent: Some(Consent::Allow),
        ..SandboxConfig::default()
    })
    .await?;
    println!("quickstart: sandbox at {}", sandbox.base_url());

    let (cipher, created) = load_or_create_key(&key_file)?;
    if created {
        println!(
            "quickstart: WARNING generated a new encryption key in {} — production keys belong in TOKEN_ENCRYPTION_KEY, never next to the database",
            key_file.display()
        );
    } else {
        println!(
            "quickstart: using the encryption key (id {})",
            cipher.current_key_id()
        );
    }

    let url = format!("sqlite://{}", db.display());
    let store = Arc::new(DieselStore::connect(&url).await?);
    println!(
        "quickstart: opened the embedded SQLite store {}",
        db.display()
    );

    let providers = sandbox_providers(&sandbox.handle(), |p| {
        format!("{REDIRECT_BASE}/{}", p.as_str())
    })?;
    let mut builder = Integrations::builder(store.clone(), cipher);
    for p in providers {
        builder = builder.provider(p);
    }
    let integrations = builder.build();

    let platforms = ["instagram", "tiktok", "reddit", "onlyfans"];
    let mut accounts = Vec::new();
    for platform in platforms {
        let start = integrations
            .connect(USER, platform, Some("/integrations".into()))
            .await?;
        let params = follow_authorization(&start.auth_url, REDIRECT_BASE).await?;
        let connection = integrations.callback(USER, platform, &params).await?;
        println!(
            "quickstart: {} {platform}: account {} (@{})",
            if connection.reauthorized {
                "reconnected"
            } else {
                "connected"
            },
            connection.account.provider_account_id,
            connection.account.username.as_deref().unwrap_or("-"),
        );
        accounts.push((platform, connection.account.provider_account_id));
    }
    print_table("Connections", &integrations.status(USER).await?);

    let tiktok_account = accounts
        .iter()
        .find(|(p, _)| *p == "tiktok")
        .map(|(_, a)| a.clone())
        .ok_or("no TikTok account")?;
    let before =
        refresh_token_fingerprint(&store, &integrations, "tiktok", &tiktok_account).await?;

    println!();
    for (platform, account) in &accounts {
        match integrations.refresh(USER, platform, account).await {
            Ok(view) => println!(
                "quickstart: refreshed {platform}: expires {}",
                view.expires_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| "never".into())
            ),
            Err(Error::Provider(ProviderError::RefreshNotYetAllowed { not_before })) => println!(
                "quickstart: {platform} refreshes only tokens at least 24 hours old; next refresh from {not_before}"
            ),
            Err(Error::Provider(ProviderError::Unsupported { .. })) => println!(
                "quickstart: {platform} has no token refresh; its connection lasts until the user or the gateway ends it"
            ),
            Err(e) => return Err(format!("refreshing {platform} failed: {e}").into()),
        }
    }

    let after = refresh_token_fingerprint(&store, &integrations, "tiktok", &tiktok_account).await?;
    match (before, after) {
        (Some(b), Some(a)) if a != b => println!(
            "quickstart: TikTok rotated the refresh token (fingerprint {b} -> {a}); the sandbox made {} refresh call(s) for this grant",
            sandbox.refresh_count(Platform::TikTok, "demo")
        ),
        other => return Err(format!("TikTok refresh token did not rotate: {other:?}").into()),
    }

    let (platform, account) = accounts
        .iter()
        .find(|(p, _)| *p == "reddit")
        .ok_or("no Reddit account")?;
    integrations.disconnect(USER, platform, account).await?;
    println!("quickstart: disconnected {platform} account {account} (token revoked, row deleted)");

    let last = integrations.status(USER).await?;
    print_table("Connections after disconnecting Reddit", &last);
    let connected: Vec<_> = last
        .iter()
        .map(|v| v.provider.as_str().to_owned())
        .collect();
    for expected in ["instagram", "tiktok", "onlyfans"] {
        if !connected.iter().any(|p| p == expected) {
            return Err(format!("{expected} is missing from the final status").into());
        }
    }
    if connected.iter().any(|p| p == "reddit") {
        return Err("reddit is still listed after disconnecting".into());
    }
    println!(
        "\nquickstart: OK: connected instagram, tiktok, reddit, onlyfans; refreshed; disconnected reddit"
    );
    sandbox.shutdown().await;
    Ok(())
}
