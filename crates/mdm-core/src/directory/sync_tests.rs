//! Planning a sync, without a directory or a store.

use super::connector::AttributeMap;
use super::entry::DirectoryEntry;
use super::sync::plan_sync;
use crate::ids::{TenantId, UserId};
use crate::users::{User, UserSource};
use time::OffsetDateTime;

fn entry(id: &str, uid: &str, mail: &str) -> DirectoryEntry {
    let mut e = DirectoryEntry {
        dn: format!("uid={uid},ou=people,dc=example,dc=test"),
        ..Default::default()
    };
    for (k, v) in [("entryUUID", id), ("uid", uid), ("mail", mail), ("cn", uid)] {
        e.attrs.insert(k.into(), vec![v.into()]);
    }
    e
}

fn user(tenant: TenantId, source: UserSource, email: &str, id: Option<&str>) -> User {
    let t = OffsetDateTime::UNIX_EPOCH;
    User {
        id: UserId::new(),
        tenant_id: tenant,
        email: email.into(),
        display_name: email.split('@').next().unwrap_or_default().into(),
        password_hash: None,
        temporary_password: false,
        source,
        external_id: id.map(str::to_string),
        login_name: email.split('@').next().map(str::to_string),
        enabled: true,
        created_at: t,
        updated_at: t,
    }
}

#[test]
fn creates_updates_disables_and_reenables_by_stable_id() {
    let t = TenantId::new();
    let map = AttributeMap::default();
    let now = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
    let same = user(t, UserSource::Ldap, "same@example.test", Some("id-same"));
    let renamed = user(t, UserSource::Ldap, "old@example.test", Some("id-renamed"));
    let gone = user(t, UserSource::Ldap, "gone@example.test", Some("id-gone"));
    let mut back = user(t, UserSource::Ldap, "back@example.test", Some("id-back"));
    back.enabled = false;
    let mut gone_before = user(t, UserSource::Ldap, "long@example.test", Some("id-long"));
    gone_before.enabled = false;
    let local = user(t, UserSource::Local, "local@example.test", None);
    let existing = vec![
        same.clone(),
        renamed.clone(),
        gone.clone(),
        back.clone(),
        gone_before,
        local,
    ];
    let entries = vec![
        entry("id-same", "same", "same@example.test"),
        entry("id-renamed", "new", "New@Example.test"),
        entry("id-back", "back", "back@example.test"),
        entry("id-new", "fresh", "fresh@example.test"),
    ];
    let plan = plan_sync(t, &existing, &entries, &map, now).map_err(|e| e.to_string());
    let plan = plan.unwrap_or_default();
    assert_eq!(plan.unchanged, 1);
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.creates[0].external_id.as_deref(), Some("id-new"));
    assert_eq!(plan.creates[0].source, UserSource::Ldap);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert_eq!((plan.disabled, plan.reenabled), (1, 1));
    let change = |id: UserId| plan.updates.iter().find(|c| c.after.id == id);
    let r = change(renamed.id).map(|c| (c.after.email.clone(), c.changed.clone()));
    assert_eq!(
        r,
        Some((
            "new@example.test".to_string(),
            vec!["email", "display_name", "login_name"]
        ))
    );
    assert_eq!(change(gone.id).map(|c| c.after.enabled), Some(false));
    assert_eq!(
        change(back.id).map(|c| c.changed.clone()),
        Some(vec!["enabled"])
    );
    assert_eq!(plan.updates.len(), 3);
    assert!(plan.updates.iter().all(|c| c.after.updated_at == now));
}

#[test]
fn an_email_held_by_another_user_is_an_entry_error_and_keeps_the_user() {
    let t = TenantId::new();
    let map = AttributeMap::default();
    let local = user(t, UserSource::Local, "taken@example.test", None);
    let mover = user(t, UserSource::Ldap, "mover@example.test", Some("id-mover"));
    let existing = vec![local, mover.clone()];
    let entries = vec![
        entry("id-new", "new", "taken@example.test"),
        entry("id-mover", "mover", "taken@example.test"),
        entry("id-a", "a", "twice@example.test"),
        entry("id-b", "b", "twice@example.test"),
        entry("id-a", "a2", "a2@example.test"),
    ];
    let plan = plan_sync(t, &existing, &entries, &map, OffsetDateTime::UNIX_EPOCH);
    let plan = plan.unwrap_or_default();
    assert_eq!(plan.errors.len(), 4, "{:?}", plan.errors);
    assert!(plan.errors[0].message.contains("a local user"));
    assert!(plan.errors[2].message.contains("another directory user"));
    assert!(plan.errors[3].message.contains("two entries"));
    // Only id-a is created; the mover is neither renamed nor disabled.
    assert_eq!(plan.creates.len(), 1);
    assert!(plan.updates.is_empty(), "{:?}", plan.updates);
}

#[test]
fn missing_attributes_fail_the_whole_plan_and_invalid_values_keep_users() {
    let t = TenantId::new();
    let map = AttributeMap::default();
    let kept = user(t, UserSource::Ldap, "kept@example.test", Some("id-kept"));
    let mut no_mail = entry("id-x", "x", "x@example.test");
    no_mail.attrs.remove("mail");
    let failed = plan_sync(
        t,
        std::slice::from_ref(&kept),
        &[no_mail],
        &map,
        OffsetDateTime::UNIX_EPOCH,
    );
    let msg = failed.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("1 entries have no 'mail'"), "{msg}");
    let bad = entry("id-kept", "kept", "not an email");
    let plan = plan_sync(t, &[kept], &[bad], &map, OffsetDateTime::UNIX_EPOCH).unwrap_or_default();
    assert_eq!(plan.errors.len(), 1);
    assert_eq!(
        plan.disabled, 0,
        "a user whose entry has a bad value is not gone"
    );
}
