//! The layers point one way: a top-level module may name only the modules listed below
//! it here, read from the source (every `crate::<module>` each file mentions). Run
//! `cargo test --test it layers::`; a new arrow upwards or sideways fails it.

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
    ("logs", &[]),
    ("shutdown", &[]),
    ("build", &[]),
    ("control", &[]),
    ("auth", &["domain", "secrets"]),
    ("restate_identity", &["secrets"]),
    ("db", &["domain", "auth", "clock"]),
    (
        "durable",
        &[
            "domain",
            "db",
            "clock",
            "net",
            "faults",
            "telemetry",
            "build",
        ],
    ),
    (
        "app",
        &[
            "domain", "auth", "db", "durable", "clock", "process", "secrets", "shutdown",
        ],
    ),
    ("config", &["clock", "secrets", "build"]),
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
            "shutdown",
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
            "durable",
            "control",
            "build",
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
            "shutdown",
            "build",
            "control",
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

/// The longest a source file may be, counting the lines before its unit tests.
const FILE_LINES: usize = 600;
/// The longest a function may be, from `fn` to its closing brace.
const FN_LINES: usize = 60;
/// What is over the limits today, to be split: the check fails on anything new, and
/// on an entry here that is no longer over (so the list only shrinks).
const OVER_LIMITS: &[&str] = &[];

/// Every `.rs` file under `dir`, with its path relative to the crate root.
fn files(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let name = path.strip_prefix(root).unwrap().display().to_string();
            out.push((name, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The lines before a file's `#[cfg(test)]` module.
fn code_lines(text: &str) -> Vec<&str> {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .collect()
}

/// `(name, lines)` of each function in `lines`: from the `fn` line to the first line
/// that closes it at its own indentation.
fn functions(lines: &[&str]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let mut rest = body;
        loop {
            let before = rest;
            for qualifier in [
                "pub(crate) ",
                "pub(super) ",
                "pub ",
                "async ",
                "const ",
                "unsafe ",
            ] {
                rest = rest.strip_prefix(qualifier).unwrap_or(rest);
            }
            if rest == before {
                break;
            }
        }
        let Some(rest) = rest.strip_prefix("fn ") else {
            continue;
        };
        if line.trim_end().ends_with(';') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[at + 1..].iter().position(|l| *l == close) {
            found.push((name, end + 2));
        }
    }
    found
}

#[test]
fn no_file_or_function_is_too_long() {
    let mut all = Vec::new();
    files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut all);
    let mut over = Vec::new();
    let mut sizes = Vec::new();
    for (name, text) in &all {
        let code = code_lines(text);
        if code.len() > FILE_LINES {
            over.push(format!("{name}: {}+ lines", code.len() / 100 * 100));
            sizes.push(format!("{name}: {} lines", code.len()));
        }
        for (function, lines) in functions(&code) {
            if lines > FN_LINES {
                over.push(format!("{name}: fn {function}"));
                sizes.push(format!("{name}: fn {function}, {lines} lines"));
            }
        }
    }
    let new: Vec<&String> = over
        .iter()
        .filter(|o| !OVER_LIMITS.contains(&o.as_str()))
        .collect();
    let fixed: Vec<&&str> = OVER_LIMITS
        .iter()
        .filter(|o| !over.iter().any(|x| x == *o))
        .collect();
    assert!(
        new.is_empty() && fixed.is_empty(),
        "over {FILE_LINES} lines a file or {FN_LINES} a function, not in OVER_LIMITS: {new:?}; \
         in OVER_LIMITS but no longer over (remove them): {fixed:?}; all over: {sizes:#?}"
    );
}

#[test]
fn functions_are_measured_from_fn_to_their_closing_brace() {
    let text =
        "fn a() {\n    x();\n}\n\n    pub async fn b(\n        y: u8,\n    ) {\n    }\nfn c();";
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        functions(&lines),
        [("a".to_owned(), 3), ("b".to_owned(), 4)]
    );
}

/// The module a file is, as a path below the crate (`app::orders` for
/// `src/app/orders.rs` and for `src/app/orders/mod.rs`).
fn module_of(file: &str) -> Vec<String> {
    let path = file
        .strip_prefix("src/")
        .unwrap()
        .strip_suffix(".rs")
        .unwrap();
    let mut parts: Vec<String> = path.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// The modules one file names, resolved to paths below the crate: `crate::a::b`,
/// `super::b` and `self::b` (`b` may be a module or an item; both count as `a::b`'s
/// parent module when `a::b` is no module).
fn named_modules(
    module: &[String],
    text: &str,
    known: &BTreeSet<Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect()
    };
    for prefix in ["crate::", "super::", "self::"] {
        for (at, _) in text.match_indices(prefix) {
            if at > 0 && text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
            {
                continue;
            }
            let rest = ident(&text[at + prefix.len()..]);
            let mut path: Vec<String> = match prefix {
                "crate::" => Vec::new(),
                "super::" => module[..module.len().saturating_sub(1)].to_vec(),
                _ => module.to_vec(),
            };
            path.extend(
                rest.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            while !path.is_empty() && !known.contains(&path) {
                path.pop();
            }
            if !path.is_empty() {
                found.insert(path);
            }
        }
    }
    found
}

#[test]
fn no_module_circle() {
    let mut all = Vec::new();
    files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut all);
    let known: BTreeSet<Vec<String>> = all.iter().map(|(f, _)| module_of(f)).collect();
    // Arrows between sibling modules: `app::journal → app::orders`, `web::ui → web::api`.
    let mut arrows: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (file, text) in &all {
        let from = module_of(file);
        for to in named_modules(&from, &code_lines(text).join("\n"), &known) {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                arrows
                    .entry(from[..=common].to_vec())
                    .or_default()
                    .insert(to[..=common].to_vec());
            }
        }
    }
    // A circle is an arrow back to where a path of arrows started.
    let mut circles = Vec::new();
    for start in arrows.keys() {
        let mut stack = vec![vec![start.clone()]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            for next in arrows.get(path.last().unwrap()).into_iter().flatten() {
                if next == start {
                    let names: Vec<String> = path.iter().map(|m| m.join("::")).collect();
                    circles.push(format!("{} → {}", names.join(" → "), start.join("::")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push(longer);
                }
            }
        }
    }
    assert!(circles.is_empty(), "module circles: {circles:#?}");
}
