//! The `Condition` element: operators, typed values, evaluation.
//!
//! Semantics (reference §5.4, IAM):
//! * several operators, and several keys under one operator → AND;
//! * several values for one key → OR; a negated operator (`StringNotEquals`,
//!   `NotIpAddress`, `ArnNotLike`, ...) holds when the request value matches
//!   none of them;
//! * a key absent from the request: a positive operator is false, a negated
//!   one true, `...IfExists` true, `ForAllValues:` true, `ForAnyValue:`
//!   false; `Null: true` holds exactly when the key is absent;
//! * without a set prefix, a key with several request values behaves like
//!   "any value matches" (negated: "no value matches");
//! * condition key names are case-insensitive; value case-sensitivity is the
//!   operator's.

use std::borrow::Cow;

use crate::context::ConditionContext;
use crate::json::Json;
use crate::pattern::{Pattern, arn_match, glob_str};
use crate::request::{Principal, PrincipalKind};
use crate::scalar::{Cidr, parse_date, parse_number};

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOperator {
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StringTest {
    Equals,
    EqualsIgnoreCase,
    Like,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

impl Comparison {
    fn holds<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Comparison::Equals => request == policy,
            Comparison::LessThan => request < policy,
            Comparison::LessThanEquals => request <= policy,
            Comparison::GreaterThan => request > policy,
            Comparison::GreaterThanEquals => request >= policy,
        }
    }
}

/// An operator family with its parsed policy values. `negated` operators
/// are stored as their positive relation plus the flag.
#[derive(Debug, Clone, PartialEq)]
enum Test {
    String {
        test: StringTest,
        negated: bool,
        values: Vec<Pattern>,
    },
    Arn {
        negated: bool,
        values: Vec<Pattern>,
    },
    Numeric {
        comparison: Comparison,
        negated: bool,
        values: Vec<f64>,
    },
    Date {
        comparison: Comparison,
        negated: bool,
        values: Vec<i128>,
    },
    Bool(Vec<bool>),
    Binary(Vec<String>),
    Ip {
        negated: bool,
        values: Vec<Cidr>,
    },
    /// `true`: the key must be absent; `false`: present.
    Null(Vec<bool>),
}

impl Test {
    fn negated(&self) -> bool {
        match self {
            Test::String { negated, .. }
            | Test::Arn { negated, .. }
            | Test::Numeric { negated, .. }
            | Test::Date { negated, .. }
            | Test::Ip { negated, .. } => *negated,
            Test::Bool(_) | Test::Binary(_) | Test::Null(_) => false,
        }
    }

    /// Whether one request value is related to any policy value by the
    /// positive relation (before negation).
    fn positive(&self, request: &str, env: &Env<'_>) -> bool {
        let variable = |key: &str| env.variable(key);
        match self {
            Test::String { test, values, .. } => values.iter().any(|v| match test {
                StringTest::Equals => v.resolve_literal(&variable).is_some_and(|v| v == request),
                StringTest::EqualsIgnoreCase => v
                    .resolve_literal(&variable)
                    .is_some_and(|v| v.to_lowercase() == request.to_lowercase()),
                StringTest::Like => v
                    .resolve(&variable)
                    .is_some_and(|toks| glob_str(&toks, request, false)),
            }),
            Test::Arn { values, .. } => values.iter().any(|v| {
                v.resolve(&variable)
                    .is_some_and(|toks| arn_match(&toks, request))
            }),
            Test::Numeric {
                comparison, values, ..
            } => parse_number(request)
                .is_some_and(|r| values.iter().any(|v| comparison.holds(r, *v))),
            Test::Date {
                comparison, values, ..
            } => {
                parse_date(request).is_some_and(|r| values.iter().any(|v| comparison.holds(r, *v)))
            }
            Test::Bool(values) => parse_bool(request).is_some_and(|r| values.contains(&r)),
            Test::Binary(values) => values.iter().any(|v| v == request),
            Test::Ip { values, .. } => {
                Cidr::parse(request).is_some_and(|r| values.iter().any(|v| v.contains(&r)))
            }
            // Handled before any request value is looked at.
            Test::Null(_) => false,
        }
    }

    /// The operator applied to one request value (negation included).
    fn single(&self, request: &str, env: &Env<'_>) -> bool {
        self.positive(request, env) != self.negated()
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// One `"<Operator>": { "<key>": <values> }` entry, for one key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    /// The operator as written (`ForAnyValue:StringLikeIfExists`).
    operator: String,
    /// The key as written.
    key: String,
    key_lowercase: String,
    set: Option<SetOperator>,
    if_exists: bool,
    test: Test,
}

impl Condition {
    pub(crate) fn operator(&self) -> &str {
        &self.operator
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Whether the condition holds for the request.
    pub(crate) fn holds(&self, env: &Env<'_>) -> bool {
        let values = env.values(&self.key_lowercase);
        if let Test::Null(expected_absent) = &self.test {
            let absent = values.is_none();
            return expected_absent.contains(&absent);
        }
        let Some(values) = values else {
            return self.if_exists
                || match self.set {
                    Some(SetOperator::ForAllValues) => true,
                    Some(SetOperator::ForAnyValue) => false,
                    None => self.test.negated(),
                };
        };
        match self.set {
            None => {
                let any = values.iter().any(|v| self.test.positive(v, env));
                any != self.test.negated()
            }
            Some(SetOperator::ForAnyValue) => values.iter().any(|v| self.test.single(v, env)),
            Some(SetOperator::ForAllValues) => values.iter().all(|v| self.test.single(v, env)),
        }
    }
}

/// Where condition keys and policy variables get their values.
pub(crate) struct Env<'a> {
    pub(crate) context: &'a ConditionContext,
    /// Fallback for the principal's global keys the context leaves out.
    pub(crate) principal: Option<&'a Principal>,
}

impl<'a> Env<'a> {
    /// The request values of a (lower-cased) key; `None` when absent or
    /// empty. `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:userid`,
    /// `aws:username` and `aws:PrincipalServiceName` fall back to the caller
    /// when the context lacks them.
    pub(crate) fn values(&self, key: &str) -> Option<Cow<'a, [String]>> {
        if let Some(value) = self.context.get_lowercase(key) {
            return (!value.values.is_empty()).then_some(Cow::Borrowed(value.values.as_slice()));
        }
        self.principal_value(key).map(|v| Cow::Owned(vec![v]))
    }

    /// The value of a policy variable: a single-valued key with exactly one
    /// value. Multivalued keys never resolve (IAM).
    pub(crate) fn variable(&self, key: &str) -> Option<String> {
        match self.context.get_lowercase(key) {
            Some(value) => match (value.multi_valued, value.values.as_slice()) {
                (false, [one]) => Some(one.clone()),
                _ => None,
            },
            None => self.principal_value(key),
        }
    }

    fn principal_value(&self, key: &str) -> Option<String> {
        let p = self.principal?;
        let service = match &p.kind {
            PrincipalKind::Service { name } => Some(name),
            PrincipalKind::Root | PrincipalKind::IamUser | PrincipalKind::AssumedRole { .. } => {
                None
            }
        };
        match (key, service) {
            ("aws:principalservicename", Some(name)) => Some(name.clone()),
            ("aws:principalarn", None) => Some(p.principal_arn().to_owned()),
            ("aws:principalaccount", None) => (!p.account.is_empty()).then(|| p.account.clone()),
            ("aws:userid", _) => p.user_id.clone(),
            ("aws:username", _) => p.username.clone(),
            _ => None,
        }
    }
}

/// Parses a `Condition` element. `variables`: policy version 2012-10-17.
/// Errors are messages without location; the caller adds it.
pub(crate) fn parse_conditions(json: &Json, variables: bool) -> Result<Vec<Condition>, String> {
    let Json::Object(operators) = json else {
        return Err(format!(
            "Condition must be an object, not {}",
            json.type_name()
        ));
    };
    let mut out = Vec::new();
    for (operator, block) in operators {
        let Json::Object(keys) = block else {
            return Err(format!(
                "Condition operator {operator} must map to an object of condition keys, not {}",
                block.type_name()
            ));
        };
        if keys.is_empty() {
            return Err(format!(
                "Condition operator {operator} has no condition keys"
            ));
        }
        let kind = OperatorKind::parse(operator)?;
        for (key, values) in keys {
            if key.is_empty() {
                return Err(format!(
                    "Condition operator {operator} has an empty key name"
                ));
            }
            let values = condition_values(operator, key, values)?;
            let test = kind.build(operator, key, &values, variables)?;
            out.push(Condition {
                operator: operator.clone(),
                key: key.clone(),
                key_lowercase: key.to_lowercase(),
                set: kind.set,
                if_exists: kind.if_exists,
                test,
            });
        }
    }
    Ok(out)
}

/// A value or list of values; strings, numbers and booleans are stringified.
fn condition_values(operator: &str, key: &str, json: &Json) -> Result<Vec<String>, String> {
    let scalar = |v: &Json| match v {
        Json::String(s) | Json::Number(s) => Ok(s.clone()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "Condition {operator} {key}: a value must be a string, number or boolean, not {}",
            other.type_name()
        )),
    };
    match json {
        // AWS-DEVIATION (unverified): an empty list would make a negated
        // operator vacuously true; rejected rather than guessed at.
        Json::Array(items) if items.is_empty() => Err(format!(
            "Condition {operator} {key}: the list of values is empty"
        )),
        Json::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    String(StringTest, bool),
    Arn(bool),
    Numeric(Comparison, bool),
    Date(Comparison, bool),
    Bool,
    Binary,
    Ip(bool),
    Null,
}

#[derive(Debug, Clone, Copy)]
struct OperatorKind {
    set: Option<SetOperator>,
    if_exists: bool,
    family: Family,
}

impl OperatorKind {
    /// Operator names are case-sensitive, as in IAM.
    fn parse(operator: &str) -> Result<OperatorKind, String> {
        let (set, rest) = if let Some(rest) = operator.strip_prefix("ForAnyValue:") {
            (Some(SetOperator::ForAnyValue), rest)
        } else if let Some(rest) = operator.strip_prefix("ForAllValues:") {
            (Some(SetOperator::ForAllValues), rest)
        } else {
            (None, operator)
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        use Comparison as C;
        let family = match base {
            "StringEquals" => Family::String(StringTest::Equals, false),
            "StringNotEquals" => Family::String(StringTest::Equals, true),
            "StringEqualsIgnoreCase" => Family::String(StringTest::EqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => Family::String(StringTest::EqualsIgnoreCase, true),
            "StringLike" => Family::String(StringTest::Like, false),
            "StringNotLike" => Family::String(StringTest::Like, true),
            "NumericEquals" => Family::Numeric(C::Equals, false),
            "NumericNotEquals" => Family::Numeric(C::Equals, true),
            "NumericLessThan" => Family::Numeric(C::LessThan, false),
            "NumericLessThanEquals" => Family::Numeric(C::LessThanEquals, false),
            "NumericGreaterThan" => Family::Numeric(C::GreaterThan, false),
            "NumericGreaterThanEquals" => Family::Numeric(C::GreaterThanEquals, false),
            "DateEquals" => Family::Date(C::Equals, false),
            "DateNotEquals" => Family::Date(C::Equals, true),
            "DateLessThan" => Family::Date(C::LessThan, false),
            "DateLessThanEquals" => Family::Date(C::LessThanEquals, false),
            "DateGreaterThan" => Family::Date(C::GreaterThan, false),
            "DateGreaterThanEquals" => Family::Date(C::GreaterThanEquals, false),
            "Bool" => Family::Bool,
            "BinaryEquals" => Family::Binary,
            "IpAddress" => Family::Ip(false),
            "NotIpAddress" => Family::Ip(true),
            "ArnEquals" | "ArnLike" => Family::Arn(false),
            "ArnNotEquals" | "ArnNotLike" => Family::Arn(true),
            "Null" => Family::Null,
            _ => return Err(format!("Unknown condition operator {operator}")),
        };
        if family == Family::Null && (if_exists || set.is_some()) {
            return Err(format!(
                "Condition operator {operator}: Null takes neither IfExists nor a ForAnyValue/ForAllValues prefix"
            ));
        }
        Ok(OperatorKind {
            set,
            if_exists,
            family,
        })
    }

    /// AWS-DEVIATION (unverified): numeric, date, boolean, IP and `Null`
    /// values that do not parse are rejected here instead of silently
    /// never matching, and they take no policy variables.
    fn build(
        &self,
        operator: &str,
        key: &str,
        values: &[String],
        variables: bool,
    ) -> Result<Test, String> {
        // Parses every value with `parse`, or says which one is not `what`.
        fn typed<T>(
            operator: &str,
            key: &str,
            values: &[String],
            what: &str,
            parse: impl Fn(&str) -> Option<T>,
        ) -> Result<Vec<T>, String> {
            values
                .iter()
                .map(|v| {
                    parse(v)
                        .ok_or_else(|| format!("Condition {operator} {key}: \"{v}\" is not {what}"))
                })
                .collect()
        }
        let patterns = || {
            values
                .iter()
                .map(|v| Pattern::compile(v, variables))
                .collect::<Vec<_>>()
        };
        Ok(match self.family {
            Family::String(test, negated) => Test::String {
                test,
                negated,
                values: patterns(),
            },
            Family::Arn(negated) => Test::Arn {
                negated,
                values: patterns(),
            },
            Family::Numeric(comparison, negated) => Test::Numeric {
                comparison,
                negated,
                values: typed(operator, key, values, "a number", parse_number)?,
            },
            Family::Date(comparison, negated) => Test::Date {
                comparison,
                negated,
                values: typed(
                    operator,
                    key,
                    values,
                    "a date (ISO 8601 or epoch seconds)",
                    parse_date,
                )?,
            },
            Family::Bool => Test::Bool(typed(
                operator,
                key,
                values,
                "a boolean (true or false)",
                parse_bool,
            )?),
            Family::Binary => Test::Binary(values.to_vec()),
            Family::Ip(negated) => Test::Ip {
                negated,
                values: typed(
                    operator,
                    key,
                    values,
                    "an IPv4 or IPv6 address or CIDR block",
                    Cidr::parse,
                )?,
            },
            Family::Null => Test::Null(typed(operator, key, values, "true or false", parse_bool)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ContextValue;

    /// The request value of the key under test.
    #[derive(Clone, Copy)]
    enum Req<'a> {
        Missing,
        One(&'a str),
        Many(&'a [&'a str]),
    }

    fn eval(operator: &str, key: &str, values: &str, req: Req<'_>) -> bool {
        eval_with(operator, key, values, req, &ConditionContext::new())
    }

    fn eval_with(
        operator: &str,
        key: &str,
        values: &str,
        req: Req<'_>,
        base: &ConditionContext,
    ) -> bool {
        let json = Json::parse(&format!(r#"{{"{operator}": {{"{key}": {values}}}}}"#)).unwrap();
        let conditions = parse_conditions(&json, true).unwrap();
        assert_eq!(conditions.len(), 1);
        let mut ctx = base.clone();
        match req {
            Req::Missing => {}
            Req::One(v) => ctx.insert_single(key, v),
            Req::Many(vs) => ctx.insert(key, ContextValue::multi(vs.iter().copied())),
        }
        let principal = Principal::iam_user("111122223333", "alice");
        let env = Env {
            context: &ctx,
            principal: Some(&principal),
        };
        conditions[0].holds(&env)
    }

    use Req::{Many, Missing, One};

    #[test]
    fn string_operators() {
        let k = "kms:ViaService";
        let s3 = r#"["s3.us-east-1.amazonaws.com", "ebs.us-east-1.amazonaws.com"]"#;
        let table: &[(&str, &str, Req<'_>, bool)] = &[
            ("StringEquals", s3, One("s3.us-east-1.amazonaws.com"), true),
            ("StringEquals", s3, One("ebs.us-east-1.amazonaws.com"), true),
            ("StringEquals", s3, One("S3.us-east-1.amazonaws.com"), false),
            ("StringEquals", s3, Missing, false),
            (
                "StringNotEquals",
                s3,
                One("s3.us-east-1.amazonaws.com"),
                false,
            ),
            (
                "StringNotEquals",
                s3,
                One("rds.us-east-1.amazonaws.com"),
                true,
            ),
            ("StringNotEquals", s3, Missing, true),
            (
                "StringEqualsIgnoreCase",
                s3,
                One("S3.US-EAST-1.AMAZONAWS.COM"),
                true,
            ),
            (
                "StringEqualsIgnoreCase",
                s3,
                One("s3.us-east-2.amazonaws.com"),
                false,
            ),
            ("StringEqualsIgnoreCase", s3, Missing, false),
            (
                "StringNotEqualsIgnoreCase",
                s3,
                One("EBS.us-east-1.amazonaws.com"),
                false,
            ),
            ("StringNotEqualsIgnoreCase", s3, One("x"), true),
            ("StringNotEqualsIgnoreCase", s3, Missing, true),
            (
                "StringLike",
                r#""s3.*.amazonaws.com""#,
                One("s3.eu-west-1.amazonaws.com"),
                true,
            ),
            (
                "StringLike",
                r#""s3.*.amazonaws.com""#,
                One("S3.eu-west-1.amazonaws.com"),
                false,
            ),
            (
                "StringLike",
                r#""s3.us-east-?.amazonaws.com""#,
                One("s3.us-east-2.amazonaws.com"),
                true,
            ),
            ("StringLike", r#""s3.*""#, Missing, false),
            ("StringNotLike", r#""s3.*""#, One("s3.x"), false),
            ("StringNotLike", r#""s3.*""#, One("ebs.x"), true),
            ("StringNotLike", r#""s3.*""#, Missing, true),
            // `*` in StringEquals is a literal.
            ("StringEquals", r#""s3.*""#, One("s3.x"), false),
            ("StringEquals", r#""s3.*""#, One("s3.*"), true),
            ("StringEqualsIfExists", s3, Missing, true),
            ("StringEqualsIfExists", s3, One("rds"), false),
            (
                "StringEqualsIfExists",
                s3,
                One("s3.us-east-1.amazonaws.com"),
                true,
            ),
            ("StringNotEqualsIfExists", s3, Missing, true),
            (
                "StringNotEqualsIfExists",
                s3,
                One("s3.us-east-1.amazonaws.com"),
                false,
            ),
            ("StringLikeIfExists", r#""s3.*""#, Missing, true),
            ("StringNotLikeIfExists", r#""s3.*""#, One("s3.a"), false),
            ("StringEqualsIgnoreCaseIfExists", s3, Missing, true),
            ("StringNotEqualsIgnoreCaseIfExists", s3, Missing, true),
            // Numbers and booleans in the policy are stringified.
            ("StringEquals", "42", One("42"), true),
            ("StringEquals", "true", One("true"), true),
            ("StringEquals", "[1, false]", One("false"), true),
        ];
        for (op, values, req, want) in table {
            assert_eq!(eval(op, k, values, *req), *want, "{op} {values}");
        }
    }

    #[test]
    fn numeric_operators() {
        let k = "kms:ScheduleKeyDeletionPendingWindowInDays";
        let table: &[(&str, &str, Req<'_>, bool)] = &[
            ("NumericEquals", "30", One("30"), true),
            ("NumericEquals", "30", One("30.0"), true),
            ("NumericEquals", "\"30\"", One("7"), false),
            ("NumericEquals", "30", One("thirty"), false),
            ("NumericEquals", "30", Missing, false),
            ("NumericNotEquals", "30", One("7"), true),
            ("NumericNotEquals", "[7, 30]", One("7"), false),
            ("NumericNotEquals", "30", Missing, true),
            ("NumericLessThan", "10", One("7"), true),
            ("NumericLessThan", "10", One("10"), false),
            ("NumericLessThanEquals", "10", One("10"), true),
            ("NumericLessThanEquals", "10", One("11"), false),
            ("NumericGreaterThan", "10", One("11"), true),
            ("NumericGreaterThan", "10", One("10"), false),
            ("NumericGreaterThanEquals", "10", One("10"), true),
            ("NumericGreaterThanEquals", "10", One("9.5"), false),
            ("NumericGreaterThanEquals", "10", Missing, false),
            ("NumericLessThanIfExists", "10", Missing, true),
            ("NumericLessThanIfExists", "10", One("12"), false),
            // Several values: OR.
            ("NumericLessThan", "[5, 20]", One("10"), true),
        ];
        for (op, values, req, want) in table {
            assert_eq!(eval(op, k, values, *req), *want, "{op} {values}");
        }
    }

    #[test]
    fn date_operators() {
        let k = "aws:CurrentTime";
        let noon = One("2024-06-01T12:00:00Z");
        let table: &[(&str, &str, Req<'_>, bool)] = &[
            ("DateEquals", r#""2024-06-01T12:00:00Z""#, noon, true),
            ("DateEquals", r#""2024-06-01T14:00:00+02:00""#, noon, true),
            ("DateEquals", "1717243200", noon, true),
            ("DateEquals", r#""2024-06-01""#, noon, false),
            ("DateNotEquals", r#""2024-06-01""#, noon, true),
            ("DateNotEquals", r#""2024-06-01T12:00:00Z""#, noon, false),
            ("DateLessThan", r#""2024-06-02""#, noon, true),
            ("DateLessThan", r#""2024-06-01T12:00:00Z""#, noon, false),
            (
                "DateLessThanEquals",
                r#""2024-06-01T12:00:00Z""#,
                noon,
                true,
            ),
            ("DateGreaterThan", r#""2024-06-01""#, noon, true),
            ("DateGreaterThan", r#""2024-06-01T12:00:00Z""#, noon, false),
            ("DateGreaterThanEquals", "1717243200", noon, true),
            ("DateGreaterThanEquals", "1717243201", noon, false),
            // Request value as epoch seconds (aws:EpochTime style).
            (
                "DateLessThan",
                r#""2025-01-01T00:00:00Z""#,
                One("1717243200"),
                true,
            ),
            (
                "DateLessThan",
                r#""2025-01-01T00:00:00Z""#,
                One("not a date"),
                false,
            ),
            ("DateLessThan", r#""2025-01-01T00:00:00Z""#, Missing, false),
            ("DateNotEquals", r#""2025-01-01T00:00:00Z""#, Missing, true),
            (
                "DateGreaterThanIfExists",
                r#""2025-01-01T00:00:00Z""#,
                Missing,
                true,
            ),
        ];
        for (op, values, req, want) in table {
            assert_eq!(eval(op, k, values, *req), *want, "{op} {values}");
        }
    }

    #[test]
    fn bool_binary_ip_null() {
        let table: &[(&str, &str, &str, Req<'_>, bool)] = &[
            (
                "Bool",
                "kms:GrantIsForAWSResource",
                "true",
                One("true"),
                true,
            ),
            (
                "Bool",
                "kms:GrantIsForAWSResource",
                "\"true\"",
                One("TRUE"),
                true,
            ),
            (
                "Bool",
                "kms:GrantIsForAWSResource",
                "true",
                One("false"),
                false,
            ),
            ("Bool", "kms:GrantIsForAWSResource", "false", Missing, false),
            (
                "Bool",
                "kms:GrantIsForAWSResource",
                "true",
                One("yes"),
                false,
            ),
            (
                "BoolIfExists",
                "aws:SecureTransport",
                "false",
                Missing,
                true,
            ),
            (
                "BinaryEquals",
                "k:Bin",
                r#""QmluYXJ5""#,
                One("QmluYXJ5"),
                true,
            ),
            (
                "BinaryEquals",
                "k:Bin",
                r#""QmluYXJ5""#,
                One("qmluyxj5"),
                false,
            ),
            ("BinaryEquals", "k:Bin", r#""QmluYXJ5""#, Missing, false),
            (
                "BinaryEqualsIfExists",
                "k:Bin",
                r#""QmluYXJ5""#,
                Missing,
                true,
            ),
            (
                "IpAddress",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                One("203.0.113.7"),
                true,
            ),
            (
                "IpAddress",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                One("203.0.114.7"),
                false,
            ),
            (
                "IpAddress",
                "aws:SourceIp",
                r#"["10.0.0.0/8", "2001:db8::/32"]"#,
                One("2001:db8::5"),
                true,
            ),
            (
                "IpAddress",
                "aws:SourceIp",
                r#""2001:db8::/32""#,
                One("2001:db9::5"),
                false,
            ),
            (
                "IpAddress",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                One("not-an-ip"),
                false,
            ),
            (
                "IpAddress",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                Missing,
                false,
            ),
            (
                "NotIpAddress",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                One("198.51.100.1"),
                true,
            ),
            (
                "NotIpAddress",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                One("203.0.113.1"),
                false,
            ),
            (
                "NotIpAddress",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                Missing,
                true,
            ),
            (
                "IpAddressIfExists",
                "aws:SourceIp",
                r#""203.0.113.0/24""#,
                Missing,
                true,
            ),
            ("Null", "kms:ViaService", "true", Missing, true),
            ("Null", "kms:ViaService", "true", One("s3.x"), false),
            ("Null", "kms:ViaService", "false", One("s3.x"), true),
            ("Null", "kms:ViaService", "false", Missing, false),
            ("Null", "kms:EncryptionContextKeys", "true", Many(&[]), true),
        ];
        for (op, key, values, req, want) in table {
            assert_eq!(eval(op, key, values, *req), *want, "{op} {key} {values}");
        }
    }

    #[test]
    fn arn_operators() {
        // Not aws:PrincipalArn: that one falls back to the caller when absent.
        let k = "kms:GranteePrincipal";
        let role = One("arn:aws:iam::111122223333:role/VoiceIdRole");
        let table: &[(&str, &str, Req<'_>, bool)] = &[
            (
                "ArnEquals",
                r#""arn:aws:iam::111122223333:role/VoiceIdRole""#,
                role,
                true,
            ),
            (
                "ArnEquals",
                r#""arn:aws:iam::111122223333:role/voiceidrole""#,
                role,
                false,
            ),
            ("ArnLike", r#""arn:aws:iam::*:role/Voice*""#, role, true),
            ("ArnLike", r#""arn:aws:iam::111122223333:*""#, role, true),
            ("ArnLike", r#""arn:aws:iam::444455556666:*""#, role, false),
            // `*` does not span the account separator.
            ("ArnLike", r#""arn:aws:iam:*/VoiceIdRole""#, role, false),
            (
                "ArnEquals",
                r#""arn:aws:iam::*:role/VoiceIdRole""#,
                role,
                true,
            ),
            (
                "ArnNotEquals",
                r#""arn:aws:iam::111122223333:role/Other""#,
                role,
                true,
            ),
            (
                "ArnNotLike",
                r#""arn:aws:iam::111122223333:role/*""#,
                role,
                false,
            ),
            ("ArnLike", r#""arn:aws:iam::*:role/*""#, Missing, false),
            ("ArnNotLike", r#""arn:aws:iam::*:role/*""#, Missing, true),
            (
                "ArnLikeIfExists",
                r#""arn:aws:iam::*:role/*""#,
                Missing,
                true,
            ),
            (
                "ArnLike",
                r#""arn:aws:iam::*:role/*""#,
                One("not-an-arn"),
                false,
            ),
        ];
        for (op, values, req, want) in table {
            assert_eq!(eval(op, k, values, *req), *want, "{op} {values}");
        }
    }

    #[test]
    fn set_operators() {
        let k = "kms:EncryptionContextKeys";
        let allowed = r#"["Department", "Project"]"#;
        let table: &[(&str, Req<'_>, bool)] = &[
            ("ForAllValues:StringEquals", Many(&["Department"]), true),
            (
                "ForAllValues:StringEquals",
                Many(&["Department", "Project"]),
                true,
            ),
            (
                "ForAllValues:StringEquals",
                Many(&["Department", "Other"]),
                false,
            ),
            // Empty and missing: ForAllValues is vacuously true ...
            ("ForAllValues:StringEquals", Many(&[]), true),
            ("ForAllValues:StringEquals", Missing, true),
            // ... ForAnyValue is false.
            ("ForAnyValue:StringEquals", Many(&[]), false),
            ("ForAnyValue:StringEquals", Missing, false),
            (
                "ForAnyValue:StringEquals",
                Many(&["Other", "Project"]),
                true,
            ),
            ("ForAnyValue:StringEquals", Many(&["Other"]), false),
            ("ForAnyValue:StringEqualsIfExists", Missing, true),
            ("ForAllValues:StringEqualsIfExists", Missing, true),
            // Negated with a set prefix: per value.
            (
                "ForAnyValue:StringNotEquals",
                Many(&["Department", "Other"]),
                true,
            ),
            ("ForAnyValue:StringNotEquals", Many(&["Department"]), false),
            ("ForAnyValue:StringNotEquals", Missing, false),
            (
                "ForAllValues:StringNotEquals",
                Many(&["Other", "Else"]),
                true,
            ),
            (
                "ForAllValues:StringNotEquals",
                Many(&["Other", "Project"]),
                false,
            ),
            ("ForAllValues:StringNotEquals", Missing, true),
            (
                "ForAllValues:StringLike",
                Many(&["Department", "Project"]),
                true,
            ),
            // Without a prefix: any value matches / no value matches.
            ("StringEquals", Many(&["Other", "Project"]), true),
            ("StringNotEquals", Many(&["Other", "Project"]), false),
            ("StringNotEquals", Many(&["Other"]), true),
        ];
        for (op, req, want) in table {
            assert_eq!(eval(op, k, allowed, *req), *want, "{op}");
        }
        assert!(eval(
            "ForAllValues:StringLike",
            k,
            r#""Dep*""#,
            Many(&["Dept", "Depot"])
        ));
        assert!(eval(
            "ForAnyValue:NumericLessThan",
            "k:n",
            "5",
            Many(&["9", "3"])
        ));
        assert!(!eval(
            "ForAllValues:NumericLessThan",
            "k:n",
            "5",
            Many(&["9", "3"])
        ));
        assert!(eval(
            "ForAnyValue:IpAddress",
            "k:ip",
            r#""10.0.0.0/8""#,
            Many(&["1.1.1.1", "10.1.1.1"])
        ));
        assert!(eval(
            "ForAllValues:ArnLike",
            "k:arns",
            r#""arn:aws:iam::1:*""#,
            Many(&["arn:aws:iam::1:role/a", "arn:aws:iam::1:user/b"])
        ));
    }

    #[test]
    fn principal_keys_fall_back_to_the_caller() {
        let arn = r#""arn:aws:iam::111122223333:user/alice""#;
        assert!(eval("ArnEquals", "aws:PrincipalArn", arn, Missing));
        assert!(eval(
            "StringEquals",
            "aws:PrincipalAccount",
            r#""111122223333""#,
            Missing
        ));
        assert!(eval("StringEquals", "aws:username", r#""alice""#, Missing));
        // A service has a service name, not a principal ARN.
        let service = Principal::service("voiceid.amazonaws.com");
        let ctx = ConditionContext::new();
        let env = Env {
            context: &ctx,
            principal: Some(&service),
        };
        assert_eq!(env.values("aws:principalarn"), None);
        assert_eq!(env.values("aws:principalaccount"), None);
        assert_eq!(
            env.values("aws:principalservicename").as_deref(),
            Some(&["voiceid.amazonaws.com".to_string()][..])
        );
        // aws:userid is unknown for this caller: absent.
        assert!(eval("Null", "aws:userid", "true", Missing));
        // The context wins over the fallback.
        assert!(!eval(
            "ArnEquals",
            "aws:PrincipalArn",
            arn,
            One("arn:aws:iam::111122223333:user/bob")
        ));
    }

    #[test]
    fn key_names_are_case_insensitive() {
        let mut ctx = ConditionContext::new();
        ctx.insert_single(
            "kms:EncryptionContext:aws:VoiceID:Domain:ARN",
            "arn:aws:voiceid:us-west-2:111122223333:domain/d1",
        );
        assert!(eval_with(
            "StringEquals",
            "KMS:encryptioncontext:aws:voiceid:domain:arn",
            r#""arn:aws:voiceid:us-west-2:111122223333:domain/d1""#,
            Missing,
            &ctx,
        ));
    }

    #[test]
    fn policy_variables_in_values() {
        let mut ctx = ConditionContext::new();
        ctx.insert_single("aws:PrincipalTag/team", "blue");
        ctx.insert("aws:TagKeys", ContextValue::multi(["a", "b"]));
        // From the context.
        assert!(eval_with(
            "StringEquals",
            "k:team",
            r#""${aws:PrincipalTag/team}""#,
            One("blue"),
            &ctx
        ));
        assert!(!eval_with(
            "StringEquals",
            "k:team",
            r#""${aws:PrincipalTag/team}""#,
            One("red"),
            &ctx
        ));
        // Name of the variable is case-insensitive.
        assert!(eval_with(
            "StringLike",
            "k:team",
            r#""${AWS:PRINCIPALTAG/TEAM}-*""#,
            One("blue-1"),
            &ctx
        ));
        // From the principal (aws:username is not in the context).
        assert!(eval(
            "StringEquals",
            "k:owner",
            r#""${aws:username}""#,
            One("alice")
        ));
        assert!(eval(
            "ArnEquals",
            "k:arn",
            r#""arn:aws:iam::111122223333:user/${aws:username}""#,
            One("arn:aws:iam::111122223333:user/alice")
        ));
        // Escapes are literals, not wildcards.
        assert!(eval("StringLike", "k:v", r#""a${*}""#, One("a*")));
        assert!(!eval("StringLike", "k:v", r#""a${*}""#, One("ab")));
        assert!(eval(
            "StringEquals",
            "k:v",
            r#""${$}{x}${?}""#,
            One("${x}?")
        ));
        // Unresolvable: that value matches nothing; the others still count.
        assert!(!eval(
            "StringEquals",
            "k:v",
            r#""${aws:PrincipalTag/none}""#,
            One("")
        ));
        assert!(eval(
            "StringEquals",
            "k:v",
            r#"["${aws:PrincipalTag/none}", "x"]"#,
            One("x")
        ));
        assert!(eval(
            "StringNotEquals",
            "k:v",
            r#""${aws:PrincipalTag/none}""#,
            One("x")
        ));
        // A default value applies when unresolvable.
        assert!(eval(
            "StringEquals",
            "k:v",
            r#""${aws:PrincipalTag/none, 'dflt'}""#,
            One("dflt")
        ));
        // A multivalued key is not a variable.
        assert!(!eval_with(
            "StringEquals",
            "k:v",
            r#""${aws:TagKeys}""#,
            One("a"),
            &ctx
        ));
    }

    #[test]
    fn no_variables_in_version_2008() {
        let json = Json::parse(r#"{"StringEquals": {"k:v": "${aws:username}"}}"#).unwrap();
        let conditions = parse_conditions(&json, false).unwrap();
        let mut ctx = ConditionContext::new();
        ctx.insert_single("k:v", "${aws:username}");
        let principal = Principal::iam_user("111122223333", "alice");
        let env = Env {
            context: &ctx,
            principal: Some(&principal),
        };
        assert!(conditions[0].holds(&env));
    }

    #[test]
    fn several_keys_and_operators_are_all_returned() {
        let json =
            Json::parse(r#"{"StringEquals": {"a:x": "1", "a:y": "2"}, "Bool": {"a:z": true}}"#)
                .unwrap();
        let conditions = parse_conditions(&json, true).unwrap();
        let keys: Vec<_> = conditions.iter().map(|c| (c.operator(), c.key())).collect();
        assert_eq!(
            keys,
            [
                ("StringEquals", "a:x"),
                ("StringEquals", "a:y"),
                ("Bool", "a:z")
            ]
        );
    }

    #[test]
    fn malformed_conditions() {
        let table = [
            (
                r#"{"StringEqual": {"a:b": "x"}}"#,
                "Unknown condition operator StringEqual",
            ),
            (
                r#"{"stringequals": {"a:b": "x"}}"#,
                "Unknown condition operator stringequals",
            ),
            (
                r#"{"ForSomeValues:StringEquals": {"a:b": "x"}}"#,
                "Unknown condition operator",
            ),
            (r#"{"NullIfExists": {"a:b": "true"}}"#, "Null takes neither"),
            (
                r#"{"ForAnyValue:Null": {"a:b": "true"}}"#,
                "Null takes neither",
            ),
            (r#"{"Null": {"a:b": "maybe"}}"#, "is not true or false"),
            (
                r#"{"NumericLessThan": {"a:b": "ten"}}"#,
                "\"ten\" is not a number",
            ),
            (r#"{"DateLessThan": {"a:b": "tomorrow"}}"#, "is not a date"),
            (r#"{"Bool": {"a:b": "yes"}}"#, "is not a boolean"),
            (
                r#"{"IpAddress": {"a:b": "10.0.0.0/40"}}"#,
                "is not an IPv4 or IPv6",
            ),
            (
                r#"{"StringEquals": {"a:b": null}}"#,
                "must be a string, number or boolean, not null",
            ),
            (r#"{"StringEquals": {"a:b": {"c": "d"}}}"#, "not an object"),
            (r#"{"StringEquals": {"a:b": [["x"]]}}"#, "not a list"),
            (
                r#"{"StringEquals": {"a:b": []}}"#,
                "the list of values is empty",
            ),
            (r#"{"StringEquals": {}}"#, "has no condition keys"),
            (r#"{"StringEquals": "a:b"}"#, "must map to an object"),
            (r#"["StringEquals"]"#, "Condition must be an object"),
        ];
        for (text, want) in table {
            let json = Json::parse(text).unwrap();
            let err = parse_conditions(&json, true).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
