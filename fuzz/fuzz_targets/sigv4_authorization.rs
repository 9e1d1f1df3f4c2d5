//! Fuzz target: SigV4 `Authorization` parsing (decode, encode, decode) and canonicalisation (sign, then verify).
//! The invariants are checked by `tresor_sigv4::fuzzing::check_authorization`, which the crate's tests also replay over
//! `fuzz/corpus/sigv4_authorization/`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tresor_sigv4::fuzzing::check_authorization(data);
});
