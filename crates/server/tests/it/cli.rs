//! The command line: help, configuration errors, graceful stop on SIGTERM.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn sextant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
}

#[test]
fn help_documents_every_subcommand() {
    let out = sextant().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("serve") && text.contains("config"), "{text}");
    let out = sextant().args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in ["--config", "--data-dir", "--log-level"] {
        assert!(text.contains(flag), "{flag} missing from: {text}");
    }
}

#[test]
fn bad_config_value_is_one_line_naming_the_key_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sextant.toml");
    std::fs::write(&path, "[storage]\nretention = \"forever\"\n").unwrap();
    let out = sextant().args(["serve", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("storage.retention"), "{stderr}");

    let out = sextant().args(["serve"]).env("SEXTANT_QUERY_ADDRESS", "here").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("query.address"));
}

#[test]
fn config_subcommand_prints_effective_configuration() {
    let out = sextant()
        .args(["config", "--data-dir", "/srv/traces"])
        .env("SEXTANT_STORAGE_RETENTION", "3d")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("data_dir = \"/srv/traces\""), "{text}");
    assert!(text.contains("retention = \"3d\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ChildServer::spawn(dir.path(), &free_ports(5));
    server.wait_ready().await;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}
