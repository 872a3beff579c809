//! The superuser's password as a SCRAM-SHA-256 secret of one iteration.
//!
//! A SCRAM client derives its key with as many HMAC rounds as the stored
//! secret names: 4096 by default, which a debug-built client (tests are built
//! so) spends about 40 ms on at every connection here, against 4 ms in all
//! for a secret of one round. A test process connects two or three times, so
//! that was most of its time. The password is still checked: a wrong one is
//! refused as before. PostgreSQL (10 and later) stores a password given in
//! the secret's own format as it is, initdb's included, so the secret goes in
//! where the password would. The salt is derived from the user and password:
//! the same settings must give the same container configuration, by which a
//! server is shared.

use sha2::{Digest, Sha256};

/// `SCRAM-SHA-256$1:<salt>$<StoredKey>:<ServerKey>` for `password`, or `None`
/// when it is empty (left for the image to refuse) or not ASCII: SASLprep
/// leaves ASCII as it is, and a non-ASCII password keeps the server's own
/// hashing rather than this one's guess at the normalisation.
pub(super) fn quick_secret(user: &str, password: &str) -> Option<String> {
    if password.is_empty() || !password.is_ascii() {
        return None;
    }
    let mut seed = Sha256::new();
    seed.update(b"dockhand-scram-salt\0");
    seed.update(user.as_bytes());
    seed.update(b"\0");
    seed.update(password.as_bytes());
    let salt = &seed.finalize()[..16];
    // Hi(password, salt, 1) is the first round alone: HMAC(password, salt || INT(1)).
    let salted = hmac(password.as_bytes(), &[salt, &1u32.to_be_bytes()].concat());
    let stored_key = Sha256::digest(hmac(&salted, b"Client Key"));
    let server_key = hmac(&salted, b"Server Key");
    Some(format!(
        "SCRAM-SHA-256$1:{}${}:{}",
        base64(salt),
        base64(&stored_key),
        base64(&server_key)
    ))
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_an_independent_implementation() {
        // Python's hashlib.pbkdf2_hmac and hmac, with the same salt.
        assert_eq!(
            quick_secret("postgres", "postgres").as_deref(),
            Some(
                "SCRAM-SHA-256$1:C8nFx+KCtrG19s7E4UAd+A==$L31i27hAYb0AEMSFdx+LXFLurekjsgIrWB6VrxjubtU=:8YBoizs32RkJ4m5s9cbjawRoLAlQqB/mNqebJFkVK9I="
            )
        );
        assert_eq!(
            quick_secret("app", "a longer pass:word!").as_deref(),
            Some(
                "SCRAM-SHA-256$1:DGwM/09R9H8yth7howU/bw==$h6y7Kq1G9KUA3AERePtqVUaXMJa5uEv5jbiH0QDhpgI=:fJ2PMxtzuXc4PpbzybFUppSFfzudkzitvPpFPjnahRU="
            )
        );
    }

    #[test]
    fn passwords_it_cannot_vouch_for_are_left_alone() {
        assert_eq!(quick_secret("postgres", ""), None);
        assert_eq!(quick_secret("postgres", "pässword"), None);
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2, and test case 6 (a key longer than the block).
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn base64_pads_as_the_standard_does() {
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b""), "");
    }
}
