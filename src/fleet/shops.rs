//! The shops a fleet serves: one configuration file each in a folder (`NAME.toml`, the format
//! of a single shop's file), read and checked as `invsync check --offline` reads one, and their
//! lease groups: shops that share a remote account (one Hardtofind login for two shops) are one
//! group, so that one worker holds the account's request budget.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::Config;
use crate::http::limits::AccountKey;

/// One shop of the fleet.
pub struct Shop {
    /// Its name: the file's stem.
    pub name: String,
    /// Its PostgreSQL schema (see [`schema_for`]).
    pub schema: String,
    /// The file.
    pub path: PathBuf,
    /// The file's bytes as read, to tell a changed file from an unchanged one.
    pub text: String,
    /// Its configuration, checked.
    pub config: Arc<Config>,
}

/// What a folder of shop files says.
#[derive(Default)]
pub struct Shops {
    /// The shops whose files are valid, by name.
    pub shops: BTreeMap<String, Shop>,
    /// Lease groups: each group's name (its first shop's), and its shops.
    pub groups: BTreeMap<String, Vec<String>>,
    /// The files that could not be used, each with why (the other shops are served).
    pub refused: Vec<(PathBuf, String)>,
}

/// The schema a shop named `name` keeps its state in: the name in lower case, anything but a
/// letter, a digit or `_` as `_`, and `shop_` before a name that does not start with a letter.
pub fn schema_for(name: &str) -> Option<String> {
    let mut schema: String = name
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    if !schema.starts_with(|c: char| c.is_ascii_lowercase()) {
        schema.insert_str(0, "shop_");
    }
    // The fleet's own tables live in `invsync_fleet`.
    (crate::store::db::shop::valid_schema(&schema) && schema != "invsync_fleet").then_some(schema)
}

/// Reads every `*.toml` of `dir`. A file that cannot be read or checked is refused with why,
/// as are two files whose shops would share a schema; the others are served.
pub fn scan(dir: &Path) -> std::io::Result<Shops> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    paths.sort();
    let mut shops = Shops::default();
    let mut schemas: BTreeMap<String, String> = BTreeMap::new();
    for path in paths {
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            shops
                .refused
                .push((path, "a shop's file name must be UTF-8".into()));
            continue;
        };
        let Some(schema) = schema_for(&name) else {
            shops.refused.push((
                path,
                "the name cannot name a PostgreSQL schema (63 bytes at most)".into(),
            ));
            continue;
        };
        if let Some(other) = schemas.get(&schema) {
            shops.refused.push((
                path,
                format!("its schema {schema} is shop {other}'s too: rename one file"),
            ));
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                shops.refused.push((path, e.to_string()));
                continue;
            }
        };
        match Config::load(&path) {
            Ok(mut config) => {
                config.shop = Some(name.clone());
                schemas.insert(schema.clone(), name.clone());
                shops.shops.insert(
                    name.clone(),
                    Shop {
                        name,
                        schema,
                        path,
                        text,
                        config: Arc::new(config),
                    },
                );
            }
            Err(errors) => {
                let why = errors.to_string().lines().collect::<Vec<_>>().join("; ");
                shops.refused.push((path, why));
            }
        }
    }
    shops.groups = groups(&shops.shops);
    Ok(shops)
}

/// Every remote account a shop spends requests of.
fn accounts(config: &Config) -> Vec<AccountKey> {
    let sources = config.sources.iter().map(|s| s.identity().budget_key());
    let targets = config.targets.iter().map(|t| t.identity().budget_key());
    let feeds = config.feeds.iter().map(|f| f.identity().budget_key());
    sources.chain(targets).chain(feeds).collect()
}

/// The lease groups: shops linked by a shared account, transitively (a union-find over the
/// shops), each named after its first shop.
fn groups(shops: &BTreeMap<String, Shop>) -> BTreeMap<String, Vec<String>> {
    let names: Vec<&String> = shops.keys().collect();
    let mut parent: Vec<usize> = (0..names.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut owner: Vec<(AccountKey, usize)> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for account in accounts(&shops[*name].config) {
            match owner.iter().find(|(a, _)| *a == account) {
                Some(&(_, j)) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a.max(b)] = a.min(b);
                }
                None => owner.push((account, i)),
            }
        }
    }
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        let first = root(&mut parent, i);
        groups
            .entry(names[first].clone())
            .or_default()
            .push((*name).clone());
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::{scan, schema_for};

    fn shop(ea_token: &str, htf_user: &str) -> String {
        format!(
            r#"[daemon]
every = "1m"

[sources.stock]
type = "endless_aisles"
base_url = "http://127.0.0.1:9/"
token = "{ea_token}"

[targets.hardtofind]
type = "hardtofind"
base_url = "http://127.0.0.1:8/"
username = "{htf_user}"
password = "secret"
inputs = ["stock"]
"#
        )
    }

    #[test]
    fn shops_sharing_an_account_are_one_lease_group_and_a_bad_file_is_refused_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("written");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("0600");
        };
        // b and c share a Hardtofind login; a and c share an Endless Aisles token: one group.
        write("a.toml", &shop("token-1", "alone"));
        write("b.toml", &shop("token-2", "shared"));
        write("c.toml", &shop("token-1", "shared"));
        write("d.toml", &shop("token-4", "own"));
        write("e.toml", "[daemon]\nevery = \"soon\"\n");
        write("notes.txt", "not a shop");
        let shops = scan(dir.path()).expect("scanned");
        assert_eq!(shops.shops.len(), 4, "{:?}", shops.refused);
        let groups: Vec<(&String, &Vec<String>)> = shops.groups.iter().collect();
        assert_eq!(
            groups,
            vec![
                (
                    &"a".to_owned(),
                    &vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]
                ),
                (&"d".to_owned(), &vec!["d".to_owned()]),
            ]
        );
        assert_eq!(shops.refused.len(), 1);
        assert!(shops.refused[0].0.ends_with("e.toml"));
    }

    #[test]
    fn a_shop_name_becomes_a_schema_name_postgresql_takes_as_it_is() {
        assert_eq!(schema_for("acme").as_deref(), Some("acme"));
        assert_eq!(
            schema_for("Acme-Store.eu").as_deref(),
            Some("acme_store_eu")
        );
        assert_eq!(schema_for("42shop").as_deref(), Some("shop_42shop"));
        assert_eq!(schema_for(&"x".repeat(64)), None);
    }
}
