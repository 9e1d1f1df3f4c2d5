//! Policy documents: parsing and the parts of a statement.

use crate::condition::{Condition, Env, parse_conditions};
use crate::error::PolicyError;
use crate::json::Json;
use crate::pattern::{Pattern, Tok, arn_match, glob};
use crate::request::{Principal, PrincipalKind};

/// The `Version` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    /// `2008-10-17`: no policy variables.
    V2008_10_17,
    /// `2012-10-17`: policy variables (`${aws:username}`) are substituted.
    V2012_10_17,
}

impl PolicyVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyVersion::V2008_10_17 => "2008-10-17",
            PolicyVersion::V2012_10_17 => "2012-10-17",
        }
    }
}

/// The `Effect` element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// A principal named in a `Principal` or `NotPrincipal` element, for the
/// core's existence check (`Policy contains a statement with one or more
/// invalid principals.`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReferencedPrincipal {
    /// An account, written as `"111122223333"` or `arn:aws:iam::111122223333:root`.
    Account(String),
    /// An IAM or STS principal ARN (user, role, assumed-role session, ...).
    Arn(String),
    /// A service principal (`voiceid.amazonaws.com`).
    Service(String),
}

/// A parsed policy document. Parse once with [`parse_key_policy`],
/// [`parse_identity_policy`] or [`parse_policy`]; evaluate many times.
/// The original text is not kept: the caller stores it verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    version: Option<PolicyVersion>,
    id: Option<String>,
    statements: Vec<Statement>,
    /// Whether evaluating it can read the request's condition context (see
    /// [`Policy::reads_context`]); computed once when parsed.
    reads_context: bool,
}

impl Policy {
    /// `None` when the document has no `Version` (2008-10-17 semantics).
    pub fn version(&self) -> Option<PolicyVersion> {
        self.version
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Whether evaluating this policy can read the request's condition context: some statement
    /// has a `Condition` or a policy variable in `Resource`/`NotResource`. A caller whose
    /// policies all answer `false` may evaluate them against an empty context and get the same
    /// decision (principals and actions never read it).
    pub fn reads_context(&self) -> bool {
        self.reads_context
    }

    /// Every AWS account, principal ARN and service principal named in a
    /// `Principal` or `NotPrincipal` element (not `"*"`), each once, in
    /// document order.
    pub fn principals_referenced(&self) -> Vec<ReferencedPrincipal> {
        let mut out: Vec<ReferencedPrincipal> = Vec::new();
        for statement in &self.statements {
            let Some(principal) = &statement.principal else {
                continue;
            };
            for entry in &principal.entries {
                let referenced = match entry {
                    PrincipalEntry::Account(a) => ReferencedPrincipal::Account(a.clone()),
                    PrincipalEntry::AwsArn(a) => ReferencedPrincipal::Arn(a.clone()),
                    PrincipalEntry::Service(s) => ReferencedPrincipal::Service(s.clone()),
                    PrincipalEntry::Any
                    | PrincipalEntry::Federated(_)
                    | PrincipalEntry::CanonicalUser(_) => continue,
                };
                if !out.contains(&referenced) {
                    out.push(referenced);
                }
            }
        }
        out
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    pub(crate) principal: Option<PrincipalElement>,
    action: Option<ActionElement>,
    resource: Option<ResourceElement>,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether evaluating the statement can read the condition context: it has conditions, or a
    /// resource pattern with a variable.
    fn reads_context(&self) -> bool {
        !self.conditions.is_empty()
            || self
                .resource
                .as_ref()
                .is_some_and(|r| r.patterns.iter().any(Pattern::has_variables))
    }

    /// Whether the statement has `Principal` or `NotPrincipal`.
    pub fn has_principal(&self) -> bool {
        self.principal.is_some()
    }

    /// Whether the statement applies to the (lower-cased) action. A
    /// statement without `Action`/`NotAction` matches nothing.
    pub(crate) fn matches_action(&self, action_lowercase: &str) -> bool {
        match &self.action {
            None => false,
            Some(a) => a.patterns.iter().any(|p| glob(p, action_lowercase)) != a.negated,
        }
    }

    /// Whether the statement applies to the resource. A statement without
    /// `Resource`/`NotResource` matches nothing. An entry whose variables
    /// cannot be resolved matches nothing (so it excludes nothing under
    /// `NotResource`).
    pub(crate) fn matches_resource(&self, resource: &str, env: &Env<'_>) -> bool {
        let Some(r) = &self.resource else {
            return false;
        };
        let variable = |key: &str| env.variable(key);
        let any = r.patterns.iter().any(|p| {
            p.is_any()
                || p.resolve(&variable)
                    .is_some_and(|toks| arn_match(&toks, resource))
        });
        any != r.negated
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ActionElement {
    negated: bool,
    /// Lower-cased glob patterns (actions are case-insensitive).
    patterns: Vec<Vec<Tok>>,
}

#[derive(Debug, Clone, PartialEq)]
struct ResourceElement {
    negated: bool,
    patterns: Vec<Pattern>,
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrincipalElement {
    negated: bool,
    entries: Vec<PrincipalEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PrincipalEntry {
    /// `"*"` or `{"AWS": "*"}`: everyone, service principals included.
    Any,
    /// An account id, from `"111122223333"` or `arn:aws:iam::111122223333:root`.
    Account(String),
    AwsArn(String),
    Service(String),
    /// Web identity / SAML principals: parsed, never match a caller here.
    // AWS-DEVIATION: Tresor has no federated callers.
    Federated(String),
    /// S3 canonical users: parsed, never match a caller here.
    // AWS-DEVIATION: Tresor has no canonical-user callers.
    CanonicalUser(String),
}

/// How a statement's principal element relates to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PrincipalMatch {
    /// Not named.
    No,
    /// Named directly: its ARN, its role, `"*"`, its service name, or its
    /// account when the caller is that account's root.
    Direct,
    /// Its account is named (`arn:aws:iam::A:root` or `"A"`) and the caller
    /// is not the root: the key policy delegates to the account's IAM policies.
    Account,
}

/// One identity in the caller's chain, as principal elements name it.
#[derive(Debug, Clone, Copy)]
enum Identity<'a> {
    Account(&'a str),
    Arn(&'a str),
    Service(&'a str),
}

fn identities(caller: &Principal) -> Vec<Identity<'_>> {
    match &caller.kind {
        PrincipalKind::Root => vec![Identity::Account(&caller.account)],
        PrincipalKind::IamUser => vec![
            Identity::Account(&caller.account),
            Identity::Arn(&caller.arn),
        ],
        PrincipalKind::AssumedRole { role_arn, .. } => vec![
            Identity::Account(&caller.account),
            Identity::Arn(role_arn),
            Identity::Arn(&caller.arn),
        ],
        PrincipalKind::Service { name } => vec![Identity::Service(name)],
    }
}

impl PrincipalEntry {
    fn names(&self, identity: Identity<'_>) -> bool {
        match (self, identity) {
            (PrincipalEntry::Any, _) => true,
            (PrincipalEntry::Account(a), Identity::Account(b)) => a == b,
            (PrincipalEntry::AwsArn(a), Identity::Arn(b)) => a == b,
            (PrincipalEntry::Service(a), Identity::Service(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

impl PrincipalElement {
    /// How this element applies to `caller` in a statement with `effect`.
    ///
    /// AWS-DEVIATION (unverified for Allow): `NotPrincipal` fails closed both ways (IAM evaluates every identity
    /// in the caller's chain — account, role, session): with Deny it
    /// applies unless *every* identity of the caller is listed (so the
    /// account must be listed too, as AWS documents); with Allow it applies
    /// only when *no* identity of the caller is listed.
    pub(crate) fn applies_to(&self, caller: &Principal, effect: Effect) -> PrincipalMatch {
        let ids = identities(caller);
        let listed = |id: &Identity<'_>| self.entries.iter().any(|e| e.names(*id));
        if self.negated {
            let applies = match effect {
                Effect::Deny => !ids.iter().all(listed),
                Effect::Allow => !ids.iter().any(listed),
            };
            return if applies {
                PrincipalMatch::Direct
            } else {
                PrincipalMatch::No
            };
        }
        let mut account = false;
        for id in &ids {
            if !listed(id) {
                continue;
            }
            match id {
                Identity::Account(_) if !caller.is_root() => account = true,
                Identity::Account(_) | Identity::Arn(_) | Identity::Service(_) => {
                    return PrincipalMatch::Direct;
                }
            }
        }
        if account {
            PrincipalMatch::Account
        } else {
            PrincipalMatch::No
        }
    }
}

/// Which policy type a document is parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Any,
    Key,
    Identity,
}

/// Parses a key policy: every statement must have `Principal` or
/// `NotPrincipal`.
pub fn parse_key_policy(text: &str) -> Result<Policy, PolicyError> {
    parse(text, Kind::Key)
}

/// Parses an identity-based (IAM) policy: no statement may have
/// `Principal` or `NotPrincipal`.
pub fn parse_identity_policy(text: &str) -> Result<Policy, PolicyError> {
    parse(text, Kind::Identity)
}

/// Parses any policy document, with or without principals.
pub fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    parse(text, Kind::Any)
}

fn malformed(message: impl Into<String>) -> PolicyError {
    PolicyError::Malformed(message.into())
}

fn parse(text: &str, kind: Kind) -> Result<Policy, PolicyError> {
    // The KMS `PolicyType` pattern: tab, LF, CR and U+0020-U+00FF only.
    if let Some((offset, c)) = text
        .char_indices()
        .find(|&(_, c)| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    {
        return Err(malformed(format!(
            "Policy contains the character U+{:04X} at byte offset {offset}; only tab, LF, CR and U+0020-U+00FF are allowed",
            u32::from(c)
        )));
    }
    let json =
        Json::parse(text).map_err(|e| malformed(format!("Policy is not valid JSON: {e}")))?;
    let Json::Object(members) = json else {
        return Err(malformed(format!(
            "Policy must be a JSON object, not {}",
            json.type_name()
        )));
    };
    let mut version = None;
    let mut id = None;
    let mut statement = None;
    for (name, value) in &members {
        match name.as_str() {
            "Version" => {
                version = Some(match value {
                    Json::String(v) if v == "2012-10-17" => PolicyVersion::V2012_10_17,
                    Json::String(v) if v == "2008-10-17" => PolicyVersion::V2008_10_17,
                    other => {
                        return Err(malformed(format!(
                            "Version must be \"2012-10-17\" or \"2008-10-17\", not {}",
                            describe(other)
                        )));
                    }
                });
            }
            "Id" => match value {
                Json::String(v) => id = Some(v.clone()),
                other => {
                    return Err(malformed(format!(
                        "Id must be a string, not {}",
                        other.type_name()
                    )));
                }
            },
            "Statement" => statement = Some(value),
            other => return Err(malformed(format!("Unknown policy element \"{other}\""))),
        }
    }
    let variables = version == Some(PolicyVersion::V2012_10_17);
    let statements = match statement {
        None => return Err(malformed("Policy has no Statement")),
        Some(Json::Array(items)) if items.is_empty() => {
            return Err(malformed("Statement must contain at least one statement"));
        }
        Some(Json::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, s)| parse_statement(i, s, kind, variables))
            .collect::<Result<Vec<_>, _>>()?,
        Some(single @ Json::Object(_)) => vec![parse_statement(0, single, kind, variables)?],
        Some(other) => {
            return Err(malformed(format!(
                "Statement must be an object or a list of objects, not {}",
                other.type_name()
            )));
        }
    };
    let reads_context = statements.iter().any(Statement::reads_context);
    Ok(Policy {
        version,
        id,
        statements,
        reads_context,
    })
}

/// `"text"` for strings, the type name otherwise.
fn describe(json: &Json) -> String {
    match json {
        Json::String(s) => format!("\"{s}\""),
        other => other.type_name().to_owned(),
    }
}

fn parse_statement(
    index: usize,
    json: &Json,
    kind: Kind,
    variables: bool,
) -> Result<Statement, PolicyError> {
    let Json::Object(members) = json else {
        return Err(malformed(format!(
            "Statement[{index}] must be an object, not {}",
            json.type_name()
        )));
    };
    let get = |name: &str| members.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let sid = match get("Sid") {
        None => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(other) => {
            return Err(malformed(format!(
                "Statement[{index}]: Sid must be a string, not {}",
                other.type_name()
            )));
        }
    };
    let at = match &sid {
        Some(sid) => format!("Statement[{index}] (Sid \"{sid}\")"),
        None => format!("Statement[{index}]"),
    };
    let err = |what: String| malformed(format!("{at}: {what}"));

    for (name, _) in members {
        if !matches!(
            name.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        ) {
            return Err(err(format!("unknown element \"{name}\"")));
        }
    }

    let effect = match get("Effect") {
        Some(Json::String(e)) if e == "Allow" => Effect::Allow,
        Some(Json::String(e)) if e == "Deny" => Effect::Deny,
        Some(other) => {
            return Err(err(format!(
                "Effect must be \"Allow\" or \"Deny\", not {}",
                describe(other)
            )));
        }
        None => return Err(err("Effect is missing".into())),
    };

    let principal = match (get("Principal"), get("NotPrincipal")) {
        (Some(_), Some(_)) => {
            return Err(err(
                "Principal and NotPrincipal cannot both be present".into()
            ));
        }
        (Some(p), None) => Some(parse_principal(p, false).map_err(&err)?),
        (None, Some(p)) => Some(parse_principal(p, true).map_err(&err)?),
        (None, None) => None,
    };
    match (kind, &principal) {
        (Kind::Key, None) => {
            return Err(err(
                "a key policy statement must have a Principal or NotPrincipal".into(),
            ));
        }
        (Kind::Identity, Some(_)) => {
            return Err(err(
                "an identity-based policy must not have Principal or NotPrincipal".into(),
            ));
        }
        (Kind::Any | Kind::Key | Kind::Identity, _) => {}
    }

    let action = match (get("Action"), get("NotAction")) {
        (Some(_), Some(_)) => {
            return Err(err("Action and NotAction cannot both be present".into()));
        }
        (Some(a), None) => Some(parse_actions(a, "Action", false).map_err(&err)?),
        (None, Some(a)) => Some(parse_actions(a, "NotAction", true).map_err(&err)?),
        (None, None) => None,
    };

    let resource = match (get("Resource"), get("NotResource")) {
        (Some(_), Some(_)) => {
            return Err(err("Resource and NotResource cannot both be present".into()));
        }
        (Some(r), None) => Some(parse_resources(r, "Resource", false, variables).map_err(&err)?),
        (None, Some(r)) => Some(parse_resources(r, "NotResource", true, variables).map_err(&err)?),
        (None, None) => None,
    };

    let conditions = match get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(c, variables).map_err(&err)?,
    };

    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

/// A string or a non-empty list of strings.
fn string_list<'j>(json: &'j Json, element: &str) -> Result<Vec<&'j str>, String> {
    match json {
        Json::String(s) => Ok(vec![s.as_str()]),
        Json::Array(items) if items.is_empty() => Err(format!("{element} is an empty list")),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Ok(s.as_str()),
                other => Err(format!(
                    "{element} entries must be strings, not {}",
                    other.type_name()
                )),
            })
            .collect(),
        other => Err(format!(
            "{element} must be a string or a list of strings, not {}",
            other.type_name()
        )),
    }
}

fn parse_actions(json: &Json, element: &str, negated: bool) -> Result<ActionElement, String> {
    let mut patterns = Vec::new();
    for action in string_list(json, element)? {
        let valid = action == "*"
            || action.split_once(':').is_some_and(|(service, name)| {
                !service.is_empty()
                    && service
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !name.is_empty()
                    && !name.contains(':')
            });
        if !valid {
            return Err(format!(
                "{element} \"{action}\" must be \"*\" or \"<service>:<action>\" (for example \"kms:Decrypt\")"
            ));
        }
        patterns.push(Pattern::compile_lowercase(action));
    }
    Ok(ActionElement { negated, patterns })
}

fn parse_resources(
    json: &Json,
    element: &str,
    negated: bool,
    variables: bool,
) -> Result<ResourceElement, String> {
    let mut patterns = Vec::new();
    for resource in string_list(json, element)? {
        if resource != "*" && !resource.starts_with("arn:") {
            return Err(format!("{element} \"{resource}\" must be \"*\" or an ARN"));
        }
        patterns.push(Pattern::compile(resource, variables));
    }
    Ok(ResourceElement { negated, patterns })
}

fn parse_principal(json: &Json, negated: bool) -> Result<PrincipalElement, String> {
    let element = if negated { "NotPrincipal" } else { "Principal" };
    let members = match json {
        Json::String(s) if s == "*" => {
            return Ok(PrincipalElement {
                negated,
                entries: vec![PrincipalEntry::Any],
            });
        }
        Json::Object(members) if !members.is_empty() => members,
        other => {
            return Err(format!(
                "{element} must be \"*\" or an object such as {{\"AWS\": \"arn:aws:iam::111122223333:root\"}}, not {}",
                describe(other)
            ));
        }
    };
    let mut entries = Vec::new();
    for (principal_type, value) in members {
        let what = format!("{element} {principal_type}");
        for name in string_list(value, &what)? {
            let entry = match principal_type.as_str() {
                "AWS" => parse_aws_principal(name)
                    .ok_or_else(|| format!("invalid AWS principal \"{name}\""))?,
                "Service" | "Federated" | "CanonicalUser" => {
                    if name.is_empty()
                        || name.contains(['*', '?'])
                        || name.chars().any(char::is_whitespace)
                    {
                        return Err(format!("invalid {principal_type} principal \"{name}\""));
                    }
                    match principal_type.as_str() {
                        "Service" => PrincipalEntry::Service(name.to_owned()),
                        "Federated" => PrincipalEntry::Federated(name.to_owned()),
                        _ => PrincipalEntry::CanonicalUser(name.to_owned()),
                    }
                }
                other => {
                    return Err(format!(
                        "unknown principal type \"{other}\" in {element} (expected AWS, Service, Federated or CanonicalUser)"
                    ));
                }
            };
            entries.push(entry);
        }
    }
    Ok(PrincipalElement { negated, entries })
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `"*"`, a 12-digit account id, or an `iam`/`sts` principal ARN without
/// wildcards.
fn parse_aws_principal(name: &str) -> Option<PrincipalEntry> {
    if name == "*" {
        return Some(PrincipalEntry::Any);
    }
    if is_account_id(name) {
        return Some(PrincipalEntry::Account(name.to_owned()));
    }
    if name.contains(['*', '?']) || name.chars().any(char::is_whitespace) {
        return None;
    }
    let parts: Vec<&str> = name.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return None;
    };
    if *arn != "arn"
        || partition.is_empty()
        || !matches!(*service, "iam" | "sts")
        || !region.is_empty()
        || !is_account_id(account)
        || resource.is_empty()
    {
        return None;
    }
    if *service == "iam" && *resource == "root" {
        return Some(PrincipalEntry::Account((*account).to_owned()));
    }
    Some(PrincipalEntry::AwsArn(name.to_owned()))
}
