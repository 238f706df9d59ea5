//! One behavioural suite that every `KeyStore` must pass (memory, SQLite, PostgreSQL).

use super::KeyStore;
use crate::error::GovernanceError;
use crate::model::{Budget, BudgetMode, KeySpec, Limits, ModelPattern, Period, TeamSpec};
use std::time::Duration;
use switchyard_types::Money;

/// Runs the suite; panics (fails the test) on the first mismatch.
pub(crate) async fn run(store: &dyn KeyStore) {
    let team = TeamSpec {
        name: "ml-platform".into(),
        limits: Limits {
            rpm: Some(100),
            tpm: None,
        },
        budgets: vec![Budget {
            period: Period::Month,
            amount: Money::from_usd(500.0).unwrap(),
            mode: BudgetMode::Alert,
        }],
    };
    let created = store.create_team(&team).await.unwrap();
    assert_eq!(created.limits, team.limits);
    assert!(matches!(
        store.create_team(&team).await,
        Err(GovernanceError::Conflict(_))
    ));
    assert_eq!(
        store
            .get_team("ml-platform")
            .await
            .unwrap()
            .unwrap()
            .budgets,
        team.budgets
    );

    let mut spec = KeySpec::new("ml-platform", "batch-jobs");
    spec.allowed_models = vec![ModelPattern::new("gpt-4o*").unwrap()];
    spec.default_data_class = "confidential".into();
    spec.limits = Limits {
        rpm: Some(10),
        tpm: Some(10_000),
    };
    spec.budgets = vec!["day:5".parse().unwrap()];
    spec.store_bodies = true;
    let issued = store.create_key(&spec).await.unwrap();
    assert!(issued.secret.starts_with("sk-sy-") && issued.secret.len() >= 38);
    assert!(issued.secret.starts_with(&issued.info.prefix));
    assert!(matches!(
        store.create_key(&spec).await,
        Err(GovernanceError::Conflict(_))
    ));

    let p = store.authenticate(&issued.secret).await.unwrap().unwrap();
    assert_eq!(p.key_id, issued.info.id);
    assert_eq!(p.team, "ml-platform");
    assert_eq!(p.data_class, "confidential");
    assert_eq!(p.limits, spec.limits);
    assert_eq!(p.budgets, spec.budgets);
    assert_eq!(p.team_limits, team.limits);
    assert_eq!(p.team_budgets, team.budgets);
    assert!(p.store_bodies);
    assert!(p.allows_model("gpt-4o-mini") && !p.allows_model("claude-sonnet"));
    // The secret with its last character changed (to one it is not: secrets are base62).
    let last = if issued.secret.ends_with('x') {
        'y'
    } else {
        'x'
    };
    let wrong = format!("{}{last}", &issued.secret[..issued.secret.len() - 1]);
    assert!(store.authenticate(&wrong).await.unwrap().is_none());
    assert!(store.authenticate("not-a-key").await.unwrap().is_none());

    // A key for a team that does not exist yet creates the team without limits.
    let other = store
        .create_key(&KeySpec::new("research", "notebook"))
        .await
        .unwrap();
    let p2 = store.authenticate(&other.secret).await.unwrap().unwrap();
    assert_eq!(p2.team_limits, Limits::default());
    assert_eq!(store.list_teams().await.unwrap().len(), 2);

    let all = store.list_keys(None).await.unwrap();
    assert_eq!(all.len(), 2);
    let mine = store.list_keys(Some("research")).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].name, "notebook");
    assert_eq!(
        store.get_key(&issued.info.id).await.unwrap().unwrap().name,
        "batch-jobs"
    );
    assert!(store.get_key("key_nope").await.unwrap().is_none());

    // Rotation without grace: the old secret stops at once.
    let rotated = store
        .rotate_key(&issued.info.id, Duration::ZERO)
        .await
        .unwrap();
    assert_ne!(rotated.secret, issued.secret);
    assert!(store.authenticate(&issued.secret).await.unwrap().is_none());
    assert!(store.authenticate(&rotated.secret).await.unwrap().is_some());

    // Rotation with grace: both work until the grace ends.
    let again = store
        .rotate_key(&issued.info.id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(again.info.previous_valid_until_ms.is_some());
    assert!(store.authenticate(&rotated.secret).await.unwrap().is_some());
    assert!(store.authenticate(&again.secret).await.unwrap().is_some());

    // Revocation stops every secret of the key, and is idempotent.
    let revoked = store.revoke_key(&issued.info.id).await.unwrap();
    assert!(revoked.revoked_ms.is_some());
    assert!(store.authenticate(&again.secret).await.unwrap().is_none());
    assert!(store.authenticate(&rotated.secret).await.unwrap().is_none());
    assert_eq!(
        store.revoke_key(&issued.info.id).await.unwrap().revoked_ms,
        revoked.revoked_ms
    );
    assert!(matches!(
        store.rotate_key(&issued.info.id, Duration::ZERO).await,
        Err(GovernanceError::NotFound(_))
    ));
    assert!(matches!(
        store.revoke_key("key_nope").await,
        Err(GovernanceError::NotFound(_))
    ));
    assert!(store.authenticate(&other.secret).await.unwrap().is_some());
}
