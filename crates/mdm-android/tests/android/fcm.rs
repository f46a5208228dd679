//! FCM HTTP v1: the wake-up body, the service-account JWT, and the
//! classification of FCM's answers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mdm_android::*;
use mdm_pki::{DigestAlg, spki_from_der, verify_rsa};
use serde_json::json;
use time::Duration;

use crate::common::*;

#[test]
fn wake_message_body() {
    let msg = wake_message(
        "dXk3:APA91bH-abc_DEF",
        FcmPriority::High,
        Duration::hours(1),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_value(&msg).unwrap(),
        json!({"message": {
            "token": "dXk3:APA91bH-abc_DEF",
            "data": {"type": "wake"},
            "android": {"priority": "high", "ttl": "3600s", "collapse_key": "mdm-wake"}
        }})
    );
    let text = serde_json::to_string(&msg).unwrap();
    assert_eq!(serde_json::from_str::<SendRequest>(&text).unwrap(), msg);
    let normal = wake_message("t", FcmPriority::Normal, Duration::ZERO).unwrap();
    assert_eq!(
        serde_json::to_value(&normal).unwrap()["message"]["android"]["priority"],
        "normal"
    );
    assert_eq!(normal.message.android.ttl, "0s");
    let validate_only = SendRequest {
        validate_only: true,
        ..normal
    };
    assert_eq!(
        serde_json::to_value(&validate_only).unwrap()["validate_only"],
        true
    );

    assert!(wake_message("t", FcmPriority::High, MAX_FCM_TTL).is_ok());
    assert!(matches!(
        wake_message("t", FcmPriority::High, MAX_FCM_TTL + Duration::SECOND),
        Err(ValidationError::OutOfRange { field: "ttl", .. })
    ));
    assert!(wake_message("t", FcmPriority::High, Duration::seconds(-1)).is_err());
    assert!(wake_message("", FcmPriority::High, Duration::ZERO).is_err());
    assert!(wake_message("a b", FcmPriority::High, Duration::ZERO).is_err());
    assert_eq!(
        send_path("my-proj-42").unwrap(),
        "/v1/projects/my-proj-42/messages:send"
    );
    assert!(send_path("My_Project").is_err());
    assert!(send_path("../x").is_err());
}

#[test]
fn service_account_jwt() {
    let email = "mdm@proj.iam.gserviceaccount.com";
    let claims =
        ServiceAccountClaims::new(email, GOOGLE_TOKEN_URI, at(NOW), Duration::hours(1)).unwrap();
    assert_eq!(
        serde_json::to_value(&claims).unwrap(),
        json!({"iss": email, "scope": "https://www.googleapis.com/auth/firebase.messaging",
               "aud": "https://oauth2.googleapis.com/token", "iat": NOW, "exp": NOW + 3600})
    );
    for lifetime in [Duration::ZERO, Duration::hours(1) + Duration::SECOND] {
        assert!(ServiceAccountClaims::new(email, GOOGLE_TOKEN_URI, at(NOW), lifetime).is_err());
    }
    for uri in ["http://evil", "http://127.0.0.1.evil.com/token"] {
        assert!(ServiceAccountClaims::new(email, uri, at(NOW), Duration::MINUTE).is_err());
    }
    assert!(
        ServiceAccountClaims::new(email, "http://127.0.0.1:9/token", at(NOW), Duration::MINUTE)
            .is_ok()
    );

    // Sign as the server would (RS256 = RSA PKCS#1 v1.5 SHA-256) and check it.
    let input = claims.signing_input(Some("key-1"));
    let (header, body) = input.split_once('.').unwrap();
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    assert_eq!(
        header,
        json!({"alg": "RS256", "typ": "JWT", "kid": "key-1"})
    );
    let body: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
    assert_eq!(body, serde_json::to_value(&claims).unwrap());
    let key = &device_key().key;
    let signature = key.sign(DigestAlg::Sha256, input.as_bytes()).unwrap();
    let jwt = jwt_assertion(&input, &signature);
    let (signed, sig) = jwt.rsplit_once('.').unwrap();
    assert_eq!(signed, input);
    let spki = spki_from_der(key.public_key_spki_der()).unwrap();
    verify_rsa(
        &spki,
        DigestAlg::Sha256,
        signed.as_bytes(),
        &URL_SAFE_NO_PAD.decode(sig).unwrap(),
    )
    .unwrap();
    assert_eq!(
        token_request_body(&jwt),
        format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}")
    );
    assert!(!claims.signing_input(None).is_empty());
}

fn error_body(code: u16, status: &str, error_code: Option<&str>) -> Vec<u8> {
    let mut details = vec![json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "message.token", "description": "x"}]})];
    if let Some(c) = error_code {
        details.push(
            json!({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": c}),
        );
    }
    serde_json::to_vec(
        &json!({"error": {"code": code, "message": "m", "status": status, "details": details}}),
    )
    .unwrap()
}

#[test]
fn classification_table() {
    use FcmErrorCode as C;
    let retry = |code: Option<C>, s: u16| FcmOutcome::Retry {
        code,
        http_status: s,
        retry_after: None,
    };
    let fatal = |code: Option<C>, s: u16, m: Option<&str>| FcmOutcome::Fatal {
        code,
        http_status: s,
        message: m.map(str::to_owned),
    };
    let table: Vec<(u16, Vec<u8>, FcmOutcome)> = vec![
        (
            200,
            br#"{"name":"projects/p/messages/0:1"}"#.to_vec(),
            FcmOutcome::Sent {
                name: Some("projects/p/messages/0:1".into()),
            },
        ),
        (200, Vec::new(), FcmOutcome::Sent { name: None }),
        (
            404,
            error_body(404, "NOT_FOUND", Some("UNREGISTERED")),
            FcmOutcome::TokenDead,
        ),
        (
            400,
            error_body(400, "INVALID_ARGUMENT", Some("UNREGISTERED")),
            FcmOutcome::TokenDead,
        ),
        (
            429,
            error_body(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED")),
            retry(Some(C::QuotaExceeded), 429),
        ),
        (
            429,
            error_body(429, "RESOURCE_EXHAUSTED", None),
            retry(Some(C::QuotaExceeded), 429),
        ),
        (
            503,
            error_body(503, "UNAVAILABLE", Some("UNAVAILABLE")),
            retry(Some(C::Unavailable), 503),
        ),
        (
            500,
            error_body(500, "INTERNAL", Some("INTERNAL")),
            retry(Some(C::Internal), 500),
        ),
        (502, b"<html>Bad Gateway</html>".to_vec(), retry(None, 502)),
        (
            500,
            error_body(500, "UNKNOWN", Some("UNSPECIFIED_ERROR")),
            retry(Some(C::UnspecifiedError), 500),
        ),
        (
            400,
            error_body(400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT")),
            fatal(Some(C::InvalidArgument), 400, Some("m")),
        ),
        (
            400,
            error_body(400, "INVALID_ARGUMENT", None),
            fatal(Some(C::InvalidArgument), 400, Some("m")),
        ),
        (
            403,
            error_body(403, "PERMISSION_DENIED", Some("SENDER_ID_MISMATCH")),
            fatal(Some(C::SenderIdMismatch), 403, Some("m")),
        ),
        (
            401,
            error_body(401, "UNAUTHENTICATED", Some("THIRD_PARTY_AUTH_ERROR")),
            fatal(Some(C::ThirdPartyAuthError), 401, Some("m")),
        ),
        (
            401,
            error_body(401, "UNAUTHENTICATED", None),
            FcmOutcome::RefreshAuth,
        ),
        (401, Vec::new(), FcmOutcome::RefreshAuth),
        (
            403,
            error_body(403, "PERMISSION_DENIED", None),
            fatal(Some(C::Other("PERMISSION_DENIED".into())), 403, Some("m")),
        ),
        // A bare 404 is a configuration error, never a dead token.
        (404, b"Not Found".to_vec(), fatal(None, 404, None)),
        (
            404,
            error_body(404, "NOT_FOUND", None),
            fatal(Some(C::Other("NOT_FOUND".into())), 404, Some("m")),
        ),
    ];
    for (status, body, expected) in table {
        assert_eq!(
            classify_fcm_response(status, &body, None),
            expected,
            "{status} {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[test]
fn retry_after_and_backoff() {
    let body = error_body(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"));
    let outcome = classify_fcm_response(429, &body, Some("120"));
    assert_eq!(
        outcome,
        FcmOutcome::Retry {
            code: Some(FcmErrorCode::QuotaExceeded),
            http_status: 429,
            retry_after: Some(RetryAfter::Delay(Duration::seconds(120))),
        }
    );
    let now = at(NOW);
    assert_eq!(outcome.retry_delay(0, now), Some(Duration::seconds(120)));
    assert_eq!(outcome.retry_delay(1, now), Some(Duration::seconds(120)));
    assert_eq!(outcome.retry_delay(2, now), Some(Duration::seconds(240)));
    assert_eq!(outcome.retry_delay(40, now), Some(MAX_FCM_BACKOFF));

    let busy = classify_fcm_response(503, &error_body(503, "UNAVAILABLE", None), None);
    assert_eq!(busy.retry_delay(0, now), Some(Duration::seconds(10)));
    assert_eq!(busy.retry_delay(3, now), Some(Duration::seconds(80)));
    assert_eq!(FcmOutcome::TokenDead.retry_delay(0, now), None);

    let date = RetryAfter::parse("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
    let then = time::macros::datetime!(1994-11-06 08:49:37 UTC);
    assert_eq!(date, RetryAfter::At(then));
    assert_eq!(
        date.delay_from(then - Duration::seconds(30)),
        Duration::seconds(30)
    );
    assert_eq!(date.delay_from(then + Duration::HOUR), Duration::ZERO);
    for junk in ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994"] {
        assert_eq!(RetryAfter::parse(junk), None, "{junk:?}");
    }
    let with_date = classify_fcm_response(503, b"", Some("Sun, 06 Nov 1994 08:49:37 GMT"));
    assert_eq!(
        with_date.retry_delay(0, then - Duration::minutes(5)),
        Some(Duration::minutes(5))
    );
}
