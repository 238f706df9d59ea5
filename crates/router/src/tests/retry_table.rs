//! The attempt loop follows the retry table: same-deployment retries, Retry-After waits on the
//! preferred deployment, failover on rejected credentials, one attempt for content the
//! upstream refused, and context fallbacks.

use super::*;
use std::sync::Mutex;

/// Runs one request over `catalog`, answering each attempt with the next scripted result for
/// its deployment (success once the script is empty); returns the outcome and the calls made.
async fn run_script(
    catalog: &Catalog,
    script: &[(&str, AttemptError)],
) -> (Result<Served<()>, Failed>, Vec<String>) {
    let h = Health::default();
    let prefs = Preferences::default();
    let plan = catalog.route(&h, &req("m", &prefs), &mut rng()).unwrap();
    let script = Mutex::new(script.to_vec());
    let calls = Mutex::new(Vec::new());
    let result = execute(&plan, &h, &Budget::default(), |d: Arc<Deployment>| {
        let (script, calls) = (&script, &calls);
        async move {
            calls.lock().unwrap().push(d.id.to_string());
            let mut s = script.lock().unwrap();
            match s.iter().position(|(id, _)| *id == &*d.id) {
                Some(i) => Err(s.remove(i).1),
                None => Ok(()),
            }
        }
    })
    .await;
    (result, calls.into_inner().unwrap())
}

fn two() -> Catalog {
    one_model(
        Model::new("m", vec![d("a").build(), d("b").build()]),
        Policy::default(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_transient_500_is_retried_on_the_same_deployment() {
    let (r, calls) = run_script(&two(), &[("a", err(ErrorKind::UpstreamServer, Some(500)))]).await;
    assert_eq!(&*r.unwrap().deployment.id, "a");
    assert_eq!(calls, ["a", "a"]);
    // Twice in a row: the one retry is spent, then failover.
    let script = [
        ("a", err(ErrorKind::UpstreamServer, Some(500))),
        ("a", err(ErrorKind::UpstreamConnect, None)),
    ];
    let (r, calls) = run_script(&two(), &script).await;
    assert_eq!(&*r.unwrap().deployment.id, "b");
    assert_eq!(calls, ["a", "a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn a_short_retry_after_is_waited_out_on_the_preferred_deployment_only() {
    let mut limited = err(ErrorKind::RateLimited, Some(429));
    limited.retry_after = Some(Duration::from_secs(1));
    let started = tokio::time::Instant::now();
    let (r, calls) = run_script(&two(), &[("a", limited.clone())]).await;
    assert_eq!(&*r.unwrap().deployment.id, "a");
    assert_eq!(calls, ["a", "a"]);
    assert!(started.elapsed() >= Duration::from_secs(1), "paused time");
    // The second candidate's rate limit is not waited out, and a deployment that rejected
    // the gateway's credentials is not tried again in a later round.
    let script = [
        ("a", err(ErrorKind::UpstreamRejected, Some(401))),
        ("b", limited),
    ];
    let (r, calls) = run_script(&two(), &script).await;
    assert_eq!(r.unwrap_err().error.kind, ErrorKind::RateLimited);
    assert_eq!(calls, ["a", "b"]);
}

#[tokio::test(start_paused = true)]
async fn rejected_credentials_fail_over_and_refused_content_stops() {
    let (r, calls) = run_script(
        &two(),
        &[("a", err(ErrorKind::UpstreamRejected, Some(401)))],
    )
    .await;
    assert_eq!(&*r.unwrap().deployment.id, "b");
    assert_eq!(calls, ["a", "b"]);
    let (r, calls) = run_script(&two(), &[("a", err(ErrorKind::ContentFilter, Some(400)))]).await;
    let failed = r.unwrap_err();
    assert_eq!(failed.error.kind, ErrorKind::ContentFilter);
    assert_eq!(calls, ["a"]);
    assert!(!failed.attempts[0].retryable);
}

#[tokio::test(start_paused = true)]
async fn a_model_table_overrides_the_policy() {
    let mut m = Model::new("m", vec![d("a").build(), d("b").build()]);
    let mut rules = RetryRules::default();
    rules.set_action(ErrorClass::ServerError, Action::Failover);
    m.retry = Some(rules);
    let catalog = one_model(m, Policy::default());
    let (r, calls) = run_script(
        &catalog,
        &[("a", err(ErrorKind::UpstreamServer, Some(500)))],
    )
    .await;
    assert_eq!(&*r.unwrap().deployment.id, "b");
    assert_eq!(calls, ["a", "b"]);
}

fn with_context_fallback(fallbacks: &[&str]) -> Catalog {
    let mut small = Model::new("m", vec![d("small-1").build(), d("small-2").build()]);
    small.context_fallbacks = fallbacks.iter().map(|f| Arc::from(*f)).collect();
    let large = Model::new("large", vec![d("large-1").build()]);
    Catalog::with_policy(vec![small, large], Policy::default())
}

#[tokio::test(start_paused = true)]
async fn a_context_length_error_goes_to_the_context_fallbacks() {
    let too_long = || err(ErrorKind::ContextLengthExceeded, Some(400));
    let (r, calls) = run_script(
        &with_context_fallback(&["large"]),
        &[("small-1", too_long())],
    )
    .await;
    let served = r.unwrap();
    assert_eq!(
        (&*served.deployment.id, &*served.model),
        ("large-1", "large")
    );
    assert_eq!(
        calls,
        ["small-1", "large-1"],
        "the same model's others are skipped"
    );
    // Without a context fallback: the error, after one attempt.
    let (r, calls) = run_script(&with_context_fallback(&[]), &[("small-1", too_long())]).await;
    assert_eq!(r.unwrap_err().error.kind, ErrorKind::ContextLengthExceeded);
    assert_eq!(calls, ["small-1"]);
}

#[test]
fn context_candidates_are_planned_apart_from_the_candidates() {
    let catalog = with_context_fallback(&["large"]);
    let prefs = Preferences::default();
    let plan = catalog
        .route(&Health::default(), &req("m", &prefs), &mut rng())
        .unwrap();
    assert_eq!(ids(&plan), ["small-1", "small-2"]);
    let context: Vec<&str> = plan
        .context_candidates
        .iter()
        .map(|c| &*c.deployment.id)
        .collect();
    assert_eq!(context, ["large-1"]);
}
