//! The modules of `host/` and `guest/` import one way: no two sibling
//! modules (or their descendants) use each other, directly or round a
//! longer loop. A parent declaring its children and a child using its
//! parent's items are not cycles; everything else is. A newcomer can then
//! read each crate from the bottom up.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `src` as its module path (`a/b.rs`, `a/b/mod.rs` → `a::b`).
fn modules(src: &Path) -> BTreeMap<Module, (PathBuf, bool)> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src").with_extension("");
            let mut module: Module = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
            let owns_dir = matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main"));
            if owns_dir {
                module.pop();
            }
            out.insert(module, (path, owns_dir));
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The code of a file without line comments and without its unit tests.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `a::b::c` path that starts at byte `at`.
fn path_at(text: &str, at: usize) -> Vec<String> {
    let rest = &text[at..];
    let end = rest.find(|c: char| !(is_ident(c) || c == ':')).unwrap_or(rest.len());
    rest[..end]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every module path a file names: `crate::…`, `super::…`, and the first
/// names of a `use crate::{…}` group.
fn references(text: &str, me: &Module, owns_dir: bool) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let base: &[String] = if owns_dir {
        me
    } else {
        &me[..me.len().saturating_sub(1)]
    };
    for (i, _) in text.match_indices("crate::") {
        if i > 0 && text[..i].ends_with(|c: char| is_ident(c)) {
            continue;
        }
        let at = i + "crate::".len();
        if text[at..].starts_with('{') {
            let group = &text[at + 1..];
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && is_ident(c) => {
                        out.insert(path_at(group, j));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(path_at(text, at));
        }
    }
    let mut i = 0;
    while let Some(found) = text[i..].find("super::") {
        let start = i + found;
        if start > 0 && text[..start].ends_with(|c: char| is_ident(c) || c == ':') {
            i = start + 1;
            continue;
        }
        let mut at = start;
        let mut ups = 0;
        while text[at..].starts_with("super::") {
            ups += 1;
            at += "super::".len();
        }
        let mut path: Vec<String> = base[..base.len().saturating_sub(ups)].to_vec();
        path.extend(path_at(text, at));
        out.insert(path);
        i = at;
    }
    out
}

/// The dependency edges between sibling subtrees, each with the pair of
/// modules that makes it.
fn edges(src: &Path) -> BTreeMap<(Module, Module), BTreeSet<(Module, Module)>> {
    let modules = modules(src);
    let mut edges: BTreeMap<(Module, Module), BTreeSet<(Module, Module)>> = BTreeMap::new();
    for (module, (path, owns_dir)) in &modules {
        let text = code(&std::fs::read_to_string(path).expect("read a source file"));
        for reference in references(&text, module, *owns_dir) {
            let Some(target) = (1..=reference.len())
                .rev()
                .map(|k| &reference[..k])
                .find(|p| modules.contains_key(*p))
            else {
                continue;
            };
            let common = module.iter().zip(target).take_while(|(a, b)| a == b).count();
            if common == module.len() || common == target.len() {
                continue; // itself, an ancestor or a descendant
            }
            edges
                .entry((module[..=common].to_vec(), target[..=common].to_vec()))
                .or_default()
                .insert((module.clone(), target.to_vec()));
        }
    }
    edges
}

/// Each cycle among sibling subtrees, as the module uses that close it.
fn cycles(src: &Path) -> Vec<String> {
    let edges = edges(src);
    let mut graph: BTreeMap<&Module, BTreeSet<&Module>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        graph.entry(from).or_default().insert(to);
    }
    let reaches = |from: &Module, to: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(m) = todo.pop() {
            if m == to {
                return true;
            }
            if seen.insert(m) {
                todo.extend(graph.get(m).into_iter().flatten().copied());
            }
        }
        false
    };
    let show = |m: &Module| {
        if m.is_empty() {
            "crate".to_string()
        } else {
            m.join("::")
        }
    };
    edges
        .iter()
        .filter(|((from, to), _)| reaches(to, from))
        .flat_map(|(_, uses)| uses.iter().map(|(a, b)| format!("{} uses {}", show(a), show(b))))
        .collect()
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn host_modules_import_one_way() {
    let found = cycles(&root().join("host/src"));
    assert!(found.is_empty(), "import cycles in host/src:\n{}", found.join("\n"));
}

#[test]
fn guest_modules_import_one_way() {
    let found = cycles(&root().join("guest/src"));
    assert!(found.is_empty(), "import cycles in guest/src:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_check_finds_a_cycle_between_siblings_and_ignores_parent_and_child() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "pub mod a;\npub mod b;\n").expect("write");
    std::fs::write(src.join("a/mod.rs"), "pub mod inner;\nuse crate::b::Thing;\n").expect("write");
    std::fs::write(src.join("a/inner.rs"), "use super::Parent;\n// crate::b::InAComment\n").expect("write");
    std::fs::write(src.join("b.rs"), "use crate::{a::inner::X, c};\n").expect("write");
    let found = cycles(src);
    assert_eq!(found, vec!["a uses b".to_string(), "b uses a::inner".to_string()]);
}
