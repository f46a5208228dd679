//! Fuzz PKCS#12 reading (an uploaded profile-signing identity). Odd first
//! byte: the rest is the whole file. Even: the rest is the authenticated
//! safe, wrapped here in a PFX whose MAC is valid for the password, so the
//! inputs reach the safe contents, the bags and their decryption instead
//! of stopping at the MAC.
#![no_main]

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "fuzz";
const SALT: [u8; 8] = *b"fuzzsalt";

/// A DER TLV.
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(body);
    out
}

/// RFC 7292 B.2 with one round, for a 32-byte MAC key (id 3): one block.
fn mac_key() -> Vec<u8> {
    let mut pw: Vec<u8> = PASSWORD.encode_utf16().flat_map(u16::to_be_bytes).collect();
    pw.extend_from_slice(&[0, 0]);
    let fill = |s: &[u8]| -> Vec<u8> {
        s.iter()
            .cycle()
            .take(s.len().div_ceil(64) * 64)
            .copied()
            .collect()
    };
    let mut h = Sha256::new();
    h.update([3u8; 64]);
    h.update(fill(&SALT));
    h.update(fill(&pw));
    h.finalize().to_vec()
}

fn pfx_around(safe: &[u8]) -> Vec<u8> {
    const ID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let mut mac = Hmac::<Sha256>::new_from_slice(&mac_key()).expect("any key length");
    mac.update(safe);
    let digest = mac.finalize().into_bytes();
    let auth_safe = tlv(
        0x30,
        &[tlv(0x06, ID_DATA), tlv(0xa0, &tlv(0x04, safe))].concat(),
    );
    let alg = tlv(0x30, &[tlv(0x06, SHA256), vec![0x05, 0x00]].concat());
    // One iteration: the DEFAULT, so DER leaves it out.
    let mac_data = tlv(
        0x30,
        &[
            tlv(0x30, &[alg, tlv(0x04, &digest)].concat()),
            tlv(0x04, &SALT),
        ]
        .concat(),
    );
    tlv(0x30, &[tlv(0x02, &[3]), auth_safe, mac_data].concat())
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 1 {
        let _ = mdm_pki::read_pkcs12(rest, PASSWORD);
    } else {
        let _ = mdm_pki::read_pkcs12(&pfx_around(rest), PASSWORD);
    }
});
