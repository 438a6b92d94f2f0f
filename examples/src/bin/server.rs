//! The example server: the design's REST API and the Integrations page.
//! `cargo run -p integrations-examples --bin server [-- --port 3000]`, then open
//! `http://127.0.0.1:3000/integrations` (sign in with any user number). Data lives in
//! `./server-data/` (SQLite and a generated key) unless `DATABASE_URL` and
//! `TOKEN_ENCRYPTION_KEY` are set; platforms without real credentials use the in-process
//! sandbox. [`ServerConfig::from_env`](integrations_examples::server::ServerConfig::from_env)
//! lists the variables, [`serve`] what runs, `docs/http-api.md` the routes.

use integrations_examples::server::{ServerConfig, serve};
use std::process::ExitCode;

const USAGE: &str = "usage: server [--port N]   (env: PORT, DATABASE_URL, SESSION_SECRET, TOKEN_ENCRYPTION_KEY, ENABLE_<PROVIDER>_INTEGRATION)";

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,integrations_sandbox=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut config = ServerConfig::from_env()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let port = args.next().and_then(|p| p.parse().ok());
                config.port = port.ok_or("--port needs a number")?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    if config.database_url.is_none() {
        let dir = config.data_dir.display();
        println!("server: using the embedded SQLite store in {dir}");
    }
    let running = serve(config).await?;
    for (platform, source) in &running.providers.sources {
        println!("server: {platform}: {source}");
    }
    if let Some(sandbox) = running.sandbox() {
        let url = sandbox.base_url();
        println!("server: platform sandbox (development only) at {url}/_sandbox");
    }
    println!("server: open {}/integrations", running.url());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => println!("server: stopping"),
        served = running.http.wait() => served?,
    }
    Ok(())
}
