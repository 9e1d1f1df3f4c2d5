//! The `ciphertext_blob` fuzz target's corpus, replayed through its invariant checks
//! (`tresor_crypto::fuzzing::check_blob`), and the regression tests of its findings.
//! `cargo test -p tresor-crypto --test fuzz_corpus -- --ignored` rewrites the seed files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

include!("../../../fuzz/replay.rs");

use tresor_crypto::fuzzing::{check_blob, seal_seed};

const TARGET: &str = "ciphertext_blob";

#[test]
fn replay_corpus() {
    replay(TARGET, check_blob);
}

/// The CI smoke run: mutants of every corpus file through the same checks (`fuzz/replay.rs`).
#[test]
fn smoke_mutants() {
    smoke(TARGET, check_blob);
}

#[test]
fn seeds_that_open_keep_opening() {
    // A blob sealed now under the fuzz material passes every check (the round-trip branch).
    for selector in [0u8, 1, 2, 3, 0x0f] {
        check_blob(&seal_seed(selector, b"a plaintext").unwrap());
    }
}

#[test]
#[ignore = "rewrites the seed corpus"]
fn write_seed_corpus() {
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for (selector, plaintext) in [
        (0u8, b"x".to_vec()),
        (1, b"tenant a's data key 0123456789abcdef".to_vec()),
        (2, vec![0u8; 64]),
        (3, vec![0xff; 4096]),
        (0x21, b"context with a long value".to_vec()),
    ] {
        let sealed = seal_seed(selector, &plaintext).unwrap();
        seeds.push((
            format!("sealed-{selector:02x}-{}", plaintext.len()),
            sealed.clone(),
        ));
        // The same blob opened with the wrong context, truncated, extended, other version.
        let mut wrong_ctx = sealed.clone();
        wrong_ctx[0] ^= 1;
        seeds.push((format!("wrong-context-{selector:02x}"), wrong_ctx));
        seeds.push((
            format!("truncated-{selector:02x}"),
            sealed[..sealed.len() - 1].to_vec(),
        ));
        let mut longer = sealed.clone();
        longer.push(0);
        seeds.push((format!("extended-{selector:02x}"), longer));
        let mut v2 = sealed.clone();
        v2[1] = 2;
        seeds.push((format!("version-2-{selector:02x}"), v2));
    }
    // Exactly the minimum length, one short of it, a header only, nothing.
    let min = tresor_crypto::blob::OVERHEAD + 1;
    let mut at_min = vec![0u8; min + 1];
    at_min[1] = 1;
    seeds.push(("minimum-length".into(), at_min.clone()));
    seeds.push(("one-short".into(), at_min[..min].to_vec()));
    seeds.push(("header-only".into(), at_min[..1 + 93].to_vec()));
    seeds.push(("selector-only".into(), vec![0]));
    write_seeds(TARGET, &seeds);
}
