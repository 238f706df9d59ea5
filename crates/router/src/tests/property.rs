//! Property: a request is never planned onto a deployment its constraints exclude.

use super::*;
use proptest::prelude::{any, prop_assert, proptest, Strategy as Gen};

const JURISDICTIONS: [Jurisdiction; 3] = [Jurisdiction::Eu, Jurisdiction::Us, Jurisdiction::Uk];
const CLOUDS: [Cloud; 3] = [Cloud::Aws, Cloud::Azure, Cloud::Gcp];
const REGIONS: [&str; 3] = ["r1", "r2", "r3"];
const TAGS: [&str; 3] = ["zdr", "no-training", "hipaa"];

fn pick<T: Copy>(all: &[T], mask: u8) -> Vec<T> {
    all.iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, v)| *v)
        .collect()
}

fn constraints() -> impl Gen<Value = Constraints> {
    (0u8..8, 0u8..8, 0u8..8, 0u8..8, 0u8..8, 0u8..8, 0u8..8).prop_map(
        |(ja, jd, ca, cd, ra, rd, t)| Constraints {
            jurisdictions: Filter {
                allow: pick(&JURISDICTIONS, ja),
                deny: pick(&JURISDICTIONS, jd),
            },
            clouds: Filter {
                allow: pick(&CLOUDS, ca),
                deny: pick(&CLOUDS, cd),
            },
            regions: Filter {
                allow: pick(&REGIONS, ra).into_iter().map(Box::from).collect(),
                deny: pick(&REGIONS, rd).into_iter().map(Box::from).collect(),
            },
            require_tags: pick(&TAGS, t).into_iter().map(String::from).collect(),
        },
    )
}

fn deployments() -> impl Gen<Value = Vec<(usize, usize, usize, u8)>> {
    proptest::collection::vec((0usize..3, 0usize..3, 0usize..3, 0u8..8), 1..10)
}

/// An independent statement of what "admits" means.
fn admits(c: &Constraints, d: &Deployment) -> bool {
    let p = &d.provider;
    let ok = |allow_empty: bool, allowed: bool, denied: bool| (allow_empty || allowed) && !denied;
    ok(
        c.jurisdictions.allow.is_empty(),
        c.jurisdictions.allow.contains(&p.jurisdiction),
        c.jurisdictions.deny.contains(&p.jurisdiction),
    ) && ok(
        c.clouds.allow.is_empty(),
        c.clouds.allow.contains(&p.cloud),
        c.clouds.deny.contains(&p.cloud),
    ) && ok(
        c.regions.allow.is_empty(),
        c.regions.allow.iter().any(|r| **r == *p.region),
        c.regions.deny.iter().any(|r| **r == *p.region),
    ) && c.require_tags.iter().all(|t| d.tags.contains(t))
}

proptest! {
    #[test]
    fn plans_only_contain_deployments_every_constraint_admits(
        own in deployments(),
        fallback in deployments(),
        global in constraints(),
        model_c in constraints(),
        class_c in constraints(),
        policy_mask in 0u8..3,
        only_mask in 0u32..(1 << 18),
        ignore_mask in 0u32..(1 << 18),
        use_class in any::<bool>(),
    ) {
        let build = |prefix: &str, spec: &[(usize, usize, usize, u8)]| -> Vec<Arc<Deployment>> {
            spec.iter().enumerate().map(|(i, (j, c, r, t))| {
                d(&format!("{prefix}{i}"))
                    .at(CLOUDS[*c], REGIONS[*r], JURISDICTIONS[*j])
                    .tags(&pick(&TAGS, *t))
                    .build()
            }).collect()
        };
        let own = build("a", &own);
        let fb = build("b", &fallback);
        let mut m = Model::new("m", own.clone());
        m.constraints = model_c.clone();
        m.fallbacks = vec!["f".into()];
        let f = Model::new("f", fb.clone());
        let class = DataClass::new("c").unwrap();
        let mut policy = Policy { constraints: global.clone(), ..Policy::default() };
        policy.data_classes.insert(class.clone(), class_c.clone());
        let catalog = Catalog::with_policy(vec![m, f], policy);
        let all: Vec<&Arc<Deployment>> = own.iter().chain(fb.iter()).collect();
        let names = |mask: u32| -> Vec<Arc<str>> {
            all.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, d)| d.id.clone()).collect()
        };
        let prefs = Preferences {
            only: names(only_mask),
            ignore: names(ignore_mask),
            data_policy: [None, Some(DataPolicy::Zdr), Some(DataPolicy::DenyTraining)][policy_mask as usize],
            ..Preferences::default()
        };
        let mut r = req("m", &prefs);
        if use_class {
            r.data_class = Some(&class);
        }
        let Ok(plan) = catalog.route(&Health::default(), &r, &mut rng()) else {
            return Ok(());
        };
        for c in &plan.candidates {
            let d = &c.deployment;
            prop_assert!(admits(&global, d), "global: {}", d.id);
            if own.iter().any(|o| Arc::ptr_eq(o, d)) {
                prop_assert!(admits(&model_c, d), "model: {}", d.id);
            }
            if use_class {
                prop_assert!(admits(&class_c, d), "data class: {}", d.id);
            }
            if let Some(p) = prefs.data_policy {
                prop_assert!(p.kept_by(d), "data policy: {}", d.id);
            }
            prop_assert!(prefs.only.is_empty() || prefs.only.contains(&d.id), "only: {}", d.id);
            prop_assert!(!prefs.ignore.contains(&d.id), "ignore: {}", d.id);
        }
    }
}
