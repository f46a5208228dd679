//! Operations: configuration, database conversion and shutdown.

use crate::client::{Api, expect};
use crate::ensure;
use crate::support::{PgDatabase, Server, TestResult, mdm_bin, uuid_hex};
use serde_json::json;
use std::process::Command;
use std::sync::Arc;

pub fn print_config() -> TestResult {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let toml = dir.path().join("mdm.toml");
    std::fs::write(&toml, "listen = \"127.0.0.1:9999\"\nshoe_size = 44\n")
        .map_err(|e| e.to_string())?;
    let out = Command::new(mdm_bin())
        .args(["--config"])
        .arg(&toml)
        .args([
            "serve",
            "--print-config",
            "--public-url",
            "https://mdm.example.com",
        ])
        .env(
            "MDM_DATABASE_URL",
            "postgres://mdm:hunter2@db.example.com/mdm",
        )
        .env("MDM_SECRET", "00".repeat(32))
        .env("MDM_LOG_LEVEL", "warn")
        .output()
        .map_err(|e| e.to_string())?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(out.status.success(), "print-config failed: {stderr}");
    ensure!(
        stdout.contains("listen = \"127.0.0.1:9999\""),
        "file layer: {stdout}"
    );
    ensure!(
        stdout.contains("public_url = \"https://mdm.example.com\""),
        "flag layer: {stdout}"
    );
    ensure!(
        stdout.contains("postgres://mdm:<redacted>@db.example.com/mdm"),
        "env layer, redacted: {stdout}"
    );
    ensure!(
        !stdout.contains("hunter2") && !stdout.contains(&"00".repeat(32)),
        "secrets leaked: {stdout}"
    );
    ensure!(
        stderr.contains("shoe_size"),
        "unknown key warned about: {stderr}"
    );
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "ab".repeat(32)).map_err(|e| e.to_string())?;
    let out = Command::new(mdm_bin())
        .args(["serve", "--print-config"])
        .env("MDM_SECRET_FILE", &secret_file)
        .current_dir(dir.path())
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        String::from_utf8_lossy(&out.stdout).contains("secret = \"<redacted>\""),
        "secret from file: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(())
}

/// Fills a SQLite database through the running SQLite server, converts it
/// into a fresh PostgreSQL database with `mdm convert-db`, starts a server on
/// the copy and finds the same data, tokens included.
pub async fn convert_db(sqlite: Arc<Server>, pg_admin: Option<String>) -> TestResult {
    let Some(admin) = pg_admin else {
        eprintln!("notice: convert-db to PostgreSQL skipped (MDM_TEST_POSTGRES_URL unset)");
        return Ok(());
    };
    let op = Api::new(&sqlite.base, Some(&sqlite.operator_token));
    let slug = format!("conv-{}", uuid_hex());
    expect(
        op.post(
            "/api/v1/tenants",
            json!({ "slug": slug, "name": "Converted" }),
        )
        .await?,
        201,
        "tenant",
    )?;
    let users: Vec<_> = (0..50)
        .map(|i| json!({ "email": format!("c{i}@example.com") }))
        .collect();
    expect(
        op.post(&format!("/api/v1/tenants/{slug}/users/bulk"), json!(users))
            .await?,
        201,
        "users",
    )?;
    let before = expect(
        op.get(&format!("/api/v1/tenants/{slug}/users?limit=1000"))
            .await?,
        200,
        "list",
    )?;
    let audit_before = expect(
        op.get(&format!("/api/v1/tenants/{slug}/audit?limit=1000"))
            .await?,
        200,
        "audit",
    )?;

    let db = PgDatabase::create(&admin, "mdm_conv").await?;
    let result = async {
        let out = Command::new(mdm_bin())
            .args([
                "convert-db",
                "--from",
                &sqlite.database_url,
                "--to",
                &db.url,
            ])
            .env("MDM_LOG", "warn")
            .output()
            .map_err(|e| e.to_string())?;
        ensure!(
            out.status.success(),
            "convert-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again = Command::new(mdm_bin())
            .args([
                "convert-db",
                "--from",
                &sqlite.database_url,
                "--to",
                &db.url,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        ensure!(
            !again.status.success(),
            "converting into a non-empty database must be refused"
        );
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let pg = Server::start_existing("converted", dir.path(), &db.url)?;
        let op2 = Api::new(&pg.base, Some(&sqlite.operator_token));
        let after = expect(
            op2.get(&format!("/api/v1/tenants/{slug}/users?limit=1000"))
                .await?,
            200,
            "list on copy",
        )?;
        ensure!(after == before, "users differ after conversion");
        let audit_after = expect(
            op2.get(&format!("/api/v1/tenants/{slug}/audit?limit=1000"))
                .await?,
            200,
            "audit on copy",
        )?;
        ensure!(
            audit_after == audit_before,
            "audit differs after conversion"
        );
        // New writes on the copy do not collide with copied ids.
        expect(
            op2.post(
                &format!("/api/v1/tenants/{slug}/users"),
                json!({ "email": "after@example.com" }),
            )
            .await?,
            201,
            "write on copy",
        )?;
        pg.stop();
        Ok(())
    }
    .await;
    db.drop_db().await;
    result
}

/// `mdm apple inspect` prints what the server understands of a check-in and
/// names the keys it ignores; garbage is a clear error.
pub fn apple_inspect() -> TestResult {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("checkin.plist");
    let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>MessageType</key><string>Authenticate</string>
<key>UDID</key><string>TEST-UDID-0001</string>
<key>Topic</key><string>com.apple.mgmt.External.test</string>
<key>SerialNumber</key><string>C02TEST</string>
<key>FavouriteColour</key><string>teal</string>
</dict></plist>"#;
    std::fs::write(&file, body).map_err(|e| e.to_string())?;
    let out = Command::new(mdm_bin())
        .args(["apple", "inspect"])
        .arg(&file)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "apple inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Authenticate",
        "TEST-UDID-0001",
        "com.apple.mgmt.External.test",
        "FavouriteColour",
    ] {
        ensure!(text.contains(want), "inspect output lacks {want}:\n{text}");
    }
    std::fs::write(&file, b"not a plist").map_err(|e| e.to_string())?;
    let out = Command::new(mdm_bin())
        .args(["apple", "inspect"])
        .arg(&file)
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        !out.status.success() && !out.stderr.is_empty(),
        "garbage must be refused clearly"
    );
    Ok(())
}

/// SIGTERM after concurrent writes (which open several of the SQLite pool's
/// connections): the server stops cleanly, its last connection copies the
/// WAL into the database file and removes it, and nothing written is lost.
pub async fn clean_shutdown_leaves_no_wal(dir: std::path::PathBuf) -> TestResult {
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let server = Server::start_with_env("shutdown", &dir, None, &[])?;
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..24 {
        let api = Api::new(&server.base, Some(&server.operator_token));
        writes.spawn(async move {
            let body = json!({ "email": format!("shutdown-{i}@example.com"), "display_name": "S" });
            expect(
                api.post("/api/v1/tenants/default/users", body).await?,
                201,
                "add user",
            )
        });
    }
    while let Some(r) = writes.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    let status = server.terminate()?;
    ensure!(
        status.success(),
        "mdm serve exited with {status} on SIGTERM"
    );
    let wal = dir.join("mdm.db-wal");
    ensure!(
        !wal.exists(),
        "{} is still there after a clean shutdown",
        wal.display()
    );
    let again = Server::start_existing("shutdown-again", &dir, &server.database_url)?;
    let api = Api::new(&again.base, Some(&server.operator_token));
    let page = expect(
        api.get("/api/v1/tenants/default/users?limit=100").await?,
        200,
        "list users",
    )?;
    let kept = crate::client::count(&page);
    ensure!(kept >= 24, "{kept} users after the restart, 24 written");
    Ok(())
}
