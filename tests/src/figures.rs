//! Figures of the reliability tests, written as JSON into `RELIABILITY_FIGURES_DIR` when it is
//! set (`make soak` sets it and puts them in RELIABILITY.md).

/// Reads a positive number from the environment, else `default` (the quick `make test` setting).
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|v| *v > 0).unwrap_or(default)
}

/// The seed of a randomized test: `RELIABILITY_SEED`, else one from the clock. Printed, so a
/// failing run can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("RELIABILITY_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    });
    eprintln!("{test}: seed {seed} (replay with RELIABILITY_SEED={seed})");
    seed
}

/// Writes `figures` as `<dir>/<name>.json` if `RELIABILITY_FIGURES_DIR` is set.
pub fn write(name: &str, figures: &serde_json::Value) {
    if let Ok(dir) = std::env::var("RELIABILITY_FIGURES_DIR") {
        std::fs::create_dir_all(&dir).expect("figures dir");
        let path = std::path::Path::new(&dir).join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(figures).expect("json")).expect("write figures");
    }
}
