//! End-to-end tests of the `mdm` binary: servers on loopback, one on SQLite
//! and one on PostgreSQL (when `MDM_TEST_POSTGRES_URL` is set), driven over
//! HTTP and through the CLI. One binary, fixtures started once.

mod admin_forms;
mod admin_portal;
mod android;
mod android_edges;
mod api;
mod apns;
mod apple;
mod apple_device;
mod apple_lifecycle;
mod apple_transport;
mod apple_user;
mod browser;
mod client;
mod directory;
mod directory_failures;
mod directory_go;
mod fake_apns;
mod fake_fcm;
mod fake_tls;
mod fcm;
mod funnel;
mod invites;
mod isolation;
mod my_devices;
mod ops;
mod profiles;
mod reminders;
mod renewal;
mod scep;
mod signing_identity;
mod sim_channel;
mod sim_lifecycle;
mod slapd;
mod smtp;
mod smtp_auth;
mod support;
mod tls;

use fake_apns::{FakeApns, FakeAuth};
use libtest_mimic::{Arguments, Failed, Trial};
use std::future::Future;
use std::sync::Arc;
use support::{PgDatabase, Server, TestResult};

/// The SMTP server and chromedriver every invitation test shares.
pub struct InviteEnv {
    pub smtp: smtp::Smtp,
    pub chromedriver: Result<browser::Chromedriver, String>,
}

pub static INVITE_ENV: std::sync::OnceLock<InviteEnv> = std::sync::OnceLock::new();

/// The local FCM every shared server pushes Android wake-ups to.
pub static FCM: std::sync::OnceLock<Arc<fake_fcm::FakeFcm>> = std::sync::OnceLock::new();

type ServerTest = fn(Arc<Server>) -> std::pin::Pin<Box<dyn Future<Output = TestResult> + Send>>;

macro_rules! server_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        vec![$((stringify!($name), (|s| Box::pin($module::$name(s))) as ServerTest)),*]
    };
}

type DirTest = fn(std::path::PathBuf) -> std::pin::Pin<Box<dyn Future<Output = TestResult> + Send>>;

/// The push clients against their local fakes, and the TLS listener: each
/// test gets its own directory, none needs a database.
fn push_and_tls_trials(
    trials: &mut Vec<Trial>,
    rt: &Arc<tokio::runtime::Runtime>,
    tmp: &std::path::Path,
) {
    let tests: Vec<(&str, DirTest)> = vec![
        ("apns_token_auth_every_answer_maps", |d| {
            Box::pin(async move { apns::apns_token_auth_every_answer_maps(&d).await })
        }),
        ("apns_certificate_auth", |d| {
            Box::pin(async move { apns::apns_certificate_auth(&d).await })
        }),
        ("apns_one_connection_bounded_concurrency", |d| {
            Box::pin(async move { apns::apns_one_connection_bounded_concurrency(&d).await })
        }),
        ("apns_retries_back_off_and_stop", |d| {
            Box::pin(async move { apns::apns_retries_back_off_and_stop(&d).await })
        }),
        ("serve_exposes_push_certificate_expiry", |d| {
            Box::pin(async move { apns::serve_exposes_push_certificate_expiry(&d).await })
        }),
        ("fcm_every_answer_maps", |d| {
            Box::pin(async move { fcm::fcm_every_answer_maps(&d).await })
        }),
        ("fcm_refreshes_a_revoked_access_token", |d| {
            Box::pin(async move { fcm::fcm_refreshes_a_revoked_access_token(&d).await })
        }),
        (
            "tls_listener_hands_the_peer_certificate_to_handlers",
            |_| Box::pin(tls::tls_listener_hands_the_peer_certificate_to_handlers()),
        ),
        ("serve_https_profiles_carry_the_self_signed_anchor", |d| {
            Box::pin(
                async move { tls::serve_https_profiles_carry_the_self_signed_anchor(&d).await },
            )
        }),
        ("mtls_over_the_https_listener", |d| {
            Box::pin(async move { sim_channel::mtls_over_the_https_listener(&d).await })
        }),
    ];
    for (name, test) in tests {
        let (rt, dir) = (rt.clone(), tmp.join(name));
        trials.push(Trial::test(name, move || {
            rt.block_on(test(dir)).map_err(Failed::from)
        }));
    }
}

fn main() {
    let args = Arguments::from_args();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Arc::new(rt),
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(2);
        }
    };
    let tmp = match tempfile::tempdir() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot create a temp dir: {e}");
            std::process::exit(2);
        }
    };
    let pg_admin = std::env::var("MDM_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty());
    if pg_admin.is_none() {
        eprintln!(
            "notice: MDM_TEST_POSTGRES_URL is unset: the PostgreSQL half of the server tests is skipped"
        );
    }
    let mut smtp_env = Vec::new();
    let smtp_started =
        smtp::free_port().and_then(|port| smtp::Smtp::start(&tmp.path().join("smtp"), port, false));
    match smtp_started {
        Ok(smtp) => {
            smtp_env = smtp.env("starttls");
            let chromedriver = browser::Chromedriver::start();
            if let Err(e) = &chromedriver {
                eprintln!("notice: {e}: the browser test will fail");
            }
            let _ = INVITE_ENV.set(InviteEnv { smtp, chromedriver });
        }
        Err(e) => eprintln!("notice: {e}: the invitation tests will fail"),
    }
    let mut databases = Vec::new();
    let mut servers = Vec::new();
    // One local APNs for the shared servers: pushes to devices land there.
    let apns = match rt.block_on(FakeApns::start(FakeAuth::Token, &tmp.path().join("apns"))) {
        Ok(f) => Arc::new(f),
        Err(e) => {
            eprintln!("cannot start the fake APNs: {e}");
            std::process::exit(2);
        }
    };
    let mut push_env = apns.config_env();
    push_env.extend(smtp_env);
    let fcm_dir = tmp.path().join("fcm");
    let fcm = std::fs::create_dir_all(&fcm_dir)
        .map_err(|e| e.to_string())
        .and_then(|()| rt.block_on(fake_fcm::FakeFcm::start(&fcm_dir)));
    match fcm {
        Ok(f) => {
            match f.config_env(&fcm_dir) {
                Ok(env) => push_env.extend(env),
                Err(e) => eprintln!("notice: {e}: the FCM wake test will fail"),
            }
            let _ = FCM.set(Arc::new(f));
        }
        Err(e) => eprintln!("notice: cannot start the fake FCM ({e}): the FCM wake test will fail"),
    }
    for (k, v) in [
        (
            "MDM_ANDROID_AGENT_COMPONENT",
            "org.example.mdm.agent/.AdminReceiver",
        ),
        (
            "MDM_ANDROID_AGENT_DOWNLOAD_URL",
            "https://downloads.example.org/agent.apk",
        ),
        (
            "MDM_ANDROID_AGENT_SIGNATURE_CHECKSUM",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ),
    ] {
        push_env.push((k.to_string(), v.to_string()));
    }
    let with_apns = |mut s: Server| {
        s.apns = Some(apns.clone());
        Arc::new(s)
    };
    match Server::start_with_env("sqlite", &tmp.path().join("sqlite"), None, &push_env) {
        Ok(s) => servers.push(with_apns(s)),
        Err(e) => {
            eprintln!("cannot start the SQLite server: {e}");
            std::process::exit(2);
        }
    }
    if let Some(admin) = &pg_admin {
        let started = rt
            .block_on(PgDatabase::create(admin, "mdm_srv"))
            .and_then(|db| {
                let s = Server::start_with_env(
                    "postgres",
                    &tmp.path().join("postgres"),
                    Some(&db.url),
                    &push_env,
                );
                databases.push(db);
                s
            });
        match started {
            Ok(s) => servers.push(with_apns(s)),
            Err(e) => {
                eprintln!("cannot start the PostgreSQL server: {e}");
                for s in &servers {
                    s.stop();
                }
                for db in &databases {
                    rt.block_on(db.drop_db());
                }
                std::process::exit(2);
            }
        }
    }

    let tests = server_tests![
        api::health_and_metrics,
        api::cli_then_api,
        api::users_crud_and_paging,
        api::bulk_and_csv_import,
        api::bad_input,
        api::settings,
        api::enrollment_url_regeneration,
        api::tokens,
        api::audit_filters,
        isolation::tenant_isolation_on_every_route,
        scep::scepclient_enrolls_and_is_refused_when_it_should_be,
        scep::our_client_every_cipher_and_digest,
        scep::one_challenge_one_certificate_under_concurrency,
        scep::renewal_and_revocation,
        scep::bad_scep_input,
        scep::cli_inspect_and_challenge,
        profiles::signed_profile_enrolls_once_and_expires,
        profiles::profiles_are_signed_by_the_tenant_signer,
        signing_identity::uploaded_identity_signs_profiles,
        invites::browser_registration,
        invites::pin_works_once_under_concurrency,
        invites::refusals_are_clear,
        invites::qr_registration_and_app_api,
        invites::invitation_api_cli_and_template,
        directory::directory_import_2000_through_paging,
        directory::directory_rename_change_delete_and_groups,
        directory_failures::directory_sign_in_binds_as_the_user,
        directory_failures::directory_bad_input_changes_nothing,
        directory::directory_validation_and_schedule,
        directory_go::directory_user_registers_on_go,
        apple::apple_device_enrols_and_takes_commands,
        apple::apple_wipe_and_checkout,
        apple_lifecycle::apple_refusals_change_nothing,
        apple_lifecycle::apple_reenrolment_cancel_expire_retry,
        apple_user::apple_macos_user_channel,
        apple_user::apple_fixtures_parse,
        apple_transport::apple_tls_and_forwarded_certificates,
        sim_lifecycle::late_profile_fails_at_scep,
        sim_lifecycle::iphone_and_mac_enrol_then_retire_and_wipe,
        android::android_reregistration_matrix,
        android::android_concurrent_reregistrations,
        android_edges::android_r16_removes_cas_on_company_owned_only,
        android_edges::android_qr_provisioning_and_app_token,
        android_edges::android_bad_agent_input_changes_nothing,
        android_edges::android_fcm_wakes_the_agent,
        sim_channel::not_now_duplicates_and_silence,
        funnel::funnel_stalled_and_remind_now,
        my_devices::portal_lists_my_devices,
        admin_portal::admin_portal_in_chromium,
        admin_forms::admin_forms_refuse_forgery_and_bad_input,
        admin_forms::admin_settings_reach_smtp_and_ldap,
        renewal::resend_profile_renews_identity,
    ];
    let mut trials = Vec::new();
    for server in &servers {
        for (name, test) in &tests {
            let (rt, server, test) = (rt.clone(), server.clone(), *test);
            trials.push(Trial::test(format!("{}::{name}", server.name), move || {
                rt.block_on(test(server)).map_err(Failed::from)
            }));
        }
    }
    {
        let rt = rt.clone();
        let sqlite = servers[0].clone();
        trials.push(Trial::test("openapi_document_is_committed", move || {
            rt.block_on(api::openapi_drift(sqlite))
                .map_err(Failed::from)
        }));
    }
    {
        let rt = rt.clone();
        trials.push(Trial::test(
            "failed_sends_are_retried_and_visible",
            move || {
                rt.block_on(invites::failed_sends_are_retried_and_visible())
                    .map_err(Failed::from)
            },
        ));
    }
    {
        let rt = rt.clone();
        trials.push(Trial::test("smtp_auth_against_aiosmtpd", move || {
            rt.block_on(smtp_auth::smtp_auth_against_aiosmtpd())
                .map_err(Failed::from)
        }));
    }
    trials.push(Trial::test("print_config_redacts_and_warns", || {
        ops::print_config().map_err(Failed::from)
    }));
    trials.push(Trial::test("apple_inspect", || {
        ops::apple_inspect().map_err(Failed::from)
    }));
    {
        let (rt, dir) = (rt.clone(), tmp.path().join("shutdown"));
        trials.push(Trial::test("clean_shutdown_leaves_no_wal", move || {
            rt.block_on(ops::clean_shutdown_leaves_no_wal(dir))
                .map_err(Failed::from)
        }));
    }
    {
        let (rt, dir) = (rt.clone(), tmp.path().join("ca-signer"));
        trials.push(Trial::test(
            "ca_signs_profiles_when_configured",
            move || {
                rt.block_on(profiles::ca_signs_profiles_when_configured(dir))
                    .map_err(Failed::from)
            },
        ));
    }
    push_and_tls_trials(&mut trials, &rt, tmp.path());
    {
        let (rt, dir) = (rt.clone(), tmp.path().join("userauth"));
        trials.push(Trial::test("apple_user_authenticate_accepted", move || {
            rt.block_on(apple_user::user_authenticate_accepted(dir))
                .map_err(Failed::from)
        }));
    }
    {
        let (rt, dir) = (rt.clone(), tmp.path().join("renewal"));
        trials.push(Trial::test(
            "renewal_scan_renews_due_certificates",
            move || {
                rt.block_on(renewal::scan_renews_due_certificates(dir))
                    .map_err(Failed::from)
            },
        ));
    }
    {
        let (rt, sqlite, pg_admin) = (rt.clone(), servers[0].clone(), pg_admin.clone());
        trials.push(Trial::test("convert_db_sqlite_to_postgres", move || {
            rt.block_on(ops::convert_db(sqlite, pg_admin))
                .map_err(Failed::from)
        }));
    }

    {
        let (rt, pg_admin, dir) = (rt.clone(), pg_admin.clone(), tmp.path().join("reminders"));
        trials.push(Trial::test(
            "reminders_once_across_two_servers",
            move || {
                rt.block_on(reminders::reminders_once_across_two_servers(pg_admin, dir))
                    .map_err(Failed::from)
            },
        ));
    }
    let conclusion = libtest_mimic::run(&args, trials);
    slapd::shutdown();
    for s in &servers {
        s.stop();
    }
    for db in &databases {
        rt.block_on(db.drop_db());
    }
    if let Some(env) = INVITE_ENV.get() {
        env.smtp.stop();
        if let Ok(d) = &env.chromedriver {
            d.stop();
        }
    }
    conclusion.exit();
}
