use ct_formats::*;
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePublicKey;

use crate::unhex;

// Generated once with the openssl CLI; log IDs are from
// `openssl pkey -pubout -outform DER | sha256sum`.

/// `openssl ecparam -name prime256v1 -genkey -noout`
const SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIDHXU6ApBaPI/snX3mkwgIrO4CDft8jXGyyqTifxi86aoAoGCCqGSM49
AwEHoUQDQgAE2jHwrpP2Bg5+xvxGQUfJAsc+R53lqVV1EzYvvOT/vzRPLTPXd/qQ
32z5t4XDzC/nx2pHmkM6gug1cjaddzcbBw==
-----END EC PRIVATE KEY-----
";
const SEC1_LOG_ID: &str = "2c614f00652956fee8b888aa8569237a0552f62f1b5cd857e08fd96a285243e6";

/// `openssl ecparam -name prime256v1 -genkey` (with the parameters block)
const WITH_PARAMS_PEM: &str = "-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIG2eQg+MubpCqULdqtys84/fTWOGEnUc8mdlIcoErvPgoAoGCCqGSM49
AwEHoUQDQgAEm7MNhWZBaOI9XfF1D4Z39FulplJKShqkxlQ64Ca/kphF9aFE6kB7
oxpCd65G59794oXFkTT9YWMfk3d+/l9AHA==
-----END EC PRIVATE KEY-----
";
const WITH_PARAMS_LOG_ID: &str = "eb5936091519069b416972586dc10d8953129f7fc008b5f1b592ee8857d9f0bc";

/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`
const PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgPs84zBx8lvrVM6nZ
FfRfswHpUfsy19nbSj3daRv8IBqhRANCAASGZs4CcMo3Ng+Qj2WVOg0caDPS/+ap
K0hY/xNTEvuUzvP2TjXAQvlcQKLLQcbAffIxqly7rBM++sZGwo1iGMd6
-----END PRIVATE KEY-----
";
const PKCS8_LOG_ID: &str = "ad81afb16d5d7132501a807eaaccc830168c094ac60cf2007af56616deda391e";

/// `openssl ecparam -name secp384r1 -genkey -noout`
const P384_SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDB/48694NWaL59UWLuenqPsNpa8OlCgkp7mjrbyS1ESm98LiU4i12P/
T9DhDUBv7cOgBwYFK4EEACKhZANiAATj/AQPzBcKvBGPtMPJ8Ik8WSMYdflPmXOH
rmRMxm8IIMRNt634DHxhb+AFl+sg6QuFrUji/bBgoACucm0CFdQ+/FXTdLAiSrcR
kMawMWMr+iuA4OsZyb3sAnyY+Cn/3GM=
-----END EC PRIVATE KEY-----
";

/// The same P-384 key through `openssl pkcs8 -topk8 -nocrypt`
const P384_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDB/48694NWaL59UWLue
nqPsNpa8OlCgkp7mjrbyS1ESm98LiU4i12P/T9DhDUBv7cOhZANiAATj/AQPzBcK
vBGPtMPJ8Ik8WSMYdflPmXOHrmRMxm8IIMRNt634DHxhb+AFl+sg6QuFrUji/bBg
oACucm0CFdQ+/FXTdLAiSrcRkMawMWMr+iuA4OsZyb3sAnyY+Cn/3GM=
-----END PRIVATE KEY-----
";

pub fn test_key() -> LogKey {
    LogKey::from_pem(SEC1_PEM).unwrap()
}

#[test]
fn pem_keys_load() {
    for (pem, log_id) in [
        (SEC1_PEM, SEC1_LOG_ID),
        (WITH_PARAMS_PEM, WITH_PARAMS_LOG_ID),
        (PKCS8_PEM, PKCS8_LOG_ID),
    ] {
        let key = LogKey::from_pem(pem).unwrap();
        assert_eq!(key.log_id().to_vec(), unhex(log_id));
        let spki = key.verifying_key().to_public_key_der().unwrap();
        assert_eq!(key.spki_der(), spki.as_bytes());
        assert_eq!(log_id_of(key.spki_der()).to_vec(), unhex(log_id));
        let oracle = static_ct_api::log_id_from_key(key.verifying_key()).unwrap();
        assert_eq!(*key.log_id(), oracle);
    }
    // Surrounding text is fine.
    let noisy = format!("comment\n{PKCS8_PEM}\ntrailer");
    assert_eq!(
        LogKey::from_pem(&noisy).unwrap().log_id().to_vec(),
        unhex(PKCS8_LOG_ID)
    );
}

#[test]
fn bad_keys_are_rejected() {
    let params_only = &WITH_PARAMS_PEM[..WITH_PARAMS_PEM.find("-----BEGIN EC PRIVATE").unwrap()];
    let corrupt = SEC1_PEM.replace("MHcCAQEE", "MHcCAQFE");
    let unterminated = SEC1_PEM.replace("-----END EC PRIVATE KEY-----", "");
    for pem in [
        P384_SEC1_PEM,
        P384_PKCS8_PEM,
        params_only,
        "",
        "-----BEGIN ",
        corrupt.as_str(),
        unterminated.as_str(),
    ] {
        let err = LogKey::from_pem(pem).unwrap_err();
        assert!(matches!(err, FormatError::Key(_)), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}

#[test]
fn debug_hides_the_secret() {
    let shown = format!("{:?}", test_key());
    assert!(shown.contains(SEC1_LOG_ID), "{shown}");
    assert!(!shown.contains("31d753a0"), "{shown}"); // start of the scalar
}

#[test]
fn sign_is_deterministic_digitally_signed() {
    let key = test_key();
    let sig = key.sign(b"message");
    assert_eq!(sig, key.sign(b"message"));
    assert_ne!(sig, key.sign(b"other message"));
    assert_eq!(sig[..2], [4, 3]);
    assert_eq!(
        usize::from(u16::from_be_bytes([sig[2], sig[3]])),
        sig.len() - 4
    );
    assert!(p256::ecdsa::Signature::from_der(&sig[4..]).is_ok());
    let signing_key = SigningKey::from_slice(&unhex(
        "31d753a02905a3c8fec9d7de6930808acee020dfb7c8d71b2caa4e27f18bce9a",
    ))
    .unwrap();
    assert_eq!(
        LogKey::from_signing_key(signing_key.clone()).log_id(),
        key.log_id()
    );
    assert_eq!(sig, static_ct_api::sign(&signing_key, b"message"));
}

#[test]
fn verify_digitally_signed_checks_everything() {
    let key = test_key();
    let vk = key.verifying_key();
    let sig = key.sign(b"message");
    verify_digitally_signed(vk, b"message", &sig).unwrap();
    assert!(verify_digitally_signed(vk, b"messagf", &sig).is_err());
    let other = LogKey::from_pem(PKCS8_PEM).unwrap();
    assert!(verify_digitally_signed(other.verifying_key(), b"message", &sig).is_err());

    let mut tampered = Vec::new();
    for i in 0..sig.len() {
        let mut s = sig.clone();
        s[i] ^= 0x01;
        tampered.push(s);
    }
    let mut longer = sig.clone();
    longer.push(0);
    tampered.push(longer);
    let mut len_plus = sig.clone();
    len_plus[3] += 1;
    len_plus.push(0);
    tampered.push(len_plus);
    tampered.push(sig[..sig.len() - 1].to_vec());
    tampered.push(vec![]);
    tampered.push(vec![4, 3]);
    for s in tampered {
        assert!(
            verify_digitally_signed(vk, b"message", &s).is_err(),
            "{s:02x?}"
        );
    }
}

#[test]
fn sct_serialize_layout() {
    let sct = Sct {
        log_id: [0x55; 32],
        timestamp: 0x0102_0304_0506_0708,
        extensions: leaf_index_extension(7).to_vec(),
        signature: vec![4, 3, 0, 2, 0xab, 0xcd],
    };
    let want = format!(
        "00 {} 0102030405060708 0008 0000050000000007 0403 0002 abcd",
        "55".repeat(32)
    );
    assert_eq!(sct.serialize(), unhex(&want));
}

#[test]
fn sct_sign_matches_oracle() {
    let key = test_key();
    let entry = Entry {
        kind: EntryKind::X509 {
            certificate: vec![0xaa, 0xbb, 0xcc],
        },
        chain_fingerprints: vec![[0x11; 32]],
    };
    let sct = Sct::sign(&key, &entry, 1_700_000_000_000, 42);
    assert_eq!(sct.log_id, *key.log_id());
    assert_eq!(sct.timestamp, 1_700_000_000_000);
    assert_eq!(sct.extensions, unhex("000005000000002a"));
    let signed = unhex("0000 0000018bcfe56800 0000 000003 aabbcc 0008 000005000000002a");
    verify_digitally_signed(key.verifying_key(), &signed, &sct.signature).unwrap();
    assert_eq!(sct, Sct::sign(&key, &entry, 1_700_000_000_000, 42));

    let signing_key = SigningKey::from_slice(&unhex(
        "31d753a02905a3c8fec9d7de6930808acee020dfb7c8d71b2caa4e27f18bce9a",
    ))
    .unwrap();
    let oracle = static_ct_api::signed_certificate_timestamp(
        &signing_key,
        &static_ct_api::LogEntry {
            certificate: vec![0xaa, 0xbb, 0xcc],
            leaf_index: 42,
            timestamp: 1_700_000_000_000,
            ..Default::default()
        },
    );
    assert_eq!(oracle.id, sct.log_id);
    assert_eq!(oracle.extensions, sct.extensions);
    assert_eq!(oracle.signature, sct.signature);
}
