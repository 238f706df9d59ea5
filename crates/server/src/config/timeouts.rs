//! Upstream time limits: server-wide in `[server.timeouts]`, overridden key by key per
//! deployment (`[deployments.X.timeouts]`) and per model (`[models.X.timeouts]`).

use super::raw::RawTimeouts;
use super::{Compiler, TimeoutSettings};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The limits a model or a deployment sets; unset ones come from the next level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutOverrides {
    /// TCP/TLS connect.
    pub connect: Option<Duration>,
    /// Streams: until the first event.
    pub first_byte: Option<Duration>,
    /// Streams: the longest silence between two events.
    pub stall: Option<Duration>,
    /// The whole attempt, stream included.
    pub total: Option<Duration>,
    /// Non-streaming: one attempt, headers and body.
    pub attempt: Option<Duration>,
}

impl TimeoutOverrides {
    fn over(&self, base: TimeoutSettings) -> TimeoutSettings {
        TimeoutSettings {
            connect: self.connect.unwrap_or(base.connect),
            first_byte: self.first_byte.unwrap_or(base.first_byte),
            stall: self.stall.unwrap_or(base.stall),
            total: self.total.unwrap_or(base.total),
            attempt: self.attempt.unwrap_or(base.attempt),
        }
    }
}

/// Every model's and deployment's overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeoutTable {
    models: HashMap<Arc<str>, TimeoutOverrides>,
    deployments: HashMap<Arc<str>, TimeoutOverrides>,
}

impl TimeoutTable {
    /// The limits of an attempt of `model` on `deployment`: each key from the model if it
    /// sets it (the workload knows how long its answers take), else from the deployment,
    /// else the server's.
    pub fn resolve(
        &self,
        server: &TimeoutSettings,
        model: &str,
        deployment: &str,
    ) -> TimeoutSettings {
        let mut t = *server;
        if let Some(d) = self.deployments.get(deployment) {
            t = d.over(t);
        }
        if let Some(m) = self.models.get(model) {
            t = m.over(t);
        }
        t
    }
}

impl Compiler {
    /// The server-wide limits, with their defaults.
    pub(super) fn server_timeouts(&mut self, raw: &RawTimeouts) -> TimeoutSettings {
        let o = self.timeout_overrides("server.timeouts", raw);
        let ms = Duration::from_millis;
        TimeoutSettings {
            connect: o.connect.unwrap_or(ms(5_000)),
            first_byte: o.first_byte.unwrap_or(ms(30_000)),
            stall: o.stall.unwrap_or(ms(60_000)),
            total: o.total.unwrap_or(ms(600_000)),
            // Long enough for slow reasoning answers, short enough that the default budget
            // (the total) leaves room to fail over after one hang.
            attempt: o.attempt.unwrap_or(ms(300_000)),
        }
    }

    /// The keys set in one `timeouts` table; 0 is refused.
    pub(super) fn timeout_overrides(&mut self, loc: &str, raw: &RawTimeouts) -> TimeoutOverrides {
        let mut check = |name: &str, v: Option<u64>| {
            if v == Some(0) {
                self.error(
                    format!("{loc}.{name}"),
                    "a timeout of 0 would fail every request",
                    "use a positive number of milliseconds, or remove the line for the default",
                );
            }
            v.map(Duration::from_millis)
        };
        TimeoutOverrides {
            connect: check("connect_ms", raw.connect_ms),
            first_byte: check("first_byte_ms", raw.first_byte_ms),
            stall: check("stall_ms", raw.stall_ms),
            total: check("total_ms", raw.total_ms),
            attempt: check("attempt_ms", raw.attempt_ms),
        }
    }

    /// The overrides of every model and deployment that has a `timeouts` table.
    pub(super) fn timeout_table<'a>(
        &mut self,
        models: impl Iterator<Item = (&'a String, Option<&'a RawTimeouts>)>,
        deployments: impl Iterator<Item = (&'a String, Option<&'a RawTimeouts>)>,
    ) -> TimeoutTable {
        let mut table = TimeoutTable::default();
        for (name, raw) in models {
            if let Some(raw) = raw {
                let o = self.timeout_overrides(&format!("models.{name}.timeouts"), raw);
                table.models.insert(name.as_str().into(), o);
            }
        }
        for (name, raw) in deployments {
            if let Some(raw) = raw {
                let o = self.timeout_overrides(&format!("deployments.{name}.timeouts"), raw);
                table.deployments.insert(name.as_str().into(), o);
            }
        }
        table
    }
}
