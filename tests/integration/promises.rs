//! `tests/README.md` maps each promise of the README to the tests that keep it: every
//! test it names must exist, so a test renamed or removed fails here until the map says
//! what keeps that promise now.

use std::path::Path;

/// The `file::test` references of the map: (the file as written, the test's name).
/// `…` abbreviations and wildcards are not references to check.
fn references(map: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for span in map.split('`').skip(1).step_by(2) {
        // `file::test`, or `file::test::on_moto` for one of its two runs.
        let mut parts = span.split("::");
        let (Some(file), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let plain = |text: &str, extra: &str| {
            !text.is_empty()
                && text.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || extra.contains(c)
                })
        };
        let is_name = plain(name, "") && plain(file, "/.");
        if is_name {
            found.push((file.to_string(), name.to_string()));
        }
    }
    found
}

/// Where a reference's file lives: `src/...` from the crate, the rest from
/// `tests/integration/`.
fn source_of(root: &Path, file: &str) -> std::path::PathBuf {
    let file = if file.ends_with(".rs") {
        file.to_string()
    } else {
        format!("{file}.rs")
    };
    if file.starts_with("src/") {
        root.join(file)
    } else {
        root.join("tests/integration").join(file)
    }
}

#[test]
fn every_test_the_promise_map_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("tests/README.md")).unwrap();
    let references = references(&map);
    assert!(references.len() > 100, "{} references", references.len());
    let mut missing = Vec::new();
    for (file, name) in &references {
        let source = std::fs::read_to_string(source_of(root, file)).unwrap_or_default();
        if !source.contains(&format!("fn {name}(")) {
            missing.push(format!("{file}::{name}"));
        }
    }
    assert!(
        missing.is_empty(),
        "tests/README.md names tests that do not exist: {missing:#?}"
    );
}

#[test]
fn the_map_reader_finds_references_and_skips_abbreviations() {
    let map = "| a | `ops/read::one_test` (both), `…two`, `ops/x::a_*`, `src/fs/error.rs`, \
               `Mount::start`, `ops/y::two_runs::on_moto` |";
    assert_eq!(
        references(map),
        vec![
            ("ops/read".to_string(), "one_test".to_string()),
            ("ops/y".to_string(), "two_runs".to_string()),
        ]
    );
}
