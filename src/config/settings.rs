//! The file's values by dotted key (`targets.hardtofind.safety_stock`), kept with the [`Config`]
//! so that a reload can say which keys it changed.
//!
//! [`Config`]: super::Config

use std::collections::BTreeMap;
use std::fmt;

/// Every value of the file, by dotted key. Its `Debug` names the keys only: inline secrets are
/// among the values.
#[derive(Clone, Default, PartialEq)]
pub struct Settings(BTreeMap<String, toml::Value>);

impl Settings {
    /// The values of `table`, flattened (arrays are one value).
    pub fn of(table: &toml::Table) -> Settings {
        let mut values = BTreeMap::new();
        flatten("", table, &mut values);
        Settings(values)
    }

    /// The keys whose value differs in `newer`, added and removed ones included, in order.
    pub fn changed(&self, newer: &Settings) -> Vec<String> {
        let mut keys: Vec<String> = self
            .0
            .iter()
            .filter(|(key, value)| newer.0.get(*key) != Some(value))
            .map(|(key, _)| key.clone())
            .chain(
                newer
                    .0
                    .keys()
                    .filter(|key| !self.0.contains_key(*key))
                    .cloned(),
            )
            .collect();
        keys.sort();
        keys
    }
}

fn flatten(prefix: &str, table: &toml::Table, into: &mut BTreeMap<String, toml::Value>) {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&path, inner, into),
            value => {
                into.insert(path, value.clone());
            }
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_names_the_keys_it_changed_and_never_a_secret() {
        let old: toml::Table = "[daemon]\nevery = \"1m\"\n[targets.a]\nsafety_stock = 0\npassword = \"hunter2\"\n[targets.b]\nx = 1"
            .parse()
            .expect("toml");
        let new: toml::Table = "[daemon]\nevery = \"1m\"\nlog_level = \"debug\"\n[targets.a]\nsafety_stock = 2\npassword = \"hunter3\""
            .parse()
            .expect("toml");

        let changed = Settings::of(&old).changed(&Settings::of(&new));

        assert_eq!(
            changed,
            [
                "daemon.log_level",
                "targets.a.password",
                "targets.a.safety_stock",
                "targets.b.x"
            ]
        );
        assert!(!format!("{:?}", Settings::of(&new)).contains("hunter"));
    }
}
