//! A tenant's directory connector: where the server is, how to bind, what
//! to search and how entries map onto users. Validated here, stored with
//! the bind password sealed by the vault.

use crate::error::CoreError;
use crate::ids::TenantId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How the connection to the directory is secured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DirectorySecurity {
    /// Plain LDAP (`ldap://`): the bind password crosses the network in clear.
    None,
    /// `ldap://` upgraded with the StartTLS extended operation before binding.
    Starttls,
    /// TLS from the first byte (`ldaps://`).
    Ldaps,
}

impl DirectorySecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Ldaps => "ldaps",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "starttls" => Some(Self::Starttls),
            "ldaps" => Some(Self::Ldaps),
            _ => None,
        }
    }
}

/// Which directory attribute fills which user field. Defaults fit OpenLDAP
/// (`inetOrgPerson`); for Active Directory use `mail`, `displayName`,
/// `sAMAccountName` and `objectGUID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeMap {
    /// The user's email (the username here). Default `mail`.
    pub email: String,
    /// Default `cn`; the login name is used when an entry has none.
    pub display_name: String,
    /// The directory login name (`uid`, `sAMAccountName`). Default `uid`.
    pub login_name: String,
    /// An id that survives renames and moves (`entryUUID`, `objectGUID`).
    /// Users are keyed by it. Default `entryUUID`.
    pub stable_id: String,
}

impl Default for AttributeMap {
    fn default() -> Self {
        Self {
            email: "mail".into(),
            display_name: "cn".into(),
            login_name: "uid".into(),
            stable_id: "entryUUID".into(),
        }
    }
}

impl AttributeMap {
    /// The attributes a sync asks the directory for.
    pub fn requested(&self) -> Vec<String> {
        let mut out = vec![
            self.stable_id.clone(),
            self.email.clone(),
            self.display_name.clone(),
            self.login_name.clone(),
        ];
        out.dedup();
        out
    }

    /// `(field, attribute)` pairs, for error messages.
    pub fn roles(&self) -> [(&'static str, &str); 4] {
        [
            ("stable_id", &self.stable_id),
            ("email", &self.email),
            ("login_name", &self.login_name),
            ("display_name", &self.display_name),
        ]
    }
}

/// A stored connector. The bind password is kept only sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DirectoryConnector {
    pub tenant_id: TenantId,
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    pub security: DirectorySecurity,
    /// The service account that searches the directory.
    pub bind_dn: String,
    /// The service account's password sealed by the vault; never serialised.
    #[serde(skip)]
    pub sealed_bind_password: Vec<u8>,
    /// Where users are searched (subtree).
    pub base_dn: String,
    /// Which entries are users, e.g. `(objectClass=inetOrgPerson)`.
    pub user_filter: String,
    /// Only members of this group: a group DN (matched through `memberOf`)
    /// or a filter in parentheses ANDed with the user filter.
    pub group_filter: Option<String>,
    pub attributes: AttributeMap,
    /// Entries per page of the paged search.
    pub page_size: u32,
    /// Seconds between scheduled syncs; 0 turns scheduled syncs off.
    pub sync_interval_secs: i64,
    /// Limit for connecting and for each directory operation.
    pub timeout_secs: u32,
    /// PEM CA certificate(s) for the directory's TLS certificate.
    pub ca_pem: Option<String>,
    /// Disabled connectors neither sync nor authenticate.
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl DirectoryConnector {
    /// The filter a sync and a sign-in search with: the user filter, ANDed
    /// with the group filter when there is one.
    pub fn search_filter(&self) -> String {
        super::entry::combined_filter(&self.user_filter, self.group_filter.as_deref())
    }
}

/// What an administrator supplies to configure the connector. Replaces the
/// whole configuration; `bind_password` may be left out to keep the stored one.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSettings {
    pub url: String,
    /// Default: `ldaps` for an `ldaps://` URL, otherwise `starttls`.
    pub security: Option<DirectorySecurity>,
    pub bind_dn: String,
    /// Required the first time; absent keeps the stored password.
    pub bind_password: Option<String>,
    pub base_dn: String,
    /// Default `(objectClass=inetOrgPerson)`.
    pub user_filter: Option<String>,
    pub group_filter: Option<String>,
    #[serde(default)]
    pub attributes: AttributeMap,
    /// 1–5000, default 500.
    pub page_size: Option<u32>,
    /// 0 (off) or 60 s – 7 days, default 3600.
    pub sync_interval_secs: Option<i64>,
    /// 1–300, default 10.
    pub timeout_secs: Option<u32>,
    pub ca_pem: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

fn invalid(field: &str, message: impl Into<String>) -> CoreError {
    CoreError::invalid(field, message)
}

/// An attribute name: a descriptor (`mail`, `sAMAccountName`) or an OID.
fn check_attribute(field: &str, name: &str) -> Result<(), CoreError> {
    let descriptor = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let oid = !name.is_empty()
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if name.len() > 100 || !(descriptor || oid) {
        return Err(invalid(
            field,
            format!("'{name}' is not an LDAP attribute name"),
        ));
    }
    Ok(())
}

/// A filter in parentheses with balanced, properly nested parentheses
/// (escaped ones are `\28`/`\29` in LDAP, so every bracket counts). The
/// directory judges the rest; "test connection" reports what it says.
pub fn check_filter(field: &str, filter: &str) -> Result<(), CoreError> {
    let bad = |why: &str| invalid(field, format!("'{filter}' is not an LDAP filter: {why}"));
    if !filter.starts_with('(') || !filter.ends_with(')') {
        return Err(bad("it must be enclosed in parentheses"));
    }
    let mut depth = 0i32;
    for (i, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if c.is_control() => return Err(bad("control characters are not allowed")),
            _ => {}
        }
        if depth < 0 || (depth == 0 && i + 1 < filter.len()) {
            return Err(bad("unbalanced parentheses"));
        }
    }
    if depth != 0 {
        return Err(bad("unbalanced parentheses"));
    }
    if filter.len() > 4096 {
        return Err(bad("longer than 4096 characters"));
    }
    Ok(())
}

fn check_dn(field: &str, dn: &str) -> Result<(), CoreError> {
    if dn.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if !dn.contains('=') || dn.chars().any(char::is_control) || dn.len() > 1024 {
        return Err(invalid(
            field,
            format!("'{dn}' is not a DN (e.g. dc=example,dc=com)"),
        ));
    }
    Ok(())
}

/// The URL's security: what `ldaps://` implies, or what was asked for on `ldap://`.
fn security_for(
    url: &str,
    asked: Option<DirectorySecurity>,
) -> Result<DirectorySecurity, CoreError> {
    let lower = url.to_ascii_lowercase();
    let (ldaps, rest) = if let Some(rest) = lower.strip_prefix("ldaps://") {
        (true, rest)
    } else if let Some(rest) = lower.strip_prefix("ldap://") {
        (false, rest)
    } else {
        return Err(invalid(
            "url",
            format!("'{url}' must start with ldap:// or ldaps://"),
        ));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("url", format!("'{url}' names no host")));
    }
    match (ldaps, asked) {
        (true, None | Some(DirectorySecurity::Ldaps)) => Ok(DirectorySecurity::Ldaps),
        (true, Some(other)) => Err(invalid(
            "security",
            format!(
                "an ldaps:// URL is always TLS; '{}' needs an ldap:// URL",
                other.as_str()
            ),
        )),
        (false, None) => Ok(DirectorySecurity::Starttls),
        (false, Some(DirectorySecurity::Ldaps)) => {
            Err(invalid("security", "ldaps needs an ldaps:// URL"))
        }
        (false, Some(s)) => Ok(s),
    }
}

/// Checked settings, ready to store (the password still in clear).
pub(crate) struct ValidSettings {
    pub connector: DirectoryConnector,
    pub bind_password: Option<String>,
}

/// Validates `s` into a connector for `tenant` (sealed password left empty;
/// the caller seals or keeps it).
pub(crate) fn validate_settings(
    tenant: TenantId,
    s: ConnectorSettings,
    now: OffsetDateTime,
) -> Result<ValidSettings, CoreError> {
    let url = s.url.trim().trim_end_matches('/').to_string();
    let security = security_for(&url, s.security)?;
    check_dn("bind_dn", &s.bind_dn)?;
    check_dn("base_dn", &s.base_dn)?;
    if let Some(p) = &s.bind_password
        && (p.is_empty() || p.len() > 1024)
    {
        return Err(invalid("bind_password", "between 1 and 1024 bytes"));
    }
    let user_filter = s
        .user_filter
        .map(|f| f.trim().to_string())
        .unwrap_or_else(|| "(objectClass=inetOrgPerson)".into());
    check_filter("user_filter", &user_filter)?;
    let group_filter = s
        .group_filter
        .map(|g| g.trim().to_string())
        .filter(|g| !g.is_empty());
    match &group_filter {
        Some(g) if g.starts_with('(') => check_filter("group_filter", g)?,
        Some(g) => check_dn("group_filter", g)?,
        None => {}
    }
    for (role, attr) in s.attributes.roles() {
        check_attribute(&format!("attributes.{role}"), attr)?;
    }
    let page_size = s.page_size.unwrap_or(500);
    if !(1..=5000).contains(&page_size) {
        return Err(invalid("page_size", "between 1 and 5000"));
    }
    let sync_interval_secs = s.sync_interval_secs.unwrap_or(3600);
    if sync_interval_secs != 0 && !(60..=7 * 86_400).contains(&sync_interval_secs) {
        return Err(invalid(
            "sync_interval_secs",
            "0 (no scheduled sync) or between 60 and 604800",
        ));
    }
    let timeout_secs = s.timeout_secs.unwrap_or(10);
    if !(1..=300).contains(&timeout_secs) {
        return Err(invalid("timeout_secs", "between 1 and 300"));
    }
    let ca_pem = s
        .ca_pem
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty());
    if let Some(pem) = &ca_pem
        && (!pem.contains("-----BEGIN CERTIFICATE-----") || pem.len() > 64 * 1024)
    {
        return Err(invalid(
            "ca_pem",
            "a PEM certificate (-----BEGIN CERTIFICATE-----), at most 64 KiB",
        ));
    }
    Ok(ValidSettings {
        connector: DirectoryConnector {
            tenant_id: tenant,
            url,
            security,
            bind_dn: s.bind_dn.trim().to_string(),
            sealed_bind_password: Vec::new(),
            base_dn: s.base_dn.trim().to_string(),
            user_filter,
            group_filter,
            attributes: s.attributes,
            page_size,
            sync_interval_secs,
            timeout_secs,
            ca_pem,
            enabled: s.enabled.unwrap_or(true),
            created_at: now,
            updated_at: now,
        },
        bind_password: s.bind_password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> ConnectorSettings {
        ConnectorSettings {
            url: url.into(),
            security: None,
            bind_dn: "cn=admin,dc=example,dc=test".into(),
            bind_password: Some("pw".into()),
            base_dn: "dc=example,dc=test".into(),
            user_filter: None,
            group_filter: None,
            attributes: AttributeMap::default(),
            page_size: None,
            sync_interval_secs: None,
            timeout_secs: None,
            ca_pem: None,
            enabled: None,
        }
    }

    fn field_of(r: Result<ValidSettings, CoreError>) -> String {
        match r {
            Err(CoreError::Invalid { field, .. }) => field,
            Err(e) => format!("other error {e}"),
            Ok(_) => "accepted".into(),
        }
    }

    #[test]
    fn defaults_and_security() {
        let t = TenantId::new();
        let now = OffsetDateTime::UNIX_EPOCH;
        let ok = validate_settings(t, settings("ldap://dir.example.test:389/"), now);
        let c = ok.map(|v| v.connector).ok();
        let c = c.as_ref();
        assert_eq!(c.map(|c| c.security), Some(DirectorySecurity::Starttls));
        assert_eq!(
            c.map(|c| c.url.as_str()),
            Some("ldap://dir.example.test:389")
        );
        assert_eq!(c.map(|c| c.page_size), Some(500));
        let ldaps =
            validate_settings(t, settings("LDAPS://dir"), now).map(|v| v.connector.security);
        assert_eq!(ldaps.ok(), Some(DirectorySecurity::Ldaps));
        let mut s = settings("ldaps://dir");
        s.security = Some(DirectorySecurity::Starttls);
        assert_eq!(field_of(validate_settings(t, s, now)), "security");
        let mut s = settings("ldap://dir");
        s.security = Some(DirectorySecurity::None);
        assert!(validate_settings(t, s, now).is_ok());
    }

    #[test]
    fn bad_fields_are_named() {
        let t = TenantId::new();
        let now = OffsetDateTime::UNIX_EPOCH;
        type Change = Box<dyn Fn(&mut ConnectorSettings)>;
        let cases: Vec<(&str, Change)> = vec![
            ("url", Box::new(|s| s.url = "http://dir".into())),
            ("url", Box::new(|s| s.url = "ldap://".into())),
            ("bind_dn", Box::new(|s| s.bind_dn = "admin".into())),
            ("base_dn", Box::new(|s| s.base_dn = " ".into())),
            (
                "bind_password",
                Box::new(|s| s.bind_password = Some(String::new())),
            ),
            (
                "user_filter",
                Box::new(|s| s.user_filter = Some("uid=*".into())),
            ),
            (
                "user_filter",
                Box::new(|s| s.user_filter = Some("(&(uid=*)".into())),
            ),
            (
                "user_filter",
                Box::new(|s| s.user_filter = Some("(a=1))(b=2".into())),
            ),
            (
                "group_filter",
                Box::new(|s| s.group_filter = Some("(memberOf=x".into())),
            ),
            (
                "attributes.email",
                Box::new(|s| s.attributes.email = "ma il".into()),
            ),
            ("page_size", Box::new(|s| s.page_size = Some(0))),
            (
                "sync_interval_secs",
                Box::new(|s| s.sync_interval_secs = Some(5)),
            ),
            ("timeout_secs", Box::new(|s| s.timeout_secs = Some(0))),
            ("ca_pem", Box::new(|s| s.ca_pem = Some("not a pem".into()))),
        ];
        for (field, change) in cases {
            let mut s = settings("ldap://dir");
            change(&mut s);
            assert_eq!(field_of(validate_settings(t, s, now)), field);
        }
        assert!(check_filter("f", "(&(objectClass=person)(|(uid=a)(uid=b)))").is_ok());
        assert!(check_attribute("a", "1.3.6.1.4.1.1466.115.121.1.15").is_ok());
    }
}
