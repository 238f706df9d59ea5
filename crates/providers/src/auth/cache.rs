//! A value that expires and is refreshed by one caller at a time, while the others wait for
//! that refresh instead of starting their own (no stampede on the token endpoint).

use std::future::Future;
use std::sync::RwLock;

/// The current value plus a lock that serialises refreshes.
pub(crate) struct SingleFlight<T> {
    current: RwLock<Option<T>>,
    refresh: tokio::sync::Mutex<()>,
}

impl<T> Default for SingleFlight<T> {
    fn default() -> Self {
        SingleFlight {
            current: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T: Clone> SingleFlight<T> {
    /// The cached value when `usable` says so, else the result of one `fetch`.
    pub(crate) async fn get<E, Fut>(
        &self,
        usable: impl Fn(&T) -> bool,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.peek(&usable) {
            return Ok(v);
        }
        let _refreshing = self.refresh.lock().await;
        // Whoever held the lock before us may have refreshed already.
        if let Some(v) = self.peek(&usable) {
            return Ok(v);
        }
        let v = fetch().await?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v.clone());
        Ok(v)
    }

    fn peek(&self, usable: &impl Fn(&T) -> bool) -> Option<T> {
        let current = self
            .current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        current.as_ref().filter(|v| usable(v)).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let cache = Arc::new(SingleFlight::<u32>::default());
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get(
                        |_| true,
                        || async {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            Ok::<_, ()>(7)
                        },
                    )
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // An unusable value is fetched again.
        let v = cache.get(|v| *v != 7, || async { Ok::<_, ()>(8) }).await;
        assert_eq!(v, Ok(8));
    }

    #[tokio::test]
    async fn a_failed_fetch_is_not_cached() {
        let cache = SingleFlight::<u32>::default();
        assert_eq!(
            cache.get(|_| true, || async { Err("down") }).await,
            Err("down")
        );
        assert_eq!(
            cache.get(|_| true, || async { Ok::<_, &str>(1) }).await,
            Ok(1)
        );
    }
}
