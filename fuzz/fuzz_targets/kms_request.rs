//! Fuzz target: a KMS JSON 1.1 request body for any operation of the model: parsing, model validation, decoding into the operation type.
//! The invariants are checked by `tresor::kms_edge::fuzzing::check_request`, which the crate's tests also replay over
//! `fuzz/corpus/kms_request/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tresor::kms_edge::fuzzing::check_request(data);
});
