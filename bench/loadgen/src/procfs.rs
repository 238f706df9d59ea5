//! CPU time and memory of watched processes, read from `/proc` (Linux).

use std::time::Duration;

use serde_json::{json, Value};

/// A process whose CPU time is sampled at the start and end of the measured window.
#[derive(Debug)]
pub struct Watched {
    /// Label in the output (`gateway`, `nginx`, `sim`).
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// CPU ticks (user + system, all threads) at the window's start.
    start_ticks: Option<u64>,
    /// CPU ticks at the window's end.
    end_ticks: Option<u64>,
    /// `/proc/PID/status` at the window's end.
    status: String,
}

impl Watched {
    /// Parses `NAME=PID`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, pid) = s
            .split_once('=')
            .ok_or_else(|| format!("{s}: expected NAME=PID"))?;
        let pid = pid.parse().map_err(|_| format!("{s}: bad pid"))?;
        Ok(Self::new(name, pid))
    }

    /// Watches `pid` under `name`.
    pub fn new(name: &str, pid: u32) -> Self {
        Self {
            name: name.to_owned(),
            pid,
            start_ticks: None,
            end_ticks: None,
            status: String::new(),
        }
    }

    /// Records the CPU time at the start of the measured window.
    pub fn start(&mut self) {
        self.start_ticks = cpu_ticks(self.pid);
    }

    /// Records the CPU time and memory at the end of the measured window.
    pub fn stop(&mut self) {
        self.end_ticks = cpu_ticks(self.pid);
        self.status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
    }

    /// CPU ticks used in the window, if both ends were read.
    pub fn ticks(&self) -> Option<u64> {
        Some(self.end_ticks?.saturating_sub(self.start_ticks?))
    }

    /// CPU time spent in the window (per request too) and the memory high-water mark.
    pub fn report(&self, requests: usize, window: Duration, clk_tck: u64) -> Value {
        let status = &self.status;
        let ticks = self.ticks();
        let cpu_us = ticks
            .filter(|_| clk_tck > 0)
            .map(|t| t * 1_000_000 / clk_tck);
        let per_request = match cpu_us {
            Some(us) if requests > 0 => Some((us as f64 / requests as f64 * 10.0).round() / 10.0),
            _ => None,
        };
        let secs = window.as_secs_f64();
        let util = cpu_us
            .filter(|_| secs > 0.0)
            .map(|us| (us as f64 / 1e6 / secs * 1000.0).round() / 1000.0);
        json!({
            "pid": self.pid,
            "cpu_util": util,
            "cpu_ticks": ticks,
            "cpu_us": cpu_us,
            "cpu_us_per_request": per_request,
            "vm_hwm_kb": status_kb(status, "VmHWM:"),
            "vm_rss_kb": status_kb(status, "VmRSS:"),
        })
    }
}

/// Whole-machine CPU time from `/proc/stat`, to tell how much of the window other processes
/// (other people's builds on a shared machine) or the hypervisor (steal) took.
#[derive(Debug, Default)]
pub struct Machine {
    start: Option<CpuTimes>,
    end: Option<CpuTimes>,
}

/// Ticks summed over all CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CpuTimes {
    /// Process time: user, nice and system.
    busy: u64,
    /// Interrupt and softirq time (loopback networking runs partly here).
    irq: u64,
    /// Taken by the hypervisor.
    steal: u64,
}

impl Machine {
    /// Records the machine's CPU time at the window's start.
    pub fn start(&mut self) {
        self.start = machine_times();
    }

    /// Records the machine's CPU time at the window's end.
    pub fn stop(&mut self) {
        self.end = machine_times();
    }

    /// Cores' worth of CPU used in the window: by all processes, by processes other than the
    /// watched ones (`watched_ticks` is their total), in interrupts, and stolen by the hypervisor.
    pub fn report(&self, watched_ticks: u64, window: Duration, clk_tck: u64) -> Value {
        let (Some(a), Some(b)) = (self.start, self.end) else {
            return Value::Null;
        };
        let secs = window.as_secs_f64() * clk_tck as f64;
        if secs <= 0.0 {
            return Value::Null;
        }
        let cores = |ticks: u64| (ticks as f64 / secs * 1000.0).round() / 1000.0;
        let busy = b.busy.saturating_sub(a.busy);
        json!({
            "busy_cores": cores(busy),
            "others_cores": cores(busy.saturating_sub(watched_ticks)),
            "irq_cores": cores(b.irq.saturating_sub(a.irq)),
            "steal_cores": cores(b.steal.saturating_sub(a.steal)),
        })
    }
}

fn machine_times() -> Option<CpuTimes> {
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)
}

fn parse_machine(stat: &str) -> Option<CpuTimes> {
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map_while(|f| f.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: at(0) + at(1) + at(2),
        irq: at(5) + at(6),
        steal: at(7),
    })
}

/// utime + stime of a process from `/proc/PID/stat`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_ticks(&stat)
}

fn parse_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces; fields after it
    // start at field 3 (state), so utime (14) and stime (15) are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `kB` field of `/proc/PID/status`.
fn status_kb(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "42 (tokio rt) S 1 42 42 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 3 0 12345 0 0";
        assert_eq!(parse_ticks(stat), Some(22));
        let status = "Name:\tx\nVmHWM:\t   10240 kB\nVmRSS:\t    9000 kB\n";
        assert_eq!(status_kb(status, "VmHWM:"), Some(10240));
        assert_eq!(status_kb(status, "VmRSS:"), Some(9000));
        assert!(Watched::parse("gw=12").is_ok());
        assert!(Watched::parse("gw").is_err());
    }

    #[test]
    fn parses_machine_times() {
        let stat = "cpu  10 1 5 100 7 2 3 4 0 0\ncpu0 5 0 2 50 3 1 1 2 0 0\n";
        assert_eq!(
            parse_machine(stat),
            Some(CpuTimes {
                busy: 16,
                irq: 5,
                steal: 4
            })
        );
        assert!(machine_times().is_some());
    }

    #[test]
    fn reads_own_process() {
        assert!(cpu_ticks(std::process::id()).is_some());
    }
}
