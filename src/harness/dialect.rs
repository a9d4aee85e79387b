//! How a simulator answers where its service's document is silent.
//!
//! invsync's readers were once tested only against simulators written from the same reading of
//! the documents as the readers themselves, so the tests agreed with the code by sharing its
//! guesses (an empty order list answered as page 1 of 1 switched reservations off). A [`Dialect`]
//! names one plausible answer for each open point; every simulator can speak every dialect, and
//! the integration tests of the core promises run under a covering set ([`Dialect::covering`]),
//! failing when a value is never exercised ([`Spoken`]).
//!
//! The open points, per service, are listed with what invsync accepts in the README's
//! "What invsync assumes" section.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

/// One answer for each open point. The default is the documents' own reading, where they have
/// one (the seeds' error texts, `404` for something unknown, `pages: 0` for an empty list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dialect {
    /// What `pages` (and `page_number`) an empty paged list says (Hardtofind).
    pub empty_pages: EmptyPages,
    /// How "no such thing" is answered (a Shopsys product, a Hardtofind order).
    pub gone: Gone,
    /// Error bodies: the documents' texts (a debug install) or generic ones (production).
    pub errors: Errors,
    /// Fields beyond the document's, and optional ones left out.
    pub fields: Fields,
    /// Counts and ids written as numbers or as strings of digits.
    pub numbers: Numbers,
    /// `Content-Type` with or without a charset; a UTF-8 byte-order mark before the JSON.
    pub encoding: Encoding,
    /// The catalogue's empty list: `Link` as Shopsys 9 writes it (a bogus `next`), empty, or absent.
    pub empty_link: EmptyLink,
    /// Endless Aisles' `GET /api/stock`: one answer as documented, or Laravel pages.
    pub stock_pages: StockPages,
}

/// See [`Dialect::empty_pages`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyPages {
    /// `"pages": 0`.
    #[default]
    Zero,
    /// `"pages": 1`, as many paged APIs answer (page 1 of at least 1).
    One,
}

/// See [`Dialect::gone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Gone {
    /// `404 Not Found` (Shopsys 8.x, the documents).
    #[default]
    NotFound,
    /// `410 Gone` (Shopsys 9).
    Gone,
}

/// See [`Dialect::errors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Errors {
    /// The documents' texts, as a debug install answers.
    #[default]
    Debug,
    /// Generic bodies (`{"code":400,"message":"Bad Request"}`), as a production install answers.
    Production,
}

/// See [`Dialect::fields`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fields {
    /// Exactly the document's fields.
    #[default]
    Documented,
    /// Fields the document does not name added, optional ones left out.
    Loose,
}

/// See [`Dialect::numbers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Numbers {
    /// Numbers as numbers.
    #[default]
    Numbers,
    /// Counts and ids as strings of digits.
    Strings,
}

/// See [`Dialect::encoding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// `application/json`, no byte-order mark.
    #[default]
    Plain,
    /// `application/json; charset=utf-8`, and a byte-order mark before the body.
    CharsetBom,
}

/// See [`Dialect::empty_link`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmptyLink {
    /// `Link: <…page=2>; rel="next", <…page=0>; rel="last"` (Shopsys 9 on an empty catalogue).
    #[default]
    BogusNext,
    /// A `Link` header that is present and empty.
    Empty,
    /// No `Link` header.
    Absent,
}

/// See [`Dialect::stock_pages`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StockPages {
    /// `{"data": {…}}` and nothing else, as documented.
    #[default]
    None,
    /// Laravel's page fields beside `data`, and the items split over pages.
    Laravel,
}

/// Every open point with each of its values, as `point=value` names: what [`Spoken`] records
/// and the covering set must exercise.
pub const VALUES: &[(&str, &[&str])] = &[
    ("empty_pages", &["0", "1"]),
    ("gone", &["404", "410"]),
    ("errors", &["debug", "production"]),
    ("fields", &["documented", "loose"]),
    ("numbers", &["numbers", "strings"]),
    ("encoding", &["plain", "charset_bom"]),
    ("empty_link", &["bogus_next", "empty", "absent"]),
    ("stock_pages", &["none", "laravel"]),
];

impl Dialect {
    /// The `point=value` name of each of this dialect's answers.
    pub fn names(&self) -> [(&'static str, &'static str); 8] {
        [
            ("empty_pages", self.empty_pages.name()),
            ("gone", self.gone.name()),
            ("errors", self.errors.name()),
            ("fields", self.fields.name()),
            ("numbers", self.numbers.name()),
            ("encoding", self.encoding.name()),
            ("empty_link", self.empty_link.name()),
            ("stock_pages", self.stock_pages.name()),
        ]
    }

    /// The documents' reading everywhere.
    pub fn documented() -> Dialect {
        Dialect::default()
    }

    /// What a production install of each service most likely answers.
    pub fn production() -> Dialect {
        Dialect {
            empty_pages: EmptyPages::One,
            gone: Gone::Gone,
            errors: Errors::Production,
            fields: Fields::Loose,
            numbers: Numbers::Strings,
            encoding: Encoding::CharsetBom,
            empty_link: EmptyLink::Empty,
            stock_pages: StockPages::None,
        }
    }

    /// A set of dialects in which every value of every open point appears at least once, and no
    /// two points' values travel together in all of them (neither always the same nor always
    /// opposite), so that a test passing under one value only because of another's cannot go
    /// unnoticed. The first is the documented reading; each two-valued point then follows its
    /// own pattern over the other three (seven points, the seven patterns three dialects allow).
    pub fn covering() -> Vec<Dialect> {
        let pattern = |bits: [bool; 3]| -> [bool; 4] { [false, bits[0], bits[1], bits[2]] };
        let empty_pages = pattern([true, true, true]);
        let gone = pattern([true, true, false]);
        let errors = pattern([true, false, true]);
        let fields = pattern([true, false, false]);
        let numbers = pattern([false, true, true]);
        let encoding = pattern([false, true, false]);
        let stock_pages = pattern([false, false, true]);
        let empty_link = [
            EmptyLink::BogusNext,
            EmptyLink::Empty,
            EmptyLink::Absent,
            EmptyLink::BogusNext,
        ];
        (0..4)
            .map(|i| Dialect {
                empty_pages: [EmptyPages::Zero, EmptyPages::One][usize::from(empty_pages[i])],
                gone: [Gone::NotFound, Gone::Gone][usize::from(gone[i])],
                errors: [Errors::Debug, Errors::Production][usize::from(errors[i])],
                fields: [Fields::Documented, Fields::Loose][usize::from(fields[i])],
                numbers: [Numbers::Numbers, Numbers::Strings][usize::from(numbers[i])],
                encoding: [Encoding::Plain, Encoding::CharsetBom][usize::from(encoding[i])],
                empty_link: empty_link[i],
                stock_pages: [StockPages::None, StockPages::Laravel][usize::from(stock_pages[i])],
            })
            .collect()
    }
}

macro_rules! named {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The value's name, as `--dialect` takes it.
            pub fn name(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
            fn from_name(name: &str) -> Option<$ty> {
                match name { $($name => Some($ty::$variant),)+ _ => None }
            }
        }
    };
}

named!(EmptyPages { Zero => "0", One => "1" });
named!(Gone { NotFound => "404", Gone => "410" });
named!(Errors { Debug => "debug", Production => "production" });
named!(Fields { Documented => "documented", Loose => "loose" });
named!(Numbers { Numbers => "numbers", Strings => "strings" });
named!(Encoding { Plain => "plain", CharsetBom => "charset_bom" });
named!(EmptyLink { BogusNext => "bogus_next", Empty => "empty", Absent => "absent" });
named!(StockPages { None => "none", Laravel => "laravel" });

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names();
        for (i, (point, value)) in names.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{point}={value}")?;
        }
        Ok(())
    }
}

/// `documented`, `production`, or a comma-separated list of `point=value` over `documented`
/// (`production,gone=404` starts from `production`).
impl FromStr for Dialect {
    type Err = String;

    fn from_str(text: &str) -> Result<Dialect, String> {
        let mut dialect = Dialect::documented();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "documented" => dialect = Dialect::documented(),
                "production" => dialect = Dialect::production(),
                _ => dialect.set(part)?,
            }
        }
        Ok(dialect)
    }
}

impl Dialect {
    fn set(&mut self, part: &str) -> Result<(), String> {
        let Some((point, value)) = part.split_once('=') else {
            return Err(format!(
                "{part:?}: expected documented, production or point=value"
            ));
        };
        let (point, value) = (point.trim(), value.trim());
        let unknown = || {
            let known = VALUES.iter().find(|(p, _)| *p == point);
            match known {
                Some((_, values)) => format!(
                    "{point}: unknown value {value:?} (one of {})",
                    values.join(", ")
                ),
                None => format!(
                    "unknown point {point:?} (one of {})",
                    VALUES
                        .iter()
                        .map(|(p, _)| *p)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        };
        macro_rules! take {
            ($field:ident, $ty:ident) => {
                self.$field = $ty::from_name(value).ok_or_else(unknown)?
            };
        }
        match point {
            "empty_pages" => take!(empty_pages, EmptyPages),
            "gone" => take!(gone, Gone),
            "errors" => take!(errors, Errors),
            "fields" => take!(fields, Fields),
            "numbers" => take!(numbers, Numbers),
            "encoding" => take!(encoding, Encoding),
            "empty_link" => take!(empty_link, EmptyLink),
            "stock_pages" => take!(stock_pages, StockPages),
            _ => return Err(unknown()),
        }
        Ok(())
    }
}

/// A simulator's dialect and the values it has actually answered with: a dialect that is set
/// but never reached (no empty list was ever asked for) proves nothing, so the covering test
/// checks what was spoken, not what was set. Cheap to clone; clones share.
#[derive(Debug, Clone, Default)]
pub struct Spoken {
    dialect: Arc<RwLock<Dialect>>,
    used: Arc<Mutex<BTreeSet<(&'static str, &'static str)>>>,
}

impl Spoken {
    /// The dialect in force.
    pub fn get(&self) -> Dialect {
        *self.dialect.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Speak `dialect` from now on.
    pub fn set(&self, dialect: Dialect) {
        *self.dialect.write().unwrap_or_else(|p| p.into_inner()) = dialect;
    }

    /// The dialect in force, noting that its answer to `point` was used.
    pub fn answer(&self, point: &'static str) -> Dialect {
        let dialect = self.get();
        if let Some(&(p, value)) = dialect.names().iter().find(|(p, _)| *p == point) {
            self.used
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((p, value));
        }
        dialect
    }

    /// Every `(point, value)` answered so far.
    pub fn used(&self) -> BTreeSet<(&'static str, &'static str)> {
        self.used.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_covering_set_has_every_value_of_every_point() {
        let mut seen = BTreeSet::new();
        for dialect in Dialect::covering() {
            seen.extend(dialect.names());
        }
        for (point, values) in VALUES {
            for value in *values {
                assert!(
                    seen.contains(&(*point, *value)),
                    "{point}={value} not covered"
                );
            }
        }
    }

    #[test]
    fn in_the_covering_set_no_two_points_travel_together() {
        let covering = Dialect::covering();
        let column =
            |point: usize| -> Vec<&str> { covering.iter().map(|d| d.names()[point].1).collect() };
        let points = Dialect::default().names().len();
        for a in 0..points {
            for b in (a + 1)..points {
                let (x, y) = (column(a), column(b));
                // Two columns travel together when one value of `a` always meets one value of
                // `b`: the pairs seen are a function both ways.
                let pairs: BTreeSet<(&str, &str)> =
                    x.iter().copied().zip(y.iter().copied()).collect();
                let (xs, ys): (BTreeSet<&str>, BTreeSet<&str>) =
                    (x.iter().copied().collect(), y.iter().copied().collect());
                let together = pairs.len() == xs.len() && pairs.len() == ys.len();
                assert!(
                    !together,
                    "{:?} and {:?} travel together: {pairs:?}",
                    Dialect::default().names()[a].0,
                    Dialect::default().names()[b].0
                );
            }
        }
    }

    #[test]
    fn a_dialect_reads_back_from_its_own_name() {
        for dialect in Dialect::covering() {
            assert_eq!(dialect.to_string().parse::<Dialect>(), Ok(dialect));
        }
        assert_eq!(
            "production,gone=404".parse::<Dialect>().map(|d| d.gone),
            Ok(Gone::NotFound)
        );
        let error = "gone=418".parse::<Dialect>().unwrap_err();
        assert!(error.contains("one of 404, 410"), "{error}");
        let error = "pages=1".parse::<Dialect>().unwrap_err();
        assert!(error.contains("unknown point"), "{error}");
    }
}
