//! "No hard-coded workflow logic": workflows are defined by their YAML, and
//! the rules between them live in `agent::workflow`. No other source file
//! names a workflow (tests may).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_workflow_name_is_written_outside_the_yaml_and_agent_workflow() {
    let root = workspace();
    let names: Vec<String> = std::fs::read_dir(root.join("workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 3, "{names:?}");

    let mut files = Vec::new();
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let allowed = root.join("crates/agent/src/workflow");
    let mut found = Vec::new();
    for file in files {
        // The workflow module itself, and unit-test files.
        if file.with_extension("") == allowed
            || file.starts_with(&allowed)
            || file.file_name().is_some_and(|n| n == "tests.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // A file's test module comes last; tests may name workflows.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            for name in &names {
                if line.contains(&format!("\"{name}\"")) {
                    found.push(format!("{}:{}: {name}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "workflow names outside the YAML and agent::workflow (use the state machine in \
         agent::workflow, or its constants):\n{}",
        found.join("\n")
    );
}
