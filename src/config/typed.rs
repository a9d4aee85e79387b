//! From the file's text to typed tables, strictly: TOML read by the `toml` crate itself, so a
//! number must be written as a number of the right kind (`batch_size = "100"` and
//! `batch_size = 150.9` are errors, never coerced or truncated), an unknown key is an error with
//! a suggestion when it looks like a known one, and every wrong key of a table is reported, not
//! only the first.

use std::path::Path;

use serde::de::{self, DeserializeOwned, Visitor};

use super::checker::Checker;
use super::{ConfigError, ConfigErrors};

/// Reads the file as a TOML table; a missing file or a syntax error is the one error.
pub(crate) fn read(path: &Path) -> Result<toml::Table, ConfigErrors> {
    let check = Checker::new(path);
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(check
                .err("", "no such file (set --config or INVSYNC_CONFIG)")
                .into());
        }
        Err(e) => return Err(check.err("", format!("cannot read: {e}")).into()),
    };
    text.parse::<toml::Table>()
        .map_err(|e| syntax_error(&check, &text, &e).into())
}

/// A TOML syntax error on one line: where, and what the parser says (without the drawing of the
/// line it adds, which a log line cannot hold).
fn syntax_error(check: &Checker, text: &str, error: &toml::de::Error) -> ConfigError {
    let place = error.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |at| at + 1) + 1;
        format!("line {line}, column {column}: ")
    });
    let message = error.message().lines().next().unwrap_or("").trim();
    check.err(
        "",
        format!(
            "TOML syntax error at {}{message}",
            place.unwrap_or_default()
        ),
    )
}

/// The keys whose values are secrets, inline (their `_file` forms name a file, not a secret).
const SECRET_KEYS: &[&str] = &["api_key", "token", "password", "client_secret"];

impl Checker<'_> {
    /// Types `table` as `T`, recording every unknown key (with a suggestion) and every value of
    /// the wrong type under `prefix`; those keys are left out, so the rest still gets checked.
    /// `None` only when a key `T` requires is missing.
    pub(crate) fn table<T: DeserializeOwned>(
        &self,
        prefix: &str,
        mut table: toml::Table,
    ) -> Option<T> {
        let known = field_names::<T>();
        self.unknown_keys(prefix, &mut table, known);
        // One wrong key per attempt: serde stops at the first. Each is reported and dropped.
        for _ in 0..=known.len() {
            let value = toml::Value::Table(table.clone());
            let error = match serde_path_to_error::deserialize::<_, T>(value) {
                Ok(typed) => return Some(typed),
                Err(error) => error,
            };
            let path = error.path().to_string();
            let first = path.split(['.', '[']).next().unwrap_or("").to_owned();
            let mut message = error.into_inner().message().trim().to_owned();
            // serde repeats the value it could not type (`invalid type: integer `9021…``): never
            // for a secret, whatever it was written as.
            let last = path.rsplit(['.', '[']).next().unwrap_or_default();
            if SECRET_KEYS.contains(&last) {
                message = "must be a string in quotes (the value is a secret, so it is not repeated here)".to_owned();
            }
            let key = match (first.is_empty() || path == ".", prefix.is_empty()) {
                (true, _) => missing_key(prefix, &message),
                (false, true) => path.clone(),
                (false, false) => format!("{prefix}.{path}"),
            };
            self.report(key, message);
            table.remove(&first)?;
        }
        None
    }

    /// Reports, and removes, every key of `table` that is not in `known`.
    pub(crate) fn unknown_keys(&self, prefix: &str, table: &mut toml::Table, known: &[&str]) {
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .cloned()
            .collect();
        for key in unknown {
            table.remove(&key);
            let hint = match suggest(&key, known.iter().copied()) {
                Some(known) => format!("; did you mean {known:?}?"),
                None => format!("; known keys: {}", known.join(", ")),
            };
            self.report(join(prefix, &key), format!("unknown key{hint}"));
        }
    }

    /// Splits `[sources.NAME]` / `[targets.NAME]` on its `type`.
    pub(crate) fn kind_table(
        &self,
        prefix: &str,
        value: toml::Value,
        kinds: &[&str],
    ) -> Option<(String, toml::Table)> {
        let toml::Value::Table(mut table) = value else {
            self.report(prefix, "must be a table");
            return None;
        };
        let expected = kinds
            .iter()
            .map(|k| format!("{k:?}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let key = format!("{prefix}.type");
        let kind = match table.remove("type") {
            None => {
                self.report(key, format!("missing; {expected}"));
                return None;
            }
            Some(toml::Value::String(kind)) => kind,
            Some(_) => {
                self.report(key, format!("must be {expected}"));
                return None;
            }
        };
        if !kinds.contains(&kind.as_str()) {
            let hint = suggest(&kind, kinds.iter().copied())
                .map(|k| format!("; did you mean {k:?}?"))
                .unwrap_or_default();
            self.report(
                key,
                format!("unknown type {kind:?}; expected {expected}{hint}"),
            );
            return None;
        }
        Some((kind, table))
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// serde says ``missing field `base_url` ``: the key is the field, named in the message.
fn missing_key(prefix: &str, message: &str) -> String {
    match message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        Some(field) => join(prefix, field),
        None => prefix.to_owned(),
    }
}

/// The known word `word` is most likely a misspelling of, if any is close enough: at most two
/// edits (a swap counts as one), and fewer than half the word.
pub fn suggest<'a>(word: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    known
        .map(|k| {
            (
                strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()),
                k,
            )
        })
        .filter(|&(distance, _)| distance <= 2 && distance * 2 < word.chars().count().max(2))
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, k)| k)
}

/// The keys a `#[derive(Deserialize)]` struct reads, as serde names them (renames applied):
/// asked of the struct itself, so the list of known keys can never drift from the struct.
pub(crate) fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for &mut Fields {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("fields read"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }
    let mut fields = Fields(None);
    let _ = T::deserialize(&mut fields);
    fields.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_gets_the_nearest_known_one_and_a_stranger_none() {
        let known = ["sku_prefix", "token", "token_file", "base_url"];
        assert_eq!(suggest("sku_prefx", known.into_iter()), Some("sku_prefix"));
        assert_eq!(suggest("tokne", known.into_iter()), Some("token"));
        assert_eq!(suggest("Base_URL", known.into_iter()), Some("base_url"));
        assert_eq!(suggest("colour", known.into_iter()), None);
        assert_eq!(suggest("x", known.into_iter()), None);
    }

    #[test]
    fn the_known_keys_come_from_the_struct_itself() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Table {
            base_url: String,
            #[serde(rename = "match")]
            match_field: Option<String>,
        }
        assert_eq!(field_names::<Table>(), ["base_url", "match"]);
    }
}
