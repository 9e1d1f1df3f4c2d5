//! The request context: condition key → values.

use std::collections::BTreeMap;

/// The values of one condition key in a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextValue {
    /// The values; an empty list means the key is absent.
    pub values: Vec<String>,
    /// Whether the key is multivalued (`kms:EncryptionContextKeys`,
    /// `kms:GrantOperations`, `aws:TagKeys`, ...). A multivalued key cannot
    /// be used as a policy variable.
    pub multi_valued: bool,
}

impl ContextValue {
    /// A single-valued key.
    pub fn single(value: impl Into<String>) -> ContextValue {
        ContextValue {
            values: vec![value.into()],
            multi_valued: false,
        }
    }

    /// A multivalued key (possibly with no values).
    pub fn multi<I, S>(values: I) -> ContextValue
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ContextValue {
            values: values.into_iter().map(Into::into).collect(),
            multi_valued: true,
        }
    }
}

/// Condition keys of one request. Key names are case-insensitive (AWS), so
/// they are stored lower-cased; that includes the part after
/// `kms:EncryptionContext:`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConditionContext {
    entries: BTreeMap<String, ContextValue>,
}

impl ConditionContext {
    pub fn new() -> ConditionContext {
        ConditionContext::default()
    }

    /// Sets `key` (any case), replacing what was there under any spelling.
    pub fn insert(&mut self, key: &str, value: ContextValue) {
        self.entries.insert(key.to_lowercase(), value);
    }

    /// Sets a single-valued key.
    pub fn insert_single(&mut self, key: &str, value: impl Into<String>) {
        self.insert(key, ContextValue::single(value));
    }

    /// Builder form of [`ConditionContext::insert`].
    #[must_use]
    pub fn with(mut self, key: &str, value: ContextValue) -> ConditionContext {
        self.insert(key, value);
        self
    }

    /// Sets `kms:EncryptionContext:<k>` for every pair and
    /// `kms:EncryptionContextKeys` (multivalued) to the set of keys, as KMS
    /// does for CreateGrant and the cryptographic operations. An empty
    /// context sets neither, so `Null` and `...IfExists` see them absent.
    ///
    /// Two context keys that differ only in case map to the same condition
    /// key; its values are then both values (a positive operator matches if
    /// either does, a negated one only if neither does).
    pub fn insert_encryption_context(&mut self, context: &BTreeMap<String, String>) {
        if context.is_empty() {
            return;
        }
        for (k, v) in context {
            let key = format!("kms:encryptioncontext:{}", k.to_lowercase());
            let entry = self.entries.entry(key).or_default();
            entry.values.push(v.clone());
        }
        self.insert(
            "kms:EncryptionContextKeys",
            ContextValue::multi(context.keys().cloned()),
        );
    }

    /// The values of `key` (any case), if present.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.entries.get(&key.to_lowercase())
    }

    /// Looks up an already lower-cased key.
    pub(crate) fn get_lowercase(&self, key: &str) -> Option<&ContextValue> {
        self.entries.get(key)
    }

    /// All entries, keys lower-cased, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ContextValue)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive() {
        let mut ctx = ConditionContext::new();
        ctx.insert_single("kms:ViaService", "s3.us-east-1.amazonaws.com");
        assert_eq!(
            ctx.get("KMS:VIASERVICE").unwrap().values,
            ["s3.us-east-1.amazonaws.com"]
        );
        ctx.insert_single("kms:viaservice", "x");
        assert_eq!(ctx.get("kms:ViaService").unwrap().values, ["x"]);
    }

    #[test]
    fn encryption_context_keys() {
        let mut ctx = ConditionContext::new();
        let ec = BTreeMap::from([
            ("Dept".to_string(), "a".to_string()),
            ("dept".to_string(), "b".to_string()),
            ("Project".to_string(), "p".to_string()),
        ]);
        ctx.insert_encryption_context(&ec);
        assert_eq!(
            ctx.get("kms:EncryptionContext:DEPT").unwrap().values,
            ["a", "b"]
        );
        let keys = ctx.get("kms:encryptioncontextkeys").unwrap();
        assert!(keys.multi_valued);
        assert_eq!(keys.values, ["Dept", "Project", "dept"]);

        let mut empty = ConditionContext::new();
        empty.insert_encryption_context(&BTreeMap::new());
        assert_eq!(empty, ConditionContext::new());
    }
}
