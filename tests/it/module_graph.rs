//! The library's top-level modules depend on each other without a cycle
//! (issue 9): a module that needs a higher one is a sign of a concern in the
//! wrong place. The graph is read from the `crate::MODULE` paths in `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

/// The top-level module a source file belongs to (`src/trust/dir.rs` -> `trust`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every `crate::NAME` in `text`, comments included (a doc link is a
/// dependency of the reader's model too); `use crate::{a, b}` is not used
/// in this code base.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        if text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `pkgsign_crate::`
        }
        let name: String = text[i + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    for f in &files {
        if let Some(m) = module_of(&src, f) {
            modules.insert(m);
        }
    }
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let Some(m) = module_of(&src, f) else {
            continue;
        };
        // The binary's modules and the crate root are not library layers.
        if matches!(m.as_str(), "cli" | "main" | "lib") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let deps = g.entry(m.clone()).or_default();
        for r in crate_refs(&text) {
            if r != m && modules.contains(&r) {
                deps.insert(r);
            }
        }
    }
    g
}

/// A cycle through `start`, if any (depth-first search).
fn cycle_from(
    g: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(pos) = path.iter().position(|p| p == node) {
        let mut c = path[pos..].to_vec();
        c.push(node.to_string());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in g.get(node).into_iter().flatten() {
        if let Some(c) = cycle_from(g, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_library_modules_form_no_cycle() {
    let g = graph();
    assert!(g.len() >= 8, "too few modules found: {g:?}");
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = cycle_from(&g, m, &mut Vec::new(), &mut done) {
            panic!("module cycle: {}\nfull graph: {g:#?}", c.join(" -> "));
        }
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    let c = cycle_from(&g, "a", &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(c.unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(
        crate_refs("use crate::trust::x; // crate::sign"),
        BTreeSet::from(["sign".into(), "trust".into()])
    );
}

/// Unsafe code lives in one module (`mapped`, the memory map): every other
/// top-level module of the library forbids it at its top, the binary too,
/// and a new module without the line fails here.
#[test]
fn every_module_but_mapped_forbids_unsafe_code() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let file = if path.is_dir() {
            path.join("mod.rs")
        } else {
            path.clone()
        };
        let name = path.file_stem().unwrap().to_str().unwrap().to_string();
        // The crate root denies unsafe code (so that `mapped` may allow it);
        // the binary's `cli` sits under `main.rs`, which forbids it.
        if matches!(name.as_str(), "lib" | "mapped" | "cli") || !file.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.lines().any(|l| l.trim() == "#![forbid(unsafe_code)]"),
            "{} does not forbid unsafe code",
            file.display()
        );
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} modules checked");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(lib.contains("#![deny(unsafe_code)]"));
    let mapped = std::fs::read_to_string(src.join("mapped.rs")).unwrap();
    assert_eq!(mapped.matches("unsafe {").count(), 1, "one unsafe block");
}
