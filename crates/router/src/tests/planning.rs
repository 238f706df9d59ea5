use super::*;

fn fleet() -> (Catalog, DataClass) {
    let eu_zdr = d("eu-zdr")
        .at(Cloud::Azure, "swedencentral", Jurisdiction::Eu)
        .tags(&["zdr"])
        .build();
    let eu = d("eu")
        .at(Cloud::Aws, "eu-west-1", Jurisdiction::Eu)
        .build();
    let us = d("us")
        .at(Cloud::OpenAi, "us", Jurisdiction::Us)
        .tags(&["zdr", "no-training"])
        .build();
    let backup = d("backup")
        .at(Cloud::Gcp, "us-central1", Jurisdiction::Us)
        .build();
    let mut m = Model::new("m", vec![eu_zdr, eu, us]);
    m.fallbacks = vec!["b".into()];
    let confidential = DataClass::new("confidential").unwrap();
    let mut policy = Policy::default();
    policy.data_classes.insert(
        confidential.clone(),
        Constraints {
            jurisdictions: Filter {
                allow: vec![Jurisdiction::Eu],
                deny: vec![],
            },
            require_tags: vec!["zdr".into()],
            ..Constraints::default()
        },
    );
    (
        Catalog::with_policy(vec![m, Model::new("b", vec![backup])], policy),
        confidential,
    )
}

#[test]
fn a_data_class_keeps_only_matching_deployments() {
    let (catalog, class) = fleet();
    let prefs = Preferences::default();
    let mut r = req("m", &prefs);
    r.data_class = Some(&class);
    let plan = catalog.route(&Health::default(), &r, &mut rng()).unwrap();
    assert_eq!(ids(&plan), ["eu-zdr"]);
    let reasons: Vec<String> = plan
        .excluded
        .iter()
        .map(|e| format!("{}: {}", e.deployment, e.reason))
        .collect();
    assert_eq!(
        reasons,
        [
            "eu: tag 'zdr' required by data class 'confidential'",
            "us: jurisdiction 'us' not allowed by data class 'confidential'",
            "backup: jurisdiction 'us' not allowed by data class 'confidential'",
        ]
    );
}

#[test]
fn when_nothing_is_eligible_the_error_names_each_constraint() {
    let (catalog, class) = fleet();
    let prefs = Preferences::parse_header("ignore=eu-zdr").unwrap();
    let mut r = req("m", &prefs);
    r.data_class = Some(&class);
    let e = catalog
        .route(&Health::default(), &r, &mut rng())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "no deployment of model 'm' is eligible: eu-zdr (m): in the request's 'ignore' list; \
         eu (m): tag 'zdr' required by data class 'confidential'; \
         us (m): jurisdiction 'us' not allowed by data class 'confidential'; \
         backup (b): jurisdiction 'us' not allowed by data class 'confidential'"
    );
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    let prefs = Preferences::parse_header("only=eu-zdr; ignore=eu-zdr").unwrap();
    let e = catalog
        .route(&Health::default(), &req("m", &prefs), &mut rng())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
}

#[test]
fn preferences_order_restrict_and_disable_fallbacks() {
    let (catalog, _) = fleet();
    let h = Health::default();
    let plan = |header: &str| {
        let prefs = Preferences::parse_header(header).unwrap();
        let plan = catalog.route(&h, &req("m", &prefs), &mut rng());
        plan.map(|p| ids(&p).iter().map(|s| s.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(plan("").unwrap(), ["eu-zdr", "eu", "us", "backup"]);
    assert_eq!(
        plan("order=us,eu").unwrap(),
        ["us", "eu", "eu-zdr", "backup"]
    );
    // Provider names work too.
    assert_eq!(
        plan("order=eu-provider").unwrap(),
        ["eu", "eu-zdr", "us", "backup"]
    );
    assert_eq!(plan("only=us,backup").unwrap(), ["us", "backup"]);
    assert_eq!(plan("ignore=eu").unwrap(), ["eu-zdr", "us", "backup"]);
    assert_eq!(
        plan("allow_fallbacks=false").unwrap(),
        ["eu-zdr", "eu", "us"]
    );
    assert_eq!(plan("data_policy=zdr").unwrap(), ["eu-zdr", "us"]);
    assert_eq!(plan("data_policy=deny-training").unwrap(), ["eu-zdr", "us"]);
    assert!(matches!(
        plan("only=nope"),
        Err(RouteError::Preference(PreferenceError::UnknownName {
            key: "only",
            ..
        }))
    ));
}

#[test]
fn max_price_uses_the_effective_price_of_the_estimate() {
    let cheap = d("cheap").price(1.0, 1.0).build();
    let dear = d("dear").price(10.0, 10.0).build();
    let prepaid = d("prepaid")
        .price(100.0, 100.0)
        .commit(Commitment::Prepaid {
            amount: switchyard_types::Money::from_usd(5.0).unwrap(),
            period: Period::Month,
        })
        .build();
    let catalog = Catalog::new(vec![Model::new("m", vec![cheap, dear, prepaid])]);
    // 1,000 in + 1,000 out: cheap $0.002, dear $0.02, prepaid $0 while money is left.
    let prefs = Preferences::parse_header("max_price=0.01").unwrap();
    let plan = catalog
        .route(&Health::default(), &req("m", &prefs), &mut rng())
        .unwrap();
    assert_eq!(ids(&plan), ["cheap", "prepaid"]);
    assert!(matches!(
        plan.excluded[0].reason,
        Exclusion::OverMaxPrice { .. }
    ));
}

#[test]
fn unknown_models_and_data_classes_are_errors() {
    let (catalog, _) = fleet();
    let prefs = Preferences::default();
    let e = catalog
        .route(&Health::default(), &req("nope", &prefs), &mut rng())
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let secret = DataClass::new("secret").unwrap();
    let mut r = req("m", &prefs);
    r.data_class = Some(&secret);
    assert!(matches!(
        catalog.route(&Health::default(), &r, &mut rng()),
        Err(RouteError::UnknownDataClass(_))
    ));
    assert!(DataClass::new("Bad Name").is_err());
}

#[test]
fn global_and_model_constraints_apply_to_their_deployments() {
    let a = d("a").at(Cloud::Aws, "us-east-1", Jurisdiction::Us).build();
    let b = d("b").at(Cloud::Azure, "eastus", Jurisdiction::Us).build();
    let c = d("c")
        .at(Cloud::Gcp, "europe-west4", Jurisdiction::Eu)
        .build();
    let mut m = Model::new("m", vec![a, b, c]);
    m.constraints.regions.deny = vec!["eastus".into()];
    let mut policy = Policy::default();
    policy.constraints.clouds.deny = vec![Cloud::Gcp];
    let catalog = Catalog::with_policy(vec![m], policy);
    let prefs = Preferences::default();
    let plan = catalog
        .route(&Health::default(), &req("m", &prefs), &mut rng())
        .unwrap();
    assert_eq!(ids(&plan), ["a"]);
    let text: Vec<String> = plan.excluded.iter().map(|e| e.reason.to_string()).collect();
    assert_eq!(
        text,
        [
            "region 'eastus' denied by model 'm' constraints",
            "cloud 'gcp' denied by global constraints"
        ]
    );
}

#[test]
fn explain_lists_every_reason_and_the_ranking() {
    let (catalog, class) = fleet();
    let prefs = Preferences::parse_header("ignore=us").unwrap();
    let mut r = req("m", &prefs);
    r.data_class = Some(&class);
    let x = explain(&catalog, &Health::default(), &r, &mut rng()).unwrap();
    assert_eq!(x.rows.len(), 4);
    let us = x.rows.iter().find(|r| &*r.deployment.id == "us").unwrap();
    assert_eq!(us.reasons.len(), 2, "{:?}", us.reasons);
    let ranking: Vec<&str> = x.ranking().iter().map(|r| &*r.deployment.id).collect();
    assert_eq!(ranking, ["eu-zdr"]);
    assert_eq!(x.rows[0].rank, Some(1));
}
