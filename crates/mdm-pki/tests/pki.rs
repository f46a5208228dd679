//! Integration tests for mdm-pki: CA and leaf issuance, CSRs, CMS sign/verify,
//! and interop with the `openssl` command line when it is installed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use mdm_pki::der::{Decode, Encode};
use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::*;
use time::OffsetDateTime;

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

const NOW: i64 = 1_780_000_000;

/// One CA for the whole binary: key generation is the slow part.
fn ca() -> &'static (RsaKey, Certificate) {
    static CA: OnceLock<(RsaKey, Certificate)> = OnceLock::new();
    CA.get_or_init(|| {
        let key = RsaKey::generate(2048).unwrap();
        let cert = self_signed_ca(
            &key,
            "CN=Test MDM CA,O=Acme",
            &[0x01, 0x02],
            at(NOW - 60),
            at(NOW + 86_400 * 3650),
        )
        .unwrap();
        (key, cert)
    })
}

fn device_key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate(2048).unwrap())
}

fn openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: openssl not found; skipping the openssl interop part of this test");
    }
    ok
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn key_pkcs8_round_trip_and_pem() {
    let key = device_key();
    let der = key.to_pkcs8_der().unwrap();
    let again = RsaKey::from_pkcs8_der(&der).unwrap();
    assert_eq!(again.public_key_spki_der(), key.public_key_spki_der());
    let pem = key.to_pkcs8_pem().unwrap();
    let from_pem = RsaKey::from_pem(&pem).unwrap();
    assert_eq!(from_pem.public_key_spki_der(), key.public_key_spki_der());
    assert_eq!(key.bits(), 2048);
    assert!(RsaKey::from_pkcs8_der(b"garbage").is_err());
    assert!(RsaKey::generate(1024).is_err());
}

#[test]
fn sign_and_verify_every_digest() {
    let key = device_key();
    for d in [
        DigestAlg::Sha1,
        DigestAlg::Sha256,
        DigestAlg::Sha384,
        DigestAlg::Sha512,
    ] {
        let sig = key.sign(d, b"hello").unwrap();
        verify_rsa(key.public_key_spki(), d, b"hello", &sig).unwrap();
        assert!(
            verify_rsa(key.public_key_spki(), d, b"hellO", &sig).is_err(),
            "{d:?}"
        );
    }
}

#[test]
fn decrypt_cek_never_fails() {
    let key = device_key();
    let cek = [7u8; 16];
    let ct = key.rsa_public_key().pkcs1v15_encrypt(&cek).unwrap();
    assert_eq!(&key.decrypt_cek(&ct, 16)[..], &cek);
    // Wrong expected length, garbage and empty input: random keys, no error.
    let wrong_len = key.decrypt_cek(&ct, 24);
    assert_eq!(wrong_len.len(), 24);
    let garbage = key.decrypt_cek(&[0x55; 256], 16);
    assert_eq!(garbage.len(), 16);
    assert_ne!(&garbage[..], &cek);
    assert_eq!(key.decrypt_cek(&[], 32).len(), 32);
}

#[test]
fn ca_certificate_has_ca_extensions() {
    let (_, cert) = ca();
    assert!(cert.is_ca());
    assert!(cert.subject_key_id().is_some());
    assert_eq!(cert.subject_string(), "CN=Test MDM CA,O=Acme");
    verify_issued_by(cert, cert).unwrap();
    assert_eq!(cert.not_before().unwrap(), at(NOW - 60));
    let der = cert_to_der(cert).unwrap();
    assert_eq!(&cert_from_der(&der).unwrap(), cert);
    let pem = cert_to_pem(cert).unwrap();
    assert_eq!(&cert_from_pem(&pem).unwrap(), cert);
    assert_eq!(certs_from_pem(&format!("{pem}{pem}")).unwrap().len(), 2);
    assert_eq!(fingerprint_sha256(&der).len(), 32);
}

fn issue_for_device(digest: DigestAlg, challenge: Option<&str>) -> (Vec<u8>, Certificate) {
    let (ca_key, ca_cert) = ca();
    let subject: Name = "CN=device-1,O=Acme".parse().unwrap();
    let csr_der = build_csr(device_key(), &subject, challenge, digest).unwrap();
    let (csr, used) = verify_csr(&csr_der).unwrap();
    assert_eq!(used, digest);
    assert_eq!(challenge_password(&csr).unwrap().as_deref(), challenge);
    let cert = issue_leaf(
        ca_key,
        ca_cert,
        &csr,
        &[0xff; 20],
        at(NOW),
        at(NOW + 86_400),
    )
    .unwrap();
    (csr_der, cert)
}

#[test]
fn leaf_from_csr_chains_to_ca() {
    let (_, ca_cert) = ca();
    for d in [DigestAlg::Sha1, DigestAlg::Sha256, DigestAlg::Sha512] {
        let (_, cert) = issue_for_device(d, Some("s3cret"));
        verify_issued_by(&cert, ca_cert).unwrap();
        assert!(!cert.is_ca());
        assert_eq!(cert.subject_string(), "CN=device-1,O=Acme");
        assert_eq!(
            cert.tbs_certificate().version(),
            mdm_pki::x509_cert::certificate::Version::V3
        );
        assert_eq!(cert.serial_hex().len(), 40, "20-byte serial kept positive");
        let exts = cert.tbs_certificate().extensions().unwrap();
        assert_eq!(exts.len(), 5, "BC, KU, EKU, SKI, AKI");
    }
    let (other_key, other) = {
        let k = RsaKey::generate(2048).unwrap();
        let c = self_signed_ca(&k, "CN=Test MDM CA,O=Acme", &[9], at(NOW), at(NOW + 10)).unwrap();
        (k, c)
    };
    let _ = other_key;
    let (_, cert) = issue_for_device(DigestAlg::Sha256, None);
    assert!(
        verify_issued_by(&cert, &other).is_err(),
        "same name, other key"
    );
}

#[test]
fn csr_with_unicode_challenge_and_tampering() {
    let subject: Name = "CN=ü".parse().unwrap();
    let der = build_csr(device_key(), &subject, Some("pässwört"), DigestAlg::Sha256).unwrap();
    let (csr, _) = verify_csr(&der).unwrap();
    assert_eq!(
        challenge_password(&csr).unwrap().as_deref(),
        Some("pässwört")
    );
    let mut bad = der.clone();
    let pos = bad.windows(4).position(|w| w == b"\xc3\xa4ss").unwrap() + 2;
    bad[pos] = b'S';
    assert!(matches!(verify_csr(&bad), Err(PkiError::BadSignature(_))));
    assert!(verify_csr(&der[..der.len() - 3]).is_err());
}

#[test]
fn rejects_bad_arguments() {
    let (ca_key, ca_cert) = ca();
    assert!(self_signed_ca(ca_key, "not a dn", &[1], at(NOW), at(NOW + 1)).is_err());
    assert!(self_signed_ca(ca_key, "CN=x", &[0, 0], at(NOW), at(NOW + 1)).is_err());
    assert!(self_signed_ca(ca_key, "CN=x", &[1; 21], at(NOW), at(NOW + 1)).is_err());
    assert!(self_signed_ca(ca_key, "CN=x", &[1], at(NOW), at(NOW)).is_err());
    let csr = csr_from_der(&issue_for_device(DigestAlg::Sha256, None).0).unwrap();
    assert!(issue_leaf(ca_key, ca_cert, &csr, &[1], at(-5), at(NOW)).is_err());
    assert!(cert_from_der(&vec![0u8; MAX_INPUT_LEN + 1]).is_err());
}

#[test]
fn cms_attached_round_trip() {
    let (ca_key, ca_cert) = ca();
    let content = b"<?xml version=\"1.0\"?><plist><dict/></plist>";
    let signed = sign_attached(content, ca_key, ca_cert, &[], at(NOW)).unwrap();
    let v = verify_signed_data(&signed, None, &[]).unwrap();
    assert_eq!(v.content, content);
    assert_eq!(&v.signer, ca_cert);
    assert_eq!(v.signing_time, Some(at(NOW)));
    assert_eq!(v.digest, DigestAlg::Sha256);
    // Tampered content: digest mismatch.
    let mut bad = signed.clone();
    let pos = bad.windows(5).position(|w| w == b"plist").unwrap();
    bad[pos] = b'P';
    assert!(matches!(
        verify_signed_data(&bad, None, &[]),
        Err(PkiError::DigestMismatch)
    ));
    // Detached content given for an attached signature is refused.
    assert!(verify_signed_data(&signed, Some(content), &[]).is_err());
}

#[test]
fn cms_garbage_and_limits() {
    for input in [
        &b""[..],
        b"\x30",
        b"\x30\x80",
        b"\x30\x03\x02\x01\x01",
        &[0xffu8; 64],
    ] {
        assert!(verify_signed_data(input, None, &[]).is_err());
    }
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        deep.extend_from_slice(&[0x30, 0x80]);
    }
    assert!(verify_signed_data(&deep, None, &[]).is_err());
    let huge = vec![0x30u8; MAX_INPUT_LEN + 1];
    assert!(matches!(
        verify_signed_data(&huge, None, &[]),
        Err(PkiError::TooLarge { .. })
    ));
}

#[test]
fn certs_only_round_trip() {
    let (_, ca_cert) = ca();
    let (_, leaf) = issue_for_device(DigestAlg::Sha256, None);
    let der = build_certs_only(&[leaf.clone(), ca_cert.clone()]).unwrap();
    let certs = certs_from_signed_data(&der).unwrap();
    assert_eq!(certs.len(), 2);
    assert!(certs.contains(&leaf) && certs.contains(ca_cert));
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn openssl_accepts_signed_profile() {
    if !openssl() {
        return;
    }
    let (ca_key, ca_cert) = ca();
    let dir = tempfile::tempdir().unwrap();
    let content = b"profile body \x00\x01 binary";
    let signed = sign_attached(content, ca_key, ca_cert, &[], at(NOW)).unwrap();
    let sig = write(dir.path(), "p.der", &signed);
    let ca_pem = write(
        dir.path(),
        "ca.pem",
        cert_to_pem(ca_cert).unwrap().as_bytes(),
    );
    let out_path = dir.path().join("out.bin");
    run(Command::new("openssl")
        .args([
            "smime", "-verify", "-inform", "DER", "-in", &sig, "-CAfile", &ca_pem, "-purpose",
            "any", "-out",
        ])
        .arg(&out_path));
    assert_eq!(std::fs::read(out_path).unwrap(), content);
}

#[test]
fn verifies_openssl_ber_streamed_signatures() {
    if !openssl() {
        return;
    }
    let (_, ca_cert) = ca();
    let (ca_key, _) = ca();
    let dir = tempfile::tempdir().unwrap();
    let body = vec![b'x'; 5000];
    let content = write(dir.path(), "body", &body);
    let cert = write(
        dir.path(),
        "c.pem",
        cert_to_pem(ca_cert).unwrap().as_bytes(),
    );
    let key = write(
        dir.path(),
        "k.pem",
        ca_key.to_pkcs8_pem().unwrap().as_bytes(),
    );
    for detached in [false, true] {
        // openssl streams (indefinite lengths, chunked eContent) only attached
        // signatures; its detached DER output covers the Mdm-Signature shape.
        let out = dir.path().join(format!("s{detached}.ber"));
        let mut cmd = Command::new("openssl");
        cmd.args([
            "cms", "-sign", "-binary", "-outform", "DER", "-md", "sha256", "-in", &content,
            "-signer", &cert, "-inkey", &key, "-out",
        ])
        .arg(&out);
        if !detached {
            cmd.args(["-nodetach", "-stream"]);
        }
        run(&mut cmd);
        let ber = std::fs::read(&out).unwrap();
        if !detached {
            assert_eq!(
                &ber[..2],
                &[0x30, 0x80],
                "openssl -stream writes indefinite lengths"
            );
        }
        let v = if detached {
            verify_signed_data(&ber, Some(&body), &[]).unwrap()
        } else {
            verify_signed_data(&ber, None, &[]).unwrap()
        };
        assert_eq!(v.content, body);
        assert_eq!(&v.signer, ca_cert);
        assert!(v.signing_time.is_some());
        if detached {
            assert!(verify_signed_data(&ber, Some(b"other body"), &[]).is_err());
        }
    }
}

#[test]
fn openssl_reads_our_certificates_and_csr() {
    if !openssl() {
        return;
    }
    let (_, ca_cert) = ca();
    let dir = tempfile::tempdir().unwrap();
    let (csr_der, leaf) = issue_for_device(DigestAlg::Sha256, Some("pw"));
    let csr = write(dir.path(), "r.der", &csr_der);
    run(Command::new("openssl").args(["req", "-inform", "DER", "-in", &csr, "-noout", "-verify"]));
    let ca_pem = write(
        dir.path(),
        "ca.pem",
        cert_to_pem(ca_cert).unwrap().as_bytes(),
    );
    let leaf_pem = write(
        dir.path(),
        "leaf.pem",
        cert_to_pem(&leaf).unwrap().as_bytes(),
    );
    let attime = (NOW + 10).to_string();
    let out = run(Command::new("openssl").args([
        "verify",
        "-attime",
        &attime,
        "-CAfile",
        &ca_pem,
        "-purpose",
        "sslclient",
        &leaf_pem,
    ]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    let text = run(Command::new("openssl").args(["x509", "-in", &leaf_pem, "-noout", "-text"]));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Version: 3"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    // And a certificate openssl made parses and verifies here.
    let k = write(
        dir.path(),
        "k.pem",
        device_key().to_pkcs8_pem().unwrap().as_bytes(),
    );
    let self_signed = dir.path().join("ss.der");
    run(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-key",
            &k,
            "-subj",
            "/CN=openssl",
            "-days",
            "2",
            "-outform",
            "DER",
            "-out",
        ])
        .arg(&self_signed));
    let ss = cert_from_der(&std::fs::read(&self_signed).unwrap()).unwrap();
    verify_issued_by(&ss, &ss).unwrap();
    assert_eq!(ss.to_der().unwrap(), std::fs::read(&self_signed).unwrap());
    assert!(Certificate::from_der(&[0x30, 0x00]).is_err());
}

/// Rewrites DER with every constructed value in BER's indefinite-length form
/// (`0x80` … `00 00`), as streaming encoders write it.
fn indefinite(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = der;
    while !rest.is_empty() {
        let tag = rest[0];
        let (len, header) = match rest[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let k = (n & 0x7f) as usize;
                let len = rest[2..2 + k]
                    .iter()
                    .fold(0usize, |a, b| a << 8 | *b as usize);
                (len, 2 + k)
            }
        };
        let value = &rest[header..header + len];
        if tag & 0x20 != 0 {
            out.extend_from_slice(&[tag, 0x80]);
            out.extend_from_slice(&indefinite(value));
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&rest[..header + len]);
        }
        rest = &rest[header + len..];
    }
    out
}

#[test]
fn detached_signatures_verify_from_ber_and_from_the_signer_cache() {
    use mdm_pki::cms::content_info::ContentInfo;
    use mdm_pki::cms::signed_data::SignedData;
    use mdm_pki::der::Any;
    let (ca_key, ca_cert) = ca();
    let body = b"<plist><dict><key>Status</key><string>Idle</string></dict></plist>";
    let attached = sign_attached(body, ca_key, ca_cert, &[], at(0)).unwrap();
    let mut ci = ContentInfo::from_der(&attached).unwrap();
    let mut sd: SignedData = ci.content.decode_as().unwrap();
    sd.encap_content_info.econtent = None;
    ci.content = Any::encode_from(&sd).unwrap();
    let der = ci.to_der().unwrap();
    let ber = indefinite(&der);
    assert_ne!(ber, der);
    assert_eq!(&ber[..2], &[0x30, 0x80]);

    let cache = SignerCache::new(8);
    let cert_der = cert_to_der(ca_cert).unwrap();
    for (form, input) in [("DER", &der), ("BER", &ber), ("BER again", &ber)] {
        let v = verify_detached(input, body, &cache).unwrap_or_else(|e| panic!("{form}: {e}"));
        assert_eq!(v.signer.der, cert_der, "{form}");
        assert_eq!(v.signing_time, Some(at(0)), "{form}");
        assert!(
            verify_detached(input, b"other body", &cache).is_err(),
            "{form}"
        );
    }
    // One entry per encoding of the certificate as sent.
    assert_eq!(cache.len(), 2);
    // Attached content is not a detached signature.
    assert!(verify_detached(&attached, body, &cache).is_err());
}

/// An ECDSA P-256 content signer certified by the CA, and its certificate.
fn ec_signer() -> &'static (EcKey, Certificate) {
    static SIGNER: OnceLock<(EcKey, Certificate)> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let (ca_key, ca_cert) = ca();
        let key = EcKey::generate().unwrap();
        let cert = issue_content_signer(
            ca_key,
            ca_cert,
            "CN=acme Profile Signing,O=Acme",
            key.public_key_spki().clone(),
            &[0x0e, 0xc0],
            at(NOW - 60),
            at(NOW + 86_400 * 730),
        )
        .unwrap();
        (key, cert)
    })
}

#[test]
fn ecdsa_content_signer_signs_and_verifies() {
    let (_, ca_cert) = ca();
    let (key, cert) = ec_signer();
    verify_issued_by(cert, ca_cert).unwrap();
    assert!(!cert.is_ca());
    assert_eq!(cert.issuer_string(), ca_cert.subject_string());
    let content = b"<plist>profile</plist>";
    let signed = sign_attached(content, key, cert, std::slice::from_ref(ca_cert), at(NOW)).unwrap();
    let v = verify_signed_data(&signed, None, &[]).unwrap();
    assert_eq!(v.content, content);
    assert_eq!(&v.signer, cert);
    assert_eq!(v.digest, DigestAlg::Sha256);
    assert!(v.certificates.contains(ca_cert), "the chain travels along");

    // The content is covered: one changed byte and the signature fails.
    let at_content = signed
        .windows(content.len())
        .position(|w| w == content)
        .unwrap();
    let mut bad = signed.clone();
    bad[at_content + 1] ^= 0x01;
    assert!(verify_signed_data(&bad, None, &[]).is_err());

    // The key survives its PKCS#8 export, as the vault stores it.
    let again = EcKey::from_pkcs8_der(&key.to_pkcs8_der().unwrap()).unwrap();
    assert_eq!(again.public_key_spki(), key.public_key_spki());
    let resigned = sign_attached(content, &again, cert, &[], at(NOW)).unwrap();
    assert_eq!(
        verify_signed_data(&resigned, None, &[]).unwrap().signer,
        *cert
    );
    // An RSA key is not a P-256 key.
    assert!(EcKey::from_pkcs8_der(&device_key().to_pkcs8_der().unwrap()).is_err());
}

#[test]
fn openssl_accepts_ecdsa_signed_profile_for_smime_signing() {
    if !openssl() {
        return;
    }
    let (_, ca_cert) = ca();
    let (key, cert) = ec_signer();
    let dir = tempfile::tempdir().unwrap();
    let content = b"profile body signed with P-256";
    let signed = sign_attached(content, key, cert, std::slice::from_ref(ca_cert), at(NOW)).unwrap();
    let sig = write(dir.path(), "p.der", &signed);
    let ca_pem = write(
        dir.path(),
        "ca.pem",
        cert_to_pem(ca_cert).unwrap().as_bytes(),
    );
    let out_path = dir.path().join("out.bin");
    // openssl's default purpose (S/MIME signing) checks the signer's key usage.
    run(Command::new("openssl")
        .args([
            "cms", "-verify", "-inform", "DER", "-in", &sig, "-CAfile", &ca_pem, "-out",
        ])
        .arg(&out_path));
    assert_eq!(std::fs::read(out_path).unwrap(), content);
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-inform", "DER", "-in"])
        .arg(write(dir.path(), "signer.der", &cert_to_der(cert).unwrap()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("id-ecPublicKey"), "{text}");
    assert!(text.contains("Digital Signature"), "{text}");
    assert!(!text.contains("Key Encipherment"), "{text}");
    assert!(!text.contains("Extended Key Usage"), "{text}");
}

/// PKCS#12 files as openssl writes them — its default (PBES2: PBKDF2 with
/// HMAC-SHA-256, AES-256-CBC; SHA-256 MAC), the 3DES form Keychain Access
/// exports (SHA-1 MAC), and `-legacy` (RC2-40 certificates) when this
/// openssl has its legacy provider — give back the key and certificates; a
/// wrong password, a file with no key and garbage are refused.
#[test]
fn reads_openssl_pkcs12_files() {
    if !openssl() {
        return;
    }
    let (ca_key, ca_cert) = ca();
    let dir = tempfile::tempdir().unwrap();
    let cert = write(
        dir.path(),
        "c.pem",
        cert_to_pem(ca_cert).unwrap().as_bytes(),
    );
    let key = write(
        dir.path(),
        "k.pem",
        ca_key.to_pkcs8_pem().unwrap().as_bytes(),
    );
    let variants: [(&str, &[&str]); 3] = [
        ("default", &[]),
        (
            "3des",
            &[
                "-keypbe",
                "PBE-SHA1-3DES",
                "-certpbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ],
        ),
        ("legacy", &["-legacy"]),
    ];
    for (name, extra) in variants {
        let out = dir.path().join(format!("{name}.p12"));
        let made = Command::new("openssl")
            .args([
                "pkcs12",
                "-export",
                "-inkey",
                &key,
                "-in",
                &cert,
                "-passout",
                "pass:pässwörd",
                "-out",
            ])
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        if !made.status.success() {
            assert_eq!(
                name,
                "legacy",
                "openssl pkcs12 {name}: {}",
                String::from_utf8_lossy(&made.stderr)
            );
            eprintln!("NOTICE: openssl has no legacy provider; skipping the RC2 PKCS#12 case");
            continue;
        }
        let der = std::fs::read(&out).unwrap();
        let id = mdm_pki::read_pkcs12(&der, "pässwörd").unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(id.certs, vec![ca_cert.clone()], "{name}");
        let key = mdm_pki::SigningKey::from_pkcs8_der(&id.key_pkcs8).unwrap();
        assert!(
            key.matches(ca_cert.tbs_certificate().subject_public_key_info()),
            "{name}"
        );
        let e = mdm_pki::read_pkcs12(&der, "wrong")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("does not open with this password"),
            "{name}: {e}"
        );
    }
    let nokey = dir.path().join("nokey.p12");
    run(Command::new("openssl")
        .args([
            "pkcs12", "-export", "-nokeys", "-in", &cert, "-passout", "pass:x", "-out",
        ])
        .arg(&nokey));
    let e = mdm_pki::read_pkcs12(&std::fs::read(&nokey).unwrap(), "x")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no private key"), "{e}");
}

/// A P-384 key signs with SHA-384 throughout (digest and ecdsa-with-SHA384),
/// which we and openssl verify against its CA.
#[test]
fn p384_content_signer_signs_with_sha384() {
    let (ca_key, ca_cert) = ca();
    let key = EcKey::generate_on(mdm_pki::Curve::P384).unwrap();
    let cert = issue_content_signer(
        ca_key,
        ca_cert,
        "CN=acme P-384 Signing,O=Acme",
        key.public_key_spki().clone(),
        &[0x0e, 0xc1],
        at(NOW - 60),
        at(NOW + 86_400 * 30),
    )
    .unwrap();
    let content = b"<plist>p-384</plist>";
    let signed = sign_attached(content, &key, &cert, &[], at(NOW)).unwrap();
    let v = verify_signed_data(&signed, None, &[]).unwrap();
    assert_eq!(v.signer, cert);
    assert_eq!(v.digest, DigestAlg::Sha384);
    if !openssl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sig = write(dir.path(), "p384.der", &signed);
    let ca_pem = write(
        dir.path(),
        "ca.pem",
        cert_to_pem(ca_cert).unwrap().as_bytes(),
    );
    run(Command::new("openssl").args([
        "cms",
        "-verify",
        "-no_check_time",
        "-inform",
        "DER",
        "-in",
        &sig,
        "-CAfile",
        &ca_pem,
        "-out",
        "/dev/null",
    ]));
}
