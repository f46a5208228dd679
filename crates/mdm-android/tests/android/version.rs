//! The versioned path surface.

use mdm_android::*;

#[test]
fn versions() {
    assert_eq!(ApiVersion::parse("v1"), Ok(ApiVersion::V1));
    assert_eq!("v1".parse::<ApiVersion>(), Ok(ApiVersion::V1));
    for bad in ["v2", "V1", "", "v1 ", "1"] {
        let err = ApiVersion::parse(bad).unwrap_err();
        assert_eq!(err.found, bad);
        assert!(err.to_string().ends_with("supported: v1"), "{err}");
    }
    let long = "v".repeat(100);
    assert_eq!(ApiVersion::parse(&long).unwrap_err().found.len(), 32);
    assert_eq!(ApiVersion::CURRENT.prefix(), "/android/v1");
    assert_eq!(serde_json::to_string(&ApiVersion::V1).unwrap(), "\"v1\"");
    assert!(serde_json::from_str::<ApiVersion>("\"v3\"").is_err());
}

#[test]
fn every_endpoint_routes_to_itself() {
    for endpoint in Endpoint::ALL {
        let path = endpoint.path(ApiVersion::V1);
        assert!(path.starts_with("/android/v1/"), "{path}");
        assert_eq!(
            route(endpoint.method(), &path),
            Ok((ApiVersion::V1, endpoint))
        );
        assert_eq!(
            endpoint.requires_signature(),
            endpoint != Endpoint::Register
        );
    }
    assert_eq!(Endpoint::Commands.method(), "GET");
    assert_eq!(
        Endpoint::CommandResult.path(ApiVersion::V1),
        "/android/v1/commands/result"
    );
    for (method, path, expected) in [
        ("POST", "/android", RouteError::NotAndroid),
        ("POST", "/android/", RouteError::UnknownEndpoint),
        ("POST", "/android/v1", RouteError::UnknownEndpoint),
        ("POST", "/android/v1/", RouteError::UnknownEndpoint),
        ("POST", "/android/v1/checkin/", RouteError::UnknownEndpoint),
        (
            "POST",
            "/android/v1/commands/result/x",
            RouteError::UnknownEndpoint,
        ),
        (
            "DELETE",
            "/android/v1/commands",
            RouteError::MethodNotAllowed {
                endpoint: Endpoint::Commands,
                allowed: "GET",
            },
        ),
    ] {
        let got = route(method, path);
        if path == "/android/" {
            assert!(
                matches!(got, Err(RouteError::UnknownVersion(_))),
                "{path}: {got:?}"
            );
        } else {
            assert_eq!(got, Err(expected), "{method} {path}");
        }
    }
}
