//! `validate_input` never panics, whatever the JSON and the operation.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use tresor_kms_model::{WireError, generated, operation_names, validate_input};

/// Member names that occur in the model, so that generated objects hit real
/// members (and their nested shapes) often.
fn member_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = generated::SHAPES
        .iter()
        .flat_map(|s| s.members.iter().map(|m| m.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn key() -> impl Strategy<Value = String> {
    let names = member_names();
    prop_oneof![
        3 => proptest::sample::select(names).prop_map(str::to_string),
        1 => "[A-Za-z]{0,8}",
    ]
}

fn scalar_string() -> impl Strategy<Value = String> {
    prop_oneof![
        // Plausible values: enum values, base64, key ids.
        proptest::sample::select(
            generated::SHAPES
                .iter()
                .flat_map(|s| s.enum_values.iter().copied())
                .collect::<Vec<_>>()
        )
        .prop_map(str::to_string),
        "[A-Za-z0-9+/]{0,12}={0,2}",
        any::<String>(),
        "\\PC{0,40}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (-2000i64..2000).prop_map(|n| Value::Number(n.into())),
        scalar_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn operation() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = operation_names().collect();
    prop_oneof![
        8 => proptest::sample::select(names).prop_map(str::to_string),
        1 => "[A-Za-z.]{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validate_input_never_panics(op in operation(), body in json()) {
        let result = validate_input(&op, &body);
        if let Err(WireError::Validation(message)) = &result {
            prop_assert!(message.contains(" validation error"));
        }
    }

    #[test]
    fn every_operation_survives_arbitrary_objects(
        body in prop::collection::vec((key(), json()), 0..12)
            .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>()))
    ) {
        for op in operation_names() {
            let _ = validate_input(op, &body);
        }
    }
}
