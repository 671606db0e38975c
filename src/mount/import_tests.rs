//! The modules of `crate::mount` import each other without a cycle: each may use only
//! those below it.

use std::collections::{BTreeMap, BTreeSet};

/// The sibling modules each module's code (not its tests) names through `super::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/mount");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_none_or(|e| e != "rs") || name.ends_with("_tests") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut used = BTreeSet::new();
        for line in code.lines() {
            let line = line.split("//").next().unwrap_or("");
            for (at, _) in line.match_indices("super::") {
                let rest = &line[at + "super::".len()..];
                let module: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !module.is_empty() && module != name {
                    used.insert(module);
                }
            }
        }
        graph.insert(name, used);
    }
    graph
}

#[test]
fn the_modules_of_the_mount_import_each_other_without_a_cycle() {
    let graph = imports();
    assert!(graph["options"].contains("settings"), "{graph:?}");
    // Depth-first, from every module: a module met again on its own path is a cycle.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        if let Some(at) = path.iter().position(|m| m == module) {
            panic!("an import cycle: {} -> {module}", path[at..].join(" -> "));
        }
        if done.contains(module) {
            return;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
        done.insert(module.to_string());
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
}
