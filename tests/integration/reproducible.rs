//! Two builds from the same source give the same artifact: a second,
//! independent build of the guest, from a copy of the sources at another
//! path and in another target directory, must reproduce the built-in
//! artifact byte for byte.

use std::path::Path;

use provgate::digest::sha256_digest;
use provgate::policy::Artifact;

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
        }
    }
}

#[test]
fn a_second_build_elsewhere_reproduces_the_builtin_artifact() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("provgate-copy");
    copy_tree(&root, &copy);

    let rebuilt = provgate_policy_build::build_artifact(
        &copy,
        &elsewhere.path().join("target"),
        &copy.join("policies/molecule.json"),
    )
    .expect("second build succeeds");

    let builtin = Artifact::builtin();
    assert_eq!(
        sha256_digest(&rebuilt),
        builtin.digest,
        "the artifact depends on where or when it was built"
    );
    assert_eq!(rebuilt.as_slice(), &*builtin.bytes);
}
