//! What can go wrong on a simulated device, in the words a device would use.

use mdm_scep::FailInfo;

/// Why a profile was refused before anything was installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// The bytes are not a CMS SignedData whose signature verifies.
    #[error("the profile signature is not valid: {0}")]
    BadSignature(String),
    /// The signer does not chain to a certificate payload of the profile.
    #[error("the profile is signed by {0}, which does not chain to a CA in the profile")]
    UntrustedSigner(String),
    /// The signer's certificate is outside its validity.
    #[error("the profile signer's certificate is not valid now")]
    SignerExpired,
    /// The signed content is not a plist dictionary.
    #[error("the profile is not a plist: {0}")]
    NotAPlist(String),
    /// A required payload or key is absent.
    #[error("the profile has no {0}")]
    Missing(String),
    /// A key has a value a device refuses.
    #[error("the profile's {key} is invalid: {why}")]
    Invalid {
        /// Payload key (e.g. `SCEP Keysize`).
        key: String,
        /// Why.
        why: String,
    },
}

impl ProfileError {
    pub(crate) fn invalid(key: &str, why: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            why: why.into(),
        }
    }
}

/// Why enrolment or a check-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The profile was refused (nothing was installed).
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A verified FAILURE CertRep: what iOS shows as "The SCEP server
    /// returned an invalid response".
    #[error("The SCEP server returned an invalid response (failInfo {fail_info:?})")]
    ScepFailure {
        /// The failInfo of the CertRep, if it carried one.
        fail_info: Option<FailInfo>,
    },
    /// A SCEP answer a device cannot use (HTTP error, bad or untrusted
    /// CertRep, a certificate that is not for our key).
    #[error("SCEP: {0}")]
    Scep(String),
    /// The server answered a check-in or command-channel request with a
    /// status other than 200.
    #[error("{step}: HTTP {status}: {body}")]
    Http {
        /// Which request (e.g. `Authenticate`).
        step: String,
        /// HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The request did not complete (connection refused, timeout …).
    #[error("{step}: {detail}")]
    Transport {
        /// Which request.
        step: String,
        /// reqwest's description.
        detail: String,
    },
    /// The device is in no state to do this (not enrolled, wiped …).
    #[error("the device cannot {0}")]
    State(&'static str),
    /// A local failure (key, signature, encoding).
    #[error("{0}")]
    Local(String),
}

impl From<crate::measure::WorkerPanicked> for SimError {
    fn from(e: crate::measure::WorkerPanicked) -> Self {
        Self::Local(e.to_string())
    }
}

impl SimError {
    pub(crate) fn local(e: impl std::fmt::Display) -> Self {
        Self::Local(e.to_string())
    }

    pub(crate) fn transport(step: &str, e: impl std::fmt::Display) -> Self {
        Self::Transport {
            step: step.to_owned(),
            detail: e.to_string(),
        }
    }

    /// The failInfo of a SCEP FAILURE, when this is one.
    pub fn scep_fail_info(&self) -> Option<FailInfo> {
        match self {
            Self::ScepFailure { fail_info } => *fail_info,
            _ => None,
        }
    }

    /// The HTTP status of a refused request, when this is one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}
