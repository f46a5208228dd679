//! Planning a sync: from the directory's entries and the tenant's users to
//! the users to create, update, disable and re-enable. Pure: the whole
//! directory is read first, the plan is applied in one store transaction,
//! so a failed run changes nothing (ADR 0008).

use super::connector::AttributeMap;
use super::entry::{DirectoryEntry, EntryProblem, map_entry, stable_id_of};
use crate::ids::{SyncRunId, TenantId, UserId};
use crate::users::{User, UserSource};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use time::OffsetDateTime;

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncTrigger {
    /// An administrator (API or CLI).
    Manual,
    /// The connector's sync interval.
    Scheduled,
}

impl SyncTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Scheduled => "scheduled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(Self::Manual),
            "scheduled" => Some(Self::Scheduled),
            _ => None,
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// The plan was applied (entries with errors were left alone).
    Succeeded,
    /// Nothing was changed; `error` says why.
    Failed,
}

impl SyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One entry the run could not apply; the user it concerns is left as it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncEntryError {
    pub dn: String,
    pub message: String,
}

/// Most entry errors a run keeps (the count is always complete).
pub const MAX_RUN_ERRORS: usize = 100;

/// The summary of one run, stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncRun {
    pub id: SyncRunId,
    pub tenant_id: TenantId,
    pub trigger: SyncTrigger,
    pub status: SyncStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
    pub duration_ms: i64,
    /// Entries the directory returned.
    pub entries: i64,
    pub created: i64,
    /// Users whose email, name, login name or DN changed, or who were re-enabled.
    pub updated: i64,
    /// Of `updated`: users back in the directory after being disabled.
    pub reenabled: i64,
    /// Users gone from the directory, disabled (never deleted).
    pub disabled: i64,
    pub unchanged: i64,
    /// Entries that could not be applied (e.g. an email a local user has).
    pub error_count: i64,
    /// The first [`MAX_RUN_ERRORS`] of them.
    pub errors: Vec<SyncEntryError>,
    /// Why a failed run failed.
    pub error: Option<String>,
    /// Stable code of the failure (`directory_unreachable`, …).
    pub error_code: Option<String>,
}

/// One user before and after a sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserChange {
    pub before: User,
    pub after: User,
    /// Fields that changed: `email`, `display_name`, `login_name`, `enabled`.
    pub changed: Vec<&'static str>,
}

/// What a sync will do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncPlan {
    pub creates: Vec<User>,
    pub updates: Vec<UserChange>,
    pub reenabled: usize,
    pub disabled: usize,
    pub unchanged: usize,
    pub errors: Vec<SyncEntryError>,
}

/// Why a sync cannot run at all: entries that lack a mapped attribute. A
/// run that skipped them would disable their users, so nothing is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingAttributes {
    /// `(role, attribute)` → entries without it, and the first such DN.
    pub missing: Vec<(&'static str, String, usize, String)>,
}

impl std::fmt::Display for MissingAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .missing
            .iter()
            .map(|(role, attr, n, dn)| {
                format!("{n} entries have no '{attr}' (mapped to {role}), e.g. {dn}")
            })
            .collect();
        write!(
            f,
            "{}; fix the attribute mapping or narrow the user filter (e.g. add ({}=*))",
            parts.join("; "),
            self.missing.first().map(|m| m.1.as_str()).unwrap_or("mail")
        )
    }
}

/// Plans a sync of `entries` into a tenant whose users are `existing`.
///
/// Users are keyed by the stable id: an entry whose id is known updates
/// that user whatever its DN, email or login now are. An entry's email
/// already held by another user (a local one, or another directory user) is
/// an entry error and the entry is skipped; its own user, if any, is left
/// as it is and not disabled. Directory users whose id is not among the
/// entries are disabled; disabled ones that re-appear are re-enabled.
pub fn plan_sync(
    tenant: TenantId,
    existing: &[User],
    entries: &[DirectoryEntry],
    map: &AttributeMap,
    now: OffsetDateTime,
) -> Result<SyncPlan, MissingAttributes> {
    let mut mapped = Vec::with_capacity(entries.len());
    let mut plan = SyncPlan::default();
    let mut missing: Vec<(&'static str, String, usize, String)> = Vec::new();
    let mut seen = HashSet::new();
    let mut kept = HashSet::new();
    for e in entries {
        match map_entry(map, e) {
            Ok(m) => mapped.push(m),
            Err(EntryProblem::Missing { role, attribute }) => {
                match missing.iter_mut().find(|m| m.0 == role) {
                    Some(m) => m.2 += 1,
                    None => missing.push((role, attribute, 1, e.dn.clone())),
                }
            }
            Err(EntryProblem::Invalid { message, .. }) => {
                // The user of this id is still in the directory: not "gone".
                if let Some(id) = stable_id_of(map, e) {
                    kept.insert(id);
                }
                plan.errors.push(SyncEntryError {
                    dn: e.dn.clone(),
                    message,
                });
            }
        }
    }
    if !missing.is_empty() {
        return Err(MissingAttributes { missing });
    }
    let by_external: HashMap<&str, &User> = existing
        .iter()
        .filter(|u| u.source == UserSource::Ldap)
        .filter_map(|u| u.external_id.as_deref().map(|x| (x, u)))
        .collect();
    // Emails as they are now; an email is free only when nobody holds it.
    let mut email_owner: HashMap<String, UserId> =
        existing.iter().map(|u| (u.email.clone(), u.id)).collect();
    for m in &mapped {
        if !seen.insert(m.external_id.clone()) {
            plan.errors.push(SyncEntryError {
                dn: m.dn.clone(),
                message: format!("stable id {} appears on two entries", m.external_id),
            });
            continue;
        }
        let current = by_external.get(m.external_id.as_str()).copied();
        match email_owner.get(&m.email) {
            Some(owner) if current.is_none_or(|u| u.id != *owner) => {
                let whose = existing.iter().find(|u| u.id == *owner);
                let what = match whose.map(|u| u.source) {
                    Some(UserSource::Local) => "a local user",
                    _ => "another directory user",
                };
                plan.errors.push(SyncEntryError {
                    dn: m.dn.clone(),
                    message: format!(
                        "email {} belongs to {what}; the entry was not applied",
                        m.email
                    ),
                });
                continue;
            }
            _ => {}
        }
        match current {
            None => {
                email_owner.insert(m.email.clone(), UserId::new());
                plan.creates.push(User {
                    id: UserId::new(),
                    tenant_id: tenant,
                    email: m.email.clone(),
                    display_name: m.display_name.clone(),
                    password_hash: None,
                    temporary_password: false,
                    source: UserSource::Ldap,
                    external_id: Some(m.external_id.clone()),
                    login_name: Some(m.login_name.clone()),
                    enabled: true,
                    created_at: now,
                    updated_at: now,
                });
            }
            Some(u) => {
                let mut after = u.clone();
                let mut changed = Vec::new();
                if u.email != m.email {
                    email_owner.insert(m.email.clone(), u.id);
                    after.email = m.email.clone();
                    changed.push("email");
                }
                if u.display_name != m.display_name {
                    after.display_name = m.display_name.clone();
                    changed.push("display_name");
                }
                if u.login_name.as_deref() != Some(m.login_name.as_str()) {
                    after.login_name = Some(m.login_name.clone());
                    changed.push("login_name");
                }
                if !u.enabled {
                    after.enabled = true;
                    changed.push("enabled");
                    plan.reenabled += 1;
                }
                if changed.is_empty() {
                    plan.unchanged += 1;
                } else {
                    after.updated_at = now;
                    plan.updates.push(UserChange {
                        before: u.clone(),
                        after,
                        changed,
                    });
                }
            }
        }
    }
    for (id, u) in &by_external {
        if seen.contains(*id) || kept.contains(*id) || !u.enabled {
            continue;
        }
        let mut after = (*u).clone();
        after.enabled = false;
        after.updated_at = now;
        plan.disabled += 1;
        plan.updates.push(UserChange {
            before: (*u).clone(),
            after,
            changed: vec!["enabled"],
        });
    }
    Ok(plan)
}
