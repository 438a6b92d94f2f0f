//! Resident memory of this process from `/proc/self/status` (Linux).

/// Reads a `kB` field (`VmHWM`, `VmRSS`) of `/proc/self/status`; `None` off Linux.
fn status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Peak resident set size (`VmHWM`) in KiB.
pub fn peak_kb() -> Option<u64> {
    status_kb("VmHWM")
}

/// Current resident set size (`VmRSS`) in KiB.
pub fn rss_kb() -> Option<u64> {
    status_kb("VmRSS")
}

/// Resets the peak (`VmHWM`) to the current RSS by writing `5` to
/// `/proc/self/clear_refs` (Linux >= 4.0); `false` when that is not possible, in which
/// case the peak covers the whole process life so far.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
