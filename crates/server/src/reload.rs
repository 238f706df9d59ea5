//! Live reload: on SIGHUP and whenever the config file's content changes, compile the new
//! config and swap it in. A config with errors is rejected and the old one keeps serving;
//! requests in flight always finish on the snapshot they started with.

use crate::AppState;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Watches `path` until `stop` is cancelled.
pub(crate) async fn watch(state: Arc<AppState>, path: PathBuf, stop: CancellationToken) {
    let mut last = fingerprint(&path);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let poll = state.snapshot().settings.reload_poll;
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<()>();
        let forced = tokio::select! {
            () = stop.cancelled() => return,
            () = hangup => true,
            () = tokio::time::sleep(poll) => false,
        };
        let now = fingerprint(&path);
        if forced || (now.is_some() && now != last) {
            last = now;
            reload(&state, &path);
        }
    }
}

/// The file's content hash; `None` while it cannot be read (mid-replace by an editor).
fn fingerprint(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|b| Sha256::digest(&b).into())
}

fn reload(state: &AppState, path: &Path) {
    match crate::load(path) {
        Ok(snapshot) => {
            for w in &snapshot.warnings {
                tracing::warn!("{w}");
            }
            if snapshot.settings.runtime != state.snapshot().settings.runtime {
                tracing::warn!(
                    "[governance], [ledger] and [admin] changed: they apply at the next restart"
                );
            }
            if snapshot.settings.connections != state.snapshot().settings.connections {
                tracing::warn!(
                    "[server] connection limits and deadlines changed: they apply at the next restart"
                );
            }
            state.replace(snapshot);
            tracing::info!(config = %path.display(), "config reloaded");
        }
        Err(e) => tracing::error!("config reload rejected, the previous config keeps serving: {e}"),
    }
}
