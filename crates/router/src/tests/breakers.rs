//! Breakers through the attempt loop: a recovered deployment is probed back within its
//! backoff, and streams that break after they started count against their deployment.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::time::Instant;

/// The gateway's default breaker, with a 1 s cooldown after a 429.
fn policy() -> Policy {
    Policy {
        breaker: BreakerConfig::default(),
        rate_limit_cooldown: Duration::from_secs(1),
        ..Policy::default()
    }
}

async fn serve<F, Fut>(catalog: &Catalog, h: &Health, stream: bool, f: F) -> Served<()>
where
    F: FnMut(Arc<Deployment>) -> Fut,
    Fut: std::future::Future<Output = Result<(), AttemptError>>,
{
    let prefs = Preferences::default();
    let mut r = req("m", &prefs);
    r.stream = stream;
    let plan = catalog.route(h, &r, &mut rng()).unwrap();
    execute(&plan, h, &Budget::default(), f).await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_primary_down_for_a_minute_serves_again_within_seconds_of_recovering() {
    let catalog = one_model(
        Model::new("m", vec![d("primary").build(), d("secondary").build()]),
        policy(),
    );
    let h = Health::default();
    let down = AtomicBool::new(true);
    let attempt = |d: Arc<Deployment>| {
        let down = &down;
        async move {
            if &*d.id == "primary" && down.load(Ordering::Relaxed) {
                Err(err(ErrorKind::Overloaded, Some(503)))
            } else {
                Ok(())
            }
        }
    };
    let mut served_by = Vec::new();
    // A request every 4 s; the primary recovers at 60 s.
    for i in 0..30u64 {
        if i == 15 {
            down.store(false, Ordering::Relaxed);
        }
        let served = serve(&catalog, &h, false, attempt).await;
        served_by.push(served.deployment.id.to_string());
        tokio::time::advance(Duration::from_secs(4)).await;
    }
    let back = served_by
        .iter()
        .position(|id| id == "primary")
        .expect("the primary serves again");
    // The wait doubles 1, 2, 4, 8 s and stops at 10 s: at most 10 s + one request's pacing.
    assert!(
        (15..=18).contains(&back),
        "primary back at request {back}: {served_by:?}"
    );
    assert!(
        served_by[back..].iter().all(|id| id == "primary"),
        "{served_by:?}"
    );
    let view = h.view(&catalog.model("m").unwrap().deployments[0], Instant::now());
    assert_eq!(view.breaker, BreakerStatus::Closed);
    assert_eq!(view.failed_probes, 0, "reset by the successful probe");
}

#[tokio::test(start_paused = true)]
async fn streams_cut_after_they_started_trip_the_breaker_of_their_deployment() {
    let catalog = one_model(
        Model::new("m", vec![d("cutter").build(), d("healthy").build()]),
        policy(),
    );
    let h = Health::default();
    let on_cutter = AtomicUsize::new(0);
    let attempt = |d: Arc<Deployment>| {
        let on_cutter = &on_cutter;
        async move {
            if &*d.id == "cutter" {
                on_cutter.fetch_add(1, Ordering::Relaxed);
            }
            // Every stream starts: the failure only shows after the first event.
            Ok(())
        }
    };
    let cut = AttemptError::new(ErrorKind::UpstreamProtocol, "cut mid-stream");
    for _ in 0..20 {
        let mut served = serve(&catalog, &h, true, attempt).await;
        if &*served.deployment.id == "cutter" {
            served.permit.stream_broke(&cut, Duration::from_secs(1));
        } else {
            served.permit.stream_completed();
        }
    }
    assert_eq!(
        on_cutter.load(Ordering::Relaxed),
        5,
        "consecutive_failures = 5, then the breaker is open"
    );
    let cutter = &catalog.model("m").unwrap().deployments[0];
    assert!(matches!(
        h.view(cutter, Instant::now()).breaker,
        BreakerStatus::Open {
            reason: TripReason::ConsecutiveFailures(5),
            ..
        }
    ));

    // A stream whose client left says nothing about the deployment; a completed one closes
    // the breaker again after its probe.
    tokio::time::advance(Duration::from_secs(1)).await;
    let served = serve(&catalog, &h, true, attempt).await;
    assert!(served.attempts[0].probe, "the probe after 1 s");
    drop(served);
    let mut served = serve(&catalog, &h, true, attempt).await;
    assert!(
        served.attempts[0].probe,
        "the abandoned probe freed the slot"
    );
    served.permit.stream_completed();
    assert_eq!(
        h.view(cutter, Instant::now()).breaker,
        BreakerStatus::Closed
    );
}
