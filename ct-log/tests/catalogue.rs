//! A catalogue of hostile or broken submissions sent over HTTP to the real
//! `ct-log` binary. Each one must get exactly the expected status, a
//! `text/plain` body of one line, and a reason that names the actual
//! problem. Afterwards the log must still be healthy: a good certificate
//! and a good precertificate get SCTs, nothing rejected was logged, and
//! the checkpoint and tiles verify with the independent oracle crates.
//!
//! Content type: the server deliberately does not check `Content-Type`
//! (the README's own `curl -d` example sends
//! `application/x-www-form-urlencoded`, and RFC 6962 does not require a
//! type), so a wrong content type is never a 415: the body decides.

mod common;

use std::time::Duration;

use base64::prelude::*;
use common::CT_LOG;
use ct_testkit::client::{chain_body, parse_sct, submission_url, unpooled_http_client, Submission};
use ct_testkit::der::tlv;
use ct_testkit::hostile::{
    break_signature, extension, poison, raw_request, replace_last, replace_once, HostilePki, EKU,
};
use ct_testkit::pki::ts;
use ct_testkit::server::{LogSpec, Server};
use ct_testkit::verify::verify_log;
use ct_testkit::window::{mid_window, rfc3339, LIMIT, START};
use rcgen::ExtendedKeyUsagePurpose;

/// The server's body limit (128 KiB).
const MAX_BODY: usize = 128 * 1024;

/// One bad request and what the server must answer.
struct Case {
    name: String,
    method: &'static str,
    /// Endpoint under the submission prefix, e.g. `ct/v1/add-chain`.
    endpoint: &'static str,
    /// Extra header lines; `Content-Length` is added unless a
    /// `Transfer-Encoding` or `Content-Length` line is given here.
    headers: Vec<String>,
    body: Vec<u8>,
    status: u16,
    /// Every one of these must appear in the one-line reason.
    reasons: Vec<String>,
    /// How long the server may take to start answering.
    timeout: Duration,
}

const ADD_CHAIN: &str = "ct/v1/add-chain";
const ADD_PRE: &str = "ct/v1/add-pre-chain";
const GET_ROOTS: &str = "ct/v1/get-roots";

fn json_type() -> Vec<String> {
    vec!["Content-Type: application/json".to_string()]
}

fn case(name: &str, endpoint: &'static str, body: Vec<u8>, status: u16, reasons: &[&str]) -> Case {
    Case {
        name: name.to_string(),
        method: "POST",
        endpoint,
        headers: json_type(),
        body,
        status,
        reasons: reasons.iter().map(|r| r.to_string()).collect(),
        timeout: Duration::from_secs(20),
    }
}

fn b64_body(elements: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "chain": elements })).unwrap()
}

/// Sends one case over a fresh connection and checks the answer.
async fn run(base: &str, log_path: &str, c: &Case) -> Result<(), String> {
    let path = format!("{log_path}/{}", c.endpoint);
    let mut headers = c.headers.clone();
    let explicit_length = headers.iter().any(|h| {
        let h = h.to_ascii_lowercase();
        h.starts_with("content-length:") || h.starts_with("transfer-encoding:")
    });
    if !explicit_length && (!c.body.is_empty() || c.method == "POST") {
        headers.push(format!("Content-Length: {}", c.body.len()));
    }
    let (base_s, method, body) = (base.to_string(), c.method, c.body.clone());
    // A connection reset can lose the answer of a request the server
    // refuses before reading its body; retry only that.
    let mut outcome = Err(String::new());
    for _ in 0..3 {
        let (b, p, h, bd, t) = (
            base_s.clone(),
            path.clone(),
            headers.clone(),
            body.clone(),
            c.timeout,
        );
        outcome = tokio::task::spawn_blocking(move || raw_request(&b, method, &p, &h, &bd, t))
            .await
            .unwrap();
        match &outcome {
            Err(e) if e.contains("reset") || e.contains("roken pipe") => continue,
            _ => break,
        }
    }
    let (status, resp_headers, resp_body) =
        outcome.map_err(|e| format!("{}: no response: {e}", c.name))?;
    let text = String::from_utf8_lossy(&resp_body).to_string();
    let what = format!("{} ({} {path})", c.name, c.method);
    if status != c.status {
        return Err(format!(
            "{what}: expected {}, got {status} with body {text:?}",
            c.status
        ));
    }
    let ctype = resp_headers
        .iter()
        .find_map(|h| h.strip_prefix("content-type: "))
        .unwrap_or("");
    if !ctype.starts_with("text/plain") {
        return Err(format!(
            "{what}: {status} with Content-Type {ctype:?}, expected text/plain; body {text:?}"
        ));
    }
    let line = text.strip_suffix('\n').unwrap_or(&text);
    if line.trim().is_empty() || line.contains('\n') || line.contains('\r') {
        return Err(format!(
            "{what}: body must be one non-empty line, got {text:?}"
        ));
    }
    for reason in &c.reasons {
        if !line.contains(reason.as_str()) {
            return Err(format!(
                "{what}: {status} reason {line:?} does not say {reason:?}"
            ));
        }
    }
    if status == 405 {
        // RFC 9110 §15.5.6: a 405 MUST list the allowed methods.
        let allow = resp_headers
            .iter()
            .find_map(|h| h.strip_prefix("allow: "))
            .unwrap_or("");
        let want = if c.endpoint == GET_ROOTS || c.endpoint.starts_with("ct/v1/get-") {
            "GET"
        } else {
            "POST"
        };
        if !allow.split(',').any(|m| m.trim() == want) {
            return Err(format!(
                "{what}: 405 without an Allow header listing {want} (Allow: {allow:?})"
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submission_catalogue() {
    let pki = HostilePki::new("Cat");
    let impostor = HostilePki::new("Cat"); // same names, other keys
    let unknown = HostilePki::new("Unknown");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("roots.pem"), &pki.root_pem).unwrap();
    let mut spec = LogSpec::new(
        "catalogue",
        "http://ct.test/catalogue",
        "http://ct.test/catalogue",
        "roots.pem",
        &START,
        &LIMIT,
    );
    spec.period_ms = 150;
    let config = ct_testkit::server::write_config(dir.path(), &[&spec]);
    let log = spec.handle(dir.path());
    let server = Server::start(CT_LOG, &config, "server");
    let base = server.base_url.clone();

    let good_na = mid_window();
    let int = pki.intermediate_der.clone();
    let chain = |leaf: Vec<u8>| chain_body(&[leaf, int.clone()]);
    let leaf = pki.leaf(100, good_na);
    let leaf_b64 = BASE64_STANDARD.encode(&leaf);
    let int_b64 = BASE64_STANDARD.encode(&int);
    let ecdsa_sha256 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let ecdsa_sha512 = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    // NotAfters just outside the window, and the refusals that name them.
    let (before, after) = (
        ts(&START) - time::Duration::seconds(1),
        ts(&LIMIT) + time::Duration::days(151),
    );
    let before_start = format!(
        "leaf NotAfter {} is before the log's not_after_start {}",
        rfc3339(before),
        *START
    );
    let at_limit = format!(
        "leaf NotAfter {} is not before the log's not_after_limit {}",
        *LIMIT, *LIMIT
    );
    let after_limit = format!(
        "leaf NotAfter {} is not before the log's not_after_limit",
        rfc3339(after)
    );

    // A table, one case a line (rustfmt would spread each over seven).
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        // --- The request body is not the JSON we want.
        case("not JSON", ADD_CHAIN, b"this is not json".to_vec(), 400, &["invalid request body", "expected"]),
        case("empty body", ADD_CHAIN, Vec::new(), 400, &["invalid request body", "expected a JSON object"]),
        case("JSON null", ADD_CHAIN, b"null".to_vec(), 400, &["invalid request body", "expected a JSON object"]),
        case("JSON array instead of object", ADD_CHAIN, b"[]".to_vec(), 400, &["invalid request body", "expected a JSON object"]),
        case(
            "JSON array [[chain]] instead of an object",
            ADD_CHAIN,
            serde_json::to_vec(&serde_json::json!([[
                BASE64_STANDARD.encode(pki.leaf(107, good_na)),
                int_b64.clone()
            ]]))
            .unwrap(),
            400,
            &["invalid request body"],
        ),
        case("JSON without chain", ADD_CHAIN, b"{}".to_vec(), 400, &["invalid request body", "missing field `chain`"]),
        case("chain is a string", ADD_CHAIN, br#"{"chain":"MIIB"}"#.to_vec(), 400, &["invalid request body", "invalid type: string"]),
        case("chain is null", ADD_CHAIN, br#"{"chain":null}"#.to_vec(), 400, &["invalid request body", "invalid type: null"]),
        case("chain is an object", ADD_CHAIN, br#"{"chain":{"0":"AA=="}}"#.to_vec(), 400, &["invalid request body", "invalid type: map"]),
        case("chain element is a number", ADD_CHAIN, br#"{"chain":[42]}"#.to_vec(), 400, &["invalid request body", "invalid type: integer"]),
        case("chain element is null", ADD_PRE, br#"{"chain":[null]}"#.to_vec(), 400, &["invalid request body", "invalid type: null"]),
        case("truncated JSON", ADD_CHAIN, br#"{"chain":["MII"#.to_vec(), 400, &["invalid request body", "EOF"]),
        case("trailing bytes after the JSON", ADD_CHAIN, br#"{"chain":[]} {}"#.to_vec(), 400, &["invalid request body", "trailing characters"]),
        case("duplicate chain field", ADD_CHAIN, format!(r#"{{"chain":[],"chain":["{leaf_b64}"]}}"#).into_bytes(), 400, &["invalid request body", "duplicate field `chain`"]),
        case("UTF-8 BOM before the JSON", ADD_CHAIN, [&b"\xef\xbb\xbf"[..], &chain(leaf.clone())].concat(), 400, &["invalid request body", "expected a JSON object"]),
        case("unknown field nested 50000 deep (skipped, no stack overflow)", ADD_CHAIN, format!(r#"{{"x":{}{},"chain":[]}}"#, "[".repeat(50_000), "]".repeat(50_000)).into_bytes(), 400, &["empty chain"]),
        case("chain nested 50000 deep", ADD_CHAIN, format!(r#"{{"chain":{}{}}}"#, "[".repeat(50_000), "]".repeat(50_000)).into_bytes(), 400, &["invalid request body", "invalid type: sequence"]),
        case("invalid UTF-8 in a JSON string", ADD_CHAIN, b"{\"chain\":[\"\xff\xfe\"]}".to_vec(), 400, &["invalid request body", "invalid unicode"]),
        // --- Chain shape.
        case("empty chain (add-chain)", ADD_CHAIN, br#"{"chain":[]}"#.to_vec(), 400, &["empty chain"]),
        case("empty chain (add-pre-chain)", ADD_PRE, br#"{"chain":[]}"#.to_vec(), 400, &["empty chain"]),
        case("11 elements (checked before parsing)", ADD_CHAIN, b64_body(&["AA=="; 11]), 400, &["chain has 11 certificates; this log accepts at most 10"]),
        // --- base64.
        case("bad base64", ADD_CHAIN, b64_body(&["!!!not base64!!!"]), 400, &["chain[0] is not valid base64"]),
        case("bad base64 in chain[1]", ADD_CHAIN, b64_body(&[&leaf_b64, "@@@@"]), 400, &["chain[1] is not valid base64"]),
        case("base64 without padding", ADD_CHAIN, b64_body(&["MIIB"[..3].as_ref()]), 400, &["chain[0] is not valid base64"]),
        case("PEM text instead of base64 DER", ADD_CHAIN, b64_body(&[&format!("-----BEGIN CERTIFICATE-----\n{leaf_b64}\n-----END CERTIFICATE-----\n")]), 400, &["chain[0] is not valid base64"]),
        // --- DER.
        case("empty element", ADD_CHAIN, b64_body(&[""]), 400, &["chain[0] is not a valid X.509 DER certificate"]),
        case("not DER at all", ADD_CHAIN, chain_body(&[b"hello world".to_vec()]), 400, &["chain[0] is not a valid X.509 DER certificate"]),
        case("DER but not a certificate", ADD_CHAIN, chain_body(&[vec![0x30, 0x03, 0x02, 0x01, 0x05], int.clone()]), 400, &["chain[0] is not a valid X.509 DER certificate"]),
        case("trailing garbage after the leaf DER", ADD_CHAIN, chain_body(&[[&leaf[..], &[0u8, 0][..]].concat(), int.clone()]), 400, &["chain[0] has 2 trailing bytes after the certificate"]),
        case("trailing garbage after the intermediate DER", ADD_CHAIN, chain_body(&[leaf.clone(), [&int[..], &[5u8, 0][..]].concat()]), 400, &["chain[1] has 2 trailing bytes after the certificate"]),
        case("truncated leaf (10 bytes short)", ADD_CHAIN, chain_body(&[leaf[..leaf.len() - 10].to_vec(), int.clone()]), 400, &["chain[0] is not a valid X.509 DER certificate"]),
        case("truncated leaf (1 byte short)", ADD_CHAIN, chain_body(&[leaf[..leaf.len() - 1].to_vec(), int.clone()]), 400, &["chain[0] is not a valid X.509 DER certificate"]),
        case("garbage intermediate", ADD_CHAIN, chain_body(&[leaf.clone(), vec![1, 2, 3]]), 400, &["chain[1] is not a valid X.509 DER certificate"]),
        case("good chain followed by junk elements", ADD_CHAIN, chain_body(&[leaf.clone(), int.clone(), pki.root_der.clone(), b"junk".to_vec()]), 400, &["chain[3] is not a valid X.509 DER certificate"]),
        case("certificate version 6 (field value 5), properly signed", ADD_CHAIN, chain(pki.edit_tbs(&leaf, |f| f[0] = tlv(0xa0, &[2, 1, 5]))), 400, &["chain[0] is not a valid X.509 DER certificate", "version"]),
        case("v1 certificate (no version field) with extensions, properly signed", ADD_CHAIN, chain(pki.edit_tbs(&leaf, |f| { f.remove(0); })), 400, &["chain[0] is not a valid X.509 DER certificate", "version"]),
        case("v2 precertificate with extensions, properly signed", ADD_PRE, chain(pki.edit_tbs(&pki.precert(106, good_na), |f| f[0] = tlv(0xa0, &[2, 1, 1]))), 400, &["chain[0] is not a valid X.509 DER certificate", "version"]),
        case("tampered subject name (signature not redone)", ADD_CHAIN, chain(replace_once(&leaf, b"leaf-100.", b"leaf-900.")), 400, &["chain[0]: signature does not verify with chain[1]'s key"]),
        // --- Chain building.
        case("leaf alone (issuer not submitted)", ADD_CHAIN, chain_body(std::slice::from_ref(&leaf)), 400, &["chain[0]: does not chain to an accepted root", "Cat Intermediate CA"]),
        case("unknown root, root included", ADD_CHAIN, chain_body(&[unknown.leaf(1, good_na), unknown.intermediate_der.clone(), unknown.root_der.clone()]), 400, &["chain[2]: does not chain to an accepted root", "Unknown Root CA"]),
        case("unknown root, root omitted", ADD_CHAIN, chain_body(&[unknown.leaf(2, good_na), unknown.intermediate_der.clone()]), 400, &["chain[1]: does not chain to an accepted root", "Unknown Root CA"]),
        case("name mismatch (wrong intermediate)", ADD_CHAIN, chain_body(&[pki.leaf(101, good_na), unknown.intermediate_der.clone()]), 400, &["chain[0]: issuer", "Cat Intermediate CA", "does not match chain[1]'s subject", "Unknown Intermediate CA"]),
        case("name mismatch (root instead of intermediate)", ADD_CHAIN, chain_body(&[pki.leaf(102, good_na), pki.root_der.clone()]), 400, &["chain[0]: issuer", "does not match chain[1]'s subject", "Cat Root CA"]),
        case("broken leaf signature", ADD_CHAIN, chain(break_signature(&pki.leaf(103, good_na))), 400, &["chain[0]: signature does not verify with chain[1]'s key"]),
        case("broken intermediate signature", ADD_CHAIN, chain_body(&[pki.leaf(104, good_na), break_signature(&int)]), 400, &["chain[1]: signature does not verify with any accepted root named", "Cat Root CA"]),
        case("impostor intermediate (same root name, other key)", ADD_CHAIN, chain_body(&[impostor.leaf(1, good_na), impostor.intermediate_der.clone()]), 400, &["chain[1]: signature does not verify with any accepted root named", "Cat Root CA"]),
        case("impostor chain with impostor root", ADD_CHAIN, chain_body(&[impostor.leaf(2, good_na), impostor.intermediate_der.clone(), impostor.root_der.clone()]), 400, &["chain[2]: signature does not verify with any accepted root named"]),
        case("unsupported signature algorithm (ecdsa-with-SHA512)", ADD_CHAIN, chain(replace_last(&pki.leaf(105, good_na), &ecdsa_sha256, &ecdsa_sha512)), 400, &["chain[0]: unsupported signature algorithm 1.2.840.10045.4.3.4"]),
        // --- NotAfter window [START, LIMIT).
        case("NotAfter 1 s before the window", ADD_CHAIN, chain(pki.leaf(110, before)), 400, &[before_start.as_str()]),
        case("NotAfter = window end (exclusive)", ADD_CHAIN, chain(pki.leaf(111, ts(&LIMIT))), 400, &[at_limit.as_str()]),
        case("NotAfter after the window", ADD_CHAIN, chain(pki.leaf(112, after)), 400, &[after_limit.as_str()]),
        case("NotAfter in 9999 (GeneralizedTime)", ADD_CHAIN, chain(pki.leaf(113, ts("9999-12-31T23:59:59Z"))), 400, &["leaf NotAfter 9999-12-31T23:59:59Z is not before the log's not_after_limit"]),
        case("NotAfter in 1970", ADD_CHAIN, chain(pki.leaf(114, ts("1970-01-01T00:00:00Z"))), 400, &["leaf NotAfter 1970-01-01T00:00:00Z is before the log's not_after_start"]),
        case("precert NotAfter after the window", ADD_PRE, chain(pki.precert(115, after)), 400, &[after_limit.as_str()]),
        // --- EKU.
        case("clientAuth-only EKU", ADD_CHAIN, chain(pki.leaf_with(120, good_na, |p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth])), 400, &["leaf ExtendedKeyUsage has neither serverAuth nor anyExtendedKeyUsage"]),
        case("precert with codeSigning-only EKU", ADD_PRE, chain(pki.leaf_with(121, good_na, |p| { p.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning]; p.custom_extensions.push(poison(true, vec![5, 0])) })), 400, &["leaf ExtendedKeyUsage has neither serverAuth nor anyExtendedKeyUsage"]),
        case("malformed EKU (NULL, not a SEQUENCE)", ADD_CHAIN, chain(pki.leaf_with(122, good_na, |p| { p.extended_key_usages = vec![]; p.custom_extensions.push(extension(EKU, false, vec![5, 0])) })), 400, &["chain[0] has a malformed ExtendedKeyUsage extension"]),
        case("EKU extension twice", ADD_CHAIN, chain(pki.leaf_with(123, good_na, |p| p.custom_extensions.push(extension(EKU, false, vec![0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01])))), 400, &["chain[0] has a malformed ExtendedKeyUsage extension"]),
        // --- Precertificates.
        case("precert to add-chain", ADD_CHAIN, chain(pki.precert(130, good_na)), 400, &["add-chain got a precertificate; use add-pre-chain"]),
        case("final cert to add-pre-chain", ADD_PRE, chain(pki.leaf(131, good_na)), 400, &["add-pre-chain got a certificate without the precertificate poison; use add-chain"]),
        case("poison not critical (add-pre-chain)", ADD_PRE, chain(pki.leaf_with(132, good_na, |p| p.custom_extensions.push(poison(false, vec![5, 0])))), 400, &["precertificate poison extension is not critical"]),
        case("poison not critical (add-chain)", ADD_CHAIN, chain(pki.leaf_with(133, good_na, |p| p.custom_extensions.push(poison(false, vec![5, 0])))), 400, &["precertificate poison extension is not critical"]),
        case("poison value OCTET STRING, not NULL", ADD_PRE, chain(pki.leaf_with(134, good_na, |p| p.custom_extensions.push(poison(true, vec![4, 0])))), 400, &["precertificate poison extension value is not ASN.1 NULL"]),
        case("poison value empty", ADD_PRE, chain(pki.leaf_with(135, good_na, |p| p.custom_extensions.push(poison(true, vec![])))), 400, &["precertificate poison extension value is not ASN.1 NULL"]),
        case("poison value NULL plus a trailing byte", ADD_PRE, chain(pki.leaf_with(136, good_na, |p| p.custom_extensions.push(poison(true, vec![5, 0, 0])))), 400, &["precertificate poison extension value is not ASN.1 NULL"]),
        case("poison twice", ADD_PRE, chain(pki.leaf_with(137, good_na, |p| { p.custom_extensions.push(poison(true, vec![5, 0])); p.custom_extensions.push(poison(true, vec![5, 0])) })), 400, &["precertificate poison extension appears more than once"]),
        case("precert issued by a precertificate signing certificate", ADD_PRE, chain_body(&[pki.precert_via_signer(138, good_na), pki.precert_signer_der.clone(), int.clone()]), 400, &["chain[1] is a precertificate signing certificate"]),
        // --- Content type is not checked: the body decides (never 415).
        Case { headers: vec!["Content-Type: text/plain".into()], ..case("text/plain body that is not JSON", ADD_CHAIN, b"nope".to_vec(), 400, &["invalid request body"]) },
        Case { headers: vec![], ..case("no Content-Type, empty chain", ADD_CHAIN, br#"{"chain":[]}"#.to_vec(), 400, &["empty chain"]) },
        // --- Size limit (128 KiB): exactly at the limit is read, one more byte is not.
        case("body of exactly 128 KiB (read, then rejected)", ADD_CHAIN, padded_body(MAX_BODY), 400, &["empty chain"]),
        case("body of 128 KiB + 1 (413)", ADD_CHAIN, padded_body(MAX_BODY + 1), 413, &["larger than 131072 bytes"]),
        Case { headers: vec!["Content-Type: application/json".into(), "Content-Length: 204800".into()], ..case("200 KiB declared, 136 KiB sent (413 before reading all)", ADD_CHAIN, padded_body(136 * 1024), 413, &["larger than 131072 bytes"]) },
        Case { headers: vec!["Content-Type: application/json".into(), "Content-Length: 10000000000".into()], timeout: Duration::from_secs(5), ..case("10 GB declared, nothing sent (413 at once)", ADD_CHAIN, Vec::new(), 413, &["larger than 131072 bytes"]) },
        Case { headers: vec!["Content-Type: application/json".into(), "Transfer-Encoding: chunked".into()], ..case("140 KiB chunked body (no length)", ADD_PRE, chunked(&padded_body(140 * 1024)), 413, &["length limit exceeded"]) },
        // --- Methods and paths.
        Case { method: "GET", headers: vec![], ..case("GET add-chain", ADD_CHAIN, Vec::new(), 405, &["method not allowed"]) },
        Case { method: "GET", headers: vec![], ..case("GET add-pre-chain", ADD_PRE, Vec::new(), 405, &["method not allowed"]) },
        Case { method: "GET", ..case("GET add-chain with a good chain as body", ADD_CHAIN, chain(pki.leaf(140, good_na)), 405, &["method not allowed"]) },
        Case { method: "PUT", ..case("PUT add-chain", ADD_CHAIN, chain(pki.leaf(141, good_na)), 405, &["method not allowed"]) },
        Case { method: "DELETE", headers: vec![], ..case("DELETE add-pre-chain", ADD_PRE, Vec::new(), 405, &["method not allowed"]) },
        case("POST get-roots", GET_ROOTS, b"{}".to_vec(), 405, &["method not allowed"]),
        case("POST to an unknown endpoint", "ct/v1/add-chains", chain(pki.leaf(142, good_na)), 404, &["no such endpoint"]),
        case("POST get-sth (an RFC 6962 read)", "ct/v1/get-sth", Vec::new(), 405, &["method not allowed"]),
        case("POST to an unknown RFC 6962 read", "ct/v1/get-sth-consistensy", Vec::new(), 404, &["no such endpoint"]),
    ];
    // Every case is distinct.
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "duplicate case names");

    let mut failures = Vec::new();
    for c in &cases {
        if let Err(e) = run(&base, &log.submission_path, c).await {
            failures.push(e);
        }
    }
    // A few cases also sent through reqwest, as a CA would.
    let http = unpooled_http_client();
    let big = format!("{{\"chain\":[\"{}\"]}}", "A".repeat(140 * 1024)).into_bytes();
    match http
        .post(submission_url(&base, &log, ADD_CHAIN))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
    {
        Ok(r) => {
            let status = r.status().as_u16();
            if status != 413 {
                failures.push(format!(
                    "140 KiB body through reqwest: expected 413, got {status}"
                ));
            }
        }
        Err(e) => failures.push(format!("140 KiB body through reqwest: no response: {e}")),
    }
    // Ambiguous in SPEC.md ("the leaf needs serverAuth EKU"): a leaf with
    // no EKU extension at all. RFC 5280 reads a missing EKU as
    // unrestricted (Go's x509, so Sunlight, accept it); the Azul oracle
    // refuses it. Either answer passes if it is a clean one: 400 with one
    // line, or 200 with an SCT (and then the entry is in the tree).
    let no_eku = chain_body(&[
        pki.leaf_with(150, good_na, |p| p.extended_key_usages = vec![]),
        int.clone(),
    ]);
    let r = ct_testkit::client::post(&http, &submission_url(&base, &log, ADD_CHAIN), no_eku).await;
    let mut accepted = 0u64;
    if r.status == 200 {
        let sct = parse_sct(&r.body).expect("SCT for the leaf without EKU");
        assert_eq!(sct.id, log.log_id);
        accepted += 1;
    } else if r.status != 400 || r.text().trim().is_empty() || r.text().trim().contains('\n') {
        failures.push(format!("leaf without any EKU: {} {:?}", r.status, r.text()));
    }
    let total = cases.len() + 1;
    eprintln!(
        "catalogue: {total} bad requests, {} failures",
        failures.len()
    );

    // The log is still healthy: a final certificate (sent the way the
    // README's `curl -d` sends it) and a precertificate get SCTs, the tree
    // holds exactly those two entries, and everything verifies.
    let good = vec![pki.leaf(1, good_na), int.clone(), pki.root_der.clone()];
    let r = http
        .post(submission_url(&base, &log, ADD_CHAIN))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(chain_body(&good))
        .send()
        .await
        .expect("good add-chain");
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap().to_vec();
    assert_eq!(
        status,
        200,
        "good add-chain after the catalogue: {}",
        String::from_utf8_lossy(&body)
    );
    let s1 = Submission {
        chain: good,
        precert: false,
        sct: parse_sct(&body).expect("SCT"),
    };
    assert_eq!(s1.sct.id, log.log_id);
    let s2 = ct_testkit::client::add(
        &http,
        &base,
        &log,
        &[pki.precert(2, good_na), int.clone()],
        true,
    )
    .await
    .expect("good add-pre-chain after the catalogue");
    let tree = verify_log(&http, &base, &log, &[s1, s2]).await;
    assert!(
        failures.is_empty(),
        "{} of {total} bad requests were not answered as expected:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        tree.checkpoint.size,
        2 + accepted,
        "rejected submissions must not be logged"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    drop(server);
    drop(dir);
}

/// `{"chain":[],"pad":"AAAA…"}` of exactly `len` bytes.
fn padded_body(len: usize) -> Vec<u8> {
    let head = br#"{"chain":[],"pad":""#;
    let tail = br#""}"#;
    let mut out = head.to_vec();
    out.resize(len - tail.len(), b'A');
    out.extend_from_slice(tail);
    assert_eq!(out.len(), len);
    out
}

/// HTTP/1.1 chunked encoding of `body` in 8 KiB chunks.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in body.chunks(8192) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}
