//! What `/proc` says about other processes: resident memory (`VmRSS`, `VmHWM`) of a
//! process, and the CPU time of every PostgreSQL server process, summed over processes
//! that come and go (Linux only; elsewhere the figures are absent).

use std::collections::{HashMap, HashSet};

/// `VmRSS` and `VmHWM` of `pid`, in KiB; `None` once it has exited.
pub fn rss_hwm_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Clock ticks per second of `utime` / `stime` (`getconf CLK_TCK`; 100 on Linux).
pub fn ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The command name and `utime + stime` (ticks) of `pid`.
fn name_and_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: the name may hold spaces, so split at the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    // After the name: state is field 3, utime field 14 and stime field 15 (1-based).
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((stat.get(open + 1..close)?.to_owned(), tick(11)? + tick(12)?))
}

/// `utime + stime` of `pid`, in ticks; `None` once it has exited.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    name_and_ticks(pid).map(|(_, t)| t)
}

/// `utime + stime` in ticks of every process whose command name is `name`, by pid.
pub fn cpu_ticks_of(name: &str) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((comm, ticks)) = name_and_ticks(pid)
            && comm == name
        {
            out.insert(pid, ticks);
        }
    }
    out
}

/// CPU time of a set of processes over an interval, counting processes that start or exit
/// within it: each pid contributes its last sampled ticks minus its ticks at the start (0
/// for one that started later). A process's CPU after its last sample is missed, so sample
/// often.
///
/// Some of those processes can be marked ([`mark`](Self::mark)) to be counted apart, such
/// as the server backends of one client.
#[derive(Debug, Clone)]
pub struct CpuMeter {
    name: String,
    start: HashMap<u32, u64>,
    last: HashMap<u32, u64>,
    marked: HashSet<u32>,
}

impl CpuMeter {
    /// Starts measuring the processes named `name` (`postgres`).
    pub fn start(name: &str) -> Self {
        let start = cpu_ticks_of(name);
        Self {
            name: name.to_owned(),
            last: start.clone(),
            start,
            marked: HashSet::new(),
        }
    }

    /// Counts `pids` apart as well (see [`marked_seconds`](Self::marked_seconds)).
    pub fn mark(&mut self, pids: impl IntoIterator<Item = u32>) {
        self.marked.extend(pids);
    }

    /// Takes a sample.
    pub fn sample(&mut self) {
        for (pid, ticks) in cpu_ticks_of(&self.name) {
            let seen = self.last.entry(pid).or_insert(ticks);
            *seen = (*seen).max(ticks);
        }
    }

    /// CPU seconds used since the start.
    pub fn seconds(&self) -> f64 {
        self.sum(|_| true)
    }

    /// CPU seconds the marked processes used since the start.
    pub fn marked_seconds(&self) -> f64 {
        self.sum(|pid| self.marked.contains(&pid))
    }

    fn sum(&self, counted: impl Fn(u32) -> bool) -> f64 {
        let ticks: u64 = self
            .last
            .iter()
            .filter(|(pid, _)| counted(**pid))
            .map(|(pid, t)| t.saturating_sub(self.start.get(pid).copied().unwrap_or(0)))
            .sum();
        ticks as f64 / ticks_per_sec()
    }
}

/// The machine's CPU time from `/proc/stat`: (busy, total) in ticks over all CPUs, busy
/// being everything but idle and I/O wait.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total.saturating_sub(idle), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen() {
        let me = std::process::id();
        let (rss, hwm) = rss_hwm_kb(me).expect("/proc/self/status");
        assert!(rss > 0 && hwm >= rss);
        let name = std::fs::read_to_string(format!("/proc/{me}/comm")).unwrap();
        let mut meter = CpuMeter::start(name.trim());
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        meter.sample();
        assert!(cpu_ticks_of(name.trim()).contains_key(&me));
        assert!(cpu_ticks(me).is_some());
        meter.mark([me]);
        assert!(meter.marked_seconds() <= meter.seconds());
        let (busy, total) = machine_ticks().expect("/proc/stat");
        assert!(busy <= total && total > 0);
        assert!(meter.seconds() >= 0.0);
    }
}
