//! The STS protocol edge (AWS Query protocol): `GetCallerIdentity`, which tools call to check
//! credentials (`aws sts get-caller-identity`).

use http::StatusCode;
use tresor_kms::identity::Caller;

pub const CONTENT_TYPE: &str = "text/xml";
const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Escapes text for XML element content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// An STS error document (`ErrorResponse`), as the Query protocol sends it.
pub fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> (StatusCode, String) {
    let sender = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    (
        status,
        format!(
            "<ErrorResponse xmlns=\"{NS}\">\n  <Error>\n    <Type>{sender}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            xml_escape(code),
            xml_escape(message),
            xml_escape(request_id)
        ),
    )
}

/// Decodes an `application/x-www-form-urlencoded` body into (name, value) pairs.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| std::str::from_utf8(h).ok());
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Handles one authenticated STS request.
pub fn handle(caller: &Caller, body: &[u8], request_id: &str) -> (StatusCode, String) {
    let pairs = form_pairs(body);
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let action = get("Action").unwrap_or("");
    let version = get("Version").unwrap_or("");
    if action == "GetCallerIdentity" && version == "2011-06-15" {
        let body = format!(
            "<GetCallerIdentityResponse xmlns=\"{NS}\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
            xml_escape(&caller.arn),
            xml_escape(&caller.user_id),
            xml_escape(caller.account.as_str()),
            xml_escape(request_id)
        );
        return (StatusCode::OK, body);
    }
    // AWS-DEVIATION: Tresor's STS answers GetCallerIdentity only.
    error(
        StatusCode::BAD_REQUEST,
        "InvalidAction",
        &format!("Could not find operation {action} for version {version}"),
        request_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        let p = form_pairs(b"Action=GetCallerIdentity&Version=2011-06-15&X=a%2Bb+c&Y");
        assert_eq!(p[0], ("Action".into(), "GetCallerIdentity".into()));
        assert_eq!(p[2], ("X".into(), "a+b c".into()));
        assert_eq!(p[3], ("Y".into(), "".into()));
        assert_eq!(form_pairs(b"%zz=%")[0], ("%zz".into(), "%".into()));
    }

    #[test]
    fn escapes() {
        assert_eq!(xml_escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
