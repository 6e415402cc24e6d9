//! Two builds from the same source give the same artifact: a second build
//! of the guest, from a copy of the sources at another path and in another
//! target directory, must reproduce the built-in artifact byte for byte.

use std::path::Path;

use provgate::digest::sha256_digest;
use provgate::policy::Artifact;

/// A copy of `from` at `to` with each file's modification time kept, which
/// cargo compares to decide what is fresh.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
            let modified = entry.metadata().unwrap().modified().unwrap();
            std::fs::File::options()
                .write(true)
                .open(&dst)
                .unwrap()
                .set_modified(modified)
                .unwrap();
        }
    }
}

#[test]
fn a_second_build_elsewhere_reproduces_the_builtin_artifact() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("provgate-copy");
    copy_tree(&root, &copy);
    // The first build's host-side tools (proc macros, build scripts, in
    // `<its target dir>/guest`) are reused: they run during a build and
    // are not part of the artifact (without them the build only takes
    // longer). Every wasm32 unit is built again from the copy: its remapped
    // path prefix differs, so none could be reused.
    let target = elsewhere.path().join("target");
    let tools = provgate_testkit::target_dir().join("guest").join("guest");
    if tools.is_dir() {
        copy_tree(&tools, &target.join("guest"));
    }

    let rebuilt = provgate_policy_build::build_artifact(&copy, &target, &copy.join("policies/molecule.json"))
        .expect("second build succeeds");

    let builtin = Artifact::builtin();
    assert_eq!(
        sha256_digest(&rebuilt),
        builtin.digest,
        "the artifact depends on where or when it was built"
    );
    assert_eq!(rebuilt.as_slice(), &*builtin.bytes);
}
