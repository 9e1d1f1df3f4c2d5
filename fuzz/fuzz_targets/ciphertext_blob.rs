//! Fuzz target: ciphertext blob header parsing and opening with a fixed key material.
//! The invariants are checked by `tresor_crypto::fuzzing::check_blob`, which the crate's tests also replay over
//! `fuzz/corpus/ciphertext_blob/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tresor_crypto::fuzzing::check_blob(data);
});
