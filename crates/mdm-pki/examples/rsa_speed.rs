//! Microseconds per RSA-2048 private-key operation and ECDSA P-256
//! signature through this crate (aws-lc), to read beside `openssl speed
//! rsa2048 ecdsap256`: `cargo run --release -p mdm-pki --example rsa_speed`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mdm_pki::{DigestAlg, EcKey, RsaKey};
use std::time::Instant;

fn per_op(n: u32, mut op: impl FnMut()) -> f64 {
    op();
    let start = Instant::now();
    for _ in 0..n {
        op();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let rsa = RsaKey::generate(2048).expect("RSA key");
    let ec = EcKey::generate().expect("EC key");
    let msg = [7u8; 300];
    let sign = per_op(2000, || {
        rsa.sign(DigestAlg::Sha256, &msg).expect("sign");
    });
    let wrapped =
        mdm_pki::rsa_pkcs1v15_encrypt(rsa.public_key_spki_der(), &[1u8; 32]).expect("encrypt");
    let decrypt = per_op(2000, || {
        std::hint::black_box(rsa.decrypt_cek(&wrapped, 32));
    });
    let ecdsa = per_op(20000, || {
        ec.sign(&msg).expect("ecdsa");
    });
    println!("RSA-2048 sign (SHA-256): {sign:.0} us");
    println!("RSA-2048 PKCS#1 v1.5 decrypt: {decrypt:.0} us");
    println!("ECDSA P-256 sign (SHA-256): {ecdsa:.1} us");
}
