//! Building the policy artifact from source, shared by `host/build.rs` and the
//! reproducibility test: the guest crate for `wasm32-unknown-unknown`,
//! wrapped into a component, with settings written into its slot.

use std::env;
use std::path::Path;
use std::process::Command;

use provgate_contract::slot;

const TARGET: &str = "wasm32-unknown-unknown";

/// The artifact for the workspace at `root`, with the settings file given,
/// building the guest in `target_dir`.
pub fn build_artifact(root: &Path, target_dir: &Path, settings_path: &Path) -> Result<Vec<u8>, String> {
    ensure_wasm_target()?;
    let core = build_guest(root, target_dir)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| format!("wrapping the guest into a component: {e:#}"))?;
    let settings = std::fs::read(settings_path).map_err(|e| format!("reading {}: {e}", settings_path.display()))?;
    let settings = slot::canonical(&settings).map_err(|e| format!("{}: {e}", settings_path.display()))?;
    slot::write(&component, &settings).map_err(|e| format!("writing settings into the component: {e}"))
}

/// `RUSTUP_AUTO_INSTALL=0` machines don't add targets on their own; a fresh
/// clone must still build, so add the wasm target when it is missing.
pub fn ensure_wasm_target() -> Result<(), String> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("running {rustc} --print sysroot: {e}"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout).trim().to_string();
    if Path::new(&sysroot)
        .join("lib/rustlib")
        .join(TARGET)
        .join("lib")
        .is_dir()
    {
        return Ok(());
    }
    println!("cargo:warning=installing the {TARGET} target with rustup (needed to build the policy component)");
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]);
    if let Ok(toolchain) = env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("the {TARGET} target is missing and rustup could not be run ({e}); install it with `rustup target add {TARGET}`"))?;
    if !status.success() {
        return Err(format!(
            "`rustup target add {TARGET}` failed ({status}); the policy component cannot be built without it"
        ));
    }
    Ok(())
}

/// A nested cargo build of the guest, in its own target dir (sharing the
/// outer one deadlocks on its lock) and with the outer build's flags and
/// wrappers removed. Paths are remapped so the artifact does not depend on
/// where the repository or the cargo home live.
pub fn build_guest(root: &Path, target_dir: &Path) -> Result<Vec<u8>, String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let cargo_home = env::var("CARGO_HOME")
        .ok()
        .or_else(|| env::var("HOME").ok().map(|h| format!("{h}/.cargo")))
        .unwrap_or_default();
    // A 16 KiB shadow stack instead of 1 MiB: the rules recurse nowhere
    // and the settings reader caps nesting at 8 levels (tests/sandbox.rs
    // pins both). Stack, data and arena then fit the one 64 KiB page that
    // the host resets after every fresh instance, instead of two.
    let mut rustflags = vec![
        format!("--remap-path-prefix={}=/provgate", root.display()),
        "-Clink-arg=-zstack-size=16384".to_string(),
    ];
    if !cargo_home.is_empty() {
        rustflags.push(format!("--remap-path-prefix={cargo_home}=/cargo"));
    }

    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args([
            "build",
            "--locked",
            "--package",
            "provgate-guest",
            "--target",
            TARGET,
            "--profile",
            "guest",
        ])
        .arg("--target-dir")
        .arg(target_dir);
    for var in [
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"));
    // Cargo reads a build script's stdout as directives: keep the child off it.
    cmd.stdout(std::process::Stdio::from(std::io::stderr()));
    let status = cmd.status().map_err(|e| format!("running {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of the guest failed ({status})"));
    }
    let wasm = target_dir.join(TARGET).join("guest").join("provgate_guest.wasm");
    std::fs::read(&wasm).map_err(|e| format!("reading {}: {e}", wasm.display()))
}
