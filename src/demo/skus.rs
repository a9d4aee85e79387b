//! How many SKUs the simulators hold (`invsync sim --skus N`), and what they are called: warehouse
//! SKUs `HK-0001`… at Hako, dropship items `24001`… at Endless Aisles (`EA-24001`… at Hardtofind).

use std::str::FromStr;

use crate::mapping::gtin::check_digit;

/// The demo's size, and `invsync sim`'s unless `--skus` says otherwise.
pub const DEFAULT_SKUS: usize = 150;
/// More than anyone rehearses with: ten million SKUs a source already take gigabytes.
pub const MAX_SKUS: usize = 10_000_000;
/// Endless Aisles' option id of dropship item `i` is this plus `i`.
const FIRST_DROPSHIP_ID: u64 = 24_000;

/// How many SKUs each source holds: `count` warehouse SKUs at Hako and as many dropship items at
/// Endless Aisles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skus {
    count: usize,
    /// Digits of a warehouse SKU's number: at least four (`HK-0001`, as the demo has always
    /// named them), more when `count` needs more, so names stay unique and sort as numbers do.
    width: usize,
}

impl Default for Skus {
    fn default() -> Skus {
        // 150 has fewer than four digits.
        Skus {
            count: DEFAULT_SKUS,
            width: 4,
        }
    }
}

impl Skus {
    /// `count` SKUs a source; `None` unless `1..=MAX_SKUS`.
    pub fn new(count: usize) -> Option<Skus> {
        (1..=MAX_SKUS).contains(&count).then(|| Skus {
            count,
            width: count.to_string().len().max(4),
        })
    }

    /// SKUs per source.
    pub fn count(self) -> usize {
        self.count
    }

    /// Hako's name for warehouse SKU `i` (from 1).
    pub fn warehouse_sku(self, i: usize) -> String {
        number("HK-", i as u64, self.width)
    }

    /// Endless Aisles' option id of dropship item `i` (from 1).
    pub fn dropship_option(self, i: usize) -> u64 {
        FIRST_DROPSHIP_ID + i as u64
    }

    /// [`Skus::dropship_option`] as `/api/stock` writes it.
    pub fn dropship_id(self, i: usize) -> String {
        number("", self.dropship_option(i), 0)
    }

    /// Dropship item `i` as Hardtofind lists it: `EA-` (the source's `sku_prefix`) and its id.
    pub fn dropship_sku(self, i: usize) -> String {
        number("EA-", self.dropship_option(i), 0)
    }

    /// Whether dropship item `i` is for sale at Endless Aisles: every 25th is not, so the
    /// relay's pre-flight check has something to refuse.
    pub fn dropship_purchasable(i: usize) -> bool {
        !i.is_multiple_of(25)
    }

    /// Whether dropship item `i` is discontinued: every 40th.
    pub fn dropship_discontinued(i: usize) -> bool {
        i.is_multiple_of(40)
    }

    /// Whether dropship item `i` can be ordered at Endless Aisles.
    pub fn dropship_sellable(i: usize) -> bool {
        Skus::dropship_purchasable(i) && !Skus::dropship_discontinued(i)
    }
}

/// `prefix` and `n` in at least `width` digits. Written by hand: seeding a million SKUs makes
/// millions of names, and `format!` was a tenth of that time.
fn number(prefix: &str, n: u64, width: usize) -> String {
    let mut digits = [0u8; 20];
    let (mut at, mut rest) = (digits.len(), n);
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let written = &digits[at..];
    let mut out = String::with_capacity(prefix.len() + written.len().max(width));
    out.push_str(prefix);
    out.extend(std::iter::repeat_n(
        '0',
        width.saturating_sub(written.len()),
    ));
    out.extend(written.iter().map(|&d| char::from(d)));
    out
}

/// A valid 12-digit UPC for dropship item `i`, as Endless Aisles writes it (13 digits, with a
/// leading zero), and the same code as the shop writes it (12 digits).
pub(crate) fn barcodes(i: usize) -> (String, String) {
    let body = format!("0{:010}", 7_419_860_000 + i);
    let upc = format!("{body}{}", check_digit(body.as_bytes()));
    (format!("0{upc}"), upc)
}

impl std::fmt::Display for Skus {
    /// As `--skus` takes it: the count.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.count)
    }
}

impl FromStr for Skus {
    type Err = String;

    /// `--skus N`: a whole number from 1 to [`MAX_SKUS`].
    fn from_str(text: &str) -> Result<Skus, String> {
        let refuse = || format!("must be a whole number from 1 to {MAX_SKUS}, not {text:?}");
        let count: usize = text.trim().parse().map_err(|_| refuse())?;
        Skus::new(count).ok_or_else(refuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warehouse_skus_stay_unique_and_sort_as_their_numbers_whatever_the_count() {
        for count in [1, 150, 9_999, 10_000, 123_456, 1_000_000, MAX_SKUS] {
            let skus = Skus::new(count).expect("a valid count");
            let numbers: std::collections::BTreeSet<usize> =
                [1, 2, 9, 10, 999, 1_000, 9_999, 10_000, count - 1, count]
                    .into_iter()
                    .filter(|&i| (1..=count).contains(&i))
                    .collect();
            let names: Vec<String> = numbers.iter().map(|&i| skus.warehouse_sku(i)).collect();
            let mut sorted = names.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, names, "{count}");
        }
        assert_eq!(Skus::default().warehouse_sku(1), "HK-0001");
        assert_eq!(Skus::default().warehouse_sku(150), "HK-0150");
        let big = Skus::new(1_000_000).expect("valid");
        assert_eq!(big.warehouse_sku(7), "HK-0000007");
    }

    #[test]
    fn dropship_ids_are_distinct_numbers_up_to_the_largest_count() {
        let skus = Skus::new(MAX_SKUS).expect("valid");
        assert_eq!(skus.dropship_id(1), "24001");
        assert_eq!(skus.dropship_sku(1), "EA-24001");
        assert_eq!(skus.dropship_id(MAX_SKUS), "10024000");
        assert_eq!(number("", 0, 0), "0");
        assert_eq!(number("", u64::MAX, 0), u64::MAX.to_string());
        assert!(skus.dropship_option(MAX_SKUS) > skus.dropship_option(MAX_SKUS - 1));
        // Hardtofind names them `EA-…` and the warehouse `HK-…`: the two never meet.
        assert!(!skus.warehouse_sku(24_001).starts_with("EA-"));
    }

    #[test]
    fn a_count_of_nought_or_beyond_ten_million_is_refused_with_the_range() {
        for text in ["0", "10000001", "-3", "many", "1.5"] {
            let error = text.parse::<Skus>().expect_err(text);
            assert!(error.contains("from 1 to 10000000"), "{error}");
        }
        assert_eq!("1234".parse::<Skus>().map(Skus::count), Ok(1234));
    }
}
