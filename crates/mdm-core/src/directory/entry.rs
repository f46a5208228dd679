//! Directory entries and how they map onto users: attribute lookup (names
//! are case-insensitive in LDAP), binary ids (Active Directory's
//! `objectGUID`), and LDAP filter escaping (RFC 4515).

use super::connector::AttributeMap;
use crate::users::normalize_email;
use std::collections::HashMap;

/// One entry as the directory returned it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub dn: String,
    /// Attributes whose values are all UTF-8.
    pub attrs: HashMap<String, Vec<String>>,
    /// Attributes with a value that is not UTF-8 (e.g. `objectGUID`).
    pub bin_attrs: HashMap<String, Vec<Vec<u8>>>,
}

/// A value of one attribute: text, or bytes that are not UTF-8.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttrValue<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl DirectoryEntry {
    /// The first value of attribute `name` (matched case-insensitively).
    pub fn first(&self, name: &str) -> Option<AttrValue<'_>> {
        let text = self
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(|s| AttrValue::Text(s.as_str()));
        text.or_else(|| {
            self.bin_attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.first())
                .map(|b| AttrValue::Binary(b.as_slice()))
        })
    }

    /// The first value as non-empty text, when it is text.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.first(name) {
            Some(AttrValue::Text(s)) if !s.trim().is_empty() => Some(s.trim()),
            _ => None,
        }
    }
}

/// An entry turned into user fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedEntry {
    pub dn: String,
    /// The stable id in its text form (a GUID string for `objectGUID`).
    pub external_id: String,
    /// Normalised (lower-cased) email.
    pub email: String,
    pub display_name: String,
    pub login_name: String,
}

/// Why an entry could not be mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryProblem {
    /// A mapped attribute the entry does not have.
    Missing {
        role: &'static str,
        attribute: String,
    },
    /// A value that cannot be used (an email that is not one).
    Invalid { role: &'static str, message: String },
}

/// Whether `attribute` holds Active Directory's binary GUID.
fn is_object_guid(attribute: &str) -> bool {
    attribute.eq_ignore_ascii_case("objectGUID")
}

/// Active Directory's text form of a 16-byte GUID: the first three groups
/// are stored little-endian (`{0x33,0x22,0x11,0x00,…}` is `00112233-…`).
pub fn guid_to_string(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// The bytes of a GUID in Active Directory's order, from its text form.
pub fn guid_from_string(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let raw = hex::decode(hex).ok()?;
    let r: [u8; 16] = raw.try_into().ok()?;
    Some([
        r[3], r[2], r[1], r[0], r[5], r[4], r[7], r[6], r[8], r[9], r[10], r[11], r[12], r[13],
        r[14], r[15],
    ])
}

/// The stable id of an entry in text form: `objectGUID` (or any 16-byte
/// binary value) as a GUID string, other binary values as hex, text as is
/// (UUIDs lower-cased so the same id always compares equal).
fn stable_id(value: AttrValue<'_>, attribute: &str) -> Option<String> {
    match value {
        AttrValue::Binary(b) if is_object_guid(attribute) || b.len() == 16 => {
            <&[u8; 16]>::try_from(b).ok().map(guid_to_string)
        }
        AttrValue::Binary(b) => Some(hex::encode(b)),
        // slapd hands objectGUID-like text through unchanged; a 16-byte
        // value that happens to be UTF-8 lands here too.
        AttrValue::Text(t) if is_object_guid(attribute) && t.len() == 16 => {
            <&[u8; 16]>::try_from(t.as_bytes()).ok().map(guid_to_string)
        }
        AttrValue::Text(t) if t.trim().is_empty() => None,
        AttrValue::Text(t) => Some(if uuid::Uuid::parse_str(t.trim()).is_ok() {
            t.trim().to_ascii_lowercase()
        } else {
            t.trim().to_string()
        }),
    }
}

/// The stable id of `entry` in text form, when it has one.
pub fn stable_id_of(map: &AttributeMap, entry: &DirectoryEntry) -> Option<String> {
    entry
        .first(&map.stable_id)
        .and_then(|v| stable_id(v, &map.stable_id))
}

/// Maps `entry` onto user fields with `map`. The display name falls back
/// to the login name; the other three attributes are required.
pub fn map_entry(map: &AttributeMap, entry: &DirectoryEntry) -> Result<MappedEntry, EntryProblem> {
    let missing = |role, attribute: &str| EntryProblem::Missing {
        role,
        attribute: attribute.to_string(),
    };
    let external_id =
        stable_id_of(map, entry).ok_or_else(|| missing("stable_id", &map.stable_id))?;
    let raw_email = entry
        .text(&map.email)
        .ok_or_else(|| missing("email", &map.email))?;
    let email = normalize_email(raw_email).map_err(|_| EntryProblem::Invalid {
        role: "email",
        message: format!("{} '{raw_email}' is not a valid email address", map.email),
    })?;
    let login_name = entry
        .text(&map.login_name)
        .ok_or_else(|| missing("login_name", &map.login_name))?
        .to_string();
    let display_name = entry
        .text(&map.display_name)
        .filter(|n| n.chars().count() <= 200 && !n.chars().any(char::is_control))
        .unwrap_or(&login_name)
        .to_string();
    Ok(MappedEntry {
        dn: entry.dn.clone(),
        external_id,
        email,
        display_name,
        login_name,
    })
}

/// `value` escaped for use inside an LDAP filter (RFC 4515 §3): `*`, `(`,
/// `)`, `\`, NUL and every non-printable byte as `\hh`.
pub fn escape_filter_value(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        match b {
            b'*' | b'(' | b')' | b'\\' | 0 => out.push_str(&format!("\\{b:02x}")),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:02x}")),
        }
    }
    out
}

/// The user filter, ANDed with the group filter: a filter in parentheses
/// as given, or a group DN matched through `memberOf`.
pub fn combined_filter(user_filter: &str, group: Option<&str>) -> String {
    match group {
        None => user_filter.to_string(),
        Some(g) if g.starts_with('(') => format!("(&{user_filter}{g})"),
        Some(dn) => format!(
            "(&{user_filter}(memberOf={}))",
            escape_filter_value(dn.as_bytes())
        ),
    }
}

/// An equality filter finding the entry with stable id `external_id`
/// (binary-escaped for `objectGUID`).
pub fn stable_id_filter(map: &AttributeMap, external_id: &str) -> String {
    let value = match guid_from_string(external_id) {
        Some(bytes) if is_object_guid(&map.stable_id) => escape_filter_value_all(&bytes),
        _ => escape_filter_value(external_id.as_bytes()),
    };
    format!("({}={value})", map.stable_id)
}

/// Every byte as `\hh` (how binary values go into a filter).
fn escape_filter_value_all(value: &[u8]) -> String {
    value.iter().map(|b| format!("\\{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)]) -> DirectoryEntry {
        let mut e = DirectoryEntry {
            dn: "uid=alice,ou=people,dc=example,dc=test".into(),
            ..Default::default()
        };
        for (k, v) in pairs {
            e.attrs
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
        }
        e
    }

    #[test]
    fn maps_openldap_entries_case_insensitively() {
        let e = entry(&[
            ("entryUUID", "6F1C53B6-0D6D-103F-8E2B-2B8A1B3C4D5E"),
            ("mail", "Alice@Example.TEST"),
            ("cn", "Alice Example"),
            ("uid", "alice"),
        ]);
        let map = AttributeMap {
            stable_id: "entryuuid".into(),
            ..Default::default()
        };
        let m = map_entry(&map, &e);
        assert_eq!(
            m,
            Ok(MappedEntry {
                dn: e.dn.clone(),
                external_id: "6f1c53b6-0d6d-103f-8e2b-2b8a1b3c4d5e".into(),
                email: "alice@example.test".into(),
                display_name: "Alice Example".into(),
                login_name: "alice".into(),
            })
        );
    }

    #[test]
    fn missing_and_invalid_attributes() {
        let map = AttributeMap::default();
        let no_mail = entry(&[("entryUUID", "x"), ("uid", "alice")]);
        assert_eq!(
            map_entry(&map, &no_mail),
            Err(EntryProblem::Missing {
                role: "email",
                attribute: "mail".into()
            })
        );
        let bad_mail = entry(&[("entryUUID", "x"), ("uid", "a"), ("mail", "not-mail")]);
        assert!(matches!(
            map_entry(&map, &bad_mail),
            Err(EntryProblem::Invalid { role: "email", .. })
        ));
        let no_cn = entry(&[("entryUUID", "x"), ("uid", "al"), ("mail", "a@b.test")]);
        assert_eq!(
            map_entry(&map, &no_cn).map(|m| m.display_name),
            Ok("al".into())
        );
    }

    #[test]
    fn object_guid_is_binary_and_round_trips_into_a_filter() {
        // The GUID 00112233-4455-6677-8899-aabbccddeeff as Active Directory stores it.
        let raw: Vec<u8> = vec![
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        let mut e = entry(&[("mail", "bob@example.test"), ("sAMAccountName", "bob")]);
        e.bin_attrs.insert("objectGUID".into(), vec![raw.clone()]);
        let map = AttributeMap {
            email: "mail".into(),
            display_name: "displayName".into(),
            login_name: "sAMAccountName".into(),
            stable_id: "objectGUID".into(),
        };
        let m = map_entry(&map, &e);
        let id = m.map(|m| m.external_id).unwrap_or_default();
        assert_eq!(id, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(guid_from_string(&id).map(|g| g.to_vec()), Some(raw));
        assert_eq!(
            stable_id_filter(&map, &id),
            "(objectGUID=\\33\\22\\11\\00\\55\\44\\77\\66\\88\\99\\aa\\bb\\cc\\dd\\ee\\ff)"
        );
    }

    #[test]
    fn filters_are_escaped() {
        assert_eq!(
            escape_filter_value(b"a*(b)\\c\0"),
            "a\\2a\\28b\\29\\5cc\\00"
        );
        assert_eq!(escape_filter_value("é".as_bytes()), "\\c3\\a9");
        let map = AttributeMap::default();
        assert_eq!(
            stable_id_filter(&map, "x)(uid=*"),
            "(entryUUID=x\\29\\28uid=\\2a)"
        );
        assert_eq!(combined_filter("(uid=*)", None), "(uid=*)");
        assert_eq!(
            combined_filter("(uid=*)", Some("(memberOf=cn=g,dc=x)")),
            "(&(uid=*)(memberOf=cn=g,dc=x))"
        );
        assert_eq!(
            combined_filter("(uid=*)", Some("cn=mdm (all),dc=x")),
            "(&(uid=*)(memberOf=cn=mdm \\28all\\29,dc=x))"
        );
    }
}
