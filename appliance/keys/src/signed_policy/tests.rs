use super::*;

/// `openssl genrsa 2048 | openssl rsa -pubout` (a key generated for this test).
const PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAj6ixsLHPZFjMVG15gScM
SYEfCGxJXEalOIGTPSs5pGQ4mdbmj4EdDKwh0+P7gokl72AxK974/sfjlGN7bkWg
vhwzFNS+OyiBqqS0Pg3C3o3niPQSkLQDpYeBDCH55U4RcpHsM49pmMfLmwXKcHCZ
qlKiLTHoHJP0Fw4t1/6gPXXprJs1JCwG4lQ2LrUg/3Vf8ooBkZf5PcDu5NTfpqv1
m9kMvyoqrYOCjx0iv/S0LCj0u9b3+Trgwi97eEkCWa1E4/FcbVd+XWcHbuXtm4jF
ZN9QzQiw9cq9rgCo7uWr44iuzNWcsPvlBu3OZpYsy1VahputkCSap6OvHBDqpySG
/wIDAQAB
-----END PUBLIC KEY-----
";

fn eleven() -> PcrPolicy {
    PcrPolicy::new([11]).expect("valid")
}

fn entry(pcrs: &str, pkfp: &str, pol: &str, sig: &str) -> String {
    format!(r#"{{"pcrs":{pcrs},"pkfp":"{pkfp}","pol":"{pol}","sig":"{sig}"}}"#)
}

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

#[test]
fn the_public_key_is_parsed() {
    let key = PolicyKey::from_pem(PEM.as_bytes()).expect("an RSA-2048 key");
    assert_eq!(key.modulus.len(), RSA_BYTES);
    assert_eq!(key.exponent, 65_537);
    assert_eq!(
        hex(&key.pkfp),
        "be21cb8416b836f74ded051433c91a85bad45da2626ea8a6f8a8f0430dbeee22"
    );
    assert_eq!(
        key.spki_fingerprint.to_string(),
        "sha256:ae48f7c429c8a897b6ab8599a6343cc9405e7dab27d314feadc31e53ff7e5c93"
    );
}

#[test]
fn malformed_public_keys_are_refused() {
    for (text, reason) in [
        ("", "no PEM"),
        (
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
            "not valid base64",
        ),
        (
            "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
            "not a DER",
        ),
        (
            "-----BEGIN RSA PUBLIC KEY-----\nMAA=\n-----END RSA PUBLIC KEY-----\n",
            "PKCS#1",
        ),
        // A P-256 key.
        (
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQZDltvL/7A3GJSczFwtOT2uz+AI2LjFTExmcymwlqSBSvTLMqpQrNYo7zO2lpmekhNA+q4MJogMuiUoNjZTtIQ==\n-----END PUBLIC KEY-----\n",
            "not an RSA key",
        ),
    ] {
        let error = PolicyKey::from_pem(text.as_bytes()).expect_err(text);
        assert!(error.contains(reason), "{text}: {error}");
    }
    // Truncated, and with trailing bytes.
    let body: String = PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64_decode(&body).expect("base64");
    assert!(PolicyKey::from_spki_der(&der[..der.len() - 1]).is_err());
    let mut longer = der.clone();
    longer.push(0);
    assert!(PolicyKey::from_spki_der(&longer).is_err());
    assert!(PolicyKey::from_spki_der(&der).is_ok());
}

#[test]
fn signature_files_of_the_systemd_shape_are_parsed() {
    let json = format!(
        r#"{{"sha1":[{{"pcrs":[11],"pkfp":"x","pol":"y","sig":"z"}}],"sha256":[{},{},{}]}}"#,
        entry("[11]", A, B, "AAEC"),
        entry("[7,11]", A, C, "AAEC"),
        entry("[11]", C, C, "AQID"),
    );
    let approvals = parse_signatures(json.as_bytes(), &eleven()).expect("valid");
    assert_eq!(approvals.len(), 2);
    assert_eq!(approvals[0].pkfp, [0xaa; 32]);
    assert_eq!(approvals[0].policy, [0xbb; 32]);
    assert_eq!(approvals[0].signature, [0, 1, 2]);
    assert_eq!(approvals[1].signature, [1, 2, 3]);
    let both =
        parse_signatures(json.as_bytes(), &PcrPolicy::new([7, 11]).expect("valid")).expect("valid");
    assert_eq!(both.len(), 1);

    let key = PolicyKey::from_pem(PEM.as_bytes()).expect("key");
    let ours = PolicyKey {
        pkfp: [0xaa; 32],
        ..key.clone()
    };
    assert_eq!(find(&approvals, &ours, &[0xbb; 32]), Ok(&approvals[0]));
    assert_eq!(
        find(&approvals, &ours, &[0xdd; 32]),
        Err(NoApproval::Unapproved)
    );
    assert_eq!(
        find(&approvals, &ours, &[0xcc; 32]),
        Err(NoApproval::OtherKey([0xcc; 32]))
    );
}

#[test]
fn malformed_signature_files_are_refused() {
    let good = entry("[11]", A, B, "AAEC");
    for (json, reason) in [
        (String::new(), "not JSON"),
        ("[1,2]".to_owned(), "not a JSON object"),
        (r#"{"sha1":[]}"#.to_owned(), "no \"sha256\" bank"),
        (
            r#"{"sha256":{}}"#.to_owned(),
            "not a list of signature entries",
        ),
        (
            r#"{"sha256":[]}"#.to_owned(),
            "no approved policy for PCRs sha256:11",
        ),
        (
            format!(r#"{{"sha256":[{}]}}"#, entry("[7]", A, B, "AAEC")),
            "no approved policy",
        ),
        (
            r#"{"sha256":[{"pcrs":[11],"pol":"00","sig":"AA=="}]}"#.to_owned(),
            "missing field `pkfp`",
        ),
        (
            format!(r#"{{"sha256":[{good},{}]}}"#, entry("[24]", A, B, "AAEC")),
            "sha256[1]: PCR 24",
        ),
        (
            format!(r#"{{"sha256":[{}]}}"#, entry("[-1]", A, B, "AAEC")),
            "not a list",
        ),
        (
            format!(r#"{{"sha256":[{}]}}"#, entry("[11]", "abc", B, "AAEC")),
            "\"pkfp\" is not 32 bytes",
        ),
        (
            format!(
                r#"{{"sha256":[{}]}}"#,
                entry("[11]", A, &"g".repeat(64), "AAEC")
            ),
            "\"pol\" is not 32 bytes",
        ),
        (
            format!(r#"{{"sha256":[{}]}}"#, entry("[11]", A, B, "A*EC")),
            "\"sig\" is not valid base64",
        ),
        (
            format!(r#"{{"sha256":[{}]}}"#, entry("[11]", A, B, "")),
            "\"sig\" is not an RSA signature",
        ),
        (
            format!(
                r#"{{"sha256":[{}]}}"#,
                entry("[11]", A, B, &"A".repeat(1000))
            ),
            "\"sig\" is not an RSA signature",
        ),
        (format!(r#"{{"sha256":[{good}]"#), "not JSON"),
    ] {
        let error = parse_signatures(json.as_bytes(), &eleven()).expect_err(&json);
        assert!(error.contains(reason), "{json}: {error}");
    }
}

#[test]
fn base64_is_strict() {
    assert_eq!(base64_decode("").as_deref(), Some(&[][..]));
    assert_eq!(base64_decode("TWFu").as_deref(), Some(&b"Man"[..]));
    assert_eq!(base64_decode("TWE=").as_deref(), Some(&b"Ma"[..]));
    assert_eq!(base64_decode("TQ==").as_deref(), Some(&b"M"[..]));
    assert_eq!(base64_decode("TQ").as_deref(), Some(&b"M"[..]));
    assert_eq!(base64_decode("TW\nFu").as_deref(), Some(&b"Man"[..]));
    for bad in ["T", "TQ=", "TQ===", "T=Q=", "TWFu=", "TW-u", "TQ==TQ=="] {
        assert_eq!(base64_decode(bad), None, "{bad}");
    }
}
