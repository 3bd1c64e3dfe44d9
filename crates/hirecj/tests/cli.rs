//! The `hirecj` binary as an operator meets it: configuration errors, the
//! `config` and `migrate` commands, and a clean exit on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

fn hirecj(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hirecj"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HIRECJ_DATA_DIR", dir.join("data"));
    cmd
}

#[test]
fn a_bad_setting_is_one_line_naming_key_and_source_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = hirecj(dir.path())
        .env("HIRECJ_BIND", "127.0.0.1:99999")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("HIRECJ_BIND") && err.contains("environment"),
        "{err}"
    );

    std::fs::write(dir.path().join(".env"), "HIRECJ_MODEL_PROVIDER=gpt-9\n").unwrap();
    let out = hirecj(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("HIRECJ_MODEL_PROVIDER") && err.contains(".env"),
        "{err}"
    );
}

/// The development store fails closed: a deployment whose Shopify
/// configuration is missing or partial does not start (and so never mounts
/// a development store anyone could use to install, uninstall or redact
/// shops).
#[test]
fn serve_refuses_to_start_a_public_app_without_shopify_credentials() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, key) in [
        (vec![], "SHOPIFY_CLIENT_ID"),
        (
            vec![("SHOPIFY_CLIENT_SECRET", "shpss_forgotten_the_id")],
            "SHOPIFY_CLIENT_ID",
        ),
        (
            vec![("SHOPIFY_CLIENT_ID", "app-id")],
            "SHOPIFY_CLIENT_SECRET",
        ),
    ] {
        let mut cmd = hirecj(dir.path());
        cmd.arg("serve")
            .env("HIRECJ_BIND", "127.0.0.1:0")
            .env("HIRECJ_PUBLIC_URL", "https://cj.example.com");
        for (k, v) in &extra {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(&format!("{key} is required")), "{err}");
        assert!(!err.contains("shpss_forgotten_the_id"), "{err}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing was created before the refusal"
    );
}

#[test]
fn config_prints_effective_values_with_sources_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hirecj.toml"), "log_format = \"json\"\n").unwrap();
    let out = hirecj(dir.path())
        .args(["config", "--config", "hirecj.toml"])
        .env("OPENAI_API_KEY", "sk-super-secret")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("sk-super-secret"), "{text}");
    assert!(
        text.contains("HIRECJ_LOG_FORMAT") && text.contains("config file hirecj.toml"),
        "{text}"
    );
    let provider = text
        .lines()
        .find(|l| l.starts_with("HIRECJ_MODEL_PROVIDER"))
        .unwrap();
    assert!(
        provider.contains("openai") && provider.contains("derived from OPENAI_API_KEY"),
        "{provider}"
    );
}

#[test]
fn migrate_creates_the_database_and_key_and_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = hirecj(dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("schema version 12")
    );
    let key = std::fs::read(dir.path().join("data/secret.key")).unwrap();
    assert!(dir.path().join("data/hirecj.db").exists());
    let out = hirecj(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(dir.path().join("data/secret.key")).unwrap(),
        key
    );
}

#[test]
fn serve_answers_then_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = hirecj(dir.path())
        .arg("serve")
        .env("HIRECJ_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().unwrap().unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();

    let body = blocking_get(&addr, "/healthz");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
}

fn blocking_get(addr: &str, path: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn sigterm_during_a_request_lets_it_complete_then_exits_0() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let mut child = hirecj(dir.path())
        .arg("serve")
        .env("HIRECJ_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout).lines().next().unwrap().unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();

    // A webhook delivery whose body is only half sent.
    let body = br#"{"shop_id":1,"shop_domain":"x.myshopify.com"}"#;
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /api/v1/shopify/webhooks HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Shopify-Topic: app/uninstalled\r\nX-Shopify-Shop-Domain: x.myshopify.com\r\n\
         X-Shopify-Webhook-Id: sigterm-test\r\nX-Shopify-Hmac-Sha256: AAAA\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..10]).unwrap();
    stream.flush().unwrap();

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Shutdown has begun once new connections are refused.
    let mut refused = false;
    for _ in 0..2000 {
        if std::net::TcpStream::connect(&addr).is_err() {
            refused = true;
            break;
        }
        std::thread::yield_now();
    }
    assert!(
        refused,
        "the server stops accepting connections after SIGTERM"
    );

    // The request in flight still completes.
    stream.write_all(&body[10..]).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.1 401"),
        "a full answer (bad signature): {response}"
    );
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// `hirecj devstore orders …` changes the orders of a running development
/// store through its control endpoints, and says plainly when it cannot.
#[test]
fn devstore_orders_create_refund_and_cancel_in_a_running_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = hirecj(dir.path())
        .args(["devstore", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(store.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/devstore"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    let run = |args: &[&str]| {
        let mut cmd = hirecj(dir.path());
        cmd.args(["devstore", "orders"])
            .args(args)
            .args(["--shop", "cli-shop", "--url", &url]);
        cmd.output().unwrap()
    };
    let out = run(&["create", "--tags", "vip"]);
    let created = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{created}");
    assert!(
        created.starts_with('#') && created.contains(", paid,"),
        "{created}"
    );
    let name = created.split_whitespace().next().unwrap().to_string();

    let out = run(&[
        "refund", "--order", &name, "--amount", "1.00", "--note", "late",
    ]);
    let refunded = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{refunded}");
    assert!(
        refunded.contains("partially_refunded") && refunded.contains("of 1.00"),
        "{refunded}"
    );

    let out = run(&["cancel", "--order", &name, "--refund"]);
    let cancelled = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{cancelled}");
    assert!(
        cancelled.contains("refunded") && cancelled.contains("cancelled"),
        "{cancelled}"
    );

    let out = run(&["cancel", "--order", &name]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("422") && err.contains("already been cancelled"),
        "{err}"
    );

    store.kill().unwrap();
    store.wait().unwrap();
}
