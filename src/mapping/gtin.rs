//! Barcodes compared as GTIN-14 strings (the contract's "SKU mapping": an Endless Aisles
//! size's `upc` and a catalogue product's `ean` link when they are the same GTIN).
//!
//! Why not the `gtin-validate` crate (1.3.0, the only GTIN crate of note): it does treat codes
//! as strings and pads with zeros, but it has had no release in years (edition 2015), its
//! `gtin14::fix("")` answers `Ok("00000000000000")` (an empty barcode becomes a valid GTIN, so
//! every product without one would link to every other), and it keeps the apostrophe problem
//! ours to solve anyway. What is needed is the GS1 check digit and a few rules: this file.

use std::fmt;

/// A GTIN as 14 ASCII digits with a valid check digit; never all zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin14(String);

impl Gtin14 {
    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Gtin14 {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The GS1 check digit of `body` (the digits before it): weights 3 and 1 alternate from the
/// right, starting with 3. `body` must be ASCII digits.
pub fn check_digit(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    // `sum % 10` is below 10, so this is a digit.
    ((10 - sum % 10) % 10) as u8
}

/// Reads a barcode string as a GTIN-14, or `None` when it is not one.
///
/// A leading apostrophe (a spreadsheet's "this is text" mark, seen in Endless Aisles answers)
/// and all whitespace are dropped; the rest must be 8 to 14 ASCII digits, left-padded with
/// zeros to 14 (so a UPC-A, an EAN-13 and their GTIN-14 forms compare equal), with a valid
/// check digit, and not all zeros. Fewer than 8 digits is no GTIN format (GTIN-8 is the
/// shortest) and would pass the check digit one time in ten by chance: better unlinked than
/// linked to the wrong product.
pub fn gtin14(barcode: &str) -> Option<Gtin14> {
    let text = barcode.trim();
    let text = text.strip_prefix('\'').unwrap_or(text);
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if !(8..=14).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{digits:0>14}");
    let bytes = padded.as_bytes();
    let (body, check) = bytes.split_at(13);
    if bytes.iter().all(|&b| b == b'0') || check != [b'0' + check_digit(body)] {
        return None;
    }
    Some(Gtin14(padded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(s: &str) -> Option<String> {
        gtin14(s).map(|g| g.to_string())
    }

    #[test]
    fn a_upc_and_its_longer_forms_are_one_gtin() {
        let expected = Some("00074198609628".to_owned());
        for form in [
            "074198609628",
            "0074198609628",
            "00074198609628",
            "'074198609628",
            " 0 74198 60962 8\n",
            "74198609628",
        ] {
            assert_eq!(g(form), expected, "{form:?}");
        }
    }

    #[test]
    fn documented_barcodes_have_valid_check_digits() {
        for code in [
            "064992103132",
            "655199036110",
            "074198609635",
            "14567815983469",
            "96385074",
        ] {
            assert!(gtin14(code).is_some(), "{code}");
        }
    }

    #[test]
    fn anything_else_is_not_a_gtin() {
        for bad in [
            "",
            "   ",
            "'",
            "0",
            "00000000000000",
            "074198609627",
            "17",
            "1234565",
            "074198609628x",
            "074-198-609628",
            "123456789012345",
            "０74198609628",
            "''074198609628",
        ] {
            assert_eq!(g(bad), None, "{bad:?}");
        }
    }
}
