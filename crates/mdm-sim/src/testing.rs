//! Test fixtures: a CA, a device identity it issued, and signed profiles.

use mdm_apple::{EnrollmentProfile, MdmPayload, PROFILE_UUID_NAMESPACE, Removal, ScepPayload};
use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::{
    DigestAlg, RsaKey, build_csr, cert_to_der, csr_from_der, issue_leaf, self_signed_ca,
};
use std::sync::OnceLock;
use time::{Duration, OffsetDateTime};

use crate::wire::Identity;

pub struct Ca {
    pub key: RsaKey,
    pub cert: Certificate,
}

fn make_ca(cn: &str) -> Ca {
    let key = RsaKey::generate(2048).unwrap();
    let now = OffsetDateTime::now_utc();
    let cert = self_signed_ca(
        &key,
        &format!("CN={cn},O=Acme"),
        &[0x01],
        now - Duration::hours(1),
        now + Duration::days(30),
    )
    .unwrap();
    Ca { key, cert }
}

pub fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| make_ca("Acme CA"))
}

pub fn other_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| make_ca("Foreign CA"))
}

pub fn identity() -> &'static Identity {
    static ID: OnceLock<Identity> = OnceLock::new();
    ID.get_or_init(|| {
        let ca = ca();
        let key = RsaKey::generate(2048).unwrap();
        let subject: Name = "CN=device,O=Acme".parse().unwrap();
        let csr =
            csr_from_der(&build_csr(&key, &subject, None, DigestAlg::Sha256).unwrap()).unwrap();
        let now = OffsetDateTime::now_utc();
        let cert = issue_leaf(
            &ca.key,
            &ca.cert,
            &csr,
            &[0x02],
            now - Duration::hours(1),
            now + Duration::days(1),
        )
        .unwrap();
        let cert_der = cert_to_der(&cert).unwrap();
        Identity {
            key,
            cert,
            cert_der,
        }
    })
}

/// A profile as our server builds it, before signing.
pub fn profile() -> EnrollmentProfile {
    let ca_der = cert_to_der(&ca().cert).unwrap();
    let mut scep = ScepPayload::new("http://127.0.0.1:9/scep/acme", Some("secret".into()));
    scep.subject = vec![("O".into(), "Acme".into()), ("CN".into(), "reg-1".into())];
    scep.ca_fingerprint = Some(mdm_apple::ca_fingerprint(&ca_der));
    let mut mdm = MdmPayload::new(
        "com.apple.mgmt.External.test",
        "http://127.0.0.1:9/mdm/acme/connect",
    );
    mdm.check_in_url = Some("http://127.0.0.1:9/mdm/acme/checkin".into());
    EnrollmentProfile {
        identifier: "mdm.acme.enrollment".into(),
        uuid_namespace: PROFILE_UUID_NAMESPACE,
        display_name: "Acme".into(),
        organization: "Acme".into(),
        description: "test".into(),
        removal: Removal::Allowed,
        ca_cert_der: ca_der,
        tls_anchor_der: None,
        scep,
        mdm,
    }
}

/// Signs plist bytes with `signer`.
pub fn sign(xml: &[u8], signer: &Ca) -> Vec<u8> {
    mdm_apple::sign_profile(
        xml,
        &signer.key,
        &signer.cert,
        &[],
        OffsetDateTime::now_utc(),
    )
    .unwrap()
}
