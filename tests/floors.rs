//! The floors are true: `src/lib.rs` lists the modules in the order data flows ("data flows down
//! the list, never up"), and this check holds the code to it.
//!
//! It reads every file of the library (following the `mod` declarations from `src/lib.rs`, so a
//! `#[path]` file is read as the module it is), finds every path that names another module
//! (`use crate::…`, `crate::…::` in code, `super::…`, and names a `use` brought in), and fails:
//! - on an import that runs UP the list: a module naming one listed above it in `src/lib.rs`
//!   (`no_module_imports_one_listed_above_it`), naming the file and line and both modules;
//! - on a circle of files inside one module (`no_files_import_each_other_in_a_circle`);
//! - when the doc comment's list and the `pub mod` lines of `src/lib.rs` disagree.
//!
//! Code under `#[cfg(test)]` is exempt: a test may build its world from any floor (a store test
//! that makes its rows with `plan`'s types does not make `store` depend on `plan`). A file whose
//! `mod` line is `#[cfg(test)]` is test code as a whole.
//!
//! `FLOORS_REPORT=1 cargo test --test floors -- --nocapture` prints the whole map: every edge
//! between modules, the two-way pairs and the circles of files, test code included or not.
//!
//! No dependency: a small tokenizer that skips comments, strings and character literals is all
//! the reading `use` lines need.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Imports that run up the list and are allowed anyway: (importing module, imported module,
/// why). Keep it empty: an entry here is a floor that is not true. An entry nothing needs any
/// more fails the check too, so the list cannot go stale.
const ALLOWED_UPWARD: &[(&str, &str, &str)] = &[];

/// Circles of files allowed anyway: (folders or files every file of the circle sits in, why);
/// a circle takes the first entry it fits, so the narrower come first. Keep it empty; an entry
/// no circle needs fails the check.
const ALLOWED_CIRCLES: &[(&[&str], &str)] = &[];

// ---------------------------------------------------------------------------------------------
// The tokens of a Rust file, without comments, strings or character literals.

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
    /// A string literal's text as written (only `#[path = "…"]` needs it).
    Str(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

fn tokenize(src: &str) -> Vec<Token> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let n = chars.len();
    while i < n {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '/' && i + 1 < n && chars[i + 1] == '/' {
            while i < n && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && i + 1 < n && chars[i + 1] == '*' {
            let mut depth = 0;
            while i < n {
                if chars[i] == '/' && i + 1 < n && chars[i + 1] == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && i + 1 < n && chars[i + 1] == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
            continue;
        }
        if c == '"' {
            let start = i;
            i = skip_string(&chars, i, &mut line);
            out.push(Token {
                tok: Tok::Str(
                    chars[start + 1..i.saturating_sub(1).max(start + 1)]
                        .iter()
                        .collect(),
                ),
                line,
            });
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < n && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // String prefixes: b"…", c"…", r"…", r#"…"#, br"…", br#"…"#, cr"…".
            let raw = word == "r" || word == "br" || word == "cr";
            if (raw || word == "b" || word == "c") && i < n && chars[i] == '"' {
                i = if raw {
                    skip_raw_string(&chars, i, &mut line)
                } else {
                    skip_string(&chars, i, &mut line)
                };
                continue;
            }
            if raw && i < n && chars[i] == '#' {
                let mut j = i;
                while j < n && chars[j] == '#' {
                    j += 1;
                }
                if j < n && chars[j] == '"' {
                    i = skip_raw_string(&chars, i, &mut line);
                    continue;
                }
                if word == "r" {
                    // A raw identifier, `r#type`.
                    let start = i + 1;
                    i = start;
                    while i < n && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    out.push(Token {
                        tok: Tok::Ident(chars[start..i].iter().collect()),
                        line,
                    });
                    continue;
                }
            }
            if word == "b" && i < n && chars[i] == '\'' {
                i = skip_char(&chars, i);
                continue;
            }
            out.push(Token {
                tok: Tok::Ident(word),
                line,
            });
            continue;
        }
        if c.is_ascii_digit() {
            while i < n && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if i + 1 < n && chars[i + 1] == '\\' {
                i = skip_char(&chars, i);
                continue;
            }
            if i + 2 < n && chars[i + 2] == '\'' {
                i += 3;
                continue;
            }
            i += 1;
            continue;
        }
        if c == ':' && i + 1 < n && chars[i + 1] == ':' {
            out.push(Token {
                tok: Tok::Path,
                line,
            });
            i += 2;
            continue;
        }
        out.push(Token {
            tok: Tok::Punct(c),
            line,
        });
        i += 1;
    }
    out
}

/// From an opening `"`, past the closing one.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            '\n' => {
                *line += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

/// From the `#`s (or the `"`) after `r`, past the closing `"#…`.
fn skip_raw_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while chars[i] == '#' {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < chars.len() {
        if chars[i] == '\n' {
            *line += 1;
        }
        if chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return i + 1 + hashes;
        }
        i += 1;
    }
    i
}

/// From an opening `'` of a character literal with an escape, past the closing one.
fn skip_char(chars: &[char], mut i: usize) -> usize {
    i += 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '\'' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

// ---------------------------------------------------------------------------------------------
// The crate's files, as modules.

struct File {
    /// Relative to the crate root, e.g. `src/daemon/cycle.rs`.
    path: String,
    /// The module the file is, e.g. `["daemon", "cycle"]`; empty for `src/lib.rs`.
    module: Vec<String>,
    /// Declared under `#[cfg(test)]` (itself or a module above it).
    test: bool,
    tokens: Vec<Token>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Every file of the library, found as the compiler finds it: from `src/lib.rs` through its
/// `mod` declarations.
fn crate_files() -> Vec<File> {
    let mut files = Vec::new();
    let mut queue = vec![(root().join("src/lib.rs"), Vec::<String>::new(), false)];
    while let Some((path, module, test)) = queue.pop() {
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let tokens = tokenize(&text);
        let is_mod_rs = matches!(
            path.file_name().and_then(|n| n.to_str()),
            Some("mod.rs" | "lib.rs")
        );
        let dir = path.parent().expect("a file has a folder").to_path_buf();
        // Where `mod x;` looks for x, at the file's top level.
        let children_dir = if is_mod_rs {
            dir.clone()
        } else {
            dir.join(path.file_stem().expect("a file has a name"))
        };
        for decl in module_declarations(&tokens) {
            let mut child_module = module.clone();
            child_module.extend(decl.inline.iter().cloned());
            child_module.push(decl.name.clone());
            let child_path = match &decl.path_attr {
                Some(p) => dir.join(p),
                None => {
                    let base = decl
                        .inline
                        .iter()
                        .fold(children_dir.clone(), |d, m| d.join(m));
                    let flat = base.join(format!("{}.rs", decl.name));
                    if flat.exists() {
                        flat
                    } else {
                        base.join(&decl.name).join("mod.rs")
                    }
                }
            };
            queue.push((child_path, child_module, test || decl.test));
        }
        files.push(File {
            path: relative(&path),
            module,
            test,
            tokens,
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

struct ModDecl {
    name: String,
    /// The inline modules (`mod x { … }`) the declaration sits in.
    inline: Vec<String>,
    path_attr: Option<String>,
    test: bool,
}

/// The `mod x;` lines of a file, with their `#[path = "…"]` and whether they are test code.
fn module_declarations(tokens: &[Token]) -> Vec<ModDecl> {
    let mut decls = Vec::new();
    walk(tokens, |ctx, i| {
        if tokens[i].tok == Tok::Ident("mod".into())
            && let Some(Tok::Ident(name)) = tokens.get(i + 1).map(|t| &t.tok)
            && tokens.get(i + 2).map(|t| &t.tok) == Some(&Tok::Punct(';'))
        {
            decls.push(ModDecl {
                name: name.clone(),
                inline: ctx.inline.clone(),
                path_attr: ctx.path_attr.clone(),
                test: ctx.test,
            });
        }
    });
    decls
}

/// Where a token sits: in test code or not, in which inline modules.
#[derive(Default, Clone)]
struct Context {
    test: bool,
    inline: Vec<String>,
    path_attr: Option<String>,
}

/// Calls `visit` for every token with its context. Tracks `#[cfg(test)]` items (to their `;`
/// or the end of their first `{ … }` block; a `use` item always to its `;`) and inline modules.
fn walk(tokens: &[Token], mut visit: impl FnMut(&Context, usize)) {
    // One entry per open brace: (is a test region, inline module name).
    let mut braces: Vec<(bool, Option<String>)> = Vec::new();
    let mut ctx = Context::default();
    // An attribute item in progress: the brace depth it sits at and whether it is test code.
    let mut pending_test = false;
    let mut pending_path: Option<String> = None;
    // The test item being read: (depth, is a use item).
    let mut test_item: Option<(usize, bool)> = None;
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i].tok;
        // Attributes: `#[…]` or `#![…]`.
        if *t == Tok::Punct('#') {
            let mut j = i + 1;
            if tokens.get(j).map(|t| &t.tok) == Some(&Tok::Punct('!')) {
                j += 1;
            }
            if tokens.get(j).map(|t| &t.tok) == Some(&Tok::Punct('[')) {
                let start = j;
                let mut depth = 0;
                while j < tokens.len() {
                    match tokens[j].tok {
                        Tok::Punct('[') => depth += 1,
                        Tok::Punct(']') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let attr: Vec<&Tok> = tokens[start + 1..j].iter().map(|t| &t.tok).collect();
                let is = |words: &[&str]| {
                    attr.len() == words.len()
                        && attr.iter().zip(words).all(|(a, w)| match a {
                            Tok::Ident(s) => s == w,
                            Tok::Punct(c) => w.len() == 1 && w.starts_with(*c),
                            Tok::Path => *w == "::",
                            Tok::Str(_) => false,
                        })
                };
                if is(&["cfg", "(", "test", ")"]) {
                    pending_test = true;
                }
                if let [Tok::Ident(path), Tok::Punct('='), Tok::Str(file)] = attr.as_slice()
                    && path == "path"
                {
                    pending_path = Some(file.clone());
                }
                i = j + 1;
                continue;
            }
        }
        if pending_test && test_item.is_none() {
            let is_use = matches!(t, Tok::Ident(w) if w == "use")
                || (matches!(t, Tok::Ident(w) if w == "pub")
                    && tokens[i..]
                        .iter()
                        .take(6)
                        .any(|t| t.tok == Tok::Ident("use".into())));
            test_item = Some((braces.len(), is_use));
            ctx.test = true;
            pending_test = false;
        }
        ctx.path_attr = pending_path.clone();
        visit(&ctx, i);
        match t {
            Tok::Punct('{') => {
                let inline = match (i.checked_sub(2).map(|k| &tokens[k].tok), tokens.get(i - 1)) {
                    (
                        Some(Tok::Ident(kw)),
                        Some(Token {
                            tok: Tok::Ident(name),
                            ..
                        }),
                    ) if kw == "mod" => Some(name.clone()),
                    _ => None,
                };
                let opens_test = matches!(test_item, Some((d, false)) if d == braces.len());
                if let Some(name) = &inline {
                    ctx.inline.push(name.clone());
                }
                braces.push((opens_test, inline));
                if opens_test {
                    // The item's body: test code to its closing brace.
                    test_item = None;
                }
            }
            Tok::Punct('}') => {
                if let Some((was_test, inline)) = braces.pop() {
                    if inline.is_some() {
                        ctx.inline.pop();
                    }
                    if was_test && !braces.iter().any(|(t, _)| *t) && test_item.is_none() {
                        ctx.test = false;
                    }
                }
            }
            Tok::Punct(';') => {
                pending_path = None;
                if matches!(test_item, Some((d, _)) if d == braces.len()) {
                    test_item = None;
                    if !braces.iter().any(|(t, _)| *t) {
                        ctx.test = false;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
}

// ---------------------------------------------------------------------------------------------
// The paths a file names.

/// A path that names a module of the crate, resolved from the crate root.
struct Reference {
    line: usize,
    test: bool,
    /// e.g. `["daemon", "mapping", "Mapper"]`.
    path: Vec<String>,
}

/// One `use` tree (or a path in code) from token `i`: its leaves as segment lists, and the index
/// past it.
fn use_tree(
    tokens: &[Token],
    mut i: usize,
    prefix: Vec<String>,
    leaves: &mut Vec<Vec<String>>,
) -> usize {
    let mut path = prefix;
    loop {
        match tokens.get(i).map(|t| &t.tok) {
            Some(Tok::Ident(w)) if w == "self" && !path.is_empty() => {
                i += 1;
            }
            Some(Tok::Ident(w)) if w == "as" => {
                i += 2;
                break;
            }
            Some(Tok::Ident(w)) => {
                path.push(w.clone());
                i += 1;
            }
            Some(Tok::Punct('*')) => {
                i += 1;
                break;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                loop {
                    match tokens.get(i).map(|t| &t.tok) {
                        Some(Tok::Punct('}')) => {
                            i += 1;
                            break;
                        }
                        Some(Tok::Punct(',')) => i += 1,
                        None => break,
                        _ => i = use_tree(tokens, i, path.clone(), leaves),
                    }
                }
                return i;
            }
            _ => break,
        }
        if tokens.get(i).map(|t| &t.tok) == Some(&Tok::Path) {
            i += 1;
        } else {
            break;
        }
    }
    leaves.push(path);
    i
}

fn references(file: &File, modules: &BTreeSet<Vec<String>>) -> Vec<Reference> {
    let tokens = &file.tokens;
    let mut refs = Vec::new();
    // Names a `use` brought in that are modules of the crate, e.g. `mapping` → daemon::mapping.
    let mut aliases: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut prelude: Vec<(usize, bool, Vec<String>, bool)> = Vec::new();
    walk(tokens, |ctx, i| {
        let Tok::Ident(first) = &tokens[i].tok else {
            return;
        };
        if i > 0 && tokens[i - 1].tok == Tok::Path {
            return; // not the start of a path
        }
        if tokens.get(i + 1).map(|t| &t.tok) != Some(&Tok::Path) {
            return;
        }
        let in_use = i > 0 && tokens[i - 1].tok == Tok::Ident("use".into());
        let mut here = file.module.clone();
        here.extend(ctx.inline.iter().cloned());
        let mut j = i;
        let base = match first.as_str() {
            "crate" => {
                j += 2;
                Vec::new()
            }
            "super" => {
                let mut base = here.clone();
                while tokens.get(j).map(|t| &t.tok) == Some(&Tok::Ident("super".into()))
                    && tokens.get(j + 1).map(|t| &t.tok) == Some(&Tok::Path)
                {
                    base.pop();
                    j += 2;
                }
                base
            }
            "self" => {
                j += 2;
                here.clone()
            }
            _ => {
                // A child module by its bare name (`cycle::Engine` in daemon/mod.rs) or an alias
                // (resolved once the whole file is read).
                let mut child = here.clone();
                child.push(first.clone());
                if modules.contains(&child) {
                    here.clone()
                } else {
                    prelude.push((i, ctx.test, vec![first.clone()], in_use));
                    return;
                }
            }
        };
        let mut leaves = Vec::new();
        use_tree(tokens, j, base, &mut leaves);
        for leaf in leaves {
            if in_use && modules.contains(&leaf) {
                aliases.insert(leaf.last().cloned().unwrap_or_default(), leaf.clone());
            }
            refs.push(Reference {
                line: tokens[i].line,
                test: ctx.test,
                path: leaf,
            });
        }
    });
    for (i, test, _, _) in prelude {
        let Tok::Ident(first) = &tokens[i].tok else {
            continue;
        };
        if let Some(base) = aliases.get(first) {
            let mut leaves = Vec::new();
            use_tree(tokens, i + 2, base.clone(), &mut leaves);
            for leaf in leaves {
                refs.push(Reference {
                    line: tokens[i].line,
                    test,
                    path: leaf,
                });
            }
        }
    }
    refs
}

// ---------------------------------------------------------------------------------------------
// The map.

struct Edge {
    from_file: String,
    line: usize,
    test: bool,
    to_file: String,
    /// The path as written, resolved: e.g. `ops::metrics::Metrics`.
    named: String,
}

struct Map {
    files: Vec<File>,
    edges: Vec<Edge>,
}

fn top(module: &[String]) -> Option<&str> {
    module.first().map(String::as_str)
}

impl Map {
    fn read() -> Map {
        let files = crate_files();
        let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
        let by_module: BTreeMap<Vec<String>, String> = files
            .iter()
            .map(|f| (f.module.clone(), f.path.clone()))
            .collect();
        let mut edges = Vec::new();
        for file in &files {
            for r in references(file, &modules) {
                // The file that defines the longest module prefix of the path.
                let Some(to_file) = (1..=r.path.len())
                    .rev()
                    .find_map(|k| by_module.get(&r.path[..k]))
                else {
                    continue;
                };
                if *to_file == file.path {
                    continue;
                }
                edges.push(Edge {
                    from_file: file.path.clone(),
                    line: r.line,
                    test: r.test || file.test,
                    to_file: to_file.clone(),
                    named: r.path.join("::"),
                });
            }
        }
        Map { files, edges }
    }

    fn module_of(&self, path: &str) -> &[String] {
        &self
            .files
            .iter()
            .find(|f| f.path == path)
            .expect("an edge names files of the crate")
            .module
    }

    fn top_of(&self, path: &str) -> Option<&str> {
        top(self.module_of(path))
    }

    /// Edges between top-level modules: (from, to) → the edges that make it.
    fn module_edges(&self, with_tests: bool) -> BTreeMap<(String, String), Vec<&Edge>> {
        let mut out: BTreeMap<(String, String), Vec<&Edge>> = BTreeMap::new();
        for e in &self.edges {
            if e.test && !with_tests {
                continue;
            }
            let (Some(a), Some(b)) = (self.top_of(&e.from_file), self.top_of(&e.to_file)) else {
                continue;
            };
            if a != b {
                out.entry((a.to_string(), b.to_string()))
                    .or_default()
                    .push(e);
            }
        }
        out
    }

    fn two_way_pairs(&self, with_tests: bool) -> Vec<(String, String)> {
        let edges = self.module_edges(with_tests);
        edges
            .keys()
            .filter(|(a, b)| a < b && edges.contains_key(&(b.clone(), a.clone())))
            .cloned()
            .collect()
    }

    /// A file naming the module it sits in (`super::Thing` for a type its `mod.rs` defines) is how
    /// a module shares its own types with its parts: not counted as half of a circle. Every
    /// other edge is, a parent naming its parts included.
    fn counts_for_circles(&self, e: &Edge, with_tests: bool) -> bool {
        let from = self.module_of(&e.from_file);
        let to = self.module_of(&e.to_file);
        (with_tests || !e.test) && !from.starts_with(to)
    }

    /// Circles of files (strongly connected components of more than one file).
    fn circles(&self, with_tests: bool) -> Vec<Vec<String>> {
        let mut graph: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for f in &self.files {
            graph.entry(&f.path).or_default();
        }
        for e in self
            .edges
            .iter()
            .filter(|e| self.counts_for_circles(e, with_tests))
        {
            graph.entry(&e.from_file).or_default().insert(&e.to_file);
        }
        strongly_connected(&graph)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut c: Vec<String> = c.into_iter().map(str::to_string).collect();
                c.sort();
                c
            })
            .collect()
    }
}

/// Tarjan's algorithm, iterative enough for a crate's few hundred files (recursion is fine).
fn strongly_connected<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, g: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in g.get(v).into_iter().flatten() {
            if !s.index.contains_key(w) {
                visit(w, g, s);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(comp);
        }
    }
    let mut s = State {
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for &v in graph.keys() {
        if !s.index.contains_key(v) {
            visit(v, graph, &mut s);
        }
    }
    s.out
}

// ---------------------------------------------------------------------------------------------
// src/lib.rs: the order.

/// The `pub mod` lines of src/lib.rs, in order.
fn declared_order() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("src/lib.rs")).expect("src/lib.rs");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

/// The modules the doc comment's list names, in order: each `//! - [`x`], [`y`]: …` line
/// names its modules by the links it starts with.
fn documented_order() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("src/lib.rs")).expect("src/lib.rs");
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(item) = line.strip_prefix("//! - ") else {
            continue;
        };
        // The links the item starts with, e.g. "[`demo`], [`commands`], [`manual`]: …".
        let mut rest = item;
        while let Some(link) = rest.strip_prefix("[`") {
            let Some((name, after)) = link.split_once("`]") else {
                break;
            };
            out.push(name.to_string());
            rest = after.strip_prefix(", ").unwrap_or(after);
        }
    }
    out
}

fn report(map: &Map) {
    let order = declared_order();
    let rank = |m: &str| order.iter().position(|o| o == m).unwrap_or(usize::MAX);
    for with_tests in [false, true] {
        println!(
            "== {} ==",
            if with_tests {
                "with test code"
            } else {
                "without test code"
            }
        );
        for ((a, b), edges) in map.module_edges(with_tests) {
            let up = if rank(b.as_str()) < rank(a.as_str()) {
                "  UP"
            } else {
                ""
            };
            println!("{a} -> {b} ({} references){up}", edges.len());
            if !up.is_empty() {
                for e in edges {
                    println!("    {}:{} {}", e.from_file, e.line, e.named);
                }
            }
        }
        println!("two-way pairs:");
        for (a, b) in map.two_way_pairs(with_tests) {
            println!("    {a} <-> {b}");
        }
        println!("circles of files:");
        for c in map.circles(with_tests) {
            println!("    ({} files) {}", c.len(), c.join(" "));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checks.

#[test]
fn lib_rs_lists_the_modules_in_the_same_order_in_its_doc_and_its_mod_lines() {
    assert_eq!(
        documented_order(),
        declared_order(),
        "src/lib.rs: the doc comment's list of modules and the `pub mod` lines must name the same modules in the same order"
    );
}

#[test]
fn no_module_imports_one_listed_above_it() {
    let map = Map::read();
    if std::env::var_os("FLOORS_REPORT").is_some() {
        report(&map);
    }
    let order = declared_order();
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut failures = Vec::new();
    let mut allowed_used = BTreeSet::new();
    for ((from, to), edges) in map.module_edges(false) {
        let (Some(a), Some(b)) = (rank(&from), rank(&to)) else {
            failures.push(format!("{from} -> {to}: a module src/lib.rs does not list"));
            continue;
        };
        if b > a {
            continue;
        }
        if let Some(allowed) = ALLOWED_UPWARD
            .iter()
            .position(|(f, t, _)| *f == from && *t == to)
        {
            allowed_used.insert(allowed);
            continue;
        }
        for e in edges {
            failures.push(format!(
                "{}:{}: {from} imports {to} ({}), which src/lib.rs lists above it",
                e.from_file, e.line, e.named
            ));
        }
    }
    for (i, (from, to, _)) in ALLOWED_UPWARD.iter().enumerate() {
        if !allowed_used.contains(&i) {
            failures.push(format!(
                "ALLOWED_UPWARD allows {from} -> {to}, which no import needs any more: remove it"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "data flows down the list in src/lib.rs, never up; {} imports run up:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let map = Map::read();
    let mut failures = Vec::new();
    let mut allowed_used = BTreeSet::new();
    for circle in map.circles(false) {
        let within = |places: &[&str]| {
            circle
                .iter()
                .all(|f| places.iter().any(|p| f.starts_with(p)))
        };
        if let Some(allowed) = ALLOWED_CIRCLES
            .iter()
            .position(|(places, _)| within(places))
        {
            allowed_used.insert(allowed);
            continue;
        }
        let inside: Vec<String> = map
            .edges
            .iter()
            .filter(|e| {
                map.counts_for_circles(e, false)
                    && circle.contains(&e.from_file)
                    && circle.contains(&e.to_file)
            })
            .map(|e| {
                format!(
                    "    {}:{} -> {} ({})",
                    e.from_file, e.line, e.to_file, e.named
                )
            })
            .collect();
        failures.push(format!(
            "a circle of {} files:\n{}",
            circle.len(),
            inside.join("\n")
        ));
    }
    for (i, (places, _)) in ALLOWED_CIRCLES.iter().enumerate() {
        if !allowed_used.contains(&i) {
            failures.push(format!(
                "ALLOWED_CIRCLES allows a circle within {places:?}, which no circle needs any more: remove it"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "files import each other in a circle:\n{}",
        failures.join("\n")
    );
}
