//! The versioned path surface: `/android/<version>/<endpoint>`. Every request
//! the agent makes is one [`Endpoint`]; [`route`] turns a method and path
//! into one, so the router reads as a single `match`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The path prefix every agent endpoint lives under.
pub const PATH_ROOT: &str = "/android";

/// A version of the agent API, as it appears in paths (`v1`).
///
/// Versions are never renamed or reused: printed QR codes and installed
/// agents keep using theirs for years.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[non_exhaustive]
pub enum ApiVersion {
    /// The first version.
    V1,
}

impl ApiVersion {
    /// Every version this build serves, oldest first.
    pub const SUPPORTED: &'static [ApiVersion] = &[ApiVersion::V1];
    /// The version new agents and payloads use.
    pub const CURRENT: ApiVersion = ApiVersion::V1;

    /// The path segment (`v1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
        }
    }

    /// Parses a path segment; unknown versions name the supported ones.
    pub fn parse(segment: &str) -> Result<Self, UnknownVersion> {
        Self::SUPPORTED
            .iter()
            .copied()
            .find(|v| v.as_str() == segment)
            .ok_or_else(|| UnknownVersion {
                found: segment.chars().take(32).collect(),
            })
    }

    /// `/android/v1`.
    pub fn prefix(self) -> String {
        format!("{PATH_ROOT}/{}", self.as_str())
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApiVersion {
    type Err = UnknownVersion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ApiVersion {
    type Error = UnknownVersion;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ApiVersion> for String {
    fn from(v: ApiVersion) -> Self {
        v.as_str().to_owned()
    }
}

/// A version segment this build does not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVersion {
    /// The segment found (at most 32 characters of it).
    pub found: String,
}

impl fmt::Display for UnknownVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let supported: Vec<&str> = ApiVersion::SUPPORTED.iter().map(|v| v.as_str()).collect();
        write!(
            f,
            "unknown Android agent API version {:?}; supported: {}",
            self.found,
            supported.join(", ")
        )
    }
}

impl std::error::Error for UnknownVersion {}

/// One operation of the agent API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST register`: [`crate::RegisterRequest`] → [`crate::RegisterResponse`].
    /// The only unsigned endpoint.
    Register,
    /// `POST checkin`: [`crate::Checkin`] → [`crate::CheckinResponse`].
    Checkin,
    /// `GET commands`: → [`crate::CommandsResponse`].
    Commands,
    /// `POST commands/result`: [`crate::CommandResult`].
    CommandResult,
    /// `POST events`: [`crate::EventsRequest`].
    Events,
    /// `GET policy`: the device's policy document (not defined by this crate yet).
    Policy,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 6] = [
        Self::Register,
        Self::Checkin,
        Self::Commands,
        Self::CommandResult,
        Self::Events,
        Self::Policy,
    ];

    /// The HTTP method.
    pub fn method(self) -> &'static str {
        match self {
            Self::Commands | Self::Policy => "GET",
            _ => "POST",
        }
    }

    /// The path after the version (`commands/result`).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Checkin => "checkin",
            Self::Commands => "commands",
            Self::CommandResult => "commands/result",
            Self::Events => "events",
            Self::Policy => "policy",
        }
    }

    /// The full path in `version` (`/android/v1/checkin`).
    pub fn path(self, version: ApiVersion) -> String {
        format!("{}/{}", version.prefix(), self.suffix())
    }

    /// Whether requests must carry the device signature headers
    /// ([`crate::SignatureHeaders`]). Only registration is unsigned: the
    /// device has no server-known key yet.
    pub fn requires_signature(self) -> bool {
        self != Self::Register
    }
}

/// Why a request path is not an agent endpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The path is not under [`PATH_ROOT`].
    #[error("not an Android agent path")]
    NotAndroid,
    /// The version segment is unknown.
    #[error(transparent)]
    UnknownVersion(#[from] UnknownVersion),
    /// No endpoint has this path.
    #[error("no Android agent endpoint at this path")]
    UnknownEndpoint,
    /// The endpoint exists but takes another method.
    #[error("{endpoint:?} takes {allowed}")]
    MethodNotAllowed {
        /// The endpoint at this path.
        endpoint: Endpoint,
        /// Its method.
        allowed: &'static str,
    },
}

/// Resolves `method` and `path` (a query string is ignored) to an endpoint.
pub fn route(method: &str, path: &str) -> Result<(ApiVersion, Endpoint), RouteError> {
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path
        .strip_prefix(PATH_ROOT)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(RouteError::NotAndroid)?;
    let (version, suffix) = rest.split_once('/').unwrap_or((rest, ""));
    let version = ApiVersion::parse(version)?;
    let endpoint = Endpoint::ALL
        .into_iter()
        .find(|e| e.suffix() == suffix)
        .ok_or(RouteError::UnknownEndpoint)?;
    if !method.eq_ignore_ascii_case(endpoint.method()) {
        return Err(RouteError::MethodNotAllowed {
            endpoint,
            allowed: endpoint.method(),
        });
    }
    Ok((version, endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_version_names_supported() {
        let err = ApiVersion::parse("v2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown Android agent API version \"v2\"; supported: v1"
        );
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("POST", "/android/v1/commands/result"),
            Ok((ApiVersion::V1, Endpoint::CommandResult))
        );
        assert_eq!(
            route("get", "/android/v1/commands?limit=5"),
            Ok((ApiVersion::V1, Endpoint::Commands))
        );
        assert_eq!(route("GET", "/apple/v1/x"), Err(RouteError::NotAndroid));
        assert_eq!(route("GET", "/androidx/v1/x"), Err(RouteError::NotAndroid));
        assert!(matches!(
            route("GET", "/android/v0/checkin"),
            Err(RouteError::UnknownVersion(_))
        ));
        assert_eq!(
            route("POST", "/android/v1/nope"),
            Err(RouteError::UnknownEndpoint)
        );
        assert_eq!(
            route("GET", "/android/v1/checkin"),
            Err(RouteError::MethodNotAllowed {
                endpoint: Endpoint::Checkin,
                allowed: "POST"
            })
        );
    }
}
