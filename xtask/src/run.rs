//! Running commands and looking at the machine.

use crate::{Stop, say};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `program args...` as a shell would show it.
pub(crate) fn shown(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '"' || c == '$') {
            out.push_str(&format!(" '{arg}'"));
        } else {
            out.push(' ');
            out.push_str(&arg);
        }
    }
    out
}

/// Runs `cmd` with this process's terminal, failing unless it exits 0.
pub(crate) fn status(cmd: &mut Command) -> Result<(), Stop> {
    say(format_args!("running {}", shown(cmd)));
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {}: {e}", shown(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        Err(Stop(format!("{} failed ({status})", shown(cmd))))
    }
}

/// The first line `cmd` prints on stdout, when it runs and exits 0.
pub(crate) fn first_line(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(std::process::Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

/// The executable `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

/// Whether `path` is a file this user may execute.
pub(crate) fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether this process runs as root (the effective uid in `/proc/self/status`, else
/// `id -u`).
pub(crate) fn is_root() -> bool {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("Uid:"))
    {
        // Uid: real effective saved filesystem
        return line.split_whitespace().nth(2) == Some("0");
    }
    first_line(Command::new("id").arg("-u")).as_deref() == Some("0")
}

/// Whether this is Debian or a derivative with `apt-get`.
pub(crate) fn is_debian() -> bool {
    Path::new("/etc/debian_version").exists() && which("apt-get").is_some()
}

/// Whether an environment variable is set to `1`.
pub(crate) fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v.trim() == "1")
}
