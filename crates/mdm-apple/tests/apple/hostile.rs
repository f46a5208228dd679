//! Hostile and broken input: every refusal is a typed error, nothing panics,
//! nothing expands without bound.

use mdm_apple::*;

use crate::common::{to_binary, xml};

fn kind(bytes: &[u8]) -> ParseErrorKind {
    CheckinMessage::parse(bytes).unwrap_err().kind
}

/// A binary plist from raw objects (1-byte refs, 4-byte offsets).
fn bplist(objects: &[Vec<u8>], top: u64) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for o in objects {
        offsets.push(u32::try_from(out.len()).unwrap());
        out.extend_from_slice(o);
    }
    let table = out.len() as u64;
    for off in offsets {
        out.extend_from_slice(&off.to_be_bytes());
    }
    out.extend_from_slice(&[0; 6]);
    out.push(4); // offset size
    out.push(1); // ref size
    out.extend_from_slice(&(objects.len() as u64).to_be_bytes());
    out.extend_from_slice(&top.to_be_bytes());
    out.extend_from_slice(&table.to_be_bytes());
    out
}

#[test]
fn malformed_and_non_dict_roots() {
    assert!(matches!(kind(b""), ParseErrorKind::Malformed(_)));
    assert!(matches!(
        kind(b"not a plist at all <"),
        ParseErrorKind::Malformed(_)
    ));
    assert!(matches!(
        kind(&xml("<dict><key>UDID</key>")),
        ParseErrorKind::Malformed(_)
    ));
    assert!(matches!(
        kind(b"bplist00\x00\x01"),
        ParseErrorKind::Malformed(_)
    ));
    assert_eq!(
        kind(&xml("<array/>")),
        ParseErrorKind::NotADictionary { found: "array" }
    );
    assert_eq!(
        kind(&xml("<string>x</string>")),
        ParseErrorKind::NotADictionary { found: "string" }
    );
    assert!(matches!(
        CommandReport::parse(&xml("<integer>1</integer>"))
            .unwrap_err()
            .kind,
        ParseErrorKind::NotADictionary { found: "integer" }
    ));
}

#[test]
fn wrong_types_and_missing_keys() {
    let body = |inner: &str| {
        xml(&format!(
            "<dict><key>MessageType</key><string>TokenUpdate</string>{inner}</dict>"
        ))
    };
    let good = "<key>UDID</key><string>U</string><key>Topic</key><string>com.apple.mgmt.x</string>\
                <key>Token</key><data>AQ==</data><key>PushMagic</key><string>m</string>";
    assert!(CheckinMessage::parse(&body(good)).is_ok());
    assert_eq!(
        kind(&body(
            &good.replace("<data>AQ==</data>", "<string>AQ==</string>")
        )),
        ParseErrorKind::WrongType {
            key: "Token".into(),
            expected: "data",
            found: "string"
        }
    );
    assert_eq!(
        kind(&body(
            &good.replace("<string>U</string>", "<integer>7</integer>")
        )),
        ParseErrorKind::WrongType {
            key: "UDID".into(),
            expected: "string",
            found: "integer"
        }
    );
    assert_eq!(
        kind(&body(
            &good.replace("<key>PushMagic</key><string>m</string>", "")
        )),
        ParseErrorKind::MissingKey("PushMagic")
    );
    assert_eq!(
        kind(&body(
            &good.replace("<key>UDID</key><string>U</string>", "")
        )),
        ParseErrorKind::MissingKey("UDID or EnrollmentID")
    );
    assert_eq!(
        kind(&xml("<dict><key>UDID</key><string>U</string></dict>")),
        ParseErrorKind::MissingKey("MessageType")
    );
    assert_eq!(
        kind(&xml("<dict><key>MessageType</key><true/></dict>")),
        ParseErrorKind::WrongType {
            key: "MessageType".into(),
            expected: "string",
            found: "bool"
        }
    );
    // Reports: unknown Status, and a result without CommandUUID.
    let report = |inner: &str| {
        CommandReport::parse(&xml(&format!(
            "<dict><key>UDID</key><string>U</string>{inner}</dict>"
        )))
    };
    assert_eq!(
        report("<key>Status</key><string>Maybe</string>")
            .unwrap_err()
            .kind,
        ParseErrorKind::UnknownStatus("Maybe".into())
    );
    assert_eq!(
        report("<key>Status</key><string>Acknowledged</string>")
            .unwrap_err()
            .kind,
        ParseErrorKind::MissingKey("CommandUUID")
    );
}

#[test]
fn oversized_body_is_refused_before_parsing() {
    let mut big =
        xml("<dict><key>MessageType</key><string>CheckOut</string><key>Pad</key><string>");
    big.extend(std::iter::repeat_n(b'a', MAX_BODY_LEN));
    let err = CheckinMessage::parse(&big).unwrap_err();
    assert!(matches!(err.kind, ParseErrorKind::TooLarge { limit, .. } if limit == MAX_BODY_LEN));
    assert_eq!(
        err.raw.len(),
        ParseError::KEPT_PREFIX,
        "only a prefix is kept"
    );
}

#[test]
fn deep_xml_nesting_is_refused_without_stack_overflow() {
    // ~1 MiB of nested arrays: far deeper than any recursive parser survives.
    let n = 65_000;
    let body = xml(&format!(
        "<dict><key>MessageType</key>{}<string>x</string>{}</dict>",
        "<array>".repeat(n),
        "</array>".repeat(n)
    ));
    assert!(body.len() <= MAX_BODY_LEN);
    assert_eq!(kind(&body), ParseErrorKind::TooDeep { limit: MAX_DEPTH });
    assert!(matches!(
        inspect(&body).unwrap_err().kind,
        ParseErrorKind::TooDeep { .. }
    ));
}

#[test]
fn deep_binary_nesting_is_refused() {
    // Object i is a one-element array holding object i+1; the last is a string.
    let depth = 200u8;
    let mut objects: Vec<Vec<u8>> = (0..depth).map(|i| vec![0xA1, i + 1]).collect();
    objects.push(vec![0x51, b'x']);
    assert_eq!(
        kind(&bplist(&objects, 0)),
        ParseErrorKind::TooDeep { limit: MAX_DEPTH }
    );
}

#[test]
fn binary_reference_bomb_is_refused() {
    // 30 levels of [next, next]: 2^30 values from ~120 bytes.
    let levels = 30u8;
    let mut objects: Vec<Vec<u8>> = (0..levels).map(|i| vec![0xA2, i + 1, i + 1]).collect();
    objects.push(vec![0x51, b'x']);
    let bomb = bplist(&objects, 0);
    assert!(bomb.len() < 300);
    assert!(matches!(
        kind(&bomb),
        ParseErrorKind::TooBig { what: "values", .. }
    ));

    // Few values, but each a reference to the same 64 KiB string.
    let mut objects = vec![{
        let mut arr = vec![0xAF, 0x10, 200];
        arr.extend(std::iter::repeat_n(1u8, 200));
        arr
    }];
    let mut s = vec![0x5F, 0x12];
    s.extend_from_slice(&(64u32 * 1024).to_be_bytes());
    s.extend(std::iter::repeat_n(b'a', 64 * 1024));
    objects.push(s);
    assert!(matches!(
        decode_plist(&bplist(&objects, 0)),
        Err(ParseErrorKind::TooBig {
            what: "content bytes",
            ..
        })
    ));
}

#[test]
fn mutated_inputs_never_panic() {
    let seed_xml = xml(
        "<dict><key>MessageType</key><string>TokenUpdate</string><key>UDID</key><string>U</string>\
         <key>Topic</key><string>com.apple.mgmt.x</string><key>Token</key><data>AQID</data>\
         <key>PushMagic</key><string>m</string><key>List</key><array><integer>1</integer><real>2.5</real>\
         <date>2024-01-01T00:00:00Z</date><dict/></array></dict>",
    );
    let seeds = [seed_xml.clone(), to_binary(&seed_xml)];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for seed in &seeds {
        for _ in 0..3000 {
            let mut b = seed.clone();
            match next() % 3 {
                0 => {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                1 => b.truncate((next() as usize) % b.len()),
                _ => {
                    let i = (next() as usize) % b.len();
                    b.insert(i, next() as u8);
                }
            }
            let _ = CheckinMessage::parse(&b);
            let _ = CommandReport::parse(&b);
            let _ = Command::parse(&b);
            let _ = inspect(&b);
        }
    }
}
