//! Debian's `scepclient` (micromdm 2.1.0) enrolling against a minimal HTTP
//! server built on this crate. It always sends DES-CBC and SHA-1. Skipped with
//! a notice when `scepclient` is not installed (`apt-get install scep`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mdm_pki::{CertificateExt, cert_from_pem, cert_to_pem, issue_leaf, verify_issued_by};
use mdm_scep::*;

use crate::common::*;

const CHALLENGE: &str = "enrol-me";

struct Stats {
    success: AtomicUsize,
    failure: AtomicUsize,
    get_requests: AtomicUsize,
}

struct Server {
    url: String,
    stats: Arc<Stats>,
}

/// Starts a one-thread HTTP/1.1 server on 127.0.0.1:0 answering SCEP.
fn start(caps: &'static str) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/scep", listener.local_addr().unwrap());
    let stats = Arc::new(Stats {
        success: AtomicUsize::new(0),
        failure: AtomicUsize::new(0),
        get_requests: AtomicUsize::new(0),
    });
    let s = stats.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = handle(stream, caps, &s);
        }
    });
    Server { url, stats }
}

fn handle(mut stream: TcpStream, caps: &str, stats: &Stats) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            content_length = v.trim().parse().unwrap_or(0).min(2 << 20);
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (status, ctype, out) = if path == "/scep" {
        route(method, query, &body, caps, stats)
    } else {
        (404, "text/plain", b"not found".to_vec())
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        out.len()
    )?;
    stream.write_all(&out)
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("3F");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route(
    method: &str,
    query: &str,
    body: &[u8],
    caps: &str,
    stats: &Stats,
) -> (u16, &'static str, Vec<u8>) {
    match param(query, "operation")
        .as_deref()
        .and_then(Operation::parse)
    {
        Some(Operation::GetCaCaps) => (200, CA_CAPS_CONTENT_TYPE, caps.as_bytes().to_vec()),
        Some(Operation::GetCaCert) => {
            let r = ca_cert_response(std::slice::from_ref(&ca().cert)).unwrap();
            (200, r.content_type, r.body)
        }
        Some(Operation::PkiOperation) => {
            let msg = if method == "GET" {
                stats.get_requests.fetch_add(1, Ordering::SeqCst);
                match decode_get_message(&param(query, "message").unwrap_or_default()) {
                    Ok(m) => m,
                    Err(_) => return (400, "text/plain", b"bad message".to_vec()),
                }
            } else {
                body.to_vec()
            };
            pki_operation(&msg, stats)
        }
        _ => (400, "text/plain", b"unknown operation".to_vec()),
    }
}

/// The whole server-side enrolment: parse, check the challenge, issue, reply.
fn pki_operation(msg: &[u8], stats: &Stats) -> (u16, &'static str, Vec<u8>) {
    let ca = ca();
    let responder = Responder::new(&ca.cert, &ca.key);
    let nonce = Nonce::random().unwrap();
    let reply = match parse_request(msg, &ca.cert, &ca.key) {
        Err(ScepFailure { context: None, .. }) => {
            return (400, "text/plain", b"unreadable".to_vec());
        }
        Err(ScepFailure {
            context: Some(ctx),
            error,
        }) => {
            stats.failure.fetch_add(1, Ordering::SeqCst);
            responder.failure(&ctx, error.fail_info(), &nonce)
        }
        Ok(req) => match req.csr() {
            Some(csr) if csr.challenge() == Some(CHALLENGE) => {
                let serial = mdm_pki::random_bytes(16).unwrap();
                let cert = issue_leaf(
                    &ca.key,
                    &ca.cert,
                    &csr.csr,
                    &serial,
                    now() - days(1),
                    now() + days(365),
                )
                .unwrap();
                stats.success.fetch_add(1, Ordering::SeqCst);
                responder.success(&req, &[cert], &nonce)
            }
            _ => {
                stats.failure.fetch_add(1, Ordering::SeqCst);
                responder.failure(&req.context(), FailInfo::BadRequest, &nonce)
            }
        },
    };
    (200, PKI_MESSAGE_CONTENT_TYPE, reply.unwrap())
}

fn scepclient_available() -> bool {
    let ok = Command::new("scepclient")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!(
            "NOTICE: scepclient not found (apt-get install scep); skipping scepclient interop"
        );
    }
    ok
}

/// Runs scepclient in its own directory (it writes csr.pem into the cwd).
fn run_scepclient(url: &str, challenge: &str, dir: &std::path::Path) -> (bool, String) {
    let mut child = Command::new("scepclient")
        .args([
            "-server-url",
            url,
            "-challenge",
            challenge,
            "-private-key",
            "key.pem",
            "-certificate",
            "cert.pem",
            "-cn",
            "scepclient-device",
            "-keySize",
            "2048",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("scepclient hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (status.success(), log)
}

fn enrol_and_check(caps: &'static str) -> Server {
    let server = start(caps);
    let dir = tempfile::tempdir().unwrap();
    let (ok, log) = run_scepclient(&server.url, CHALLENGE, dir.path());
    assert!(ok, "scepclient failed: {log}");
    let pem = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
    let cert = cert_from_pem(&pem).unwrap();
    verify_issued_by(&cert, &ca().cert).unwrap();
    assert!(
        cert.subject_string().contains("CN=scepclient-device"),
        "{}",
        cert.subject_string()
    );
    if openssl_available() {
        std::fs::write(dir.path().join("ca.pem"), cert_to_pem(&ca().cert).unwrap()).unwrap();
        let out = Command::new("openssl")
            .args(["verify", "-CAfile", "ca.pem", "cert.pem"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(server.stats.success.load(Ordering::SeqCst), 1);
    server
}

#[test]
fn scepclient_enrols_with_post() {
    if !scepclient_available() {
        return;
    }
    let server = enrol_and_check(CA_CAPS);
    assert_eq!(server.stats.get_requests.load(Ordering::SeqCst), 0);
}

#[test]
fn scepclient_enrols_with_get() {
    if !scepclient_available() {
        return;
    }
    // Without POSTPKIOperation (and SCEPStandard, which implies it) clients use GET.
    let server = enrol_and_check("SHA-1\nSHA-256\nAES\nDES3\n");
    assert_eq!(server.stats.get_requests.load(Ordering::SeqCst), 1);
}

#[test]
fn scepclient_wrong_challenge_gets_failure() {
    if !scepclient_available() {
        return;
    }
    let server = start(CA_CAPS);
    let dir = tempfile::tempdir().unwrap();
    let (ok, log) = run_scepclient(&server.url, "wrong-challenge", dir.path());
    assert!(!ok, "scepclient should fail: {log}");
    assert!(log.to_lowercase().contains("fail"), "{log}");
    assert!(!dir.path().join("cert.pem").exists());
    assert_eq!(server.stats.failure.load(Ordering::SeqCst), 1);
    assert_eq!(server.stats.success.load(Ordering::SeqCst), 0);
    eprintln!("scepclient output on FAILURE: {log}");
}
