//! The conformance suite: every test runs against SQLite (a temp file) and,
//! when `MDM_TEST_POSTGRES_URL` is set, against a fresh PostgreSQL database
//! created for this run and dropped afterwards.
//!
//! Tests share one database per backend: each creates its own tenants and
//! never assumes a table is empty. Job tests take a per-backend lock, since
//! claiming is server-wide.
//!
//! Run: `MDM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres cargo test -p mdm-store`

// Test code: failures are reported through `anyhow` and the harness.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "conformance/access.rs"]
mod access;
#[path = "conformance/admin.rs"]
mod admin;
#[path = "conformance/android.rs"]
mod android;
#[path = "conformance/apple.rs"]
mod apple;
#[path = "conformance/audit.rs"]
mod audit;
#[path = "conformance/certificates.rs"]
mod certificates;
#[path = "conformance/convert.rs"]
mod convert;
#[path = "conformance/devices.rs"]
mod devices;
#[path = "conformance/directory.rs"]
mod directory;
#[path = "conformance/directory_domain.rs"]
mod directory_domain;
#[path = "conformance/funnel.rs"]
mod funnel;
#[path = "conformance/invitations.rs"]
mod invitations;
#[path = "conformance/jobs.rs"]
mod jobs;
#[path = "conformance/pki.rs"]
mod pki;
#[path = "conformance/statistics.rs"]
mod statistics;
#[path = "conformance/support.rs"]
mod support;
#[path = "conformance/tenants.rs"]
mod tenants;
#[path = "conformance/user_lists.rs"]
mod user_lists;
#[path = "conformance/users.rs"]
mod users;

use libtest_mimic::{Arguments, Trial};
use mdm_store::{Backend, SqlStore};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use support::{Ctx, Env};

type TestFn = fn(Ctx) -> Pin<Box<dyn Future<Output = anyhow::Result<()>>>>;

macro_rules! tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$(
            (concat!(stringify!($module), "::", stringify!($name)), (|ctx| Box::pin($module::$name(ctx))) as TestFn)
        ),*]
    };
}

/// Every backend test, registered once per backend.
fn backend_tests() -> Vec<(&'static str, TestFn)> {
    tests![
        tenants::create_get_list,
        tenants::duplicate_slug,
        tenants::settings_read_update,
        tenants::enrollment_url_rotation,
        tenants::concurrent_rotation_one_wins,
        users::crud,
        users::duplicate_email_writes_nothing,
        users::tenant_isolation,
        user_lists::filters_and_paging,
        user_lists::large_tenant_stays_fast,
        access::tokens,
        access::admins,
        audit::filters_and_paging,
        audit::operator_entries,
        jobs::enqueue_dedupe,
        jobs::concurrent_claims_are_disjoint,
        jobs::expired_leases_are_reclaimed,
        jobs::fail_retry_and_give_up,
        jobs::abandon_fails_at_once,
        jobs::named_leases,
        pki::ca_per_tenant,
        pki::challenge_outcomes,
        pki::concurrent_redeems_one_wins,
        pki::redeem_with_certificate,
        pki::profile_signers,
        pki::profile_signer_concurrent_first_use,
        pki::profile_signer_renewal,
        pki::signing_identities,
        pki::signing_identity_expiry_falls_back,
        certificates::round_trip_and_uniqueness,
        certificates::filters_and_paging,
        certificates::equal_times_page_by_serial,
        certificates::limit_is_clamped,
        certificates::revocation,
        invitations::round_trip_revocation_and_paging,
        invitations::pin_outcomes,
        invitations::concurrent_pin_redeems_one_wins,
        invitations::mail_templates,
        invitations::throttling_and_sessions,
        invitations::registration_tokens,
        directory::connector_round_trip,
        directory::sync_applies_everything_or_nothing,
        directory::runs_newest_first_per_tenant,
        directory_domain::sync_through_the_port,
        directory_domain::sign_in_searches_then_binds,
        devices::registrations_round_trip_and_paging,
        devices::ending_a_registration,
        devices::issuance_advances_the_registration,
        devices::issued_profile_is_one_transaction,
        devices::devices_listing_and_last_seen,
        devices::device_updates_keep_its_lookups,
        apple::binding_and_poll,
        apple::enrollment_updates_keep_its_lookups,
        apple::results_are_recorded_once,
        apple::push_bookkeeping,
        apple::push_job_outcomes,
        apple::push_pass_goes_together,
        apple::change_queues_its_jobs,
        apple::renewal_candidates,
        android::android_registration_nonce_and_results,
        convert::copy_all_tables,
        convert::refuses_unready_target,
        convert::schema_matches_table_list,
        funnel::stages_attach_to_one_registration,
        funnel::funnel_rows_and_stalled,
        funnel::reminders_claimed_once_and_given_up,
        funnel::remind_now_and_what_stops_reminders,
        admin::sessions_and_throttle,
        admin::setup_rename_and_user_lookup,
        admin::device_delete_and_filters,
        statistics::refreshed_after_growth,
    ]
}

const TEST_TIMEOUT: Duration = Duration::from_secs(300);

fn trials(rt: &Arc<tokio::runtime::Runtime>, ctx: &Ctx) -> Vec<Trial> {
    backend_tests()
        .into_iter()
        .map(|(name, test)| {
            let (rt, ctx) = (rt.clone(), ctx.clone());
            Trial::test(format!("{}::{name}", ctx.backend), move || {
                rt.block_on(async move {
                    match tokio::time::timeout(TEST_TIMEOUT, test(ctx)).await {
                        Ok(result) => result.map_err(|e| format!("{e:#}").into()),
                        Err(_) => Err(format!("timed out after {TEST_TIMEOUT:?}").into()),
                    }
                })
            })
        })
        .collect()
}

async fn setup(env: &Arc<Env>) -> anyhow::Result<Vec<Ctx>> {
    let mut ctxs = vec![Ctx::new(Backend::Sqlite, env.clone()).await?];
    match &env.pg_admin_url {
        Some(_) => ctxs.push(Ctx::new(Backend::Postgres, env.clone()).await?),
        None => eprintln!(
            "\nNOTICE: MDM_TEST_POSTGRES_URL is not set: the PostgreSQL half of the conformance suite is SKIPPED.\n\
             Set it (e.g. postgres://postgres@127.0.0.1:5432/postgres) to run every test on PostgreSQL too.\n"
        ),
    }
    Ok(ctxs)
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("cannot start a tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let env = match Env::new() {
        Ok(env) => Arc::new(env),
        Err(e) => {
            eprintln!("cannot set up the test environment: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ctxs = rt.block_on(setup(&env));
    let conclusion = match &ctxs {
        Ok(ctxs) => {
            let mut all = vec![Trial::test(
                "migrations::same_versions_in_both_dirs",
                || support::same_migration_versions().map_err(|e| format!("{e:#}").into()),
            )];
            for ctx in ctxs {
                all.extend(trials(&rt, ctx));
            }
            Some(libtest_mimic::run(&args, all))
        }
        Err(e) => {
            eprintln!("cannot set up the test databases: {e:#}");
            None
        }
    };
    let stores: Vec<Arc<SqlStore>> = ctxs
        .map(|c| c.into_iter().map(|c| c.store).collect())
        .unwrap_or_default();
    if let Err(e) = rt.block_on(env.cleanup(stores)) {
        eprintln!("cleaning up the test databases failed: {e:#}");
    }
    match conclusion {
        Some(c) => c.exit_code(),
        None => std::process::ExitCode::FAILURE,
    }
}
