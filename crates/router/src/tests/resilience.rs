use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn policy(consecutive: u32, open_for: Duration) -> Policy {
    Policy {
        breaker: BreakerConfig {
            consecutive_failures: consecutive,
            open_for,
            ..BreakerConfig::default()
        },
        rate_limit_cooldown: Duration::from_secs(1),
        ..Policy::default()
    }
}

async fn go<T, F, Fut>(
    catalog: &Catalog,
    h: &Health,
    budget: &Budget,
    f: F,
) -> Result<Served<T>, Failed>
where
    F: FnMut(Arc<Deployment>) -> Fut,
    Fut: std::future::Future<Output = Result<T, AttemptError>>,
{
    let prefs = Preferences::default();
    let plan = catalog.route(h, &req("m", &prefs), &mut rng()).unwrap();
    execute(&plan, h, budget, f).await
}

#[tokio::test(start_paused = true)]
async fn a_failing_deployment_trips_its_breaker_and_then_gets_only_probes() {
    let catalog = one_model(
        Model::new("m", vec![d("bad").build(), d("good").build()]),
        policy(3, Duration::from_secs(10)),
    );
    let h = Health::default();
    let calls = AtomicUsize::new(0);
    let attempt = |d: Arc<Deployment>| {
        let calls = &calls;
        async move {
            if &*d.id == "bad" {
                calls.fetch_add(1, Ordering::Relaxed);
                Err(err(ErrorKind::UpstreamServer, Some(500)))
            } else {
                Ok(())
            }
        }
    };
    for _ in 0..50 {
        let served = go(&catalog, &h, &Budget::default(), attempt).await.unwrap();
        assert_eq!(&*served.deployment.id, "good");
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        3,
        "only until the breaker opened"
    );
    let view = h.view(
        &catalog.model("m").unwrap().deployments[0],
        tokio::time::Instant::now(),
    );
    assert!(matches!(
        view.breaker,
        BreakerStatus::Open {
            reason: TripReason::ConsecutiveFailures(3),
            ..
        }
    ));
    tokio::time::advance(Duration::from_secs(10)).await;
    let served = go(&catalog, &h, &Budget::default(), attempt).await.unwrap();
    assert!(served.attempts[0].probe);
    assert_eq!(calls.load(Ordering::Relaxed), 4, "one probe");
    for _ in 0..20 {
        let served = go(&catalog, &h, &Budget::default(), attempt).await.unwrap();
        assert_eq!(&*served.deployment.id, "good");
    }
    assert_eq!(
        calls.load(Ordering::Relaxed),
        4,
        "the failed probe reopened it"
    );
    let view = h.view(
        &catalog.model("m").unwrap().deployments[0],
        tokio::time::Instant::now(),
    );
    assert_eq!((view.probes, view.trips), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn retry_after_cools_a_deployment_down_until_it_expires() {
    let catalog = one_model(
        Model::new("m", vec![d("a").build(), d("b").build()]),
        policy(5, Duration::from_secs(10)),
    );
    let h = Health::default();
    let limited = Mutex::new(true);
    let on_a = AtomicUsize::new(0);
    let attempt = |d: Arc<Deployment>| {
        let (limited, on_a) = (&limited, &on_a);
        async move {
            if &*d.id != "a" {
                return Ok(d.id.to_string());
            }
            on_a.fetch_add(1, Ordering::Relaxed);
            let mut first = limited.lock().unwrap();
            if std::mem::replace(&mut *first, false) {
                let mut e = err(ErrorKind::RateLimited, Some(429));
                e.retry_after = Some(Duration::from_secs(30));
                Err(e)
            } else {
                Ok(d.id.to_string())
            }
        }
    };
    let served = go(&catalog, &h, &Budget::default(), attempt).await.unwrap();
    assert_eq!(served.value, "b");
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            go(&catalog, &h, &Budget::default(), attempt)
                .await
                .unwrap()
                .value,
            "b"
        );
    }
    assert_eq!(
        on_a.load(Ordering::Relaxed),
        1,
        "nothing sent during the cooldown"
    );
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        go(&catalog, &h, &Budget::default(), attempt)
            .await
            .unwrap()
            .value,
        "a"
    );
}

#[tokio::test(start_paused = true)]
async fn when_every_deployment_cools_down_the_plan_answers_429_with_retry_after() {
    let catalog = one_model(Model::new("m", vec![d("a").build()]), Policy::default());
    let h = Health::default();
    let result = go(&catalog, &h, &Budget::default(), |_| async {
        let mut e = err(ErrorKind::RateLimited, Some(429));
        e.retry_after = Some(Duration::from_secs(7));
        Err::<(), _>(e)
    })
    .await;
    assert_eq!(result.unwrap_err().error.kind, ErrorKind::RateLimited);
    let prefs = Preferences::default();
    let e = catalog
        .route(&h, &req("m", &prefs), &mut rng())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    // The loop's backoff before it found nothing admissible took a few milliseconds.
    let wait = e.retry_after().unwrap();
    assert!(
        wait > Duration::from_millis(6_900) && wait <= Duration::from_secs(7),
        "{wait:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_go_round_the_plan_again_with_backoff_within_the_attempt_budget() {
    let catalog = one_model(Model::new("m", vec![d("a").build()]), Policy::default());
    let h = Health::default();
    let calls = AtomicUsize::new(0);
    let budget = Budget {
        max_attempts: 3,
        ..Budget::default()
    };
    let start = tokio::time::Instant::now();
    let served = go(&catalog, &h, &budget, |_| {
        let n = calls.fetch_add(1, Ordering::Relaxed);
        async move {
            if n < 2 {
                Err(err(ErrorKind::UpstreamServer, Some(503)))
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(served.attempts.len(), 3);
    assert!(
        start.elapsed() <= budget.backoff.base * 3,
        "{:?}",
        start.elapsed()
    );
    // A client error is not retried anywhere.
    let failed = go(&catalog, &h, &budget, |_| async {
        Err::<(), _>(err(ErrorKind::InvalidRequest, Some(400)))
    })
    .await
    .unwrap_err();
    assert_eq!(failed.attempts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_time_budget_ends_a_hanging_attempt() {
    let catalog = one_model(
        Model::new("m", vec![d("a").build(), d("b").build()]),
        Policy::default(),
    );
    let h = Health::default();
    let budget = Budget {
        time: Duration::from_secs(2),
        ..Budget::default()
    };
    let failed = go(&catalog, &h, &budget, |_| {
        std::future::pending::<Result<(), AttemptError>>()
    })
    .await
    .unwrap_err();
    assert_eq!(failed.error.kind, ErrorKind::UpstreamTimeout);
    assert_eq!(failed.attempts.len(), 1);
}

struct DropFlag<'a>(&'a AtomicUsize);
impl Drop for DropFlag<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[tokio::test(start_paused = true)]
async fn hedging_starts_a_second_attempt_and_cancels_the_loser() {
    let mut m = Model::new("m", vec![d("slow").build(), d("fast").build()]);
    m.hedging = Some(Hedging {
        delay: Duration::from_millis(100),
        percentile: Some(95.0),
    });
    let catalog = one_model(m, Policy::default());
    let h = Health::default();
    let dropped = AtomicUsize::new(0);
    let attempt = |d: Arc<Deployment>| {
        let dropped = &dropped;
        async move {
            let _flag = DropFlag(dropped);
            let ms = if &*d.id == "slow" { 1_000 } else { 10 };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, AttemptError>(d.id.to_string())
        }
    };
    let start = tokio::time::Instant::now();
    let served = go(&catalog, &h, &Budget::default(), attempt).await.unwrap();
    assert_eq!(served.value, "fast");
    assert_eq!(start.elapsed(), Duration::from_millis(110));
    let log: Vec<(&str, bool, bool)> = served
        .attempts
        .iter()
        .map(|a| (&*a.deployment, a.hedge, a.cancelled))
        .collect();
    assert_eq!(log, [("fast", true, false), ("slow", false, true)]);
    assert_eq!(
        dropped.load(Ordering::Relaxed),
        2,
        "the loser's future was dropped"
    );
    // Streams are never hedged.
    let prefs = Preferences::default();
    let mut r = req("m", &prefs);
    r.stream = true;
    assert!(catalog.route(&h, &r, &mut rng()).unwrap().hedging.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_hedge_that_fails_leaves_the_first_attempt_running() {
    let mut m = Model::new("m", vec![d("slow").build(), d("broken").build()]);
    m.hedging = Some(Hedging {
        delay: Duration::from_millis(100),
        percentile: None,
    });
    let catalog = one_model(m, Policy::default());
    let h = Health::default();
    let served = go(
        &catalog,
        &h,
        &Budget::default(),
        |d: Arc<Deployment>| async move {
            if &*d.id == "broken" {
                return Err(err(ErrorKind::UpstreamServer, Some(500)));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(d.id.to_string())
        },
    )
    .await
    .unwrap();
    assert_eq!(served.value, "slow");
    assert_eq!(served.attempts.len(), 2);
    assert_eq!(served.attempts[0].error, Some(ErrorKind::UpstreamServer));
}
