//! Wildcard patterns (`*`, `?`) and policy variables (`${...}`).
//!
//! A pattern is compiled once from policy text into [`Piece`]s. At evaluation
//! time its variables are replaced by request values, giving a list of
//! [`Tok`]ens: a substituted value (and the escapes `${*}`, `${?}`, `${$}`)
//! is always literal text, never a wildcard.

/// One element of a resolved pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Char(char),
    /// `*`: any run of characters, including none.
    Star,
    /// `?`: exactly one character.
    Question,
}

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Tok(Tok),
    /// `${key}` or `${key, 'default'}`; the key lower-cased.
    Var {
        key: String,
        default: Option<String>,
    },
    /// A `${` that does not form a valid variable: it never resolves.
    Invalid,
}

/// A compiled `Resource` entry or string/ARN condition value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    pieces: Vec<Piece>,
}

impl Pattern {
    /// Compiles `raw`. With `variables` (policy version 2012-10-17) `${...}`
    /// is a policy variable; otherwise it is plain text.
    pub(crate) fn compile(raw: &str, variables: bool) -> Pattern {
        let mut pieces = Vec::new();
        let mut rest = raw;
        while let Some(c) = rest.chars().next() {
            if variables && rest.starts_with("${") {
                let (piece, len) = parse_variable(rest);
                pieces.push(piece);
                rest = rest.get(len..).unwrap_or_default();
                continue;
            }
            pieces.push(Piece::Tok(match c {
                '*' => Tok::Star,
                '?' => Tok::Question,
                other => Tok::Char(other),
            }));
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
        }
        Pattern { pieces }
    }

    /// Whether the pattern is `*` alone, which matches every value without resolving anything.
    pub(crate) fn is_any(&self) -> bool {
        matches!(self.pieces.as_slice(), [Piece::Tok(Tok::Star)])
    }

    /// Whether resolving the pattern reads request values (it has a `${...}` variable).
    pub(crate) fn has_variables(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Var { .. } | Piece::Invalid))
    }

    /// Compiles a pattern that never has variables, lower-cased (actions).
    pub(crate) fn compile_lowercase(raw: &str) -> Vec<Tok> {
        raw.to_lowercase()
            .chars()
            .map(|c| match c {
                '*' => Tok::Star,
                '?' => Tok::Question,
                other => Tok::Char(other),
            })
            .collect()
    }

    /// Substitutes variables. `None` when one of them cannot be resolved:
    /// the caller then treats this value as matching nothing.
    pub(crate) fn resolve(&self, variable: &dyn Fn(&str) -> Option<String>) -> Option<Vec<Tok>> {
        let mut out = Vec::with_capacity(self.pieces.len());
        for piece in &self.pieces {
            match piece {
                Piece::Tok(t) => out.push(*t),
                Piece::Var { key, default } => {
                    let value = variable(key).or_else(|| default.clone())?;
                    out.extend(value.chars().map(Tok::Char));
                }
                Piece::Invalid => return None,
            }
        }
        Some(out)
    }

    /// Like [`Pattern::resolve`], but wildcards stand for themselves (the
    /// value of `StringEquals` and friends).
    pub(crate) fn resolve_literal(
        &self,
        variable: &dyn Fn(&str) -> Option<String>,
    ) -> Option<String> {
        self.resolve(variable).map(|toks| {
            toks.iter()
                .map(|t| match t {
                    Tok::Char(c) => *c,
                    Tok::Star => '*',
                    Tok::Question => '?',
                })
                .collect()
        })
    }
}

/// Parses the variable at the start of `s` (which starts with `${`).
/// Returns the piece it stands for and the number of bytes consumed.
///
/// Grammar (IAM): `${name}` or `${name, 'default'}` with `''` for a quote
/// inside the default; whitespace around the name and the default is
/// ignored; `${*}`, `${?}`, `${$}` are the literal characters. Anything else
/// starting with `${` is an invalid variable, which never resolves.
fn parse_variable(s: &str) -> (Piece, usize) {
    const OPEN: usize = 2; // "${"
    let body = s.get(OPEN..).unwrap_or_default();
    let Some(name_end) = body.find([',', '}']) else {
        return (Piece::Invalid, s.len());
    };
    let name = body.get(..name_end).unwrap_or_default().trim();
    let rest = body.get(name_end..).unwrap_or_default();
    let (default, tail_len) = if rest.starts_with('}') {
        (None, 1)
    } else {
        match parse_default(rest.get(1..).unwrap_or_default()) {
            Some((default, len)) => (Some(default), 1 + len),
            None => return (Piece::Invalid, s.len()),
        }
    };
    let piece = match name {
        "*" => Piece::Tok(Tok::Char('*')),
        "?" => Piece::Tok(Tok::Char('?')),
        "$" => Piece::Tok(Tok::Char('$')),
        "" => Piece::Invalid,
        n if n.chars().any(char::is_whitespace) => Piece::Invalid,
        n => Piece::Var {
            key: n.to_lowercase(),
            default,
        },
    };
    (piece, OPEN + name_end + tail_len)
}

/// Parses ` 'text' }` (after the comma of a variable): the default text and
/// the number of bytes up to and including the closing brace.
fn parse_default(s: &str) -> Option<(String, usize)> {
    let mut chars = s.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
    };
    skip_ws(&mut chars);
    if chars.next()?.1 != '\'' {
        return None;
    }
    let mut text = String::new();
    loop {
        let (_, c) = chars.next()?;
        if c != '\'' {
            text.push(c);
        } else if chars.next_if(|&(_, n)| n == '\'').is_some() {
            text.push('\'');
        } else {
            break;
        }
    }
    skip_ws(&mut chars);
    let (i, c) = chars.next()?;
    (c == '}').then_some((text, i + 1))
}

/// Glob match of `text` against `pattern` (`*` any run, `?` one character).
/// Linear in practice, O(len(pattern) × len(text)) at worst; no recursion, no allocation.
pub(crate) fn glob(pattern: &[Tok], text: &str) -> bool {
    // Byte positions in `text`, always on character boundaries.
    let (mut p, mut t) = (0usize, 0usize);
    // Position after the last `*` seen, and the text position it absorbed to.
    let mut backtrack: Option<(usize, usize)> = None;
    let char_at = |at: usize| text.get(at..).and_then(|rest| rest.chars().next());
    while let Some(c) = char_at(t) {
        match pattern.get(p) {
            Some(Tok::Star) => {
                p += 1;
                // A trailing `*` (`kms:*`, `*`) takes the rest of the text, whatever it is.
                if pattern
                    .get(p..)
                    .is_some_and(|rest| rest.iter().all(|t| *t == Tok::Star))
                {
                    return true;
                }
                backtrack = Some((p, t));
            }
            Some(Tok::Question) => {
                p += 1;
                t += c.len_utf8();
            }
            Some(Tok::Char(want)) if *want == c => {
                p += 1;
                t += c.len_utf8();
            }
            _ => match backtrack {
                Some((bp, bt)) => {
                    // The `*` absorbs one more character.
                    let next = bt + char_at(bt).map_or(1, char::len_utf8);
                    p = bp;
                    t = next;
                    backtrack = Some((bp, next));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|t| *t == Tok::Star))
}

/// Glob match of two strings, optionally case-insensitive.
pub(crate) fn glob_str(pattern: &[Tok], text: &str, ignore_case: bool) -> bool {
    if ignore_case {
        let pattern: Vec<Tok> = pattern
            .iter()
            .flat_map(|t| match t {
                Tok::Char(c) => c.to_lowercase().map(Tok::Char).collect::<Vec<_>>(),
                other => vec![*other],
            })
            .collect();
        glob(&pattern, &text.to_lowercase())
    } else {
        glob(pattern, text)
    }
}

/// ARN matching as IAM does it for `Resource` and the `Arn*` operators:
/// both sides are split into their six colon-separated components (the last
/// one keeps any further colons) and each component is globbed on its own,
/// so `*` never spans a `:` in the first five. A pattern that starts with
/// `arn:` but does not have six components matches nothing; a pattern that
/// does not start with `arn:` (`*`) is globbed against the whole string.
pub(crate) fn arn_match(pattern: &[Tok], text: &str) -> bool {
    let arn_prefix = [
        Tok::Char('a'),
        Tok::Char('r'),
        Tok::Char('n'),
        Tok::Char(':'),
    ];
    if !pattern.starts_with(&arn_prefix) {
        return glob_str(pattern, text, false);
    }
    let text_parts: Vec<&str> = text.splitn(6, ':').collect();
    match split_tokens_arn(pattern) {
        Some(parts) if text_parts.len() == 6 => parts
            .iter()
            .zip(&text_parts)
            .all(|(p, t)| glob_str(p, t, false)),
        _ => false,
    }
}

fn split_tokens_arn(pattern: &[Tok]) -> Option<Vec<Vec<Tok>>> {
    let mut parts: Vec<Vec<Tok>> = vec![Vec::new()];
    for tok in pattern {
        match (tok, parts.len()) {
            (Tok::Char(':'), n) if n < 6 => parts.push(Vec::new()),
            _ => {
                if let Some(last) = parts.last_mut() {
                    last.push(*tok);
                }
            }
        }
    }
    (parts.len() == 6).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn matches(pattern: &str, text: &str) -> bool {
        let toks = Pattern::compile(pattern, false).resolve(&no_vars).unwrap();
        glob_str(&toks, text, false)
    }

    #[test]
    fn glob_table() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("kms:Generate*", "kms:GenerateDataKey", true),
            ("kms:Generate*", "kms:Generat", false),
            ("*Key", "kms:GenerateDataKey", true),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            (
                "a*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("é?", "éé", true),
            // Multi-byte characters, also where a `*` backtracks over them.
            ("*é", "aéé", true),
            ("a*ü?", "aüüü", true),
            ("?", "日", true),
            ("??", "日", false),
            ("*本*", "日本語", true),
            // Trailing stars take whatever is left, or nothing.
            ("kms:*", "kms:", true),
            ("kms:*", "kms:Decrypt", true),
            ("kms:*", "km", false),
            ("kms:**", "kms:Decrypt", true),
            ("a*", "b", false),
            ("**", "", true),
            ("*?", "", false),
            ("?*", "", false),
            ("?*", "日本", true),
            ("a*b*", "a本b語", true),
            ("a*b*", "a本c語", false),
            ("*本?", "日本語本", false),
            ("*本?", "日本語本語", true),
        ];
        for (p, t, want) in cases {
            assert_eq!(matches(p, t), want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn case_insensitive_glob() {
        let toks = Pattern::compile_lowercase("KMS:ReEncrypt*");
        assert!(glob_str(&toks, "kms:reencryptfrom", true));
        assert!(glob_str(&toks, "KMS:REENCRYPTTO", true));
        assert!(!glob_str(&toks, "kms:Decrypt", true));
    }

    #[test]
    fn arn_segments() {
        let toks = |p: &str| Pattern::compile(p, false).resolve(&no_vars).unwrap();
        let key = "arn:aws:kms:us-west-2:111122223333:key/abc";
        assert!(arn_match(&toks("arn:aws:kms:*:111122223333:key/*"), key));
        assert!(arn_match(&toks("arn:aws:kms:us-west-?:*:*"), key));
        assert!(!arn_match(&toks("arn:aws:kms:*:444455556666:key/*"), key));
        // `*` cannot span the region/account separator.
        assert!(!arn_match(&toks("arn:aws:kms:*:key/abc"), key));
        assert!(!arn_match(&toks("arn:*"), key));
        assert!(!arn_match(&toks("arn:aws:kms:*:*:*"), "*"));
        assert!(arn_match(&toks("*"), key));
        // The resource part keeps its colons.
        assert!(arn_match(
            &toks("arn:aws:logs:*:*:log-group:x:*"),
            "arn:aws:logs:us-east-1:1:log-group:x:log-stream:y"
        ));
    }

    #[test]
    fn variables_and_escapes() {
        let lookup = |k: &str| match k {
            "aws:username" => Some("alice*".to_string()),
            _ => None,
        };
        let p = Pattern::compile("home/${aws:username}/${*}${?}${$}", true);
        let lit = p.resolve_literal(&lookup).unwrap();
        assert_eq!(lit, "home/alice*/*?$");
        // The substituted `*` is a literal, not a wildcard.
        let toks = p.resolve(&lookup).unwrap();
        assert!(glob_str(&toks, "home/alice*/*?$", false));
        assert!(!glob_str(&toks, "home/alicexyz/*?$", false));

        let p = Pattern::compile("${AWS:UserName}", true);
        assert_eq!(p.resolve_literal(&lookup).unwrap(), "alice*");
        let p = Pattern::compile("${aws:userid}", true);
        assert_eq!(p.resolve_literal(&lookup), None);
        let p = Pattern::compile("${aws:userid, 'nobody'}-x", true);
        assert_eq!(p.resolve_literal(&lookup).unwrap(), "nobody-x");
        let p = Pattern::compile("${ aws:userid ,  'it''s' }", true);
        assert_eq!(p.resolve_literal(&lookup).unwrap(), "it's");
        for invalid in [
            "${aws:username",
            "${}",
            "${a b}",
            "${x, nope}",
            "${x, 'open}",
        ] {
            let p = Pattern::compile(invalid, true);
            assert_eq!(p.resolve_literal(&lookup), None, "{invalid}");
        }
        // Version 2008-10-17: no variables; `*` inside stays a wildcard.
        let p = Pattern::compile("${aws:username}", false);
        assert_eq!(p.resolve_literal(&lookup).unwrap(), "${aws:username}");
    }
}
