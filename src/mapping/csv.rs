//! The `[mapping] file`: a CSV of aliases with the header `sku,endpoint,key`, read strictly. Every
//! mistake names its line, and every mistake of the file is reported at once, the way the
//! configuration's own errors are.
//!
//! The format is the plain CSV spreadsheets write: fields separated by commas, optionally in
//! double quotes (a quote inside written twice), a byte-order mark and `\r\n` line ends
//! accepted. A field is trimmed of surrounding spaces unless quoted; a barcode or an id is kept
//! exactly as text (leading zeros and all). Blank lines are skipped.
//!
//! A shop that maps every SKU has a file of a million lines (35 MB). Its lines are kept as
//! [`Aliases`]: every SKU and key one after the other in one string, and per line three small
//! integers. That is four allocations for the whole file instead of three strings per line
//! (a `Vec` of a million `String` triples took 224 MiB and most of a second to build and free),
//! and it is what the database keeps of the mapping in force ([`Aliases::to_bytes`]). The file
//! is read line by line ([`read`]), never held whole.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::io::BufRead;

use hashbrown::HashTable;

/// One line of the file: the canonical SKU `sku` is called `key` at `endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias<'a> {
    /// The line it was read from (1 is the header).
    pub line: usize,
    /// The canonical SKU.
    pub sku: &'a str,
    /// A source, target or order feed name of the configuration.
    pub endpoint: &'a str,
    /// What that endpoint calls the SKU.
    pub key: &'a str,
}

/// The lines of a mapping file, compact (see the module documentation).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Aliases {
    /// Every line's SKU then key, one after the other.
    text: String,
    /// Where each SKU and each key ends in `text` (two per line; each starts where the one
    /// before it ends).
    ends: Vec<u32>,
    /// Each line's endpoint, an index into `names`.
    endpoints: Vec<u16>,
    /// Each line's number in the file.
    lines: Vec<u32>,
    /// The endpoints the file names, in the order first named.
    names: Vec<String>,
}

impl std::fmt::Debug for Aliases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Aliases({} lines)", self.len())
    }
}

/// Why a line could not be kept: the file is beyond what [`Aliases`] can index.
const TOO_LARGE: &str = "the file is too large: its SKUs and keys take more than 4 GiB, or it names more than 65,535 endpoints";

impl Aliases {
    /// How many lines there are.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The `i`-th line (in the file's order).
    pub fn get(&self, i: usize) -> Alias<'_> {
        Alias {
            line: self.line(i),
            sku: self.sku(i),
            endpoint: &self.names[usize::from(self.endpoints[i])],
            key: self.key(i),
        }
    }

    /// Every line, in the file's order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Alias<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The SKU of the `i`-th line.
    #[inline]
    pub fn sku(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[2 * i - 1] };
        &self.text[start as usize..self.ends[2 * i] as usize]
    }

    /// The key of the `i`-th line.
    #[inline]
    pub fn key(&self, i: usize) -> &str {
        &self.text[self.ends[2 * i] as usize..self.ends[2 * i + 1] as usize]
    }

    /// The line number of the `i`-th line.
    pub fn line(&self, i: usize) -> usize {
        self.lines[i] as usize
    }

    /// The endpoint of the `i`-th line, as an index into [`Aliases::names`].
    pub fn endpoint_index(&self, i: usize) -> usize {
        usize::from(self.endpoints[i])
    }

    /// The endpoints the file names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of endpoint `name` in [`Aliases::names`], naming it first if need be.
    fn name_index(&mut self, name: &str) -> Result<u16, &'static str> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            // Fewer than 65,536 names: checked when each was added.
            return Ok(u16::try_from(i).unwrap_or(u16::MAX));
        }
        let i = u16::try_from(self.names.len()).map_err(|_| TOO_LARGE)?;
        self.names.push(name.to_owned());
        Ok(i)
    }

    /// Adds a line: SKU `sku` is `key` at endpoint `endpoint` (from [`Aliases::name_index`]).
    fn push_line(
        &mut self,
        line: usize,
        sku: &str,
        endpoint: u16,
        key: &str,
    ) -> Result<(), &'static str> {
        let line = u32::try_from(line).map_err(|_| TOO_LARGE)?;
        let sku_end = u32::try_from(self.text.len() + sku.len()).map_err(|_| TOO_LARGE)?;
        let key_end =
            u32::try_from(self.text.len() + sku.len() + key.len()).map_err(|_| TOO_LARGE)?;
        self.text.push_str(sku);
        self.text.push_str(key);
        self.ends.extend([sku_end, key_end]);
        self.endpoints.push(endpoint);
        self.lines.push(line);
        Ok(())
    }

    /// Lines given as `(line, sku, endpoint, key)`, kept as they come (no check: for lines
    /// read before, such as a test's or the keys a database recorded).
    pub fn from_lines<'a>(
        lines: impl IntoIterator<Item = (usize, &'a str, &'a str, &'a str)>,
    ) -> Aliases {
        let mut aliases = Aliases::default();
        for (line, sku, endpoint, key) in lines {
            // Such lines are few (tests, notes); one beyond the limits is left out.
            let _ = aliases
                .name_index(endpoint)
                .and_then(|e| aliases.push_line(line, sku, e, key));
        }
        aliases
    }

    /// Gives back what growing the vectors left unused.
    fn shrink(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
        self.endpoints.shrink_to_fit();
        self.lines.shrink_to_fit();
    }

    /// How many bytes [`Aliases::write_to`] writes.
    pub fn encoded_len(&self) -> usize {
        let names: usize = self.names.iter().map(|n| 4 + n.len()).sum();
        1 + 4 + names + 4 + 4 + self.text.len() + self.len() * (8 + 2 + 4)
    }

    /// Writes what the database keeps: a version, the names, the text and the three columns,
    /// little-endian, straight to `out` (a million lines are 31 MB: never a copy of them in
    /// memory). [`Aliases::read_from`] reads them back.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        out.write_all(&[FORMAT])?;
        out.write_all(&count(self.names.len()))?;
        for name in &self.names {
            out.write_all(&count(name.len()))?;
            out.write_all(name.as_bytes())?;
        }
        out.write_all(&count(self.len()))?;
        out.write_all(&count(self.text.len()))?;
        out.write_all(self.text.as_bytes())?;
        for e in &self.ends {
            out.write_all(&e.to_le_bytes())?;
        }
        for e in &self.endpoints {
            out.write_all(&e.to_le_bytes())?;
        }
        for l in &self.lines {
            out.write_all(&l.to_le_bytes())?;
        }
        Ok(())
    }

    /// [`Aliases::write_to`]'s bytes, in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        // Writing to a `Vec` cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// The lines [`Aliases::write_to`] wrote in exactly `len` bytes of `input`; `None` when
    /// they are not such lines (nothing larger than `len` says is ever allocated).
    pub fn read_from(input: &mut impl std::io::Read, len: usize) -> Option<Aliases> {
        let mut reader = Reading { input, left: len };
        if reader.bytes(1)? != [FORMAT] {
            return None;
        }
        let mut names = Vec::new();
        for _ in 0..reader.number()? {
            let len = reader.number()?;
            names.push(String::from_utf8(reader.bytes(len)?).ok()?);
        }
        let count = reader.number()?;
        let text_len = reader.number()?;
        let text = String::from_utf8(reader.bytes(text_len)?).ok()?;
        if count.checked_mul(14)? != reader.left {
            return None;
        }
        let ends: Vec<u32> = reader.words(2 * count, u32::from_le_bytes)?;
        let endpoints: Vec<u16> = reader.words(count, u16::from_le_bytes)?;
        let lines: Vec<u32> = reader.words(count, u32::from_le_bytes)?;
        let in_order = ends.windows(2).all(|w| w[0] <= w[1]);
        let bounded = ends
            .last()
            .map_or(text.is_empty(), |&e| e as usize == text.len());
        let on_chars = ends.iter().all(|&e| text.is_char_boundary(e as usize));
        let named = endpoints.iter().all(|&e| usize::from(e) < names.len());
        (in_order && bounded && on_chars && named).then_some(Aliases {
            text,
            ends,
            endpoints,
            lines,
            names,
        })
    }

    /// The lines [`Aliases::to_bytes`] wrote; `None` when the bytes are not such lines.
    pub fn from_bytes(bytes: &[u8]) -> Option<Aliases> {
        Aliases::read_from(&mut &bytes[..], bytes.len())
    }
}

/// A reader of [`Aliases::write_to`]'s layout that never reads beyond `left` bytes.
struct Reading<'a, R> {
    input: &'a mut R,
    left: usize,
}

impl<R: std::io::Read> Reading<'_, R> {
    fn bytes(&mut self, n: usize) -> Option<Vec<u8>> {
        self.left = self.left.checked_sub(n)?;
        let mut out = vec![0; n];
        self.input.read_exact(&mut out).ok()?;
        Some(out)
    }

    fn number(&mut self) -> Option<usize> {
        let b: [u8; 4] = self.bytes(4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    }

    /// `count` little-endian words of `N` bytes, read a block at a time.
    fn words<T, const N: usize>(
        &mut self,
        count: usize,
        from: impl Fn([u8; N]) -> T,
    ) -> Option<Vec<T>> {
        self.left = self.left.checked_sub(count.checked_mul(N)?)?;
        let mut out = Vec::with_capacity(count);
        let mut block = [0u8; 4096];
        let mut remaining = count * N;
        while remaining > 0 {
            let n = remaining.min(block.len() / N * N);
            self.input.read_exact(&mut block[..n]).ok()?;
            for w in block[..n].chunks_exact(N) {
                let mut word = [0u8; N];
                word.copy_from_slice(w);
                out.push(from(word));
            }
            remaining -= n;
        }
        Some(out)
    }
}

/// The version of [`Aliases::to_bytes`]'s layout.
const FORMAT: u8 = 1;

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

/// Reads the aliases of `text` (see [`read`]).
pub fn parse(
    text: &str,
    endpoint: impl Fn(&str) -> Option<String>,
) -> Result<Aliases, Vec<CsvError>> {
    read(text.as_bytes(), endpoint)
}

/// Reads the aliases of a file, line by line; `endpoint` answers `None` for a known endpoint
/// name and a message (with a suggestion) for an unknown one. Every mistake of the file at
/// once.
pub fn read(
    mut input: impl BufRead,
    endpoint: impl Fn(&str) -> Option<String>,
) -> Result<Aliases, Vec<CsvError>> {
    let mut errors = Vec::new();
    let mut aliases = Aliases::default();
    // Lines seen, as indices into `aliases` with 32 bits of their hash: a duplicate is found
    // without a second copy, and growing the table rehashes from those bits instead of
    // reading every line again (from all over the text: that was a third of the time).
    let hasher = hashbrown::DefaultHashBuilder::default();
    let hash = |e: u16, sku: &str, key: &str| (hasher.hash_one((e, sku, key)) >> 32) as u32;
    let spread = |short: u32| u64::from(short).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut seen: HashTable<(u32, u32)> = HashTable::new();
    // What `endpoint` said of each name met so far: it is asked once per name, not per line.
    let mut said: Vec<(String, Result<u16, String>)> = Vec::new();
    let mut header = false;
    let mut buffer = Vec::new();
    let mut line = 0;
    loop {
        buffer.clear();
        match input.read_until(b'\n', &mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                errors.push(CsvError {
                    line: 0,
                    message: format!("cannot be read after line {line}: {e}"),
                });
                break;
            }
        }
        line += 1;
        let mut report = |message: String| errors.push(CsvError { line, message });
        let mut bytes = buffer.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        }
        // `str::lines`' rule: `\n` ends a line, and a `\r` right before it goes with it.
        if let Some(b) = bytes.strip_suffix(b"\n") {
            bytes = b.strip_suffix(b"\r").unwrap_or(b);
        }
        let Ok(raw) = std::str::from_utf8(bytes) else {
            report("the line is not UTF-8 text".to_owned());
            continue;
        };
        if raw.trim().is_empty() {
            continue;
        }
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
        let [sku, endpoint_name, key] = match <[Cow<'_, str>; 3]>::try_from(fields) {
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
        let known = match said.iter().find(|(n, _)| *n == endpoint_name) {
            Some((_, answer)) => answer.clone(),
            None => {
                let answer = match endpoint(&endpoint_name) {
                    Some(message) => Err(message),
                    None => aliases.name_index(&endpoint_name).map_err(str::to_owned),
                };
                said.push((endpoint_name.to_string(), answer.clone()));
                answer
            }
        };
        let e = match known {
            Ok(e) => e,
            Err(message) => {
                report(message);
                continue;
            }
        };
        let this = hash(e, &sku, &key);
        let same = |&(short, i): &(u32, u32)| {
            let i = i as usize;
            short == this
                && aliases.endpoints[i] == e
                && aliases.sku(i) == sku
                && aliases.key(i) == key
        };
        if let Some(&(_, first)) = seen.find(spread(this), same) {
            report(format!("duplicates line {}", aliases.line(first as usize)));
            continue;
        }
        let Ok(index) = u32::try_from(aliases.len()) else {
            report(TOO_LARGE.to_owned());
            break;
        };
        if let Err(message) = aliases.push_line(line, &sku, e, &key) {
            report(message.to_owned());
            break;
        }
        seen.insert_unique(spread(this), (this, index), |&(short, _)| spread(short));
    }
    if !header && !errors.iter().any(|e| e.line == 0) {
        errors.push(CsvError {
            line: 0,
            message: "the file is empty; it needs at least the header `sku,endpoint,key`"
                .to_owned(),
        });
    }
    if errors.is_empty() {
        aliases.shrink();
        Ok(aliases)
    } else {
        Err(errors)
    }
}

/// Whether `c` is a space a field may be padded with.
fn blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The fields of one line, borrowed from it unless a quote had to be unescaped.
fn split(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut fields = Vec::with_capacity(3);
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches(blank);
        let field: Cow<'_, str>;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut inside = quoted;
            loop {
                let Some(at) = inside.find('"') else {
                    return Err("a quoted field is not closed".to_owned());
                };
                value.push_str(&inside[..at]);
                inside = &inside[at + 1..];
                match inside.strip_prefix('"') {
                    Some(after) => {
                        value.push('"');
                        inside = after;
                    }
                    None => break,
                }
            }
            rest = inside.trim_start_matches(blank);
            if !(rest.is_empty() || rest.starts_with(',')) {
                return Err("text after a quoted field's closing quote".to_owned());
            }
            field = Cow::Owned(value);
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let value = &rest[..end];
            if value.contains('"') {
                return Err("a quote inside an unquoted field; quote the field".to_owned());
            }
            rest = &rest[end..];
            field = Cow::Borrowed(value.trim_end());
        }
        fields.push(field);
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => return Ok(fields),
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
            aliases.iter().collect::<Vec<_>>(),
            vec![
                Alias {
                    line: 2,
                    sku: "CAT-1",
                    endpoint: "hardtofind",
                    key: "HTF 1"
                },
                Alias {
                    line: 4,
                    sku: "A,B",
                    endpoint: "dropship",
                    key: "0074198609628"
                },
            ]
        );
        assert_eq!(
            Aliases::from_bytes(&aliases.to_bytes()),
            Some(aliases),
            "kept in the database as they were read"
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

    #[test]
    fn a_line_that_is_not_utf8_is_named_and_the_rest_is_read() {
        let text = b"sku,endpoint,key\nA,dropship,\xff\nB,dropship,2";
        let errors: Vec<(usize, String)> = read(&text[..], known)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| (e.line, e.message))
            .collect();
        assert_eq!(errors, vec![(2, "the line is not UTF-8 text".to_owned())]);
    }

    #[test]
    fn bytes_that_are_not_recorded_lines_are_refused() {
        let aliases = parse(
            "sku,endpoint,key\nA,dropship,1\nB,hardtofind,\u{e9}\n",
            known,
        )
        .expect("valid");
        let bytes = aliases.to_bytes();
        assert_eq!(Aliases::from_bytes(&bytes).as_ref(), Some(&aliases));
        for cut in 0..bytes.len() {
            assert_eq!(Aliases::from_bytes(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(Aliases::from_bytes(&[]), None);
    }
}
