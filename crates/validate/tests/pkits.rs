//! NIST PKITS path-validation cases, checked against what a CT log should
//! do, which is not always what PKITS expects of a full RFC 5280 verifier.
//!
//! The data is read in place from `$PKITS_DIR` (the `x509/PKITS_data`
//! folder of PyPI's cryptography_vectors; `scripts/pkits.sh` installs it and
//! prints the path). Without it the tests print SKIPPED, and fail under CI.
//!
//! Each case is the PKITS test name (section 4.x.y of the PKITS PDF) and
//! its path, end entity first, up to but without the trust anchor, which is
//! the log's only configured root. Where the log's outcome differs from
//! PKITS' Valid/Invalid, `why` says so; the test checks that every such
//! departure is explained.

use std::path::{Path, PathBuf};

use ct_validate::{validate_chain, Endpoint, Policy, Rejection, Roots};

/// The PKITS trust anchor, "Trust Anchor Root Certificate".
const TRUST_ANCHOR: &str = "TrustAnchorRootCertificate";

/// PKITS end entities expire between 1999-01-01 and 2050-01-01 (most in
/// 2030): a window of [1999-01-01, 2051-01-01) covers them all.
const POLICY: Policy = Policy {
    not_after_start: 915_148_800,
    not_after_limit: 2_556_144_000,
    max_chain_length: 10,
};

/// What the log does with a case.
#[derive(Clone, Copy, Debug)]
enum Log {
    Accepts,
    /// The rejection's `reason()` label and the start of its message.
    Rejects(&'static str, &'static str),
}

struct Case {
    name: &'static str,
    path: &'static [&'static str],
    log: Log,
    /// Why the log departs from PKITS' expectation ("" when it does not).
    why: &'static str,
}

const fn case(name: &'static str, path: &'static [&'static str], log: Log) -> Case {
    Case {
        name,
        path,
        log,
        why: "",
    }
}

const fn departs(
    name: &'static str,
    path: &'static [&'static str],
    log: Log,
    why: &'static str,
) -> Case {
    Case {
        name,
        path,
        log,
        why,
    }
}

const DSA: &str = "DSA is not supported (ring has no DSA; Go dropped DSA verification in 1.16)";
const RAW_NAMES: &str =
    "names are compared byte for byte, as Go (and so Sunlight) does, not with RFC 5280's rules";
const DATES: &str = "a CT log does not check validity dates, only the leaf NotAfter window";
const PATH_LEN: &str = "a CT log does not check path length";
const KEY_USAGE: &str = "keyUsage is not checked on issuers, as Go does not";
const OUT_OF_SCOPE: &str = "revocation, policies and name constraints are not a CT log's business";
const CRITICAL: &str = "a CT log does not enforce unknown critical extensions";

use Log::{Accepts, Rejects};

const SIGNATURE_CASES: &[Case] = &[
    case(
        "4.1.1 Valid Signatures Test1",
        &["ValidCertificatePathTest1EE", "GoodCACert"],
        Accepts,
    ),
    case(
        "4.1.2 Invalid CA Signature Test2",
        &["InvalidCASignatureTest2EE", "BadSignedCACert"],
        Rejects(
            "bad_signature",
            "chain[1]: signature does not verify with any accepted root",
        ),
    ),
    case(
        "4.1.3 Invalid EE Signature Test3",
        &["InvalidEESignatureTest3EE", "GoodCACert"],
        Rejects(
            "bad_signature",
            "chain[0]: signature does not verify with chain[1]'s key",
        ),
    ),
    departs(
        "4.1.4 Valid DSA Signatures Test4",
        &["ValidDSASignaturesTest4EE", "DSACACert"],
        Rejects(
            "unsupported_algorithm",
            "chain[0]: unsupported signature algorithm",
        ),
        DSA,
    ),
    departs(
        "4.1.5 Valid DSA Parameter Inheritance Test5",
        &[
            "ValidDSAParameterInheritanceTest5EE",
            "DSAParametersInheritedCACert",
            "DSACACert",
        ],
        Rejects(
            "unsupported_algorithm",
            "chain[0]: unsupported signature algorithm",
        ),
        DSA,
    ),
    // Rejected as PKITS wants, though for the algorithm, not the signature.
    case(
        "4.1.6 Invalid DSA Signature Test6",
        &["InvalidDSASignatureTest6EE", "DSACACert"],
        Rejects(
            "unsupported_algorithm",
            "chain[0]: unsupported signature algorithm",
        ),
    ),
];

const VALIDITY_CASES: &[Case] = &[
    departs(
        "4.2.1 Invalid CA notBefore Date Test1",
        &["InvalidCAnotBeforeDateTest1EE", "BadnotBeforeDateCACert"],
        Accepts,
        DATES,
    ),
    departs(
        "4.2.2 Invalid EE notBefore Date Test2",
        &["InvalidEEnotBeforeDateTest2EE", "GoodCACert"],
        Accepts,
        DATES,
    ),
    case(
        "4.2.3 Valid pre2000 UTC notBefore Date Test3",
        &["Validpre2000UTCnotBeforeDateTest3EE", "GoodCACert"],
        Accepts,
    ),
    case(
        "4.2.4 Valid GeneralizedTime notBefore Date Test4",
        &["ValidGeneralizedTimenotBeforeDateTest4EE", "GoodCACert"],
        Accepts,
    ),
    departs(
        "4.2.5 Invalid CA notAfter Date Test5",
        &["InvalidCAnotAfterDateTest5EE", "BadnotAfterDateCACert"],
        Accepts,
        DATES,
    ),
    departs(
        "4.2.6 Invalid EE notAfter Date Test6",
        &["InvalidEEnotAfterDateTest6EE", "GoodCACert"],
        Accepts,
        DATES,
    ),
    departs(
        "4.2.7 Invalid pre2000 UTC EE notAfter Date Test7",
        &["Invalidpre2000UTCEEnotAfterDateTest7EE", "GoodCACert"],
        Accepts,
        DATES,
    ),
    case(
        "4.2.8 Valid GeneralizedTime notAfter Date Test8",
        &["ValidGeneralizedTimenotAfterDateTest8EE", "GoodCACert"],
        Accepts,
    ),
];

const NAME_CHAINING_CASES: &[Case] = &[
    case(
        "4.3.1 Invalid Name Chaining EE Test1",
        &["InvalidNameChainingTest1EE", "GoodCACert"],
        Rejects("issuer_mismatch", "chain[0]: issuer "),
    ),
    case(
        "4.3.2 Invalid Name Chaining Order Test2",
        &["InvalidNameChainingOrderTest2EE", "NameOrderingCACert"],
        Rejects("issuer_mismatch", "chain[0]: issuer "),
    ),
    departs(
        "4.3.3 Valid Name Chaining Whitespace Test3",
        &["ValidNameChainingWhitespaceTest3EE", "GoodCACert"],
        Rejects("issuer_mismatch", "chain[0]: issuer "),
        RAW_NAMES,
    ),
    departs(
        "4.3.4 Valid Name Chaining Whitespace Test4",
        &["ValidNameChainingWhitespaceTest4EE", "GoodCACert"],
        Rejects("issuer_mismatch", "chain[0]: issuer "),
        RAW_NAMES,
    ),
    departs(
        "4.3.5 Valid Name Chaining Capitalization Test5",
        &["ValidNameChainingCapitalizationTest5EE", "GoodCACert"],
        Rejects("issuer_mismatch", "chain[0]: issuer "),
        RAW_NAMES,
    ),
    case(
        "4.3.6 Valid Name Chaining UIDs Test6",
        &["ValidNameUIDsTest6EE", "UIDCACert"],
        Accepts,
    ),
    case(
        "4.3.7 Valid RFC3280 Mandatory Attribute Types Test7",
        &[
            "ValidRFC3280MandatoryAttributeTypesTest7EE",
            "RFC3280MandatoryAttributeTypesCACert",
        ],
        Accepts,
    ),
    case(
        "4.3.8 Valid RFC3280 Optional Attribute Types Test8",
        &[
            "ValidRFC3280OptionalAttributeTypesTest8EE",
            "RFC3280OptionalAttributeTypesCACert",
        ],
        Accepts,
    ),
    case(
        "4.3.9 Valid UTF8String Encoded Names Test9",
        &[
            "ValidUTF8StringEncodedNamesTest9EE",
            "UTF8StringEncodedNamesCACert",
        ],
        Accepts,
    ),
    departs(
        "4.3.10 Valid Rollover from PrintableString to UTF8String Test10",
        &[
            "ValidRolloverfromPrintableStringtoUTF8StringTest10EE",
            "RolloverfromPrintableStringtoUTF8StringCACert",
        ],
        Rejects("issuer_mismatch", "chain[0]: issuer "),
        RAW_NAMES,
    ),
    departs(
        "4.3.11 Valid UTF8String Case Insensitive Match Test11",
        &[
            "ValidUTF8StringCaseInsensitiveMatchTest11EE",
            "UTF8StringCaseInsensitiveMatchCACert",
        ],
        Rejects("issuer_mismatch", "chain[0]: issuer "),
        RAW_NAMES,
    ),
    // Self-issued key rollover: issuer and subject names repeat along the path.
    case(
        "4.5.1 Valid Basic Self-Issued Old With New Test1",
        &[
            "ValidBasicSelfIssuedOldWithNewTest1EE",
            "BasicSelfIssuedNewKeyOldWithNewCACert",
            "BasicSelfIssuedNewKeyCACert",
        ],
        Accepts,
    ),
    case(
        "4.5.3 Valid Basic Self-Issued New With Old Test3",
        &[
            "ValidBasicSelfIssuedNewWithOldTest3EE",
            "BasicSelfIssuedOldKeyNewWithOldCACert",
            "BasicSelfIssuedOldKeyCACert",
        ],
        Accepts,
    ),
];

const BASIC_CONSTRAINTS_CASES: &[Case] = &[
    case(
        "4.6.1 Invalid Missing basicConstraints Test1",
        &[
            "InvalidMissingbasicConstraintsTest1EE",
            "MissingbasicConstraintsCACert",
        ],
        Rejects(
            "issuer_not_ca",
            "chain[1] is not a CA certificate (no basicConstraints extension)",
        ),
    ),
    case(
        "4.6.2 Invalid cA False Test2",
        &[
            "InvalidcAFalseTest2EE",
            "basicConstraintsCriticalcAFalseCACert",
        ],
        Rejects(
            "issuer_not_ca",
            "chain[1] is not a CA certificate (basicConstraints cA is not true)",
        ),
    ),
    case(
        "4.6.3 Invalid cA False Test3",
        &[
            "InvalidcAFalseTest3EE",
            "basicConstraintsNotCriticalcAFalseCACert",
        ],
        Rejects(
            "issuer_not_ca",
            "chain[1] is not a CA certificate (basicConstraints cA is not true)",
        ),
    ),
    case(
        "4.6.4 Valid basicConstraints Not Critical Test4",
        &[
            "ValidbasicConstraintsNotCriticalTest4EE",
            "basicConstraintsNotCriticalCACert",
        ],
        Accepts,
    ),
    departs(
        "4.6.5 Invalid pathLenConstraint Test5",
        &[
            "InvalidpathLenConstraintTest5EE",
            "pathLenConstraint0subCACert",
            "pathLenConstraint0CACert",
        ],
        Accepts,
        PATH_LEN,
    ),
    departs(
        "4.6.6 Invalid pathLenConstraint Test6",
        &[
            "InvalidpathLenConstraintTest6EE",
            "pathLenConstraint0subCACert",
            "pathLenConstraint0CACert",
        ],
        Accepts,
        PATH_LEN,
    ),
    case(
        "4.6.7 Valid pathLenConstraint Test7",
        &["ValidpathLenConstraintTest7EE", "pathLenConstraint0CACert"],
        Accepts,
    ),
    case(
        "4.6.8 Valid pathLenConstraint Test8",
        &["ValidpathLenConstraintTest8EE", "pathLenConstraint0CACert"],
        Accepts,
    ),
    departs(
        "4.6.9 Invalid pathLenConstraint Test9",
        &[
            "InvalidpathLenConstraintTest9EE",
            "pathLenConstraint6subsubCA00Cert",
            "pathLenConstraint6subCA0Cert",
            "pathLenConstraint6CACert",
        ],
        Accepts,
        PATH_LEN,
    ),
    departs(
        "4.6.10 Invalid pathLenConstraint Test10",
        &[
            "InvalidpathLenConstraintTest10EE",
            "pathLenConstraint6subsubCA00Cert",
            "pathLenConstraint6subCA0Cert",
            "pathLenConstraint6CACert",
        ],
        Accepts,
        PATH_LEN,
    ),
    departs(
        "4.6.11 Invalid pathLenConstraint Test11",
        &[
            "InvalidpathLenConstraintTest11EE",
            "pathLenConstraint6subsubsubCA11XCert",
            "pathLenConstraint6subsubCA11Cert",
            "pathLenConstraint6subCA1Cert",
            "pathLenConstraint6CACert",
        ],
        Accepts,
        PATH_LEN,
    ),
    departs(
        "4.6.12 Invalid pathLenConstraint Test12",
        &[
            "InvalidpathLenConstraintTest12EE",
            "pathLenConstraint6subsubsubCA11XCert",
            "pathLenConstraint6subsubCA11Cert",
            "pathLenConstraint6subCA1Cert",
            "pathLenConstraint6CACert",
        ],
        Accepts,
        PATH_LEN,
    ),
    case(
        "4.6.13 Valid pathLenConstraint Test13",
        &[
            "ValidpathLenConstraintTest13EE",
            "pathLenConstraint6subsubsubCA41XCert",
            "pathLenConstraint6subsubCA41Cert",
            "pathLenConstraint6subCA4Cert",
            "pathLenConstraint6CACert",
        ],
        Accepts,
    ),
    case(
        "4.6.14 Valid pathLenConstraint Test14",
        &[
            "ValidpathLenConstraintTest14EE",
            "pathLenConstraint6subsubsubCA41XCert",
            "pathLenConstraint6subsubCA41Cert",
            "pathLenConstraint6subCA4Cert",
            "pathLenConstraint6CACert",
        ],
        Accepts,
    ),
    case(
        "4.6.15 Valid Self-Issued pathLenConstraint Test15",
        &[
            "ValidSelfIssuedpathLenConstraintTest15EE",
            "pathLenConstraint0SelfIssuedCACert",
            "pathLenConstraint0CACert",
        ],
        Accepts,
    ),
    departs(
        "4.6.16 Invalid Self-Issued pathLenConstraint Test16",
        &[
            "InvalidSelfIssuedpathLenConstraintTest16EE",
            "pathLenConstraint0subCA2Cert",
            "pathLenConstraint0SelfIssuedCACert",
            "pathLenConstraint0CACert",
        ],
        Accepts,
        PATH_LEN,
    ),
    case(
        "4.6.17 Valid Self-Issued pathLenConstraint Test17",
        &[
            "ValidSelfIssuedpathLenConstraintTest17EE",
            "pathLenConstraint1SelfIssuedsubCACert",
            "pathLenConstraint1subCACert",
            "pathLenConstraint1SelfIssuedCACert",
            "pathLenConstraint1CACert",
        ],
        Accepts,
    ),
];

/// Checks a CT log deliberately leaves out: a few cases to document them.
const OUT_OF_SCOPE_CASES: &[Case] = &[
    departs(
        "4.4.1 Invalid Missing CRL Test1",
        &["InvalidMissingCRLTest1EE", "NoCRLCACert"],
        Accepts,
        OUT_OF_SCOPE,
    ),
    departs(
        "4.4.2 Invalid Revoked CA Test2",
        &["InvalidRevokedCATest2EE", "RevokedsubCACert", "GoodCACert"],
        Accepts,
        OUT_OF_SCOPE,
    ),
    departs(
        "4.7.1 Invalid keyUsage Critical keyCertSign False Test1",
        &[
            "InvalidkeyUsageCriticalkeyCertSignFalseTest1EE",
            "keyUsageCriticalkeyCertSignFalseCACert",
        ],
        Accepts,
        KEY_USAGE,
    ),
    departs(
        "4.7.2 Invalid keyUsage Not Critical keyCertSign False Test2",
        &[
            "InvalidkeyUsageNotCriticalkeyCertSignFalseTest2EE",
            "keyUsageNotCriticalkeyCertSignFalseCACert",
        ],
        Accepts,
        KEY_USAGE,
    ),
    case(
        "4.7.3 Valid keyUsage Not Critical Test3",
        &[
            "ValidkeyUsageNotCriticalTest3EE",
            "keyUsageNotCriticalCACert",
        ],
        Accepts,
    ),
    departs(
        "4.12.1 Invalid inhibitAnyPolicy Test1",
        &["InvalidinhibitAnyPolicyTest1EE", "inhibitAnyPolicy0CACert"],
        Accepts,
        OUT_OF_SCOPE,
    ),
    departs(
        "4.13.2 Invalid DN nameConstraints Test2",
        &[
            "InvalidDNnameConstraintsTest2EE",
            "nameConstraintsDN1CACert",
        ],
        Accepts,
        OUT_OF_SCOPE,
    ),
    departs(
        "4.16.2 Invalid Unknown Critical Certificate Extension Test2",
        &[
            "InvalidUnknownCriticalCertificateExtensionTest2EE",
            "GoodCACert",
        ],
        Accepts,
        CRITICAL,
    ),
];

/// The PKITS data folder, or None (after saying SKIPPED) when absent;
/// under CI, where every test must really run, absence fails the test.
fn pkits_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PKITS_DIR").map(PathBuf::from);
    if let Some(dir) = dir.filter(|d| d.join("certs").is_dir()) {
        return Some(dir);
    }
    let what = "PKITS data not found: set PKITS_DIR=$(scripts/pkits.sh | tail -n 1)";
    if std::env::var_os("CI").is_some() {
        panic!("{what}");
    }
    eprintln!("SKIPPED: {what}");
    None
}

fn read_cert(dir: &Path, stem: &str) -> Vec<u8> {
    let path = dir.join("certs").join(format!("{stem}.crt"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs one case; returns a line describing the mismatch, if any.
fn run(dir: &Path, roots: &Roots, policy: &Policy, case: &Case) -> Option<String> {
    let chain: Vec<Vec<u8>> = case.path.iter().map(|s| read_cert(dir, s)).collect();
    let got = validate_chain(&chain, roots, policy, Endpoint::AddChain).map(|_| ());
    let outcome = match &got {
        Ok(()) => "accepted".to_string(),
        Err(e) => format!("rejected [{}] {e}", e.reason()),
    };
    eprintln!("{}: {outcome}", case.name);
    let ok = match (case.log, &got) {
        (Log::Accepts, Ok(())) => true,
        (Log::Rejects(reason, prefix), Err(e)) => {
            e.reason() == reason && e.to_string().starts_with(prefix)
        }
        _ => false,
    };
    (!ok).then(|| format!("{}: expected {:?}, got {outcome}", case.name, case.log))
}

/// Whether PKITS expects the path to validate ("4.1.1 Valid …").
fn pkits_says_valid(name: &str) -> bool {
    !name.contains(" Invalid ")
}

fn check(cases: &[Case]) {
    let Some(dir) = pkits_dir() else { return };
    let roots = Roots::from_ders(vec![read_cert(&dir, TRUST_ANCHOR)]).unwrap();
    let mut failures: Vec<String> = cases
        .iter()
        .filter_map(|case| run(&dir, &roots, &POLICY, case))
        .collect();
    for case in cases {
        let departs = pkits_says_valid(case.name) != matches!(case.log, Log::Accepts);
        if departs == case.why.is_empty() {
            failures.push(format!(
                "{}: `why` must be given exactly when the log departs from PKITS",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn signature_verification_4_1() {
    check(SIGNATURE_CASES);
}

#[test]
fn validity_periods_4_2_are_not_enforced() {
    check(VALIDITY_CASES);
}

#[test]
fn name_chaining_4_3_and_self_issued_4_5() {
    check(NAME_CHAINING_CASES);
}

#[test]
fn basic_constraints_4_6() {
    check(BASIC_CONSTRAINTS_CASES);
}

#[test]
fn out_of_scope_checks_are_not_enforced() {
    check(OUT_OF_SCOPE_CASES);
}

/// The one date a log does check is the leaf NotAfter against its window:
/// "4.2.7 Invalid pre2000 UTC EE notAfter Date Test7" ends 1999-01-01.
#[test]
fn the_not_after_window_still_applies() {
    let Some(dir) = pkits_dir() else { return };
    let roots = Roots::from_ders(vec![read_cert(&dir, TRUST_ANCHOR)]).unwrap();
    let chain: Vec<Vec<u8>> = ["Invalidpre2000UTCEEnotAfterDateTest7EE", "GoodCACert"]
        .iter()
        .map(|s| read_cert(&dir, s))
        .collect();
    let from_2000 = Policy {
        not_after_start: 946_684_800,
        ..POLICY
    };
    let err = validate_chain(&chain, &roots, &from_2000, Endpoint::AddChain).unwrap_err();
    assert!(
        matches!(err, Rejection::NotAfterTooEarly { .. }),
        "4.2.7 under a window from 2000: {err}"
    );
}
