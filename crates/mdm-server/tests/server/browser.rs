//! One chromedriver for the whole run, driving Debian's headless Chromium.

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const IPHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";

pub struct Chromedriver {
    pub url: String,
    child: Mutex<Option<Child>>,
}

impl Chromedriver {
    pub fn start() -> Result<Chromedriver, String> {
        let port = crate::smtp::free_port()?;
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot start chromedriver (apt-get install chromium chromium-driver): {e}")
            })?;
        let driver = Chromedriver {
            url: format!("http://127.0.0.1:{port}"),
            child: Mutex::new(Some(child)),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("chromedriver did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(driver)
    }

    /// A new headless Chromium session that presents itself as `user_agent`.
    pub async fn session(&self, user_agent: &str) -> Result<fantoccini::Client, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?.keep();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--user-agent={user_agent}"),
                ],
            }),
        );
        fantoccini::ClientBuilder::rustls()
            .map_err(|e| e.to_string())?
            .capabilities(caps)
            .connect(&self.url)
            .await
            .map_err(|e| format!("webdriver session: {e}"))
    }

    pub fn stop(&self) {
        if let Ok(mut g) = self.child.lock()
            && let Some(mut c) = g.take()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
