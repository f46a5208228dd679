//! The command-channel modes of `mdm-sim load`: idle polls (signed before
//! the clock starts and replayed) and command round trips (one command per
//! device queued untimed, its Acknowledged signed untimed, then Idle ->
//! command -> Acknowledged -> empty).

use anyhow::{Context, bail};
use mdm_apple::{Command, CommandStatus};
use mdm_sim::{AdminApi, Channel, Prepared};
use std::sync::Arc;
use std::time::Instant;

use crate::load::{Fleet, LoadArgs, Meter, report, run_timed, settle};

/// Signed Idle requests of every enrolled device, made before the clock.
pub(crate) async fn enrolled_idles(fleet: &Fleet) -> anyhow::Result<Vec<Prepared>> {
    let mut out = Vec::new();
    for slot in fleet.iter() {
        if let Some(d) = slot.lock().await.as_ref() {
            out.push(d.idle_request(Channel::Device)?);
        }
    }
    Ok(out)
}

pub(crate) async fn idle(
    a: &LoadArgs,
    http: &reqwest::Client,
    fleet: &Fleet,
    c: usize,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let idles = Arc::new(enrolled_idles(fleet).await?);
    if idles.is_empty() {
        bail!("no enrolled device to poll");
    }
    eprintln!(
        "[{}] signed {} Idle requests in {:.1} s (untimed)",
        a.label,
        idles.len(),
        t.elapsed().as_secs_f64()
    );
    let (http, list) = (http.clone(), idles.clone());
    settle(a.pid).await;
    let meter = Meter::start(a);
    let out = run_timed(a.polls, c, move |i| {
        let (http, list) = (http.clone(), list.clone());
        async move {
            let req = list.get(i % list.len()).ok_or("request")?;
            let ans = req.send(&http).await.map_err(|e| e.to_string())?;
            match (ans.status, ans.body.is_empty()) {
                (200, true) => Ok(()),
                (200, false) => Err("Idle answered with a command (queue not empty)".into()),
                (s, _) => Err(format!(
                    "Idle: HTTP {s}: {}",
                    String::from_utf8_lossy(&ans.body[..ans.body.len().min(200)])
                )),
            }
        }
    })
    .await;
    report(a, "idle-poll", c, &meter.stop(out));
    Ok(())
}

/// The device ids of the tenant, by UDID, from the admin API's device list.
async fn device_ids(
    api: &AdminApi,
    http: &reqwest::Client,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let mut ids = std::collections::HashMap::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(x) => format!("/devices?limit=1000&after={x}"),
            None => "/devices?limit=1000".to_owned(),
        };
        let page = api.get_json(http, &path).await?;
        for d in page["items"].as_array().into_iter().flatten() {
            if let (Some(u), Some(id)) = (d["udid"].as_str(), d["id"].as_str()) {
                ids.insert(u.to_owned(), id.to_owned());
            }
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => return Ok(ids),
        }
    }
}

pub(crate) async fn roundtrips(
    a: &LoadArgs,
    api: &Arc<AdminApi>,
    http: &reqwest::Client,
    fleet: &Fleet,
    c: usize,
) -> anyhow::Result<()> {
    let ids = device_ids(api, http).await.context("listing devices")?;
    let mut chosen = Vec::new();
    for (i, slot) in fleet.iter().enumerate() {
        if chosen.len() >= a.roundtrips {
            break;
        }
        if let Some(d) = slot.lock().await.as_ref()
            && let Some(id) = ids.get(d.udid())
        {
            chosen.push((i, id.clone(), d.idle_request(Channel::Device)?));
        }
    }
    let t = Instant::now();
    let body = serde_json::json!({ "type": a.command });
    // The command UUID of each device's queued command, as the API answered.
    let uuids = Arc::new(std::sync::Mutex::new(vec![None::<String>; chosen.len()]));
    let queued = {
        let (api, http, list, uuids) = (
            api.clone(),
            http.clone(),
            Arc::new(
                chosen
                    .iter()
                    .map(|(_, id, _)| id.clone())
                    .collect::<Vec<_>>(),
            ),
            uuids.clone(),
        );
        let body = Arc::new(body);
        run_timed(list.len(), a.seed_concurrency, move |k| {
            let (api, http, list, body, uuids) = (
                api.clone(),
                http.clone(),
                list.clone(),
                body.clone(),
                uuids.clone(),
            );
            async move {
                let id = list.get(k).ok_or("device")?;
                let cmd = api
                    .post_json(&http, &format!("/devices/{id}/commands"), &body)
                    .await
                    .map_err(|e| e.to_string())?;
                let uuid = cmd["command_uuid"]
                    .as_str()
                    .ok_or("the queued command has no command_uuid")?;
                let mut slots = uuids.lock().map_err(|_| "poisoned")?;
                *slots.get_mut(k).ok_or("slot")? = Some(uuid.to_owned());
                Ok(())
            }
        })
        .await
    };
    if let Some(Err(e)) = queued.iter().find(|r| r.is_err()) {
        bail!("queueing {}: {e}", a.command);
    }
    eprintln!(
        "[{}] queued {} {} commands in {:.1} s (untimed)",
        a.label,
        chosen.len(),
        a.command,
        t.elapsed().as_secs_f64()
    );
    // Each device's Acknowledged is signed before the clock, like its Idle
    // (a load generator that signs in the timed window bills its own RSA
    // signatures to the shared cores; the server's work is the same).
    let uuids = std::mem::take(&mut *uuids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let mut prepared = Vec::with_capacity(chosen.len());
    for ((i, _, idle), uuid) in chosen.into_iter().zip(uuids) {
        let uuid = uuid.context("a queued command without its UUID")?;
        let guard = fleet.get(i).context("slot")?.lock().await;
        let d = guard.as_ref().context("device")?;
        let ack = d.result_request(&uuid, CommandStatus::Acknowledged)?;
        prepared.push((uuid, idle, ack));
    }
    let work = Arc::new(prepared);
    let (http2, work2) = (http.clone(), work.clone());
    settle(a.pid).await;
    let meter = Meter::start(a);
    let out = run_timed(work.len(), c, move |k| {
        let (http, work) = (http2.clone(), work2.clone());
        async move {
            let (uuid, idle, ack) = work.get(k).ok_or("work")?;
            let ans = idle.send(&http).await.map_err(|e| e.to_string())?;
            if ans.status != 200 || ans.body.is_empty() {
                return Err(format!(
                    "Idle: HTTP {} with {} bytes instead of a command",
                    ans.status,
                    ans.body.len()
                ));
            }
            let cmd = Command::parse(&ans.body).map_err(|e| e.to_string())?;
            if cmd.command_uuid != *uuid {
                return Err(format!(
                    "Idle answered {} instead of the queued {uuid}",
                    cmd.command_uuid
                ));
            }
            let ans = ack.send(&http).await.map_err(|e| e.to_string())?;
            match (ans.status, ans.body.is_empty()) {
                (200, true) => Ok(()),
                (s, _) => Err(format!("Acknowledged: HTTP {s}, {} bytes", ans.body.len())),
            }
        }
    })
    .await;
    report(a, "round-trip", c, &meter.stop(out));
    Ok(())
}
