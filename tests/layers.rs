//! The layers point one way: a top-level module may name only the modules listed below
//! it here, read from the source (every `crate::<module>` each file mentions). Run
//! `cargo test --test layers`; a new arrow upwards or sideways fails it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module and what it may use, lowest layer first: a module uses only modules
/// listed before it, so the graph has no cycle.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("clock", &[]),
    ("secrets", &[]),
    ("net", &[]),
    ("process", &[]),
    ("faults", &[]),
    ("telemetry", &[]),
    ("auth", &["domain", "secrets"]),
    ("restate_identity", &["secrets"]),
    ("db", &["domain", "auth", "clock"]),
    (
        "durable",
        &["domain", "db", "clock", "net", "faults", "telemetry"],
    ),
    (
        "app",
        &[
            "domain", "auth", "db", "durable", "clock", "process", "secrets",
        ],
    ),
    ("config", &["clock", "secrets"]),
    (
        "web",
        &[
            "app",
            "domain",
            "auth",
            "db",
            "clock",
            "config",
            "telemetry",
        ],
    ),
    (
        "cli",
        &[
            "app",
            "auth",
            "config",
            "db",
            "domain",
            "secrets",
            "clock",
            "restate_identity",
        ],
    ),
    (
        "supervisor",
        &[
            "app",
            "config",
            "db",
            "durable",
            "web",
            "process",
            "net",
            "restate_identity",
            "faults",
        ],
    ),
];

/// The module names a source text mentions as `crate::name` or `crate::{name, …}`.
fn mentions(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                found.insert(ident(item.trim()));
            }
        } else {
            found.insert(ident(rest));
        }
    }
    // `crate::Shutdown` and other items of the root are not modules.
    found.retain(|m| m.starts_with(|c: char| c.is_ascii_lowercase()));
    found
}

fn sources(path: &Path, out: &mut Vec<String>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            sources(&entry.unwrap().path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|e| e == "rs") {
        out.push(std::fs::read_to_string(path).unwrap());
    }
}

#[test]
fn layers_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut seen = BTreeSet::new();
    let mut uses: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (module, allowed) in LAYERS {
        for dep in *allowed {
            assert!(
                seen.contains(dep),
                "{module} uses {dep}, which is not below it"
            );
        }
        seen.insert(*module);
        let mut texts = Vec::new();
        sources(&src.join(module), &mut texts);
        sources(&src.join(format!("{module}.rs")), &mut texts);
        assert!(!texts.is_empty(), "no source for {module}");
        let found: BTreeSet<String> = texts.iter().flat_map(|t| mentions(t)).collect();
        uses.insert(module, found);
    }
    let mut wrong = Vec::new();
    for (module, allowed) in LAYERS {
        for used in &uses[module] {
            if used != module && !allowed.contains(&used.as_str()) {
                wrong.push(format!("{module} → {used}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "arrows the layers do not allow: {wrong:?}"
    );
    // Every module of the crate is in the table.
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            assert!(seen.contains(name), "module {name} is missing from LAYERS");
        }
    }
}

#[test]
fn mentions_are_read_from_paths_and_groups() {
    let text = "use crate::db::Db;\nuse crate::{app, web::AppState};\nlet x = crate::Shutdown;";
    let found: Vec<String> = mentions(text).into_iter().collect();
    assert_eq!(found, ["app", "db", "web"]);
}
