//! The house rules of imports, checked on the source itself (code, not its tests):
//! layers point down (`digest` → `checksum` → `storage` → `protocol` → `fs` → `mount`,
//! `cli`), no module imports from a module above it in its own tree (its parent's
//! `mod.rs`: what a child needs lives in a module of its own), and the modules of each
//! folder import each other without a cycle.
//!
//! No import breaks them today. The lists of known exceptions below are empty and stay
//! so: one added on purpose is written there, and one that goes must be struck.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path, `["fs", "staging", "repair"]`; the crate is `[]`.
type Module = Vec<String>;

/// Every module of `src/` (not the binaries, not test modules) and its file.
fn modules() -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, prefix: &Module, found: &mut BTreeMap<Module, PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if name == "bin" || name == "tests" {
                    continue;
                }
                let mut module = prefix.clone();
                module.push(name);
                walk(&path, &module, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                if name.ends_with("_tests") || name == "tests" {
                    continue;
                }
                let mut module = prefix.clone();
                if name != "mod" && name != "lib" {
                    module.push(name);
                }
                found.insert(module, path);
            }
        }
    }
    let mut found = BTreeMap::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &Vec::new(),
        &mut found,
    );
    found
}

/// `pub(in crate::a::b)` names a module it imports nothing from: dropped.
fn without_restrictions(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("pub(in ") {
        out.push_str(&rest[..at]);
        out.push_str("pub(restricted)");
        rest = &rest[at..];
        rest = rest.find(')').map_or("", |end| &rest[end + 1..]);
    }
    out.push_str(rest);
    out
}

/// The code of a file without its tests and its comments.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let code = code
        .lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string (a URL) cuts the rest of a line that names no module.
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_restrictions(&code)
}

/// Every path the code names from `crate::`, `super::` or `self::`, braces of `use`
/// trees expanded: `use super::{a, b::c}` names `super::a` and `super::b::c`.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes: Vec<char> = code.chars().collect();
    let mut at = 0;
    while at < bytes.len() {
        let rest: String = bytes[at..bytes.len().min(at + 7)].iter().collect();
        let starts = ["crate::", "super::", "self::"]
            .iter()
            .find(|p| rest.starts_with(**p));
        let before = if at == 0 { ' ' } else { bytes[at - 1] };
        match starts {
            Some(_) if !(before.is_alphanumeric() || before == '_') => {
                let (found, end) = expand(&bytes, at, Vec::new());
                paths.extend(found);
                at = end.max(at + 1);
            }
            _ => at += 1,
        }
    }
    paths
}

/// Reads a path (and a `use` tree's braces) from `at`; returns the paths and where it
/// stopped.
fn expand(text: &[char], mut at: usize, prefix: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let mut path = prefix;
    loop {
        while at < text.len() && text[at].is_whitespace() {
            at += 1;
        }
        if at < text.len() && text[at] == '{' {
            at += 1;
            let mut all = Vec::new();
            loop {
                while at < text.len() && (text[at].is_whitespace() || text[at] == ',') {
                    at += 1;
                }
                if at >= text.len() || text[at] == '}' {
                    return (all, at + 1);
                }
                let (found, end) = expand(text, at, path.clone());
                all.extend(found);
                at = end;
            }
        }
        let start = at;
        while at < text.len() && (text[at].is_alphanumeric() || text[at] == '_') {
            at += 1;
        }
        if start == at {
            return (vec![path], at);
        }
        path.push(text[start..at].iter().collect());
        if text[at..].starts_with(&[':', ':']) {
            at += 2;
        } else {
            return (vec![path], at);
        }
    }
}

/// The deepest module a path names (its items are in it), from `module`'s file.
fn resolve(path: &[String], module: &Module, all: &BTreeMap<Module, PathBuf>) -> Module {
    // `super` is the parent of the module, whether its file is `a/b.rs` or `a/b/mod.rs`.
    let mut base = module.clone();
    let mut rest = path;
    while let Some(first) = rest.first() {
        match first.as_str() {
            "crate" => base.clear(),
            "super" => {
                base.pop();
            }
            "self" => {}
            _ => break,
        }
        rest = &rest[1..];
    }
    for segment in rest {
        let mut deeper = base.clone();
        deeper.push(segment.clone());
        if all.contains_key(&deeper) {
            base = deeper;
        } else {
            break;
        }
    }
    base
}

fn layer(top: &str) -> u8 {
    match top {
        "digest" => 0,
        "checksum" => 1,
        "storage" => 2,
        "protocol" => 3,
        "fs" | "arguments" => 4,
        "mount" | "cli" => 5,
        other => panic!("module {other} has no layer: give it one here"),
    }
}

/// Every import of another module, `(from, to)`.
fn imports() -> Vec<(Module, Module)> {
    let all = modules();
    let mut edges = BTreeSet::new();
    for (module, file) in &all {
        if module.is_empty() {
            continue;
        }
        for path in paths_in(&code_of(file)) {
            let target = resolve(&path, module, &all);
            if target != *module {
                edges.insert((module.clone(), target));
            }
        }
    }
    edges.into_iter().collect()
}

/// Imports that run back up, allowed on purpose: none.
const RUNNING_BACK_UP: &[&str] = &[];

/// Cycles allowed on purpose (as the check first meets them): none.
const CYCLES: &[&str] = &[];

/// Fails on what `found` has beyond `known`, and on what `known` lists that is gone.
fn no_new_debt(what: &str, found: Vec<String>, known: &[&str]) {
    let new: Vec<&String> = found
        .iter()
        .filter(|f| !known.contains(&f.as_str()))
        .collect();
    let gone: Vec<&&str> = known
        .iter()
        .filter(|k| !found.iter().any(|f| f == *k))
        .collect();
    assert!(new.is_empty(), "new {what}:\n{}", join(&new));
    assert!(
        gone.is_empty(),
        "{what} gone (strike them from the list):\n{}",
        join(&gone)
    );
}

fn join(items: &[impl std::fmt::Display]) -> String {
    items
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn name(module: &Module) -> String {
    format!("crate::{}", module.join("::"))
}

#[test]
fn layers_point_down() {
    let mut wrong = Vec::new();
    for (from, to) in imports() {
        let (Some(a), Some(b)) = (from.first(), to.first()) else {
            continue;
        };
        if a != b && layer(b) >= layer(a) {
            wrong.push(format!("{} uses {}", name(&from), name(&to)));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up or across:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_imports_from_a_module_above_it_in_its_tree() {
    let mut wrong = Vec::new();
    for (from, to) in imports() {
        if !to.is_empty() && from.len() > to.len() && from.starts_with(&to) {
            wrong.push(format!("{} uses {}", name(&from), name(&to)));
        }
    }
    wrong.sort();
    wrong.dedup();
    no_new_debt("imports that run back up", wrong, RUNNING_BACK_UP);
}

#[test]
fn the_modules_of_each_folder_import_each_other_without_a_cycle() {
    // Between siblings: `a::b::x` using `a::c::y` is `b` using `c`, within `a`.
    let mut graphs: BTreeMap<Module, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, to) in imports() {
        let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
        if common < from.len() && common < to.len() {
            graphs
                .entry(from[..common].to_vec())
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(to[common].clone());
        }
    }
    let mut cycles = Vec::new();
    for (parent, graph) in &graphs {
        let mut done = BTreeSet::new();
        for start in graph.keys() {
            find_cycle(start, graph, &mut Vec::new(), &mut done, &mut |cycle| {
                cycles.push(format!("in {}: {}", name(parent), cycle.join(" -> ")))
            });
        }
    }
    no_new_debt("import cycles", cycles, CYCLES);
}

fn find_cycle(
    module: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
    report: &mut dyn FnMut(Vec<String>),
) {
    if let Some(at) = path.iter().position(|m| m == module) {
        let mut cycle = path[at..].to_vec();
        cycle.push(module.to_string());
        report(cycle);
        return;
    }
    if done.contains(module) {
        return;
    }
    path.push(module.to_string());
    for next in graph.get(module).into_iter().flatten() {
        find_cycle(next, graph, path, done, report);
    }
    path.pop();
    done.insert(module.to_string());
}

#[test]
fn the_check_reads_use_trees_and_finds_what_it_looks_for() {
    let code =
        "use super::{census::Content, error::{self, Error}};\nlet x = crate::fs::sync::lock(y);";
    let paths = paths_in(code);
    let joined: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert!(
        joined.contains(&"super::census::Content".to_string()),
        "{joined:?}"
    );
    assert!(
        joined.contains(&"super::error::self".to_string()),
        "{joined:?}"
    );
    assert!(
        joined.contains(&"super::error::Error".to_string()),
        "{joined:?}"
    );
    assert!(
        joined.contains(&"crate::fs::sync::lock".to_string()),
        "{joined:?}"
    );
    let all = modules();
    let from: Module = vec!["fs".into(), "staging".into(), "stage".into()];
    assert_eq!(
        resolve(
            &["super".into(), "completion".into(), "x".into()],
            &from,
            &all
        )
        .join("::"),
        "fs::staging::completion"
    );
    assert_eq!(
        resolve(&["crate".into(), "fs".into(), "lock".into()], &from, &all).join("::"),
        "fs"
    );
    // A visibility restriction imports nothing.
    assert!(paths_in(&without_restrictions(
        "pub(in crate::fs) fn f(x: super::a::B) {}"
    ))
    .iter()
    .all(|p| p.join("::") != "crate::fs"));
    assert_eq!(
        without_restrictions("pub(in crate::fs) fn f() {} pub(in super) struct S;"),
        "pub(restricted) fn f() {} pub(restricted) struct S;"
    );
}

#[test]
fn the_architecture_page_names_every_folder_and_every_module_of_fs() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .unwrap();
    let mut unnamed = Vec::new();
    for (module, path) in modules() {
        let named = match module.as_slice() {
            // Every folder of `src` and of `src/fs` (`src/fs/calls`, as `calls/`).
            [top] if path.ends_with("mod.rs") => page.contains(&format!("src/{top}")),
            [fs, wing] if fs == "fs" && path.ends_with("mod.rs") => {
                page.contains(&format!("{wing}/"))
            }
            // Every module at the root of `src/fs` (`stat.rs`).
            [fs, file] if fs == "fs" => page.contains(&format!("{file}.rs")),
            _ => true,
        };
        if !named {
            unnamed.push(module.join("::"));
        }
    }
    assert!(
        unnamed.is_empty(),
        "docs/ARCHITECTURE.md does not name {unnamed:?}"
    );
}
