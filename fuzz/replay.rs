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
