//! APNs: the request parts and the response classification table.

use mdm_apple::*;

use crate::common::{NOW, at};

const TOPIC: &str = "com.apple.mgmt.External.00000000-1111-2222-3333-444444444444";

#[test]
fn push_request_parts() {
    let token = [0xde, 0xad, 0xbe, 0xef, 0x01];
    let req = push_request(
        &token,
        "ABC-\"quoted\"",
        TOPIC,
        PushExpiry::At(at(NOW + 3600)),
    )
    .unwrap();
    assert_eq!(req.path, "/3/device/deadbeef01");
    let body: serde_json::Value = serde_json::from_str(&req.body).unwrap();
    assert_eq!(body, serde_json::json!({ "mdm": "ABC-\"quoted\"" }));
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("apns-topic"), Some(TOPIC));
    assert_eq!(header("apns-push-type"), Some("mdm"));
    assert_eq!(header("apns-priority"), Some("10"));
    assert_eq!(
        header("apns-expiration"),
        Some((NOW + 3600).to_string().as_str())
    );
    let now_only = push_request(&token, "m", TOPIC, PushExpiry::Immediately).unwrap();
    assert!(
        now_only
            .headers
            .contains(&("apns-expiration", "0".to_owned()))
    );

    assert_eq!(
        push_request(&[], "m", TOPIC, PushExpiry::Immediately),
        Err(PushError::EmptyToken)
    );
    assert_eq!(
        push_request(&token, "", TOPIC, PushExpiry::Immediately),
        Err(PushError::EmptyPushMagic)
    );
    assert!(matches!(
        push_request(&token, "m", "com.example", PushExpiry::Immediately),
        Err(PushError::BadTopic(_))
    ));
}

#[test]
fn response_classification_table() {
    let gone = |r: &str| PushOutcome::TokenGone {
        reason: r.to_owned(),
    };
    let retry = |s: u16, r: Option<&str>| PushOutcome::Retry {
        status: s,
        reason: r.map(str::to_owned),
    };
    let fatal = |s: u16, r: Option<&str>| PushOutcome::Fatal {
        status: s,
        reason: r.map(str::to_owned),
    };
    let body = |r: &str| format!("{{\"reason\":\"{r}\",\"timestamp\":1700000000000}}");
    let table: Vec<(u16, String, PushOutcome)> = vec![
        (200, String::new(), PushOutcome::Delivered),
        (410, body("Unregistered"), gone("Unregistered")),
        (410, body("ExpiredToken"), gone("ExpiredToken")),
        (410, String::new(), gone("Unregistered")),
        (400, body("BadDeviceToken"), gone("BadDeviceToken")),
        (400, body("BadTopic"), fatal(400, Some("BadTopic"))),
        (
            400,
            body("DeviceTokenNotForTopic"),
            fatal(400, Some("DeviceTokenNotForTopic")),
        ),
        (
            403,
            body("TopicDisallowed"),
            fatal(403, Some("TopicDisallowed")),
        ),
        (
            403,
            body("BadCertificate"),
            fatal(403, Some("BadCertificate")),
        ),
        (
            403,
            body("BadCertificateEnvironment"),
            fatal(403, Some("BadCertificateEnvironment")),
        ),
        (404, body("BadPath"), fatal(404, Some("BadPath"))),
        (
            413,
            body("PayloadTooLarge"),
            fatal(413, Some("PayloadTooLarge")),
        ),
        (
            429,
            body("TooManyRequests"),
            retry(429, Some("TooManyRequests")),
        ),
        (
            500,
            body("InternalServerError"),
            retry(500, Some("InternalServerError")),
        ),
        (
            503,
            body("ServiceUnavailable"),
            retry(503, Some("ServiceUnavailable")),
        ),
        (503, body("Shutdown"), retry(503, Some("Shutdown"))),
        (502, "<html>bad gateway</html>".into(), retry(502, None)),
        (400, "{not json".into(), fatal(400, None)),
    ];
    for (status, body, expected) in table {
        assert_eq!(
            classify_response(status, body.as_bytes()),
            expected,
            "{status} {body}"
        );
    }
}
