//! Test fixtures: `mdm serve` processes on free loopback ports, one per
//! backend, and a PostgreSQL database per run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

pub type TestResult = Result<(), String>;

/// Fails the test with a message.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

pub fn mdm_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mdm")
}

/// A running `mdm serve`.
pub struct Server {
    pub name: &'static str,
    pub base: String,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub operator_token: String,
    /// The local APNs this server pushes to, when it was started with one.
    pub apns: Option<std::sync::Arc<crate::fake_apns::FakeApns>>,
    child: Mutex<Option<Child>>,
}

impl Server {
    /// Starts a server on a new database at `database_url` (SQLite in
    /// `data_dir` when `None`) and reads the credentials its first start wrote.
    /// `env`: extra `MDM_*` variables (e.g. a fake APNs).
    pub fn start_with_env(
        name: &'static str,
        data_dir: &Path,
        database_url: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let mut server = Self::spawn(name, data_dir, database_url, env)?;
        let creds = std::fs::read_to_string(data_dir.join("initial-credentials.txt"))
            .map_err(|e| format!("credentials: {e}"))?;
        server.operator_token = creds
            .lines()
            .find_map(|l| l.strip_prefix("operator_api_token = \""))
            .map(|t| t.trim_end_matches('"').to_string())
            .ok_or("no operator token in initial-credentials.txt")?;
        Ok(server)
    }

    /// Starts a server on a database that already has its administrators.
    pub fn start_existing(
        name: &'static str,
        data_dir: &Path,
        database_url: &str,
    ) -> Result<Self, String> {
        Self::spawn(name, data_dir, Some(database_url), &[])
    }

    /// Starts another server on a database that already has its
    /// administrators, with extra `MDM_*` variables (a second replica).
    pub fn start_replica(
        name: &'static str,
        data_dir: &Path,
        database_url: &str,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        Self::spawn(name, data_dir, Some(database_url), env)
    }

    fn spawn(
        name: &'static str,
        data_dir: &Path,
        database_url: Option<&str>,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let mut cmd = Command::new(mdm_bin());
        cmd.arg("--data-dir").arg(data_dir);
        if let Some(url) = database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("MDM_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().map_err(|e| format!("spawn mdm: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next()
            .ok_or("mdm exited before listening")?
            .map_err(|e| e.to_string())?;
        let base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .ok_or(format!("unexpected banner: {first}"))?
            .to_string();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let operator_token = String::new();
        let database_url = database_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", data_dir.join("mdm.db").display()));
        Ok(Self {
            name,
            base,
            data_dir: data_dir.to_path_buf(),
            database_url,
            operator_token,
            apns: None,
            child: Mutex::new(Some(child)),
        })
    }

    /// Runs an `mdm` administration command against this server's database.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(mdm_bin())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .env("MDM_LOG", "warn")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "mdm {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Asks the server to stop as a service manager would (SIGTERM) and
    /// waits for it: its exit status.
    pub fn terminate(&self) -> Result<std::process::ExitStatus, String> {
        let mut child = self
            .child
            .lock()
            .map_err(|_| "poisoned")?
            .take()
            .ok_or("the server is not running")?;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| format!("kill: {e}"))?;
        if !sent.success() {
            let _ = child.kill();
            return Err(format!("kill -TERM failed: {sent}"));
        }
        child.wait().map_err(|e| e.to_string())
    }

    pub fn stop(&self) {
        if let Ok(mut guard) = self.child.lock()
            && let Some(mut c) = guard.take()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL database created for this run and dropped at the end.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str, prefix: &str) -> Result<Self, String> {
        let name = format!("{prefix}_{}", uuid_hex());
        let mut conn = connect(admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let url = replace_db(admin_url, &name);
        Ok(Self {
            admin_url: admin_url.to_string(),
            name,
            url,
        })
    }

    pub async fn drop_db(&self) {
        if let Ok(mut conn) = connect(&self.admin_url).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

async fn connect(url: &str) -> Result<sqlx::postgres::PgConnection, String> {
    use sqlx::Connection;
    sqlx::postgres::PgConnection::connect(url)
        .await
        .map_err(|e| format!("connect {url}: {e}"))
}

/// `url` with its database name replaced.
pub fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rsplit_once('/') {
        Some((head, _))
            if head.contains("://") && head.split("://").nth(1).is_some_and(|h| !h.is_empty()) =>
        {
            format!("{head}/{db}")
        }
        _ => format!("{base}/{db}"),
    };
    match query {
        Some(q) => format!("{base}?{q}"),
        None => base,
    }
}

pub fn uuid_hex() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom_fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn getrandom_fill(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
