use super::*;

fn catalog() -> Catalog {
    let a = d("a").build();
    let b = d("b").build();
    let c = d("c").build();
    let mut main = Model::new("main", vec![a.clone(), b]);
    main.fallbacks = vec!["backup".into()];
    Catalog::new(vec![main, Model::new("backup", vec![c, a])])
}

fn legacy_ids(plan: &[Arc<Deployment>]) -> Vec<&str> {
    plan.iter().map(|d| &*d.id).collect()
}

#[test]
fn plan_lists_own_deployments_then_fallbacks_once_each() {
    let catalog = catalog();
    let health = Health::default();
    let plan = catalog.plan(catalog.model("main").unwrap(), &health);
    assert_eq!(legacy_ids(&plan), ["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn cooling_deployments_go_last_until_the_cooldown_ends() {
    let catalog = catalog();
    let health = Health::default();
    let mut e = err(ErrorKind::RateLimited, Some(429));
    e.retry_after = Some(Duration::from_secs(10));
    health.failure(&"a".into(), &e);
    let main = catalog.model("main").unwrap();
    assert_eq!(legacy_ids(&catalog.plan(main, &health)), ["b", "a", "c"]);
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(legacy_ids(&catalog.plan(main, &health)), ["a", "b", "c"]);
}

#[tokio::test]
async fn run_fails_over_on_retryable_errors_and_stops_on_others() {
    let catalog = catalog();
    let health = Health::default();
    let plan = catalog.plan(catalog.model("main").unwrap(), &health);
    let (value, served_by, log) = run(&plan, &health, 5, |d| async move {
        if &*d.id == "a" {
            Err(AttemptError::new(ErrorKind::UpstreamServer, "boom"))
        } else {
            Ok(d.id.to_string())
        }
    })
    .await
    .unwrap();
    assert_eq!(value, "b");
    assert_eq!(&*served_by.id, "b");
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].error, Some(ErrorKind::UpstreamServer));

    let failed = run(&plan, &health, 5, |_| async {
        Err::<(), _>(AttemptError::new(ErrorKind::InvalidRequest, "bad"))
    })
    .await
    .unwrap_err();
    assert_eq!(failed.attempts.len(), 1, "a client error is not retried");
    assert_eq!(failed.error.kind, ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn run_respects_the_attempt_limit() {
    let catalog = catalog();
    let health = Health::default();
    let plan = catalog.plan(catalog.model("main").unwrap(), &health);
    let failed = run(&plan, &health, 2, |_| async {
        Err::<(), _>(AttemptError::new(ErrorKind::UpstreamConnect, "refused"))
    })
    .await
    .unwrap_err();
    assert_eq!(failed.attempts.len(), 2);
    assert_eq!(failed.error.kind, ErrorKind::UpstreamConnect);
}
