//! The `[mapping] file`: a CSV of aliases with the header `sku,endpoint,key`, read strictly. Every
//! mistake names its line, and every mistake of the file is reported at once, the way the
//! configuration's own errors are.
//!
//! The format is the plain CSV spreadsheets write: fields separated by commas, optionally in
//! double quotes (a quote inside written twice), a byte-order mark and `\r\n` line ends
//! accepted. A field is trimmed of surrounding spaces unless quoted; a barcode or an id is kept
//! exactly as text (leading zeros and all). Blank lines are skipped.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// One line of the file: the canonical SKU `sku` is called `key` at `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The line it was read from (1 is the header).
    pub line: usize,
    /// The canonical SKU.
    pub sku: String,
    /// A source, target or order feed name of the configuration.
    pub endpoint: String,
    /// What that endpoint calls the SKU.
    pub key: String,
}

/// A mistake in the file, at `line` (0: the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong, in a sentence.
    pub message: String,
}

/// The header every file starts with.
pub const HEADER: [&str; 3] = ["sku", "endpoint", "key"];

/// Reads the aliases of `text`; `endpoint` answers `None` for a known endpoint name and a
/// message (with a suggestion) for an unknown one. Every mistake of the file at once.
pub fn parse(
    text: &str,
    endpoint: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Alias>, Vec<CsvError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errors = Vec::new();
    let mut aliases = Vec::new();
    // Lines seen, as indices into `aliases`: a million-line file is not held twice.
    let hasher = hashbrown::DefaultHashBuilder::default();
    let hash = |a: &str, b: &str, c: &str| hasher.hash_one((a, b, c));
    let mut seen: HashTable<usize> = HashTable::new();
    let mut header = false;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let mut report = |message: String| errors.push(CsvError { line, message });
        let fields = match split(raw) {
            Ok(fields) => fields,
            Err(message) => {
                report(message);
                continue;
            }
        };
        if !header {
            header = true;
            let names: Vec<String> = fields.iter().map(|f| f.to_ascii_lowercase()).collect();
            if names != HEADER {
                report(format!(
                    "the header must be `sku,endpoint,key`, found `{}`",
                    fields.join(",")
                ));
                // Without the header nothing below can be trusted to mean what it says.
                break;
            }
            continue;
        }
        let [sku, endpoint_name, key] = match <[String; 3]>::try_from(fields) {
            Ok(fields) => fields,
            Err(fields) => {
                report(format!(
                    "expected 3 fields (sku,endpoint,key), found {}",
                    fields.len()
                ));
                continue;
            }
        };
        let mut bad = false;
        for (name, value) in HEADER.iter().zip([&sku, &endpoint_name, &key]) {
            if value.is_empty() {
                report(format!("the {name} is empty"));
                bad = true;
            } else if value.chars().any(char::is_control) {
                report(format!("the {name} {value:?} has a control character"));
                bad = true;
            }
        }
        if bad {
            continue;
        }
        if let Some(message) = endpoint(&endpoint_name) {
            report(message);
            continue;
        }
        let this = hash(&sku, &endpoint_name, &key);
        let same = |&i: &usize| {
            let a: &Alias = &aliases[i];
            a.sku == sku && a.endpoint == endpoint_name && a.key == key
        };
        if let Some(&first) = seen.find(this, same) {
            report(format!("duplicates line {}", aliases[first].line));
            continue;
        }
        seen.insert_unique(this, aliases.len(), |&i| {
            let a: &Alias = &aliases[i];
            hash(&a.sku, &a.endpoint, &a.key)
        });
        aliases.push(Alias {
            line,
            sku,
            endpoint: endpoint_name,
            key,
        });
    }
    if !header {
        errors.push(CsvError {
            line: 0,
            message: "the file is empty; it needs at least the header `sku,endpoint,key`"
                .to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(aliases)
    } else {
        Err(errors)
    }
}

/// The fields of one line.
fn split(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
        let mut field = String::new();
        if chars.next_if_eq(&'"').is_some() {
            loop {
                match chars.next() {
                    Some('"') if chars.next_if_eq(&'"').is_some() => field.push('"'),
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("a quoted field is not closed".to_owned()),
                }
            }
            while chars.next_if(|c| *c == ' ' || *c == '\t').is_some() {}
            match chars.peek() {
                None | Some(',') => {}
                Some(_) => return Err("text after a quoted field's closing quote".to_owned()),
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                field.push(c);
            }
            if field.contains('"') {
                return Err("a quote inside an unquoted field; quote the field".to_owned());
            }
            field.truncate(field.trim_end().len());
        }
        fields.push(field);
        if chars.next().is_none() {
            return Ok(fields);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(name: &str) -> Option<String> {
        ["warehouse", "dropship", "hardtofind"]
            .contains(&name)
            .then_some(())
            .map_or_else(|| Some(format!("unknown endpoint {name:?}")), |()| None)
    }

    fn errors(text: &str) -> Vec<(usize, String)> {
        parse(text, known)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.line, e.message))
            .collect()
    }

    #[test]
    fn aliases_are_read_with_their_lines_and_quotes() {
        let text = "\u{feff}sku,endpoint,key\r\nCAT-1, hardtofind ,HTF 1\r\n\n\"A,B\",dropship,\"0074198609628\"\n";
        let aliases = parse(text, known).expect("valid");
        assert_eq!(
            aliases,
            vec![
                Alias {
                    line: 2,
                    sku: "CAT-1".into(),
                    endpoint: "hardtofind".into(),
                    key: "HTF 1".into()
                },
                Alias {
                    line: 4,
                    sku: "A,B".into(),
                    endpoint: "dropship".into(),
                    key: "0074198609628".into()
                },
            ]
        );
    }

    #[test]
    fn every_mistake_names_its_line() {
        let text = "sku,endpoint,key\nA,dropshp,1\nB,,2\nC,dropship\nD,dropship,4\nD,dropship,4\n\"E,dropship,5\nF,dropship,\"6\"x\n";
        assert_eq!(
            errors(text),
            vec![
                (2, "unknown endpoint \"dropshp\"".to_owned()),
                (3, "the endpoint is empty".to_owned()),
                (
                    4,
                    "expected 3 fields (sku,endpoint,key), found 2".to_owned()
                ),
                (6, "duplicates line 5".to_owned()),
                (7, "a quoted field is not closed".to_owned()),
                (8, "text after a quoted field's closing quote".to_owned()),
            ]
        );
    }

    #[test]
    fn a_file_without_the_header_is_refused_at_line_1() {
        assert_eq!(
            errors("A,dropship,1\n"),
            vec![(
                1,
                "the header must be `sku,endpoint,key`, found `A,dropship,1`".to_owned()
            )]
        );
        assert_eq!(errors("\n\n").len(), 1);
        assert!(parse("SKU,Endpoint,Key\n", known).is_ok_and(|a| a.is_empty()));
    }
}
