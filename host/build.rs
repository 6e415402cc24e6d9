//! Builds the policy artifact from source: the guest crate for
//! `wasm32-unknown-unknown`, wrapped into a component, with the project's
//! settings (`policies/molecule.json`) written into its settings slot. The
//! result is embedded in the `provgate` binary as the built-in policy.

use std::env;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

fn main() {
    if let Err(e) = run() {
        // A build script error reaches the user as-is: make it actionable.
        eprintln!("error: building the provgate policy component failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest_dir
        .parent()
        .ok_or("host/ has no parent directory")?
        .to_path_buf();
    for path in [
        "guest/src",
        "guest/Cargo.toml",
        // Crates the guest links, and the slot layout it reserves.
        "contract/src",
        "contract/Cargo.toml",
        "wit",
        "policies/molecule.json",
        "Cargo.lock",
        // The guest's build profile lives in the workspace manifest.
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let target_dir = match env::var_os("CARGO_TARGET_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("guest"),
        // Relative to wherever cargo was started, which a build script
        // cannot know; the directory this build writes to is the one above
        // OUT_DIR's profile directory (<target>/[<triple>/]<profile>/build/<pkg>/out).
        Some(_) => out_dir
            .ancestors()
            .nth(4)
            .ok_or("OUT_DIR is not inside a target directory")?
            .join("guest"),
        None => root.join("target").join("guest"),
    };
    let artifact = provgate_policy_build::build_artifact(&root, &target_dir, &root.join("policies/molecule.json"))?;

    let out = out_dir.join("provgate-policy.wasm");
    std::fs::write(&out, &artifact).map_err(|e| format!("writing {}: {e}", out.display()))?;
    // Its digest too, so a one-shot run need not hash the embedded bytes
    // (a unit test checks the two agree).
    let digest: String = Sha256::digest(&artifact).iter().map(|b| format!("{b:02x}")).collect();
    let out = out_dir.join("provgate-policy.digest");
    std::fs::write(&out, format!("sha256:{digest}")).map_err(|e| format!("writing {}: {e}", out.display()))?;
    Ok(())
}
