use super::*;
use switchyard_providers::{AttemptError, Auth};
use switchyard_types::{Cloud, ErrorKind, Jurisdiction};

fn deployment(id: &str) -> Arc<Deployment> {
    Arc::new(Deployment {
        id: id.into(),
        provider: Arc::new(ProviderSpec {
            id: format!("{id}-provider").into(),
            kind: ProviderKind::OpenAi,
            base_url: "http://127.0.0.1:1".into(),
            auth: Auth::None,
            api_version: None,
            cloud: Cloud::OpenAi,
            region: "us-east-1".into(),
            jurisdiction: Jurisdiction::Us,
            http2_prior_knowledge: false,
        }),
        upstream_model: "m".into(),
        prices: Prices::default(),
        limits: Limits::default(),
        tags: vec![],
    })
}

fn catalog() -> Catalog {
    let a = deployment("a");
    let b = deployment("b");
    let c = deployment("c");
    Catalog::new(vec![
        Model {
            name: "main".into(),
            deployments: vec![a.clone(), b],
            strategy: Strategy::Priority,
            fallbacks: vec!["backup".into()],
        },
        Model {
            name: "backup".into(),
            deployments: vec![c, a],
            strategy: Strategy::Priority,
            fallbacks: vec![],
        },
    ])
}

fn ids(plan: &[Arc<Deployment>]) -> Vec<&str> {
    plan.iter().map(|d| &*d.id).collect()
}

#[test]
fn plan_lists_own_deployments_then_fallbacks_once_each() {
    let catalog = catalog();
    let health = Health::default();
    let plan = catalog.plan(catalog.model("main").unwrap(), &health);
    assert_eq!(ids(&plan), ["a", "b", "c"]);
}

#[tokio::test(start_paused = true)]
async fn cooling_deployments_go_last_until_the_cooldown_ends() {
    let catalog = catalog();
    let health = Health::default();
    let mut err = AttemptError::new(ErrorKind::RateLimited, "slow down");
    err.retry_after = Some(std::time::Duration::from_secs(10));
    health.failure(&"a".into(), &err);
    let main = catalog.model("main").unwrap();
    assert_eq!(ids(&catalog.plan(main, &health)), ["b", "a", "c"]);
    tokio::time::advance(std::time::Duration::from_secs(11)).await;
    assert_eq!(ids(&catalog.plan(main, &health)), ["a", "b", "c"]);
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
    assert!(health.is_cooling("a"));

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
