// Shared by the corpus replay tests of the crates (`crates/*/tests/fuzz_corpus.rs`, through
// `include!`): reads `fuzz/corpus/<target>/` and runs a fuzz target's invariant check on
// every file, so the seeds and every regression input run in the normal test suite.

/// The committed corpus of a fuzz target: (file name, bytes), sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Writes seed files (`seed-<name>`) into the corpus directory of `target`.
fn write_seeds(target: &str, seeds: &[(String, Vec<u8>)]) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
    }
}

/// Runs `check` over every corpus file, naming the file that broke an invariant.
fn replay(target: &str, check: fn(&[u8])) {
    let files = corpus(target);
    assert!(files.len() >= 5, "the {target} corpus is missing");
    for (name, bytes) in files {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("fuzz/corpus/{target}/{name} breaks an invariant");
        }
    }
}

/// How many mutants `smoke` derives from each corpus file (`TRESOR_FUZZ_SMOKE_ROUNDS` overrides).
const SMOKE_ROUNDS: usize = 1000;

/// A short mutation-fuzzing run on the stable toolchain, part of the normal test suite: every
/// corpus file is mutated `SMOKE_ROUNDS` times (bit flips, byte changes, insertions, deletions,
/// duplicated ranges, splices with other files, JSON/SigV4 punctuation, boundary numbers) and each
/// mutant goes through the same invariant check as the libFuzzer target. Not coverage-guided (that
/// is `scripts/fuzz`), but it runs on every CI run. The seed is fixed so a failure reproduces;
/// `TRESOR_FUZZ_SEED=<n>` explores other mutants. A mutant that breaks an invariant is written to
/// `target/fuzz-smoke/<target>/` and named in the failure, to be committed as a regression.
fn smoke(target: &str, check: fn(&[u8])) {
    let files = corpus(target);
    let seed: u64 = std::env::var("TRESOR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7265_736f_7274_2d31);
    let rounds: usize = std::env::var("TRESOR_FUZZ_SMOKE_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SMOKE_ROUNDS);
    let mut rng = SmokeRng(seed | 1);
    const TOKENS: &[&[u8]] = &[
        b"{", b"}", b"[", b"]", b"\"", b":", b",", b"\\", b"\\u0000", b"\\ud800", b"null", b"true",
        b"-0", b"1e999", b"18446744073709551616", b"-9223372036854775809", b"0.5", b"=", b"/", b"%",
        b"%zz", b"\n", b"\r\n", b" ", b"\t", b"\0", b"\xff", b"\xc3\xa9", b"aws4_request",
        b"AWS4-HMAC-SHA256", b"Credential=", b"SignedHeaders=", b"Signature=", b"alias/",
        b"arn:aws:kms:", b"\"Statement\"", b"\"Condition\"", b"*", b"${aws:username}",
    ];
    let mut checked = 0usize;
    for (name, bytes) in &files {
        for round in 0..rounds {
            let mut m = bytes.clone();
            for _ in 0..=rng.below(4) {
                mutate(&mut m, &files, &mut rng, TOKENS);
            }
            if std::panic::catch_unwind(|| check(&m)).is_err() {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/fuzz-smoke")
                    .join(target);
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("{name}-{seed}-{round}"));
                let _ = std::fs::write(&path, &m);
                panic!(
                    "a mutant of fuzz/corpus/{target}/{name} (seed {seed}, round {round}) breaks \
                     an invariant; its input is in {}",
                    path.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= files.len(), "the {target} smoke run checked nothing");
}

/// xorshift64*: deterministic, dependency-free, good enough to pick mutations.
struct SmokeRng(u64);

impl SmokeRng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(m: &mut Vec<u8>, files: &[(String, Vec<u8>)], rng: &mut SmokeRng, tokens: &[&[u8]]) {
    let len = m.len();
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            m[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            m[i] = rng.next() as u8;
        }
        2 => {
            let i = rng.below(len + 1);
            m.insert(i, rng.next() as u8);
        }
        3 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            m.drain(start..end);
        }
        4 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            let copy = m[start..end].to_vec();
            let at = rng.below(len + 1);
            m.splice(at..at, copy);
        }
        5 => {
            let other = &files[rng.below(files.len())].1;
            if !other.is_empty() {
                let from = rng.below(other.len());
                let at = rng.below(len + 1);
                m.truncate(at);
                m.extend_from_slice(&other[from..]);
            }
        }
        6 => {
            let token = tokens[rng.below(tokens.len())];
            let at = rng.below(len + 1);
            m.splice(at..at, token.iter().copied());
        }
        7 if len > 0 => {
            let token = tokens[rng.below(tokens.len())];
            let start = rng.below(len);
            let end = (start + 1 + rng.below(8)).min(len);
            m.splice(start..end, token.iter().copied());
        }
        _ => {
            let at = rng.below(len + 1);
            m.truncate(at);
        }
    }
}
