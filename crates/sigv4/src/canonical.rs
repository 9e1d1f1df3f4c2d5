//! Canonical request and string to sign, as defined by SigV4.
//!
//! Every rule here mirrors what the signing side does, because the signature
//! only matches if both sides build the same bytes. The reference is the
//! `aws-sigv4` crate (AWS SDK for Rust): `http_request/canonical_request.rs`,
//! `uri_path_normalization.rs` and `url_escape.rs` of version 1.6.4.

use std::borrow::Cow;
use std::fmt;

use crate::authorization::ALGORITHM;
use crate::error::Error;
use crate::key::push_sha256_hex;

/// How the request path becomes the canonical URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriEncoding {
    /// Every service except S3: the path as received (already percent-encoded
    /// once by the client) is normalised (`.` and `..` segments resolved,
    /// empty segments dropped) and then percent-encoded again, so `%20` in the
    /// request becomes `%2520` in the canonical URI.
    Double,
    /// S3: the path as received is used unchanged (it is already encoded once
    /// and S3 object keys may legitimately contain `//` or `..`).
    Single,
}

/// The parts of an HTTP request that SigV4 covers, borrowed from the server's
/// request type.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The method as received (`GET`, `POST`, ...); used verbatim.
    pub method: &'a str,
    /// The raw request path as received, still percent-encoded.
    pub path: &'a str,
    /// The raw query string without the `?`; may be empty.
    pub query: &'a str,
    /// Every request header. Names in any case; a name may repeat. For
    /// HTTP/2 the caller must supply `host` (from `:authority`).
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body as received, or for S3 the
    /// `x-amz-content-sha256` header value (which the caller must then check
    /// against the body itself).
    pub payload_sha256_hex: &'a str,
    /// Canonical URI rules to apply.
    pub uri_encoding: UriEncoding,
}

/// Headers whose values are credentials or otherwise sensitive; `Debug`
/// prints them redacted. The list is the one `aws-sigv4` redacts.
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-amz-security-token",
    "cookie",
    "set-cookie",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-server-side-encryption-customer-key-md5",
    "x-amz-copy-source-server-side-encryption-customer-key",
    "x-amz-copy-source-server-side-encryption-customer-key-md5",
];

struct RedactedHeaders<'a>(&'a [(&'a str, &'a str)]);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, value) in self.0 {
            let sensitive = SENSITIVE_HEADERS
                .iter()
                .any(|s| name.eq_ignore_ascii_case(s));
            let shown: &str = if sensitive { "<redacted>" } else { value };
            list.entry(&(name, shown));
        }
        list.finish()
    }
}

// Hand-written so that session tokens and the like never reach logs.
impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &RedactedHeaders(self.headers))
            .field("payload_sha256_hex", &self.payload_sha256_hex)
            .field("uri_encoding", &self.uri_encoding)
            .finish()
    }
}

/// Builds the SigV4 canonical request:
///
/// ```text
/// METHOD\nCANONICAL_URI\nCANONICAL_QUERY\nname:value\n...\n\nsigned;headers\nPAYLOAD_HASH
/// ```
///
/// - The method is used as given.
/// - The canonical URI follows [`UriEncoding`]; an empty path is `/`.
/// - The query is split on `&` (empty pieces skipped), each piece on its
///   first `=` (none means an empty value); names and values are decoded as
///   `application/x-www-form-urlencoded` (so a raw `+` is a space, as the
///   `aws-sigv4` signer and Go's SDK treat it), re-encoded with only
///   `A-Za-z0-9-._~` left bare, and sorted by name, then value.
/// - One `name:value` line per distinct signed header, sorted by name; the
///   name lower-cased; each value trimmed of leading and trailing spaces with
///   inner runs of spaces collapsed to one (spaces only, as `aws-sigv4` does);
///   repeated headers joined with `,` in the order received.
/// - The signed header list, lower-cased, in the order given, joined by `;`.
///
/// Fails with [`Error::SignatureMismatch`] if a signed header is absent from
/// the request: the client signed a value that did not arrive, so no
/// signature computed here could match.
pub fn canonical_request(req: &Request<'_>, signed_headers: &[String]) -> Result<String, Error> {
    let mut out = String::with_capacity(512);
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path, req.uri_encoding));
    out.push('\n');
    push_canonical_query(&mut out, req.query);
    out.push('\n');

    // Names arrive lower-cased from `parse_authorization`, so this borrows them.
    let listed: Vec<Cow<'_, str>> = signed_headers.iter().map(|n| lower(n)).collect();
    let mut sorted: Vec<&str> = listed.iter().map(|n| n.as_ref()).collect();
    sorted.sort_unstable();
    sorted.dedup();
    for name in sorted {
        out.push_str(name);
        out.push(':');
        let mut found = false;
        for (_, value) in req
            .headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
        {
            if found {
                out.push(',');
            }
            push_trimmed_value(&mut out, value);
            found = true;
        }
        if !found {
            return Err(Error::SignatureMismatch);
        }
        out.push('\n');
    }
    out.push('\n');
    for (index, name) in listed.iter().enumerate() {
        if index > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
    out.push_str(req.payload_sha256_hex);
    Ok(out)
}

fn lower(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Builds the string to sign:
/// `AWS4-HMAC-SHA256\n<amz_date>\n<scope>\n<hex SHA-256 of canonical_request>`.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    string_to_sign_with(amz_date, |out| out.push_str(scope), canonical_request)
}

/// [`string_to_sign`] with the scope written by `write_scope` (e.g.
/// [`crate::Authorization::write_scope`]), in one buffer.
pub(crate) fn string_to_sign_with(
    amz_date: &str,
    write_scope: impl FnOnce(&mut String),
    canonical_request: &str,
) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + amz_date.len() + 64 + 64 + 3);
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(amz_date);
    out.push('\n');
    write_scope(&mut out);
    out.push('\n');
    push_sha256_hex(&mut out, canonical_request.as_bytes());
    out
}

fn canonical_uri(path: &str, encoding: UriEncoding) -> Cow<'_, str> {
    match encoding {
        UriEncoding::Double => {
            let normalized = normalize_path(path);
            let mut out = String::with_capacity(normalized.len() + 16);
            percent_encode_into(&mut out, normalized.as_bytes(), true);
            Cow::Owned(out)
        }
        UriEncoding::Single if path.is_empty() => Cow::Borrowed("/"),
        UriEncoding::Single => Cow::Borrowed(path),
    }
}

/// RFC 3986 section 5.2.4 dot-segment removal plus dropping empty segments,
/// exactly as `aws-sigv4`'s `normalize_uri_path` does it (including its
/// trailing-slash rule).
fn normalize_path(path: &str) -> Cow<'_, str> {
    if path.is_empty() {
        return Cow::Borrowed("/");
    }
    let absolute: Cow<'_, str> = if path.starts_with('/') {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(format!("/{path}"))
    };
    if !(absolute.contains('.') || absolute.contains("//")) {
        return absolute;
    }

    let mut segments: Vec<&str> = Vec::new();
    for segment in absolute.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut result = String::with_capacity(absolute.len());
    for segment in segments {
        result.push('/');
        result.push_str(segment);
    }
    // A path ending in a slash (or in a dot segment, which stands for a
    // directory) keeps its trailing slash.
    let ends_like_directory = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|suffix| absolute.ends_with(suffix));
    if result.is_empty() || (ends_like_directory && !result.ends_with('/')) {
        result.push('/');
    }
    Cow::Owned(result)
}

/// Appends the canonical query of `query` to `out` (nothing for an empty query).
fn push_canonical_query(out: &mut String, query: &str) {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (
                encode_component(&form_decode(name)),
                encode_component(&form_decode(value)),
            )
        })
        .collect();
    pairs.sort_unstable();

    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
}

fn encode_component(decoded: &str) -> String {
    let mut out = String::with_capacity(decoded.len() + 8);
    percent_encode_into(&mut out, decoded.as_bytes(), false);
    out
}

/// Decodes like `application/x-www-form-urlencoded` (the `form_urlencoded`
/// crate that `aws-sigv4` uses): `+` is a space, `%XY` a byte, a `%` not
/// followed by two hex digits stays literal, and invalid UTF-8 becomes U+FFFD.
fn form_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'+' => {
                out.push(b' ');
                index += 1;
            }
            b'%' => {
                let high = bytes.get(index + 1).copied().and_then(hex_value);
                let low = bytes.get(index + 2).copied().and_then(hex_value);
                if let (Some(high), Some(low)) = (high, low) {
                    out.push((high << 4) | low);
                    index += 3;
                } else {
                    out.push(b'%');
                    index += 1;
                }
            }
            other => {
                out.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encodes every byte outside the RFC 3986 unreserved set (and
/// outside `/` when `keep_slash`), with upper-case hex digits.
fn percent_encode_into(out: &mut String, bytes: &[u8], keep_slash: bool) {
    for &byte in bytes {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(upper_hex_digit(byte >> 4));
            out.push(upper_hex_digit(byte & 0x0f));
        }
    }
}

fn upper_hex_digit(nibble: u8) -> char {
    match nibble & 0x0f {
        n @ 0..=9 => char::from(b'0' + n),
        n => char::from(b'A' + (n - 10)),
    }
}

/// Appends `value` without leading/trailing spaces and with each run of
/// inner spaces collapsed to one. Only U+0020 counts: `aws-sigv4` leaves tabs
/// and other whitespace alone, and so must we.
fn push_trimmed_value(out: &mut String, value: &str) {
    let mut previous_space = false;
    for ch in value.trim_matches(' ').chars() {
        if ch == ' ' {
            if !previous_space {
                out.push(' ');
            }
            previous_space = true;
        } else {
            out.push(ch);
            previous_space = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_matches_the_aws_sigv4_rules() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("foo", "/foo"),
            ("/foo/bar/", "/foo/bar/"),
            ("./", "/"),
            ("./foo", "/foo"),
            ("../foo", "/foo"),
            ("/foo/bar/.", "/foo/bar/"),
            ("/foo/bar/..", "/foo/"),
            ("/foo/./bar/../baz", "/foo/baz"),
            ("/../../", "/"),
            ("//example//", "/example/"),
            ("/a//b", "/a/b"),
            ("/a.b/c", "/a.b/c"),
            ("/.hidden", "/.hidden"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_path(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn double_encoding_reencodes_the_client_encoding() {
        assert_eq!(
            canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D", UriEncoding::Double),
            // From the `double-encode-path` case of the AWS signing test suite.
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(
            canonical_uri("/a%20b/c%2Fd", UriEncoding::Single),
            "/a%20b/c%2Fd"
        );
        assert_eq!(canonical_uri("", UriEncoding::Single), "/");
        assert_eq!(canonical_uri("/a/../b//", UriEncoding::Single), "/a/../b//");
    }

    #[test]
    fn query_canonicalization() {
        let cases = [
            ("", ""),
            ("a=1&&b=2&", "a=1&b=2"),
            ("b=2&a=1&a=0", "a=0&a=1&b=2"),
            ("single&k=", "k=&single="),
            ("a+b=c+d", "a%20b=c%20d"),
            ("a%2Bb=%2b", "a%2Bb=%2B"),
            ("x=%zz%4", "x=%25zz%254"),
            ("x=%FF", "x=%EF%BF%BD"),
            ("k=a=b", "k=a%3Db"),
            ("~-._=*!'()", "~-._=%2A%21%27%28%29"),
            (
                "list-type=2&prefix=~objprefix",
                "list-type=2&prefix=~objprefix",
            ),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            push_canonical_query(&mut out, input);
            assert_eq!(out, expected, "input {input:?}");
        }
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let cases = [
            ("  a   b  c ", "a b c"),
            ("", ""),
            ("    ", ""),
            ("a\tb", "a\tb"),
            ("\"a   b   c\"", "\"a b c\""),
        ];
        for (input, expected) in cases {
            let mut out = String::new();
            push_trimmed_value(&mut out, input);
            assert_eq!(out, expected, "input {input:?}");
        }
    }

    #[test]
    fn missing_signed_header_is_a_mismatch() {
        let headers = [("Host", "example.com")];
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload_sha256_hex: "",
            uri_encoding: UriEncoding::Double,
        };
        let signed = vec!["host".to_owned(), "x-amz-date".to_owned()];
        assert_eq!(
            canonical_request(&req, &signed),
            Err(Error::SignatureMismatch)
        );
    }

    #[test]
    fn debug_redacts_credentials() {
        let headers = [
            ("Authorization", "AWS4-HMAC-SHA256 Credential=secret-ish"),
            ("X-Amz-Security-Token", "session-token-value"),
            ("Host", "example.com"),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &headers,
            payload_sha256_hex: "",
            uri_encoding: UriEncoding::Double,
        };
        let printed = format!("{req:?}");
        assert!(!printed.contains("secret-ish"), "{printed}");
        assert!(!printed.contains("session-token-value"), "{printed}");
        assert!(printed.contains("example.com"), "{printed}");
    }

    #[test]
    fn signed_header_names_in_any_case_give_the_same_canonical_request() {
        let headers = [("Host", "example.com"), ("X-Amz-Date", "20150830T123600Z")];
        let req = Request {
            method: "POST",
            path: "/",
            query: "b=2&a=1",
            headers: &headers,
            payload_sha256_hex: "abc",
            uri_encoding: UriEncoding::Double,
        };
        let lower = canonical_request(&req, &["x-amz-date".into(), "host".into()]);
        let mixed = canonical_request(&req, &["X-Amz-Date".into(), "Host".into()]);
        assert_eq!(lower, mixed);
        assert_eq!(
            lower.as_deref(),
            Ok(
                "POST\n/\na=1&b=2\nhost:example.com\nx-amz-date:20150830T123600Z\n\nx-amz-date;host\nabc"
            )
        );
    }

    #[test]
    fn string_to_sign_hashes_the_canonical_request() {
        let expected = [
            ALGORITHM,
            "20150830T123600Z",
            "20150830/us-east-1/kms/aws4_request",
            &crate::sha256_hex(b"canonical"),
        ]
        .join("\n");
        assert_eq!(
            string_to_sign(
                "20150830T123600Z",
                "20150830/us-east-1/kms/aws4_request",
                "canonical"
            ),
            expected
        );
        assert_eq!(
            string_to_sign_with(
                "20150830T123600Z",
                |out| out.push_str("20150830/us-east-1/kms/aws4_request"),
                "canonical"
            ),
            expected
        );
    }
}
