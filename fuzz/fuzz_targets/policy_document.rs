//! Fuzz target: key and identity policy documents: parsing, and authorization with them (explicit deny wins).
//! The invariants are checked by `tresor_policy::fuzzing::check_policy`, which the crate's tests also replay over
//! `fuzz/corpus/policy_document/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tresor_policy::fuzzing::check_policy(data);
});
