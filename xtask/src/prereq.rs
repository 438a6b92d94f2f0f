//! The test suite's prerequisites: a PostgreSQL server, Chromium and chromedriver.
//!
//! Each is checked; where this machine allows it, it is provided (a local cluster that is
//! installed but down is started; Debian's `chromium` and `chromium-driver` are installed
//! when running as root on Debian); otherwise the task stops with the exact command that
//! would provide it. Nothing is skipped silently: `INTEGRATIONS_SKIP_POSTGRES=1` and
//! `INTEGRATIONS_SKIP_BROWSER=1` are the explicit opt-outs the tests themselves honour.

use crate::run::{self, first_line, flag, is_debian, is_executable, is_root, which};
use crate::{Stop, say};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The variable naming the test server, and its default.
pub(crate) const POSTGRES_URL_ENV: &str = "INTEGRATIONS_TEST_POSTGRES_URL";
pub(crate) const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const SKIP_POSTGRES_ENV: &str = "INTEGRATIONS_SKIP_POSTGRES";
const SKIP_BROWSER_ENV: &str = "INTEGRATIONS_SKIP_BROWSER";
/// Debian's packages, and where they put their programs.
const BROWSER_PACKAGES: &str = "chromium chromium-driver";
const DEBIAN_BIN: &str = "/usr/bin";

/// What the tests will use, for the summary and the test run's environment.
#[derive(Debug, Default)]
pub(crate) struct Prerequisites {
    /// Lines describing each prerequisite.
    pub(crate) notes: Vec<String>,
    /// Variables to set for `cargo test`.
    pub(crate) env: Vec<(&'static str, String)>,
}

/// Checks (and where possible provides) everything `cargo test --workspace` needs.
pub(crate) fn ensure() -> Result<Prerequisites, Stop> {
    let mut p = Prerequisites::default();
    postgres(&mut p)?;
    browser(&mut p)?;
    Ok(p)
}

/// `cargo xtask setup`: the checks and provisioning alone, printing what the tests
/// would use.
pub(crate) fn setup(args: &[String]) -> Result<(), Stop> {
    if !args.is_empty() {
        return Err(Stop(format!("setup takes no options; got {args:?}")));
    }
    let p = ensure()?;
    for note in &p.notes {
        println!("{note}");
    }
    for (k, v) in &p.env {
        if *k != POSTGRES_URL_ENV {
            println!("{k}={v}");
        }
    }
    Ok(())
}

/// `host` and `port` of a `postgres://user:pass@host:port/db?...` URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 5432,
    };
    let host = if host.is_empty() { "localhost" } else { host };
    Some((host.to_owned(), port))
}

fn reachable(host: &str, port: u16) -> bool {
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

fn is_local(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "localhost" | "::1")
}

/// The port a Debian cluster's `postgresql.conf` sets (5432 when it sets none).
fn cluster_port(version: &str) -> u16 {
    let conf = Path::new("/etc/postgresql")
        .join(version)
        .join("main/postgresql.conf");
    std::fs::read_to_string(conf)
        .ok()
        .and_then(|text| {
            text.lines()
                .map(|l| l.split('#').next().unwrap_or_default().trim())
                .filter_map(|l| l.strip_prefix("port"))
                .filter_map(|rest| rest.trim_start().strip_prefix('='))
                .filter_map(|v| v.trim().parse().ok())
                .next_back()
        })
        .unwrap_or(5432)
}

/// The installed Debian clusters (`/etc/postgresql/<version>/main`), newest first.
fn clusters() -> Vec<String> {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().join("main").is_dir())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|v| std::cmp::Reverse(v.parse::<u32>().unwrap_or(0)));
    versions
}

/// The commands that give a fresh Debian machine a server the tests can use.
fn postgres_install_help(url: &str) -> String {
    let sudo = if is_root() { "" } else { "sudo " };
    format!(
        "no PostgreSQL server answers at {url} ({POSTGRES_URL_ENV}).\n\
         To provide one on Debian:\n\
         \x20   {sudo}apt-get install -y postgresql\n\
         \x20   {sudo}pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
         \x20   {sudo}su postgres -c \"psql -c \\\"ALTER USER postgres PASSWORD 'postgres'\\\" -c 'CREATE DATABASE test'\"\n\
         \x20   export {POSTGRES_URL_ENV}=postgres://postgres:postgres@127.0.0.1:5432/test\n\
         or point {POSTGRES_URL_ENV} at a server you have, or set {SKIP_POSTGRES_ENV}=1 to \
         skip the PostgreSQL tests explicitly."
    )
}

fn postgres(p: &mut Prerequisites) -> Result<(), Stop> {
    let url = std::env::var(POSTGRES_URL_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    p.env.push((POSTGRES_URL_ENV, url.clone()));
    let shown = redact_password(&url);
    if flag(SKIP_POSTGRES_ENV) {
        p.notes.push(format!(
            "PostgreSQL: tests skipped explicitly ({SKIP_POSTGRES_ENV}=1)"
        ));
        return Ok(());
    }
    let (host, port) = host_port(&url).ok_or_else(|| {
        format!("{POSTGRES_URL_ENV}={shown} is not a postgres://user@host:port/db URL")
    })?;
    if reachable(&host, port) {
        p.notes
            .push(format!("PostgreSQL: {shown} answers on {host}:{port}"));
        return Ok(());
    }
    let installed = if is_local(&host) {
        clusters()
    } else {
        Vec::new()
    };
    let Some(version) = installed.iter().find(|v| cluster_port(v) == port).cloned() else {
        if let Some(other) = installed.first() {
            let sudo = if is_root() { "" } else { "sudo " };
            let other_port = cluster_port(other);
            return Err(Stop(format!(
                "no PostgreSQL server answers at {shown} ({POSTGRES_URL_ENV}), and the \
                 installed cluster {other}/main listens on port {other_port}, not {port}. \
                 Start it and point the tests at it:\n\
                 \x20   {sudo}pg_ctlcluster --skip-systemctl-redirect {other} main start\n\
                 \x20   export {POSTGRES_URL_ENV}=postgres://postgres@127.0.0.1:{other_port}/test\n\
                 (with the user, password and database that cluster has), or set \
                 {SKIP_POSTGRES_ENV}=1 to skip the PostgreSQL tests explicitly."
            )));
        }
        return Err(Stop(postgres_install_help(&shown)));
    };
    let mut start = Command::new("pg_ctlcluster");
    start.args(["--skip-systemctl-redirect", &version, "main", "start"]);
    say(format_args!(
        "PostgreSQL is installed (cluster {version}/main) but {host}:{port} does not answer: starting it"
    ));
    let started = run::status(&mut start);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reachable(&host, port) {
            p.notes.push(format!(
                "PostgreSQL: started cluster {version}/main; {shown} answers on {host}:{port}"
            ));
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let sudo = if is_root() { "" } else { "sudo " };
    Err(Stop(format!(
        "PostgreSQL cluster {version}/main did not start ({}). Start it with\n\
         \x20   {sudo}pg_ctlcluster --skip-systemctl-redirect {version} main start\n\
         then run this again, or set {SKIP_POSTGRES_ENV}=1 to skip the PostgreSQL tests explicitly.",
        started.err().map_or_else(
            || format!("{host}:{port} still does not answer after 30 s"),
            |e| e.0
        )
    )))
}

/// The URL with any password replaced, for messages.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:[redacted]@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// A browser program: the variable the tests read, and the names to look for.
struct Tool {
    var: &'static str,
    names: &'static [&'static str],
}

const CHROMEDRIVER: Tool = Tool {
    var: "CHROMEDRIVER",
    names: &["chromedriver"],
};
const CHROMIUM: Tool = Tool {
    var: "CHROMIUM",
    names: &["chromium", "chromium-browser"],
};

/// The tool from its variable (which must then exist), else from `PATH`, else (after an
/// install) from Debian's `/usr/bin`.
fn find(tool: &Tool, after_install: bool) -> Result<Option<PathBuf>, Stop> {
    if let Some(path) = std::env::var_os(tool.var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(Some(path))
        } else {
            Err(Stop(format!(
                "{}={} is not an executable file (unset it to look on PATH)",
                tool.var,
                path.display()
            )))
        };
    }
    let found = tool.names.iter().find_map(|n| which(n)).or_else(|| {
        after_install
            .then(|| {
                tool.names
                    .iter()
                    .map(|n| Path::new(DEBIAN_BIN).join(n))
                    .find(|p| is_executable(p))
            })
            .flatten()
    });
    Ok(found)
}

fn browser(p: &mut Prerequisites) -> Result<(), Stop> {
    if flag(SKIP_BROWSER_ENV) {
        p.notes.push(format!(
            "browser: tests skipped explicitly ({SKIP_BROWSER_ENV}=1)"
        ));
        return Ok(());
    }
    let mut driver = find(&CHROMEDRIVER, false)?;
    let mut chromium = find(&CHROMIUM, false)?;
    if driver.is_none() || chromium.is_none() {
        let missing: Vec<&str> = [(&driver, "chromedriver"), (&chromium, "chromium")]
            .iter()
            .filter(|(found, _)| found.is_none())
            .map(|(_, name)| *name)
            .collect();
        let missing = missing.join(" and ");
        if is_root() && is_debian() {
            say(format_args!(
                "{missing} not found: installing Debian's {BROWSER_PACKAGES}"
            ));
            run::status(Command::new("apt-get").args(["update", "-q"]))?;
            run::status(
                Command::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["install", "-y", "-q"])
                    .args(BROWSER_PACKAGES.split(' ')),
            )?;
            driver = find(&CHROMEDRIVER, true)?;
            chromium = find(&CHROMIUM, true)?;
        } else {
            let how = if is_debian() {
                format!("    sudo apt-get install -y {BROWSER_PACKAGES}")
            } else {
                "    install Chromium and the chromedriver of the same version, on PATH \
                 (or name them in CHROMIUM and CHROMEDRIVER)"
                    .to_owned()
            };
            return Err(Stop(format!(
                "{missing} not found (the example server's browser tests drive Chromium \
                 through chromedriver). Install them with\n{how}\n\
                 and run this again, or set {SKIP_BROWSER_ENV}=1 to skip the browser tests \
                 explicitly."
            )));
        }
    }
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        return Err(Stop(format!(
            "{BROWSER_PACKAGES} were installed but chromedriver or chromium is still not \
             found on PATH or in {DEBIAN_BIN}"
        )));
    };
    let version = |path: &Path| {
        first_line(Command::new(path).arg("--version")).unwrap_or_else(|| "version unknown".into())
    };
    p.notes.push(format!(
        "browser: {} ({}), {} ({})",
        driver.display(),
        version(&driver),
        chromium.display(),
        version(&chromium)
    ));
    p.env.push((CHROMEDRIVER.var, driver.display().to_string()));
    p.env.push((CHROMIUM.var, chromium.display().to_string()));
    npm(p)
}

/// npm, with which the browser tests' accessibility checks install the pinned axe-core at
/// first use: installed from Debian's package as root on Debian, else the exact command.
fn npm(p: &mut Prerequisites) -> Result<(), Stop> {
    let found = || {
        Command::new("npm")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
    };
    if found().is_none() {
        if is_root() && is_debian() {
            say(format_args!("npm not found: installing Debian's npm"));
            run::status(Command::new("apt-get").args(["update", "-q"]))?;
            run::status(
                Command::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["install", "-y", "-q", "npm"]),
            )?;
        } else {
            return Err(Stop(format!(
                "npm not found (the browser tests install the pinned axe-core with it). \
                 Install it with\n    sudo apt-get install -y npm\n\
                 and run this again, or set {SKIP_BROWSER_ENV}=1 to skip the browser tests \
                 explicitly."
            )));
        }
    }
    let version = found()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .ok_or_else(|| Stop("npm was installed but is still not found on PATH".into()))?;
    p.notes.push(format!("npm: {version}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_urls() {
        let hp = host_port;
        assert_eq!(
            hp("postgres://postgres@127.0.0.1:5432/test"),
            Some(("127.0.0.1".into(), 5432))
        );
        assert_eq!(
            hp("postgresql://u:p@db.example:6000/x?sslmode=disable"),
            Some(("db.example".into(), 6000))
        );
        assert_eq!(hp("postgres://u@[::1]/x"), Some(("::1".into(), 5432)));
        assert_eq!(hp("postgres:///x"), Some(("localhost".into(), 5432)));
        assert_eq!(hp("mysql://x"), None);
        assert_eq!(hp("postgres://h:notaport/x"), None);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact_password("postgres://u:secret@h:1/db"),
            "postgres://u:[redacted]@h:1/db"
        );
        assert_eq!(
            redact_password("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
    }
}
