//! Fuzz PKIOperation parsing: the signed layer, the envelope (decrypted with a
//! real CA key, so inputs built around a valid key transport reach the CBC and
//! CSR code), GET base64 decoding and `inspect`.
#![no_main]

use std::sync::OnceLock;

use mdm_pki::x509_cert::Certificate;
use mdm_pki::{RsaKey, self_signed_ca};

struct Ca {
    key: RsaKey,
    cert: Certificate,
}

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| {
        let key = RsaKey::generate(2048).expect("key");
        let t = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
        let cert =
            self_signed_ca(&key, "CN=Fuzz CA", &[1], t, t + time::Duration::days(1)).expect("ca");
        Ca { key, cert }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let ca = ca();
    let _ = mdm_scep::parse_request(data, &ca.cert, &ca.key);
    let _ = mdm_scep::PkiMessage::parse(data, std::slice::from_ref(&ca.cert));
    let _ = mdm_scep::inspect(data, Some((&ca.cert, &ca.key)));
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mdm_scep::decode_get_message(text);
    }
    let _ = mdm_pki::verify_signed_data(data, Some(b"body"), &[]);
    let _ = mdm_pki::csr_from_der(data);
});
