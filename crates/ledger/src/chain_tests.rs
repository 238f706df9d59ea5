use super::*;
use crate::testing::traffic;
use proptest::prelude::*;

fn chain(n: usize, seed: u64) -> (Vec<StoredRecord>, ChainHead) {
    let rows = link(0, GENESIS_HASH, &traffic(seed, 1_790_000_000_000, n));
    let head = head_of(&rows);
    (rows, head)
}

fn head_of(rows: &[StoredRecord]) -> ChainHead {
    let (seq, hash) = rows
        .last()
        .map(|r| (r.seq, r.hash.clone()))
        .unwrap_or((0, GENESIS_HASH.to_owned()));
    ChainHead {
        seq,
        hash,
        max_seq: rows.iter().map(|r| r.seq).max().unwrap_or(0),
    }
}

fn verify(rows: &[StoredRecord], head: ChainHead) -> VerifyReport {
    let mut v = ChainVerifier::new();
    for r in rows {
        if !v.push(r) {
            break;
        }
    }
    v.finish(Some(head))
}

#[test]
fn canonical_form_is_stable() {
    // Pinning the canonical bytes of one record guards the hashes of every record written:
    // changing this string means old chains stop verifying.
    let mut r = LedgerRecord::new("req-1", 1_790_000_000_123, "gpt-4o");
    r.cloud = Some(switchyard_types::Cloud::Azure);
    r.cost = switchyard_types::Money(1234);
    r.prompt_body = Some("hi".into());
    let json = String::from_utf8(canonical_json(&r)).unwrap();
    insta::assert_snapshot!(json, @r#"{"v":1,"request_id":"req-1","time_ms":1790000000123,"key_id":null,"team":null,"model":"gpt-4o","deployment":null,"provider":null,"cloud":"azure","region":null,"jurisdiction":null,"data_class":null,"attempts":[],"usage":{"input":0,"output":0,"cached_input":0,"cache_write":0,"reasoning":0},"cost_nanos":1234,"price_known":false,"latency_ms":0,"ttft_ms":null,"outcome":"ok","stream":false,"prompt_sha256":"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4","response_sha256":null}"#);
    assert_eq!(record_hash(GENESIS_HASH, &r).len(), 64);
}

#[test]
fn untouched_chain_verifies() {
    let (rows, head) = chain(50, 7);
    let report = verify(&rows, head);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked, 50);
}

#[test]
fn empty_chain_verifies() {
    let report = verify(&[], head_of(&[]));
    assert!(report.ok);
    assert_eq!(report.checked, 0);
}

#[test]
fn modified_record_is_found() {
    let (mut rows, head) = chain(10, 1);
    rows[4].record.cost = switchyard_types::Money(rows[4].record.cost.nanos() - 1);
    let p = verify(&rows, head).first_problem.unwrap();
    assert_eq!((p.seq, p.kind), (5, ProblemKind::Modified));
}

#[test]
fn deleted_record_is_found_in_the_middle_and_at_the_tail() {
    let (mut rows, head) = chain(10, 2);
    rows.remove(3);
    let p = verify(&rows, head.clone()).first_problem.unwrap();
    assert_eq!((p.seq, p.kind), (4, ProblemKind::Deleted));

    let (mut rows, head) = chain(10, 2);
    rows.pop();
    let p = verify(&rows, head).first_problem.unwrap();
    assert_eq!((p.seq, p.kind), (10, ProblemKind::Deleted));
}

#[test]
fn inserted_record_with_a_forged_hash_is_found() {
    let (rows, _) = chain(10, 3);
    let forged = link(rows[4].seq, &rows[4].hash, &traffic(99, 0, 1));
    let mut tampered: Vec<StoredRecord> = rows[..5].to_vec();
    tampered.extend(forged);
    tampered.extend(rows[5..].iter().cloned().map(|mut r| {
        r.seq += 1;
        r
    }));
    let head = head_of(&tampered);
    let p = verify(&tampered, head).first_problem.unwrap();
    assert_eq!((p.seq, p.kind), (6, ProblemKind::Inserted));
}

#[derive(Debug, Clone)]
enum Mutation {
    Modify(usize, u8),
    Delete(usize),
    Insert(usize),
    Rewrite(usize),
    Swap(usize),
}

fn mutation(n: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..n, 0u8..6).prop_map(|(i, f)| Mutation::Modify(i, f)),
        (0..n).prop_map(Mutation::Delete),
        (0..=n).prop_map(Mutation::Insert),
        (0..n).prop_map(Mutation::Rewrite),
        (0..n.saturating_sub(1).max(1)).prop_map(Mutation::Swap),
    ]
}

fn apply(rows: &mut Vec<StoredRecord>, m: &Mutation) -> ChainHead {
    // The head as the ledger recorded it; tampering happens behind its back.
    let head = head_of(rows);
    match *m {
        Mutation::Modify(i, field) => {
            let r = &mut rows[i].record;
            match field {
                0 => r.cost = switchyard_types::Money(r.cost.nanos() + 1),
                1 => r.usage.input += 1,
                2 => r.team = Some("someone-else".into()),
                3 => r.time_ms -= 1,
                4 => r.attempts.clear(),
                _ => r.prompt_body = Some("edited".into()),
            }
        }
        Mutation::Delete(i) => {
            rows.remove(i);
        }
        Mutation::Insert(i) => {
            let (seq, prev) = if i == 0 {
                (0, GENESIS_HASH.to_owned())
            } else {
                (rows[i - 1].seq, rows[i - 1].hash.clone())
            };
            let forged = link(seq, &prev, &traffic(4242, 0, 1));
            for r in rows[i..].iter_mut() {
                r.seq += 1;
            }
            rows.splice(i..i, forged);
            // An attacker could also move `max_seq` along with the rows, which is what the
            // table itself reports; the recorded head seq stays.
            return ChainHead {
                max_seq: head.max_seq + 1,
                ..head
            };
        }
        Mutation::Rewrite(i) => {
            rows[i].record.cost = switchyard_types::Money(0);
            rows[i].record.price_known = !rows[i].record.price_known;
            rows[i].hash = record_hash(&rows[i].prev_hash, &rows[i].record);
        }
        Mutation::Swap(i) => {
            if rows.len() >= 2 {
                let (a, b) = (rows[i].seq, rows[i + 1].seq);
                rows.swap(i, i + 1);
                rows[i].seq = a;
                rows[i + 1].seq = b;
            } else {
                rows[0].record.model = format!("{}x", rows[0].record.model).into();
            }
        }
    }
    head
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_chains_verify(n in 0usize..40, seed in any::<u64>()) {
        let (rows, head) = chain(n, seed);
        let report = verify(&rows, head);
        prop_assert!(report.ok, "{:?}", report);
        prop_assert_eq!(report.checked, n as u64);
    }

    #[test]
    fn any_single_mutation_is_detected(
        (n, m) in (1usize..30).prop_flat_map(|n| (Just(n), mutation(n))),
        seed in any::<u64>(),
    ) {
        let (mut rows, _) = chain(n, seed);
        let head = apply(&mut rows, &m);
        let report = verify(&rows, head);
        prop_assert!(!report.ok, "{:?} went unnoticed", m);
    }
}

/// A record with every field set, built the same way whatever the string fields' types.
fn full_record() -> LedgerRecord {
    let mut r = LedgerRecord::new("req-full", 1_790_000_000_456, "gpt-4o \"mini\" ünï");
    r.key_id = Some("key-1".into());
    r.team = Some("team/a".into());
    r.deployment = Some("gpt-4o@azure-eu".into());
    r.provider = Some("azure-sweden".into());
    r.cloud = Some(switchyard_types::Cloud::Azure);
    r.region = Some("swedencentral".into());
    r.jurisdiction = Some(switchyard_types::Jurisdiction::Eu);
    r.data_class = Some("pii\n".into());
    r.attempts = vec![
        crate::record::AttemptRecord {
            deployment: "gpt-4o@openai".into(),
            provider: "openai".into(),
            status: Some(429),
            error_kind: Some(switchyard_types::ErrorKind::RateLimited),
            latency_ms: 12,
            ..Default::default()
        },
        crate::record::AttemptRecord {
            deployment: "gpt-4o@azure-eu".into(),
            provider: "azure-sweden".into(),
            status: Some(200),
            error_kind: None,
            latency_ms: 340,
            ..Default::default()
        },
    ];
    r.usage = switchyard_types::TokenUsage {
        input: 100,
        output: 20,
        cached_input: 50,
        cache_write: 3,
        reasoning: 7,
    };
    r.cost = switchyard_types::Money(98_765);
    r.price_known = true;
    r.latency_ms = 360;
    r.ttft_ms = Some(120);
    r.outcome = crate::record::Outcome::Error(switchyard_types::ErrorKind::UpstreamTimeout);
    r.stream = true;
    r.prompt_body = Some("{\"messages\":[]}".into());
    r.response_body = Some("answer".into());
    r
}

#[test]
fn hashes_are_unchanged_by_the_record_types() {
    // Pinned before the identity fields became `Arc<str>`: the representation of a record in
    // memory must never change the hashes of records already written.
    assert_eq!(
        record_hash(GENESIS_HASH, &full_record()),
        "955ccbeffa5586c9ca4cc4d83969a0ff09fecc9599da79d03c6e4fedbfc10818"
    );
    let (rows, _) = chain(50, 7);
    assert_eq!(
        rows.last().map(|r| r.hash.as_str()),
        Some("b24b3cbd45d5064b9aa703c42be1007d1cc57d52b888fa7dd8b09a9db5473f23")
    );
}
