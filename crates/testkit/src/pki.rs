//! Throw-away PKIs built with rcgen: [`ca_params`], the one template of a
//! test CA certificate (for the tests, the benchmarks and ct-loadgen), and
//! [`TestPki`], a root CA and an intermediate CA issuing leaves (final
//! certificates or precertificates) for the end-to-end tests.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

/// OID of the CT precertificate poison extension.
pub const POISON_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 3];

/// What kind of leaf to issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafKind {
    /// A final certificate with the serverAuth EKU.
    Final,
    /// A precertificate: serverAuth EKU and the critical poison extension
    /// (value ASN.1 NULL).
    Precert,
    /// A precertificate whose poison is followed by another (non-critical)
    /// extension, to check that the log keeps the other extensions in order.
    PrecertWithTrailingExt,
    /// A final certificate without any EKU extension (SPEC: the leaf needs
    /// the serverAuth EKU, so a log refuses it; the oracle agrees).
    FinalNoEku,
    /// A final certificate whose EKU is clientAuth only (refused).
    FinalClientAuthOnly,
    /// A "precertificate" whose poison extension is NOT critical (refused).
    PrecertPoisonNotCritical,
    /// A "precertificate" whose poison value is not ASN.1 NULL (refused).
    PrecertPoisonBadValue,
}

impl LeafKind {
    /// Whether a log must treat this leaf as a precertificate (add-pre-chain).
    pub fn is_precert(self) -> bool {
        matches!(self, LeafKind::Precert | LeafKind::PrecertWithTrailingExt)
    }
}

/// A root CA and an intermediate CA (signed by the root) that issues leaves.
pub struct TestPki {
    /// DER of the self-signed root.
    pub root_der: Vec<u8>,
    /// PEM of the self-signed root (what goes into the log's roots file).
    pub root_pem: String,
    /// DER of the intermediate CA.
    pub intermediate_der: Vec<u8>,
    intermediate: Ca,
    /// One key shared by all leaves (the tests only need distinct certificates).
    leaf_key: KeyPair,
    name: String,
}

/// A CA: its certificate and the key it signs with.
pub type Ca = CertifiedIssuer<'static, KeyPair>;

/// Parameters of a test CA certificate: subject `CN=<cn>`; basicConstraints
/// cA without a path length; key usages keyCertSign, cRLSign and
/// digitalSignature; valid from 2024-01-01 to 2035-01-01 (logs check no
/// CA's dates); and an authority key identifier, as real intermediates have.
/// A caller changes any field it tests.
pub fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = rcgen::date_time_ymd(2024, 1, 1);
    p.not_after = rcgen::date_time_ymd(2035, 1, 1);
    p.use_authority_key_identifier_extension = true;
    p
}

/// [`ca_params`] with subject `O=<organization>, CN=<cn>`: for certificates
/// that must say what they are wherever they end up.
pub fn ca_params_with_organization(organization: &str, cn: &str) -> CertificateParams {
    let mut p = ca_params(cn);
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, organization);
    p.distinguished_name.push(DnType::CommonName, cn);
    p
}

/// A self-signed root CA `<name> Root CA` with a fresh key (and no authority
/// key identifier: it has no issuer), and an intermediate CA `<name>
/// Intermediate CA` it issued, signing with `intermediate_key`.
pub fn root_and_intermediate(name: &str, intermediate_key: KeyPair) -> (Ca, Ca) {
    let mut root_params = ca_params(&format!("{name} Root CA"));
    root_params.use_authority_key_identifier_extension = false;
    let root_key = KeyPair::generate().expect("root key");
    let root = Ca::self_signed(root_params, root_key).expect("self-sign root");
    let int_params = ca_params(&format!("{name} Intermediate CA"));
    let intermediate =
        Ca::signed_by(int_params, intermediate_key, &root).expect("sign intermediate");
    (root, intermediate)
}

impl TestPki {
    /// Generates a new root and intermediate whose names contain `name`
    /// (use different names for PKIs that must not chain to each other).
    pub fn new(name: &str) -> TestPki {
        let intermediate_key = KeyPair::generate().expect("intermediate key");
        let (root, intermediate) = root_and_intermediate(name, intermediate_key);
        TestPki {
            root_der: root.der().to_vec(),
            root_pem: root.pem(),
            intermediate_der: intermediate.der().to_vec(),
            intermediate,
            leaf_key: KeyPair::generate().expect("leaf key"),
            name: name.to_string(),
        }
    }

    /// Issues leaf number `serial` (unique per PKI) with the given NotAfter.
    /// Returns its DER.
    pub fn leaf(&self, serial: u64, kind: LeafKind, not_after: OffsetDateTime) -> Vec<u8> {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(
            DnType::CommonName,
            format!("leaf-{serial}.{}.e2e.test", self.name),
        );
        p.subject_alt_names = vec![SanType::DnsName(
            format!(
                "leaf-{serial}.{}.e2e.test",
                self.name.to_lowercase().replace(' ', "-")
            )
            .try_into()
            .expect("dns name"),
        )];
        let mut sn = serial.to_be_bytes().to_vec();
        sn.insert(0, 0x01); // positive, never zero
        p.serial_number = Some(SerialNumber::from_slice(&sn));
        p.not_before = rcgen::date_time_ymd(2025, 6, 1);
        p.not_after = not_after;
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = match kind {
            LeafKind::FinalNoEku => vec![],
            LeafKind::FinalClientAuthOnly => vec![ExtendedKeyUsagePurpose::ClientAuth],
            _ => vec![ExtendedKeyUsagePurpose::ServerAuth],
        };
        let poison = |critical: bool, value: Vec<u8>| {
            let mut e = CustomExtension::from_oid_content(POISON_OID, value);
            e.set_criticality(critical);
            e
        };
        match kind {
            LeafKind::Final | LeafKind::FinalNoEku | LeafKind::FinalClientAuthOnly => {}
            LeafKind::Precert => p.custom_extensions.push(poison(true, vec![5, 0])),
            LeafKind::PrecertWithTrailingExt => {
                p.custom_extensions.push(poison(true, vec![5, 0]));
                // A private-arc extension after the poison: an OCTET STRING.
                p.custom_extensions.push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 55555, 1, serial % 7],
                    vec![4, 3, 0xab, 0xcd, (serial % 251) as u8],
                ));
            }
            LeafKind::PrecertPoisonNotCritical => {
                p.custom_extensions.push(poison(false, vec![5, 0]))
            }
            LeafKind::PrecertPoisonBadValue => p.custom_extensions.push(poison(true, vec![4, 0])),
        }
        p.signed_by(&self.leaf_key, &self.intermediate)
            .expect("sign leaf")
            .der()
            .to_vec()
    }
}

impl TestPki {
    /// `(chain, is_precert)` submissions for leaves `serials`: half final
    /// certificates, a quarter precertificates, a quarter precertificates
    /// with an extension after the poison; NotAfter spread inside
    /// `[not_after_start, not_after_limit)`; chain = leaf + intermediate,
    /// plus the root for every third serial.
    pub fn mixed_chains(
        &self,
        serials: std::ops::Range<u64>,
        not_after_start: &str,
        not_after_limit: &str,
    ) -> Vec<(Vec<Vec<u8>>, bool)> {
        let (start, limit) = (ts(not_after_start), ts(not_after_limit));
        let span_s = (limit - start).whole_seconds().max(2) as u64;
        serials
            .map(|s| {
                let kind = match s % 4 {
                    0 | 2 => LeafKind::Final,
                    1 => LeafKind::Precert,
                    _ => LeafKind::PrecertWithTrailingExt,
                };
                let offset = (s.wrapping_mul(2_654_435_761) % (span_s - 1)) as i64;
                let mut chain = vec![
                    self.leaf(s, kind, start + time::Duration::seconds(offset)),
                    self.intermediate_der.clone(),
                ];
                if s % 3 == 0 {
                    chain.push(self.root_der.clone());
                }
                (chain, kind.is_precert())
            })
            .collect()
    }
}

/// `OffsetDateTime` from an RFC 3339 string, e.g. `"2026-01-01T00:00:00Z"`.
pub fn ts(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).expect("RFC 3339 time")
}

/// Milliseconds since the Unix epoch of an RFC 3339 time.
pub fn unix_ms(s: &str) -> u64 {
    (ts(s).unix_timestamp_nanos() / 1_000_000) as u64
}

/// A TLS server certificate for `127.0.0.1` and `localhost`, issued by a
/// fresh private CA: `(CA PEM, certificate PEM, private key PEM)`.
pub fn loopback_tls(name: &str) -> (String, String, String) {
    let ca = Ca::self_signed(
        ca_params(&format!("{name} TLS CA")),
        KeyPair::generate().expect("CA key"),
    )
    .expect("self-sign CA");
    let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    p.subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let cert = p.signed_by(&key, &ca).expect("sign server certificate");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
