//! `switchyard import litellm` end to end: LiteLLM's documented example configs
//! (`crates/import/tests/litellm/`, copied from LiteLLM's docs) are converted by the real
//! binary and the result is validated by `switchyard check`.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn switchyard(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../import/tests/litellm");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn litellm_documented_examples_convert_into_configs_that_pass_check() {
    let files = examples();
    assert!(files.len() >= 5, "the examples are missing: {files:?}");
    let dir = tempfile::tempdir().unwrap();
    for yaml in files {
        let name = yaml.file_stem().unwrap().to_str().unwrap();
        let out = dir.path().join(format!("{name}.toml"));
        let findings = dir.path().join(format!("{name}.json"));
        let run = switchyard(
            &[
                "import",
                "litellm",
                yaml.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--findings",
                findings.to_str().unwrap(),
                "--format",
                "json",
            ],
            &[],
        );
        assert!(
            run.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let report: Value =
            serde_json::from_str(&std::fs::read_to_string(&findings).unwrap()).unwrap();
        let list = report["findings"].as_array().unwrap();
        // Every documented example has something Switchyard does not do the same way.
        assert!(!list.is_empty(), "{name}: no findings");
        for f in list {
            assert!(
                matches!(
                    f["kind"].as_str(),
                    Some("unmapped" | "approximated" | "assumed")
                ),
                "{name}: {f}"
            );
            assert!(!f["path"].as_str().unwrap().is_empty(), "{name}: {f}");
        }
        // check resolves every *_env variable, so the test provides the ones the report lists.
        let env: Vec<(String, String)> = report["env_vars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                let var = v.as_str().unwrap().to_string();
                let value = format!("test-value-of-{var}");
                (var, value)
            })
            .collect();
        let check = switchyard(&["check", out.to_str().unwrap()], &env);
        let stdout = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "{name}: check failed:\n{stdout}\n--- config ---\n{}",
            std::fs::read_to_string(&out).unwrap()
        );
        assert!(stdout.contains(": OK"), "{name}: {stdout}");
    }
}

#[test]
fn without_files_the_config_goes_to_stdout_and_the_report_to_stderr() {
    let yaml = examples()
        .into_iter()
        .find(|p| p.ends_with("quick_start.yaml"))
        .unwrap();
    let run = switchyard(&["import", "litellm", yaml.to_str().unwrap()], &[]);
    assert!(run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stdout.contains("[models.gpt-4o]"), "{stdout}");
    assert!(
        !stdout.contains("unmapped:"),
        "the report is not in the config: {stdout}"
    );
    assert!(
        stderr.contains("unmapped: model_list[5]: wildcard"),
        "{stderr}"
    );
    assert!(stderr.contains("LITELLM_MASTER_KEY"), "{stderr}");
    // The literal master key of the example is not copied anywhere.
    assert!(!stdout.contains("sk-1234"), "{stdout}");
}

#[test]
fn a_file_that_is_not_yaml_fails_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "model_list: [\n").unwrap();
    let run = switchyard(&["import", "litellm", bad.to_str().unwrap()], &[]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("not valid YAML"));
}
