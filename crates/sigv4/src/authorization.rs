//! Parsing of the `Authorization: AWS4-HMAC-SHA256 ...` header.

use crate::error::Error;

/// The only signing algorithm accepted in the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The fixed last element of a SigV4 credential scope.
pub const TERMINATOR: &str = "aws4_request";

/// A parsed `Authorization` header, e.g.
/// `AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/kms/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=<64 hex>`.
///
/// Parsing checks only the header's shape. Whether the scope fits the request
/// (date, terminator, region, service) is checked by [`crate::check_scope`]
/// and [`crate::verify`], because AWS reports those as
/// `InvalidSignatureException`, not as a malformed header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id, first element of `Credential`.
    pub access_key_id: String,
    /// Scope date, `YYYYMMDD` as sent (not validated here).
    pub date: String,
    /// Scope region as sent.
    pub region: String,
    /// Scope service as sent.
    pub service: String,
    /// Last scope element; anything but `aws4_request` is rejected by
    /// [`crate::verify`].
    pub terminator: String,
    /// `SignedHeaders`, lower-cased, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The decoded `Signature`.
    pub signature: [u8; 32],
}

impl Authorization {
    /// The credential scope the client signed: `date/region/service/terminator`,
    /// which is `date/region/service/aws4_request` for every request that
    /// [`crate::verify`] accepts.
    pub fn scope(&self) -> String {
        let mut out = String::new();
        self.write_scope(&mut out);
        out
    }

    /// Appends [`Authorization::scope`] to `out` (for callers that build it into a buffer).
    pub fn write_scope(&self, out: &mut String) {
        for (i, part) in [&self.date, &self.region, &self.service, &self.terminator]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                out.push('/');
            }
            out.push_str(part);
        }
    }
}

/// Parses an `Authorization` header value. Pass `""` when the header is absent.
///
/// Checks, in the order AWS applies them (per dynalite, see [`Error`]):
///
/// 1. The value must start with `AWS4-`, otherwise
///    [`Error::MissingAuthorization`] (dynalite: a non-`AWS4-` header is treated
///    as no token at all).
/// 2. Every parameter after the algorithm must be `key=value`. Otherwise
///    `'<piece>' not a valid key=value pair (missing equal-sign) in
///    Authorization header: '<header>'.` (text from dynalite's record of
///    DynamoDB).
/// 3. `Credential`, `Signature` and `SignedHeaders` must be present (an empty
///    `Credential` or `Signature` counts as missing; an empty `SignedHeaders`
///    does not, per dynalite's note). Each missing one adds
///    `Authorization header requires '<name>' parameter. ` in that order, and
///    the message ends with `Authorization=<header>` (text from dynalite and
///    from many API Gateway responses quoted in GitHub issues, e.g.
///    aws/chalice issue 828). AWS also adds the missing-date sentence to this
///    same message; here that one comes from [`crate::request_time`].
/// 4. The algorithm must be `AWS4-HMAC-SHA256`, otherwise
///    `Unsupported AWS 'algorithm': '<alg>' (only AWS4-HMAC-SHA256 for now). `
///    (text from dynalite).
/// 5. `Credential` must have exactly five `/`-separated elements (trailing
///    slashes ignored, as AWS does per dynalite), otherwise `Credential must
///    have exactly 5 slash-delimited elements, e.g.
///    keyid/date/region/service/term, got '<credential>'` (text from dynalite).
/// 6. `Signature` must be 64 hex digits, otherwise `Signature must be 64
///    hexadecimal characters, got '<signature>'. Authorization=<header>`
///    (unverified: AWS appears to just compare and report a mismatch; the text
///    is ours).
///
/// Parameters may come in any order, separated by commas and/or spaces;
/// unknown parameters are ignored and a repeated one keeps its last value.
/// Parameter names are case-sensitive, as in AWS.
pub fn parse_authorization(header_value: &str) -> Result<Authorization, Error> {
    let trimmed = header_value.trim_matches([' ', '\t']);
    if !trimmed.starts_with("AWS4-") {
        return Err(Error::MissingAuthorization);
    }
    let (algorithm, params) = trimmed.split_once([' ', '\t']).unwrap_or((trimmed, ""));

    let mut credential: Option<&str> = None;
    let mut signed_headers: Option<&str> = None;
    let mut signature: Option<&str> = None;
    for piece in ascii_pieces(params, |b| matches!(b, b',' | b' ' | b'\t')) {
        let Some((name, value)) = piece.split_once('=') else {
            return Err(Error::Incomplete(format!(
                "'{piece}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header_value}'."
            )));
        };
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }

    let credential = credential.filter(|value| !value.is_empty());
    let signature = signature.filter(|value| !value.is_empty());
    let mut missing = String::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("Signature", signature.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str("Authorization header requires '");
            missing.push_str(name);
            missing.push_str("' parameter. ");
        }
    }
    let (Some(credential), Some(signature), Some(signed_headers)) =
        (credential, signature, signed_headers)
    else {
        missing.push_str("Authorization=");
        missing.push_str(header_value);
        return Err(Error::Incomplete(missing));
    };

    if algorithm != ALGORITHM {
        return Err(Error::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now). "
        )));
    }

    // AWS evidently splits like Java's `String.split`, which drops trailing
    // empty elements, so `a/b/c/d/e/` still has five parts.
    let mut parts = credential.trim_end_matches('/').split('/');
    let (Some(access_key_id), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(Error::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };

    let mut decoded = [0u8; 32];
    if hex::decode_to_slice(signature, &mut decoded).is_err() {
        return Err(Error::Incomplete(format!(
            "Signature must be 64 hexadecimal characters, got '{signature}'. Authorization={header_value}"
        )));
    }

    let signed_headers = if signed_headers.is_empty() {
        Vec::new()
    } else {
        signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect()
    };

    Ok(Authorization {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        terminator: terminator.to_owned(),
        signed_headers,
        signature: decoded,
    })
}

/// The non-empty pieces of `s` between bytes for which `separator` holds (ASCII separators only,
/// so every piece starts and ends on a character boundary). What `str::split` with a set of
/// `char`s followed by a filter gives, without decoding each character: this runs for every
/// request.
fn ascii_pieces(s: &str, separator: impl Fn(u8) -> bool) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while bytes.get(pos).is_some_and(|&b| separator(b)) {
            pos += 1;
        }
        let start = pos;
        while bytes.get(pos).is_some_and(|&b| !separator(b)) {
            pos += 1;
        }
        // Both ends are at a separator (ASCII) or at the end, so on character boundaries.
        s.get(start..pos).filter(|piece| !piece.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::ascii_pieces;

    #[test]
    fn ascii_pieces_match_split_and_filter() {
        let cases = [
            "",
            ",",
            " a",
            "a ",
            "a,b c\td",
            ",,a,, b\t\t,c,",
            "Credential=é/ü,  SignedHeaders=host;ä\tSignature=ß",
            "\u{1F600},\u{1F600} x",
        ];
        for case in cases {
            let expected: Vec<&str> = case
                .split([',', ' ', '\t'])
                .filter(|piece| !piece.is_empty())
                .collect();
            let got: Vec<&str> = ascii_pieces(case, |b| matches!(b, b',' | b' ' | b'\t')).collect();
            assert_eq!(got, expected, "input {case:?}");
        }
    }
}
