//! The README's "Use as a library" program compiles and runs as written, against dmoe with
//! `default-features = false`: the test copies the ```rust block into a fresh cargo project (with this
//! crate's Cargo.lock, offline), runs it on a CSV file and checks what it prints.

use std::path::Path;
use std::process::Command;

#[test]
fn the_readme_library_example_compiles_and_runs_without_default_features() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme.split("## Use as a library").nth(1).expect("README has a section \"Use as a library\"");
    let program = section.split("```rust\n").nth(1).and_then(|s| s.split("\n```").next()).expect("a ```rust block");
    assert!(program.contains("fn main()"), "the block is a whole program");

    let project = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme-example");
    std::fs::create_dir_all(project.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"fit-moe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\ndmoe = {{ path = {:?}, default-features = false }}\n\n[workspace]\n",
        root.display().to_string()
    );
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(project.join("src/main.rs"), program).unwrap();
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();

    let csv = root.join("tests/vectors/em_case1.csv");
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--offline", "--release", "--"])
        .arg(&csv)
        .arg("3")
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", project.join("target"))
        .output()
        .expect("cargo runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the example failed:\n{stderr}");
    // The shared test vector's reference maximum is -2666.633 (see tests/em.rs).
    assert!(stdout.starts_with("log-likelihood -2666.63"), "it prints the fit's log-likelihood: {stdout}");

    let usage = Command::new(project.join("target/release/fit-moe")).output().unwrap();
    assert!(!usage.status.success() && String::from_utf8_lossy(&usage.stderr).contains("usage: fit-moe FILE.csv K"));
}
