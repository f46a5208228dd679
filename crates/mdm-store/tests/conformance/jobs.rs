//! Background jobs and named leases.
//!
//! Claiming is server-wide, so these tests hold the backend's job lock and
//! only look at their own jobs: jobs left by other tests may be claimed too.

use crate::check_eq;
use crate::support::{Ctx, hex, now};
use mdm_core::ids::JobId;
use mdm_core::jobs::{Job, JobState, NewJob};
use mdm_core::ports::JobStore;
use mdm_store::SqlStore;
use std::collections::{HashMap, HashSet};
use time::{Duration, OffsetDateTime};

fn new_job(run_at: OffsetDateTime, max_attempts: i32) -> NewJob {
    NewJob {
        id: JobId::new(),
        tenant_id: None,
        kind: "conformance".into(),
        payload: serde_json::json!({ "n": hex(4), "list": [1, 2, 3] }),
        run_at,
        dedupe_key: None,
        max_attempts,
    }
}

/// Claims until nothing is due at `now`; returns every job claimed.
async fn claim_all(
    s: &SqlStore,
    worker: &str,
    now: OffsetDateTime,
    lease: Duration,
) -> anyhow::Result<Vec<Job>> {
    let mut out = Vec::new();
    loop {
        let batch = s.claim_jobs(worker, now, now + lease, 1000).await?;
        if batch.is_empty() {
            return Ok(out);
        }
        out.extend(batch);
    }
}

fn contains(jobs: &[Job], id: JobId) -> bool {
    jobs.iter().any(|j| j.id == id)
}

pub async fn enqueue_dedupe(ctx: Ctx) -> anyhow::Result<()> {
    let _guard = ctx.jobs_lock.lock().await;
    let s = &*ctx.store;
    let key = format!("dedupe-{}", hex(8));
    let first = NewJob {
        dedupe_key: Some(key.clone()),
        ..new_job(now(), 3)
    };
    let second = NewJob {
        dedupe_key: Some(key),
        ..new_job(now(), 3)
    };
    anyhow::ensure!(s.enqueue_job(&first).await?, "first enqueue");
    anyhow::ensure!(
        !s.enqueue_job(&second).await?,
        "duplicate dedupe key is ignored"
    );
    check_eq!(s.job(second.id).await?, None);
    let (a, b) = (new_job(now(), 3), new_job(now(), 3));
    anyhow::ensure!(
        s.enqueue_job(&a).await? && s.enqueue_job(&b).await?,
        "jobs without a key are all queued"
    );

    let stored = s
        .job(first.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job missing"))?;
    let expected = Job {
        id: first.id,
        tenant_id: None,
        kind: "conformance".into(),
        payload: first.payload.clone(),
        run_at: first.run_at,
        attempts: 0,
        max_attempts: 3,
        lease_owner: None,
        last_error: None,
        state: JobState::Queued,
    };
    check_eq!(stored, expected);
    check_eq!(s.job(JobId::new()).await?, None);
    Ok(())
}

pub async fn concurrent_claims_are_disjoint(ctx: Ctx) -> anyhow::Result<()> {
    let _guard = ctx.jobs_lock.lock().await;
    let s = ctx.store.clone();
    let t0 = now();
    let mut mine = HashSet::new();
    for _ in 0..200 {
        let job = new_job(t0 - Duration::seconds(1), 3);
        s.enqueue_job(&job).await?;
        mine.insert(job.id);
    }
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..8 {
        let s = s.clone();
        workers.spawn(async move {
            let worker = format!("worker-{w}");
            let mut claimed = Vec::new();
            loop {
                let batch = s
                    .claim_jobs(&worker, t0, t0 + Duration::minutes(10), 7)
                    .await?;
                if batch.is_empty() {
                    return anyhow::Ok((worker, claimed));
                }
                anyhow::ensure!(batch.len() <= 7, "claimed more than the limit");
                anyhow::ensure!(
                    batch
                        .iter()
                        .all(|j| j.lease_owner.as_deref() == Some(worker.as_str())),
                    "lease owner"
                );
                claimed.extend(batch.into_iter().map(|j| j.id));
                // A SQLite claim need not wait for anything (its connection
                // and writer turn are free), so without a pause one worker
                // could take every batch before the others are polled; real
                // workers pause between passes too.
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        });
    }
    let mut times_claimed: HashMap<JobId, usize> = HashMap::new();
    let mut by_worker = Vec::new();
    while let Some(result) = workers.join_next().await {
        let (worker, claimed) = result??;
        for id in &claimed {
            *times_claimed.entry(*id).or_default() += 1;
        }
        by_worker.push((worker, claimed));
    }
    for id in &mine {
        check_eq!((id, times_claimed.get(id).copied().unwrap_or(0)), (id, 1));
    }
    let busy = by_worker
        .iter()
        .filter(|(_, c)| c.iter().any(|id| mine.contains(id)))
        .count();
    anyhow::ensure!(
        busy >= 2,
        "the claims did not overlap in time ({busy} workers got jobs)"
    );
    for (worker, claimed) in &by_worker {
        for id in claimed.iter().filter(|id| mine.contains(id)) {
            anyhow::ensure!(
                s.complete_job(*id, worker, now()).await?,
                "complete by holder"
            );
        }
    }
    Ok(())
}

pub async fn expired_leases_are_reclaimed(ctx: Ctx) -> anyhow::Result<()> {
    let _guard = ctx.jobs_lock.lock().await;
    let s = &*ctx.store;
    let t0 = now();
    let job = new_job(t0 - Duration::seconds(1), 3);
    s.enqueue_job(&job).await?;
    let lease = Duration::seconds(30);

    anyhow::ensure!(
        contains(&claim_all(s, "a", t0, lease).await?, job.id),
        "first claim"
    );
    anyhow::ensure!(
        !contains(
            &claim_all(s, "b", t0 + Duration::seconds(10), lease).await?,
            job.id
        ),
        "lease still held"
    );
    let taken = claim_all(s, "b", t0 + Duration::seconds(30), lease).await?;
    anyhow::ensure!(contains(&taken, job.id), "expired lease is claimed again");
    check_eq!(
        s.job(job.id).await?.and_then(|j| j.lease_owner),
        Some("b".to_string())
    );

    anyhow::ensure!(
        !s.complete_job(job.id, "a", now()).await?,
        "the old holder cannot complete"
    );
    anyhow::ensure!(
        !s.fail_job(job.id, "a", "late", now()).await?,
        "the old holder cannot fail it"
    );
    anyhow::ensure!(
        s.complete_job(job.id, "b", now()).await?,
        "the holder completes"
    );
    check_eq!(
        s.job(job.id).await?.map(|j| (j.state, j.attempts)),
        Some((JobState::Done, 0))
    );
    anyhow::ensure!(
        !s.complete_job(job.id, "b", now()).await?,
        "completing twice"
    );
    anyhow::ensure!(
        !contains(
            &claim_all(s, "c", t0 + Duration::days(1), lease).await?,
            job.id
        ),
        "done jobs stay done"
    );
    Ok(())
}

pub async fn fail_retry_and_give_up(ctx: Ctx) -> anyhow::Result<()> {
    let _guard = ctx.jobs_lock.lock().await;
    let s = &*ctx.store;
    let t0 = now();
    let job = new_job(t0 - Duration::seconds(1), 2);
    s.enqueue_job(&job).await?;
    let lease = Duration::seconds(30);

    anyhow::ensure!(
        contains(&claim_all(s, "a", t0, lease).await?, job.id),
        "claimed"
    );
    anyhow::ensure!(
        !s.fail_job(job.id, "b", "not mine", t0).await?,
        "only the holder may fail it"
    );
    let retry_at = t0 + Duration::minutes(1);
    anyhow::ensure!(
        s.fail_job(job.id, "a", "boom", retry_at).await?,
        "first failure"
    );
    let j = s
        .job(job.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job missing"))?;
    check_eq!(
        (j.state, j.attempts, j.run_at, j.lease_owner, j.last_error),
        (
            JobState::Queued,
            1,
            retry_at,
            None,
            Some("boom".to_string())
        )
    );

    // Not due before retry_at, even though its lease is gone.
    anyhow::ensure!(
        !contains(
            &claim_all(s, "a", t0 + Duration::seconds(59), lease).await?,
            job.id
        ),
        "not due yet"
    );
    anyhow::ensure!(
        contains(&claim_all(s, "a", retry_at, lease).await?, job.id),
        "due again"
    );
    anyhow::ensure!(
        s.fail_job(job.id, "a", "boom again", retry_at + Duration::minutes(1))
            .await?,
        "second failure"
    );
    let j = s
        .job(job.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job missing"))?;
    check_eq!(
        (j.state, j.attempts, j.last_error.as_deref()),
        (JobState::Failed, 2, Some("boom again"))
    );
    anyhow::ensure!(
        !contains(
            &claim_all(s, "a", t0 + Duration::days(1), lease).await?,
            job.id
        ),
        "failed jobs stay failed"
    );
    anyhow::ensure!(
        !s.fail_job(job.id, "a", "again", t0).await?,
        "failing a failed job"
    );
    anyhow::ensure!(
        !s.complete_job(job.id, "a", t0).await?,
        "completing a failed job"
    );
    Ok(())
}

pub async fn abandon_fails_at_once(ctx: Ctx) -> anyhow::Result<()> {
    let _guard = ctx.jobs_lock.lock().await;
    let s = &*ctx.store;
    let t0 = now();
    let job = new_job(t0 - Duration::seconds(1), 5);
    s.enqueue_job(&job).await?;
    let lease = Duration::seconds(30);
    anyhow::ensure!(
        contains(&claim_all(s, "a", t0, lease).await?, job.id),
        "claimed"
    );
    anyhow::ensure!(
        !s.abandon_job(job.id, "b", "not mine").await?,
        "only the holder may abandon it"
    );
    anyhow::ensure!(
        s.abandon_job(job.id, "a", "bad payload").await?,
        "abandoned"
    );
    let j = s
        .job(job.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job missing"))?;
    check_eq!(
        (j.state, j.attempts, j.last_error.as_deref()),
        (JobState::Failed, 1, Some("bad payload"))
    );
    anyhow::ensure!(
        !contains(
            &claim_all(s, "a", t0 + Duration::days(1), lease).await?,
            job.id
        ),
        "abandoned jobs stay failed"
    );
    Ok(())
}

pub async fn named_leases(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let name = format!("lease-{}", hex(8));
    let t0 = now();
    let at = |secs: i64| t0 + Duration::seconds(secs);
    anyhow::ensure!(
        s.try_lease(&name, "a", at(0), at(30)).await?,
        "a takes the free lease"
    );
    anyhow::ensure!(
        !s.try_lease(&name, "b", at(10), at(40)).await?,
        "b must wait"
    );
    anyhow::ensure!(s.try_lease(&name, "a", at(10), at(40)).await?, "a renews");
    anyhow::ensure!(
        !s.try_lease(&name, "b", at(35), at(60)).await?,
        "the renewal holds"
    );
    anyhow::ensure!(
        s.try_lease(&name, "b", at(40), at(70)).await?,
        "b takes the expired lease"
    );
    anyhow::ensure!(!s.try_lease(&name, "a", at(41), at(80)).await?, "a lost it");

    // Many contenders at once: exactly one wins.
    let other = format!("lease-{}", hex(8));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (s, other) = (ctx.store.clone(), other.clone());
        set.spawn(async move {
            s.try_lease(&other, &format!("h{i}"), t0, t0 + Duration::seconds(30))
                .await
        });
    }
    let mut winners = 0;
    while let Some(r) = set.join_next().await {
        winners += usize::from(r??);
    }
    check_eq!(winners, 1);
    Ok(())
}
