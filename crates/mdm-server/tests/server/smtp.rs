//! A real SMTP server on loopback for the invitation tests: Debian's
//! `aiosmtpd` with a certificate from a throwaway CA (STARTTLS, or implicit
//! TLS), delivering every message as a file into a Maildir. With
//! [`Smtp::start_with_auth`] a small script runs aiosmtpd's own `SMTP`
//! class with an authenticator (its command line has none): STARTTLS and
//! AUTH PLAIN/LOGIN required.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    pub ca_file: PathBuf,
    child: Mutex<Option<Child>>,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// A CA and a server certificate for 127.0.0.1 in `dir` (made with openssl).
pub fn make_certs(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let p = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Test SMTP CA",
            "-keyout",
        ])
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.pem")))?;
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
        ])
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr")))?;
    std::fs::write(p("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        .map_err(|e| e.to_string())?;
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.pem"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("server.pem"))
        .arg("-extfile")
        .arg(p("san.cnf")))
}

pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl Smtp {
    /// Starts aiosmtpd on `port`: STARTTLS required, or implicit TLS (`smtps`).
    pub fn start(dir: &Path, port: u16, smtps: bool) -> Result<Smtp, String> {
        let certs = dir.join("certs");
        if !certs.join("server.pem").exists() {
            make_certs(&certs)?;
        }
        let maildir = dir.join("maildir");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        let (cert_flag, key_flag) = if smtps {
            ("--smtpscert", "--smtpskey")
        } else {
            ("--tlscert", "--tlskey")
        };
        cmd.arg(cert_flag)
            .arg(certs.join("server.pem"))
            .arg(key_flag)
            .arg(certs.join("server.key"));
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(&maildir);
        Self::spawn(cmd, port, maildir, certs.join("ca.pem"))
    }

    /// Starts aiosmtpd on `port` with STARTTLS, accepting mail only after
    /// AUTH with `user` and `password`.
    pub fn start_with_auth(
        dir: &Path,
        port: u16,
        user: &str,
        password: &str,
    ) -> Result<Smtp, String> {
        let certs = dir.join("certs");
        if !certs.join("server.pem").exists() {
            make_certs(&certs)?;
        }
        let maildir = dir.join("maildir");
        let script = dir.join("auth_smtpd.py");
        std::fs::write(&script, AUTH_SCRIPT).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&script)
            .arg(port.to_string())
            .arg(certs.join("server.pem"))
            .arg(certs.join("server.key"))
            .arg(&maildir)
            .arg(user)
            .arg(password);
        Self::spawn(cmd, port, maildir, certs.join("ca.pem"))
    }

    fn spawn(
        mut cmd: Command,
        port: u16,
        maildir: PathBuf,
        ca_file: PathBuf,
    ) -> Result<Smtp, String> {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!("cannot start aiosmtpd (apt-get install python3-aiosmtpd): {e}")
            })?;
        let smtp = Smtp {
            port,
            maildir,
            ca_file,
            child: Mutex::new(Some(child)),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("aiosmtpd did not start listening".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(smtp)
    }

    /// The environment that points `mdm serve` at this server.
    pub fn env(&self, security: &str) -> Vec<(String, String)> {
        vec![
            ("MDM_SMTP_HOST".into(), "127.0.0.1".into()),
            ("MDM_SMTP_PORT".into(), self.port.to_string()),
            ("MDM_SMTP_SECURITY".into(), security.into()),
            (
                "MDM_SMTP_CA_FILE".into(),
                self.ca_file.display().to_string(),
            ),
            ("MDM_MAIL_FROM".into(), "Test MDM <mdm@example.test>".into()),
        ]
    }

    /// The decoded text of the first delivered message to `to`, waiting up to `wait`.
    pub async fn message_to(&self, to: &str, wait: Duration) -> Result<String, String> {
        let deadline = Instant::now() + wait;
        loop {
            for dir in ["new", "cur"] {
                if let Ok(entries) = std::fs::read_dir(self.maildir.join(dir)) {
                    for e in entries.flatten() {
                        let raw = std::fs::read_to_string(e.path()).unwrap_or_default();
                        if raw.lines().any(|l| l.starts_with("To:") && l.contains(to)) {
                            return Ok(decode_qp(&raw));
                        }
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no message to {to} within {wait:?}"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every message delivered to `to` so far, decoded.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let mut out = Vec::new();
        for dir in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(dir)) {
                for e in entries.flatten() {
                    let raw = std::fs::read_to_string(e.path()).unwrap_or_default();
                    if raw.lines().any(|l| l.starts_with("To:") && l.contains(to)) {
                        out.push(decode_qp(&raw));
                    }
                }
            }
        }
        out
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

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Undoes quoted-printable: soft line breaks and `=XX` escapes.
pub fn decode_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The registration link and the PIN (if any) in a decoded invitation.
pub fn link_and_pin(msg: &str) -> Result<(String, Option<String>), String> {
    let link = msg
        .split_whitespace()
        .find(|w| w.starts_with("http") && w.ends_with("/go"))
        .ok_or(format!("no /go link in {msg}"))?
        .to_string();
    let pin = msg
        .lines()
        .find_map(|l| l.trim().strip_prefix("Your one-time registration PIN: "))
        .map(|p| p.trim().to_string());
    Ok((link, pin))
}

/// aiosmtpd with an authenticator: argv = port, cert, key, maildir, user, password.
const AUTH_SCRIPT: &str = r#"
import asyncio, ssl, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

port, cert, key, maildir, user, password = sys.argv[1:7]

def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode()
          and auth_data.password == password.encode())
    return AuthResult(success=ok, handled=False)

ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
handler = Mailbox(maildir)

def factory():
    return SMTP(handler, tls_context=ctx, require_starttls=True,
                auth_required=True, auth_require_tls=True, authenticator=authenticate)

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
loop.run_until_complete(loop.create_server(factory, host="127.0.0.1", port=int(port)))
loop.run_forever()
"#;
