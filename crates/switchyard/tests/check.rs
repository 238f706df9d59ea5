//! `switchyard check`: the shipped example passes offline (no environment read) and, with its
//! variables unset, fails naming each one.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example.toml")
}

#[test]
fn the_example_config_passes_offline_and_names_unset_variables_online() {
    let offline = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", "--offline"])
        .arg(example())
        .env_clear()
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&offline.stdout);
    assert!(offline.status.success(), "{out}");
    assert!(!out.contains("error:"), "{out}");

    let online = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("check")
        .arg(example())
        .env_clear()
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&online.stdout);
    assert!(!online.status.success(), "{out}");
    for var in ["OPENAI_API_KEY", "SWITCHYARD_ADMIN_TOKEN"] {
        assert!(
            out.contains(&format!("environment variable {var} is not set")),
            "{out}"
        );
    }
}
