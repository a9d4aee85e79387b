//! Against a real PostgreSQL server (see `harness::postgres`): the twin is SQLite's schema with
//! PostgreSQL's types, migrating it again (or twice at once) changes nothing, and a newer
//! schema is refused.
//!
//! Each engine's schema is read from its own catalogue as a set of lines, one fact each (a
//! table, a column at its place with its type, NOT NULL and default, a primary key, a unique
//! set, a foreign key, an index, a CHECK), in SQLite's words mapped to PostgreSQL's; two
//! schemas agree when their sets do, and a failure lists the lines that differ, side by side.

use std::collections::BTreeSet;

use rusqlite::Connection;
use tokio_postgres::Client;

use super::*;
use crate::harness::postgres::TestPostgres;
use crate::store::migrations;

/// A fresh database's URL.
fn database() -> String {
    TestPostgres::get()
        .and_then(|pg| pg.database())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A client on the database at `url`, in the schema `shop` (made if missing), as a fleet keeps
/// each shop.
async fn shop_schema_of(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS shop; SET search_path TO shop")
        .await
        .expect("schema");
    client
}

/// A client on a fresh database, in a new schema `shop`.
async fn shop_schema() -> Client {
    shop_schema_of(&database()).await
}

/// SQLite's type for a column, as the twin must have it in PostgreSQL's words.
fn pg_type_of(sqlite: &str) -> String {
    match sqlite {
        "INTEGER" => "bigint".into(),
        "TEXT" => "text COLLATE C".into(),
        "BLOB" => "bytea".into(),
        "REAL" => "double precision".into(),
        other => format!("(SQLite's {other}: no mapping)"),
    }
}

/// The line of a column: its place (from 1), name, type, NOT NULL and default.
fn column(
    table: &str,
    place: usize,
    name: &str,
    ty: &str,
    not_null: bool,
    dflt: Option<&str>,
) -> String {
    let mut line = format!("column {table} #{place} {name} {ty}");
    if not_null {
        line += " NOT NULL";
    }
    if let Some(d) = dflt {
        line += &format!(" DEFAULT {d}");
    }
    line
}

/// The expressions of the CHECKs in a `CREATE TABLE` statement (SQLite's catalogue has only the
/// statement), each as [`expression`] writes it.
fn checks_in(sql: &str) -> Vec<String> {
    let upper = sql.to_uppercase();
    let mut found = Vec::new();
    for (at, _) in upper.match_indices("CHECK") {
        let Some(open) = sql[at..].find('(').map(|o| at + o) else {
            continue;
        };
        let mut depth = 0;
        for (i, c) in sql[open..].char_indices() {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            if depth == 0 {
                found.push(expression(&sql[open..=open + i]));
                break;
            }
        }
    }
    found
}

/// An expression without its parentheses and with single spaces: SQLite keeps a CHECK as
/// written, PostgreSQL as it prints it back (`CHECK ((id = 1))`).
fn expression(text: &str) -> String {
    text.replace(['(', ')'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// SQLite's schema as a set of facts.
fn sqlite_facts(conn: &Connection) -> rusqlite::Result<BTreeSet<String>> {
    let mut facts = BTreeSet::new();
    let tables: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (table, sql) in tables {
        facts.insert(format!("table {table}"));
        for check in checks_in(&sql) {
            facts.insert(format!("check {table} {check}"));
        }
        let mut key: Vec<(i64, String)> = Vec::new();
        let mut stmt = conn.prepare(
            r#"SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?1) ORDER BY cid"#,
        )?;
        let mut rows = stmt.query([&table])?;
        let mut place = 0;
        while let Some(row) = rows.next()? {
            place += 1;
            let (name, ty): (String, String) = (row.get(0)?, row.get(1)?);
            let in_key: i64 = row.get(4)?;
            // PostgreSQL makes every key column NOT NULL; SQLite's are too (a rowid, or a
            // WITHOUT ROWID key) but for `relay_orders.order_id`, a TEXT key of a rowid table
            // that SQLite would let be NULL and no code leaves NULL.
            let not_null = row.get::<_, bool>(2)? || in_key > 0;
            let dflt: Option<String> = row.get(3)?;
            facts.insert(column(
                &table,
                place,
                &name,
                &pg_type_of(&ty),
                not_null,
                dflt.as_deref(),
            ));
            if in_key > 0 {
                key.push((in_key, name));
            }
        }
        key.sort();
        if !key.is_empty() {
            let names: Vec<String> = key.into_iter().map(|(_, n)| n).collect();
            facts.insert(format!("primary key {table} ({})", names.join(", ")));
        }
        let indexes: Vec<(String, bool, String)> = conn
            .prepare(r#"SELECT name, "unique", origin FROM pragma_index_list(?1)"#)?
            .query_map([&table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (index, unique, origin) in indexes {
            if origin == "pk" {
                continue; // the primary key, above
            }
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?
                .query_map([&index], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            facts.insert(if unique {
                format!("unique {table} ({})", columns.join(", "))
            } else {
                format!("index {table} {index} ({})", columns.join(", "))
            });
        }
        let mut keys: Vec<(i64, String, String, String)> = conn
            .prepare(r#"SELECT id, "table", "from", "to" FROM pragma_foreign_key_list(?1) ORDER BY id, seq"#)?
            .query_map([&table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        keys.dedup_by(|b, a| {
            // The columns of one key (same id) gather in its first row.
            let same = a.0 == b.0;
            if same {
                a.2 = format!("{}, {}", a.2, b.2);
                a.3 = format!("{}, {}", a.3, b.3);
            }
            same
        });
        for (_, parent, from, to) in keys {
            facts.insert(format!(
                "foreign key {table} ({from}) references {parent} ({to})"
            ));
        }
    }
    Ok(facts)
}

/// SQL for the names of the columns numbered `attnums` (`pg_index.indkey`, `pg_constraint.conkey`
/// or `confkey`) of the table `relid`, in that order, joined by commas.
fn names_of(attnums: &str, relid: &str) -> String {
    format!(
        "array_to_string(ARRAY(SELECT a.attname::text FROM unnest({attnums}::int2[]) WITH ORDINALITY AS col(num, n) \
         JOIN pg_attribute a ON a.attrelid = {relid} AND a.attnum = col.num ORDER BY col.n), ', ')"
    )
}

/// PostgreSQL's schema (the current one, `schema_version` aside) as a set of facts.
async fn pg_facts(client: &Client) -> Result<BTreeSet<String>, tokio_postgres::Error> {
    let mut facts = BTreeSet::new();
    for row in client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name <> 'schema_version'",
            &[],
        )
        .await?
    {
        facts.insert(format!("table {}", row.get::<_, String>(0)));
    }
    let mut place = (String::new(), 0);
    for row in client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable = 'NO', \
             column_default::text, collation_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name <> 'schema_version' \
             ORDER BY table_name, ordinal_position",
            &[],
        )
        .await?
    {
        let table: String = row.get(0);
        if place.0 != table {
            place = (table.clone(), 0);
        }
        place.1 += 1;
        // `'[]'::text` is SQLite's `'[]'`.
        let dflt: Option<String> = row.get(4);
        let dflt = dflt.map(|d| {
            d.trim_end_matches("::text")
                .trim_end_matches("::bigint")
                .to_owned()
        });
        let (name, mut ty): (String, String) = (row.get(1), row.get(2));
        if let Some(collation) = row.get::<_, Option<String>>(5) {
            ty += &format!(" COLLATE {collation}");
        }
        facts.insert(column(
            &table,
            place.1,
            &name,
            &ty,
            row.get(3),
            dflt.as_deref(),
        ));
    }
    let indexes = format!(
        "SELECT t.relname::text, i.relname::text, x.indisunique, x.indisprimary, {} \
         FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid \
         WHERE t.relnamespace = current_schema()::regnamespace AND t.relname <> 'schema_version'",
        names_of("x.indkey", "x.indrelid")
    );
    for row in client.query(&indexes, &[]).await? {
        let (table, index, columns): (String, String, String) =
            (row.get(0), row.get(1), row.get(4));
        facts.insert(match (row.get::<_, bool>(2), row.get::<_, bool>(3)) {
            (_, true) => format!("primary key {table} ({columns})"),
            (true, false) => format!("unique {table} ({columns})"),
            (false, false) => format!("index {table} {index} ({columns})"),
        });
    }
    let foreign = format!(
        "SELECT t.relname::text, p.relname::text, {}, {} \
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid \
         WHERE k.contype = 'f' AND t.relnamespace = current_schema()::regnamespace",
        names_of("k.conkey", "k.conrelid"),
        names_of("k.confkey", "k.confrelid")
    );
    for row in client.query(&foreign, &[]).await? {
        let (table, parent, from, to): (String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        facts.insert(format!(
            "foreign key {table} ({from}) references {parent} ({to})"
        ));
    }
    let checks = "SELECT t.relname::text, pg_get_constraintdef(k.oid) \
         FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid \
         WHERE k.contype = 'c' AND t.relnamespace = current_schema()::regnamespace";
    for row in client.query(checks, &[]).await? {
        let (table, check): (String, String) = (row.get(0), row.get(1));
        let check = check.trim_start_matches("CHECK");
        facts.insert(format!("check {table} {}", expression(check)));
    }
    Ok(facts)
}

/// The facts only one side has, in the order of the facts, so that a column's two versions sit
/// one above the other; empty when the two agree.
fn differences(sqlite: &BTreeSet<String>, pg: &BTreeSet<String>) -> String {
    let mut lines: Vec<(&String, &str)> = sqlite
        .difference(pg)
        .map(|f| (f, "SQLite only:    "))
        .chain(pg.difference(sqlite).map(|f| (f, "PostgreSQL only:")))
        .collect();
    lines.sort();
    lines
        .iter()
        .map(|(fact, side)| format!("  {side} {fact}\n"))
        .collect()
}

/// SQLite's schema after every migration, as facts.
fn sqlite_schema() -> BTreeSet<String> {
    let mut conn = crate::store::db::Connection::open_in_memory().expect("db");
    migrations::migrate(&mut conn).expect("migrates");
    sqlite_facts(conn.sqlite().expect("SQLite")).expect("SQLite's catalogue")
}

/// The numbers `sql` selects, one a row.
async fn numbers(client: &Client, sql: &str) -> Vec<i64> {
    client
        .query(sql, &[])
        .await
        .expect(sql)
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const VERSION: &str = "SELECT version FROM schema_version";
const CYCLES: &str = "SELECT count(*) FROM cycles";

#[test]
fn every_sqlite_migration_has_its_postgresql_twin() {
    assert_eq!(
        PG_VERSION,
        migrations::VERSION,
        "SQLite's schema is at version {}, PostgreSQL's twin at {PG_VERSION}: add the twin of \
         each new SQLite migration to PG_MIGRATIONS (store/pg_schema.rs)",
        migrations::VERSION
    );
}

#[tokio::test]
async fn the_postgresql_schema_is_the_sqlite_schema_in_postgresql_types() {
    let sqlite = sqlite_schema();
    let mut client = shop_schema().await;

    pg_migrate(&mut client).await.expect("migrates");

    let pg = pg_facts(&client).await.expect("PostgreSQL's catalogue");
    // Neither reader may agree by reading nothing.
    for fact in [
        "table quantity_deltas",
        "primary key quantity_deltas (side, endpoint, seq)",
        "foreign key flags (target_id) references targets (id)",
        "check mapping_file id = 1",
    ] {
        assert!(sqlite.contains(fact), "SQLite's reader misses {fact:?}");
    }
    let diff = differences(&sqlite, &pg);
    assert!(diff.is_empty(), "the schemas differ:\n{diff}");
    assert_eq!(numbers(&client, VERSION).await, vec![migrations::VERSION]);
}

#[tokio::test]
async fn migrating_again_changes_nothing_and_each_shop_has_its_own_tables() {
    let mut client = shop_schema().await;
    pg_migrate(&mut client).await.expect("migrates");
    let once = pg_facts(&client).await.expect("catalogue");
    client
        .execute("INSERT INTO cycles (started_at) VALUES (1)", &[])
        .await
        .expect("a row");

    pg_migrate(&mut client).await.expect("migrates again");

    assert_eq!(pg_facts(&client).await.expect("catalogue"), once);
    assert_eq!(numbers(&client, VERSION).await, vec![PG_VERSION]);
    assert_eq!(numbers(&client, CYCLES).await, vec![1], "the row stays");
    // A second shop in the same database: a schema of its own, migrated apart.
    client
        .batch_execute("CREATE SCHEMA other; SET search_path TO other")
        .await
        .expect("schema");
    pg_migrate(&mut client)
        .await
        .expect("migrates the other shop");
    assert_eq!(pg_facts(&client).await.expect("catalogue"), once);
    assert_eq!(
        numbers(&client, CYCLES).await,
        vec![0],
        "the other shop's table"
    );
}

#[tokio::test]
async fn a_schema_from_a_newer_invsync_is_refused_and_left_alone() {
    let mut client = shop_schema().await;
    pg_migrate(&mut client).await.expect("migrates");
    client
        .execute(
            "UPDATE schema_version SET version = $1",
            &[&(PG_VERSION + 1)],
        )
        .await
        .expect("a newer version");
    let before = pg_facts(&client).await.expect("catalogue");

    let refused = pg_migrate(&mut client).await;

    match refused {
        Err(e @ PgSchemaError::TooNew { found, known }) => {
            assert_eq!((found, known), (PG_VERSION + 1, PG_VERSION));
            assert!(
                e.to_string().contains("newer than this invsync knows"),
                "{e}"
            );
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(pg_facts(&client).await.expect("catalogue"), before);
    assert_eq!(numbers(&client, VERSION).await, vec![PG_VERSION + 1]);
}

#[tokio::test]
async fn workers_migrating_one_schema_at_once_take_turns() {
    let url = database();
    let mut first = shop_schema_of(&url).await;
    let mut second = shop_schema_of(&url).await;

    let (a, b) = tokio::join!(pg_migrate(&mut first), pg_migrate(&mut second));

    a.expect("the first migrates");
    b.expect("the second migrates");
    assert_eq!(numbers(&first, VERSION).await, vec![PG_VERSION]);
    assert_eq!(
        pg_facts(&first).await.expect("catalogue"),
        pg_facts(&second).await.expect("catalogue")
    );
}

#[tokio::test]
async fn a_version_no_invsync_wrote_is_refused() {
    let mut client = shop_schema().await;
    client
        .batch_execute(
            "CREATE TABLE schema_version (version BIGINT NOT NULL); \
             INSERT INTO schema_version VALUES (3)",
        )
        .await
        .expect("a version SQLite alone has");

    let refused = pg_migrate(&mut client).await;

    assert!(
        matches!(&refused, Err(PgSchemaError::Corrupt(m)) if m.contains("starts at version 17")),
        "{refused:?}"
    );
}
