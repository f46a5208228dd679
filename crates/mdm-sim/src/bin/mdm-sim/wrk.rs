//! `mdm-sim load --modes idle-wrk`: the signed Idle requests of every
//! enrolled device, replayed by `wrk` instead of this process — the way the
//! command-channel peer's figures were measured (NOTES.md), and a load
//! generator that costs the shared cores far less than reqwest does.
//!
//! The requests go to a file (a header line `path<TAB>Mdm-Signature<TAB>body
//! length`, then the body and a newline, per request) that a Lua script,
//! written beside it, reads into wrk's request table. Server CPU comes from
//! /proc as for the other modes; the load generator's is wrk's (this
//! process's waited-for children).

use anyhow::{Context, bail};
use std::io::Write;
use std::time::Duration;

use crate::channel::enrolled_idles;
use crate::load::{Fleet, LoadArgs, Meter, report, settle};
use mdm_sim::measure::children_cpu_ms;

/// Spreads wrk's threads over the request list and sends each request as
/// prepared; a non-empty 200 (a command) is counted and reported as a failure.
const SCRIPT: &str = r#"
local reqs = {}
local next_req = 1
-- A global, so that done() can read each thread's count with thread:get.
commands = 0
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  while true do
    local line = f:read("*l")
    if not line then break end
    local path, sig, len = line:match("^([^\t]*)\t([^\t]*)\t(%d+)$")
    local body = f:read(tonumber(len))
    f:read(1)
    reqs[#reqs + 1] = wrk.format("PUT", path, {
      ["Content-Type"] = "application/x-apple-aspen-mdm",
      ["User-Agent"] = "MDM/1.0",
      ["Mdm-Signature"] = sig,
    }, body)
  end
  f:close()
  next_req = math.random(#reqs)
end

function request()
  local r = reqs[next_req]
  next_req = next_req % #reqs + 1
  return r
end

function response(status, headers, body)
  if status == 200 and #body > 0 then
    commands = commands + 1
  end
end

function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do
    n = n + t:get("commands")
  end
  io.write(string.format("Commands instead of empty answers: %d\n", n))
end
"#;

pub(crate) async fn idle(a: &LoadArgs, fleet: &Fleet, c: usize) -> anyhow::Result<()> {
    let idles = enrolled_idles(fleet).await?;
    if idles.is_empty() {
        bail!("no enrolled device to poll");
    }
    let dir = tempfile::tempdir().context("a directory for wrk's input")?;
    let requests = dir.path().join("idle-requests");
    let script = dir.path().join("idle.lua");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&requests)?);
        for r in &idles {
            let path = r
                .url
                .strip_prefix(a.url.trim_end_matches('/'))
                .with_context(|| format!("{} is not under {}", r.url, a.url))?;
            let sig = r.signature.as_deref().context("an unsigned Idle request")?;
            writeln!(f, "{path}\t{sig}\t{}", r.body.len())?;
            f.write_all(&r.body)?;
            writeln!(f)?;
        }
        f.flush()?;
    }
    std::fs::write(&script, SCRIPT)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(c));
    settle(a.pid).await;
    let children0 = children_cpu_ms();
    let meter = Meter::start(a);
    let out = tokio::process::Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{c}"))
        .arg(format!("-d{}s", a.wrk_seconds))
        .arg("--latency")
        .arg("-s")
        .arg(&script)
        .arg(&a.url)
        .arg("--")
        .arg(&requests)
        .output()
        .await
        .context("running wrk (apt-get install wrk)")?;
    let mut w = meter.stop(Vec::new());
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    let parsed =
        WrkOutput::parse(&text).with_context(|| format!("reading wrk's output:\n{text}"))?;
    w.ok = parsed.requests.saturating_sub(parsed.failed);
    w.failed = parsed.failed;
    if parsed.failed > 0 {
        w.first_error = Some(format!("{} answers were not 2xx", parsed.failed));
    }
    w.percentiles = Some((parsed.p50_ms, parsed.p99_ms));
    w.wall = Duration::from_secs_f64(parsed.seconds);
    w.self_ms = children0.zip(children_cpu_ms()).map(|(a, b)| b - a);
    report(a, "idle-poll-wrk", c, &w);
    Ok(())
}

/// What `wrk --latency` printed.
#[derive(Debug, PartialEq)]
struct WrkOutput {
    requests: usize,
    /// The test's own duration (without loading the requests).
    seconds: f64,
    failed: usize,
    p50_ms: f64,
    p99_ms: f64,
}

impl WrkOutput {
    fn parse(text: &str) -> Option<Self> {
        let mut out = WrkOutput {
            requests: 0,
            seconds: f64::NAN,
            failed: 0,
            p50_ms: f64::NAN,
            p99_ms: f64::NAN,
        };
        for line in text.lines().map(str::trim) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [n, "requests", "in", t, ..] => {
                    out.requests = n.parse().ok()?;
                    out.seconds = millis(t.trim_end_matches(','))? / 1e3;
                }
                ["Non-2xx", "or", "3xx", "responses:", n]
                | ["Commands", "instead", "of", "empty", "answers:", n] => {
                    out.failed += n.parse::<usize>().ok()?
                }
                ["50%", t] => out.p50_ms = millis(t)?,
                ["99%", t] => out.p99_ms = millis(t)?,
                _ => {}
            }
        }
        (out.requests > 0).then_some(out)
    }
}

/// wrk's durations: `812.00us`, `1.23ms`, `1.50s`, `2.00m`.
fn millis(t: &str) -> Option<f64> {
    let split = t.find(|c: char| c.is_ascii_alphabetic())?;
    let (v, unit) = t.split_at(split);
    let v: f64 = v.parse().ok()?;
    let d = match unit {
        "us" => Duration::from_secs_f64(v / 1e6),
        "ms" => Duration::from_secs_f64(v / 1e3),
        "s" => Duration::from_secs_f64(v),
        "m" => Duration::from_secs_f64(v * 60.0),
        _ => return None,
    };
    Some(d.as_secs_f64() * 1e3)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_output() {
        let text = "Running 10s test @ http://127.0.0.1:8080\n  2 threads and 16 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.30ms    0.90ms  20.01ms   90.00%\n  Latency Distribution\n     50%  812.00us\n     75%    1.50ms\n     90%    2.10ms\n     99%    4.25ms\n  130000 requests in 10.00s, 9.80MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:  12999.10\nTransfer/sec:      0.98MB\nCommands instead of empty answers: 2\n";
        let got = WrkOutput::parse(text).unwrap();
        assert_eq!(got.requests, 130_000);
        assert!((got.seconds - 10.0).abs() < 1e-9);
        assert_eq!(got.failed, 5);
        assert!((got.p50_ms - 0.812).abs() < 1e-9);
        assert!((got.p99_ms - 4.25).abs() < 1e-9);
        assert_eq!(millis("1.50s"), Some(1500.0));
        assert!(WrkOutput::parse("no output").is_none());
    }
}
