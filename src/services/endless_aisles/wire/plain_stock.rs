//! The stock answer's usual shape, read by a scanner written for it: `{"data": {"id": n, …}}`
//! with plain ids (no escapes) and quantities that are whole numbers of at least 0, whitespace
//! anywhere JSON allows it.
//!
//! Why not the library: serde_json reads any JSON, so it pays on every byte for what this shape
//! never has (escapes, numbers of every form, nesting, a visitor call per token); on a
//! million-SKU answer that was most of the changed cycle's parse, which is on its critical
//! path. This shape is narrow and hot, so it gets a scanner of its own; JSON in general stays
//! with serde_json.
//!
//! The scanner never decides anything serde_json would decide differently: the moment it meets
//! anything else (an escape, a number with a sign, fraction or exponent or too many digits to
//! add up exactly, a string or `null` for a quantity, a second top-level field such as the page
//! fields, `[]`, a truncated answer, bytes that are not UTF-8), it takes back what it added and
//! says no, and the page is read by [`super::stock`] from its start, which accepts or refuses it
//! exactly as before. It logs nothing (a quantity that would be warned about is one it leaves
//! to serde_json), so a page read twice never warns twice. Both make records through
//! [`take_record`], and a differential property test holds them to the same result.

use super::record::take_record;
use crate::services::{RecordQuantity, Stock};

/// Reads `body` into `stock` if it has the plain shape (returns true); otherwise leaves
/// `stock` as it was and returns false.
pub(super) fn read(body: &[u8], prefix: &str, label: &str, stock: &mut Stock) -> bool {
    // One check of the whole body (at memory speed for ASCII) rather than one per id; an answer
    // that is not UTF-8 is not JSON either, and serde_json says how.
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    // Room for every record at once: a million grown a doubling at a time were copied, and
    // their pages touched, about twice over. Each record has a colon (and 5 bytes besides its
    // id), so this is a bound, and a close one; room reserved and not used is never touched.
    let records = body.iter().filter(|&&b| b == b':').count();
    let ids = body.len().saturating_sub(5 * records);
    stock.reserve(records, ids + records * prefix.len());
    let mark = stock.mark();
    let mut scanner = Scanner {
        text,
        at: 0,
        plain: false,
    };
    let read = scanner.answer(prefix, label, stock).is_some();
    if !read {
        stock.rewind(mark);
    }
    read
}

/// Where the scanner is in the answer. Every step returns `None` for "not the plain shape".
struct Scanner<'a> {
    text: &'a str,
    at: usize,
    /// Whether the last string read was printable ASCII alone (no character is a control).
    plain: bool,
}

/// More digits than this may not fit an `i64`: left to serde_json.
const MAX_DIGITS: usize = 18;

impl<'a> Scanner<'a> {
    /// `{"data": {…}}` and nothing after it but whitespace.
    fn answer(&mut self, prefix: &str, label: &str, stock: &mut Stock) -> Option<()> {
        // A record whose id is printable ASCII, not empty, behind a prefix without a control
        // character is kept as it is (see `take_record`): known without looking at each
        // character of its name again. Any other goes through `take_record`.
        let prefix_plain = !prefix.chars().any(char::is_control);
        self.token(b'{')?;
        self.token(b'"')?;
        if self.string()? != "data" {
            return None;
        }
        self.token(b':')?;
        self.token(b'{')?;
        if self.peek_token()? == b'}' {
            self.at += 1;
        } else {
            loop {
                self.token(b'"')?;
                let id = self.string()?;
                self.token(b':')?;
                self.skip_whitespace();
                let quantity = self.whole()?;
                let name = stock.open();
                name.push_str(prefix);
                name.push_str(id);
                if self.plain && !id.is_empty() && prefix_plain {
                    stock.seal(quantity);
                } else {
                    take_record(stock, prefix, label, RecordQuantity::Whole(quantity));
                }
                match self.next_token()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.token(b'}')?;
        self.skip_whitespace();
        (self.at == self.text.len()).then_some(())
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes().get(self.at) {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not taken.
    fn peek_token(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.bytes().get(self.at).copied()
    }

    /// The next byte after whitespace, taken.
    fn next_token(&mut self) -> Option<u8> {
        let byte = self.peek_token()?;
        self.at += 1;
        Some(byte)
    }

    /// Takes `byte` after whitespace.
    fn token(&mut self, byte: u8) -> Option<()> {
        (self.next_token()? == byte).then_some(())
    }

    /// The rest of a string whose opening quote was taken, when it has no escape and no control
    /// character (which JSON forbids raw).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at;
        self.plain = true;
        loop {
            match *self.bytes().get(self.at)? {
                b'"' => break,
                b'\\' | 0..0x20 => return None,
                0x7f.. => self.plain = false,
                _ => {}
            }
            self.at += 1;
        }
        self.at += 1;
        // Both ends are at an ASCII quote, so on character boundaries.
        self.text.get(start..self.at - 1)
    }

    /// A whole number of at least 0 as JSON writes it (no leading zero), with nothing of a
    /// fraction or exponent after it.
    fn whole(&mut self) -> Option<i64> {
        let start = self.at;
        let mut value: i64 = 0;
        while let Some(&byte @ b'0'..=b'9') = self.bytes().get(self.at) {
            if self.at - start == MAX_DIGITS {
                return None;
            }
            value = value * 10 + i64::from(byte - b'0');
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes().get(start) == Some(&b'0');
        let fraction_or_exponent = matches!(self.bytes().get(self.at), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !fraction_or_exponent).then_some(value)
    }
}

#[cfg(test)]
mod tests;
