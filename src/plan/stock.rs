//! What a source answered, compactly: every SKU name in one buffer and fixed-size entries per
//! SKU, so a million-SKU answer is three allocations rather than a million.

use crate::plan::ledger::{Column, SkuTable};

/// A source's complete answer: SKUs with their quantities, and the records that could not be
/// used as they are.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stock {
    names: String,
    /// Per SKU: where its name ends in `names` (it starts where the previous one ends).
    ends: Vec<u32>,
    /// Per SKU, its quantity. Apart from `ends` rather than paired with it: a pair is padded to
    /// 16 bytes, two lists take 12 (20 MB less for five million SKUs).
    quantities: Vec<i64>,
    /// SKUs whose record carried a quantity that is not a whole number: not among the entries,
    /// and not absent either (absent counts as 0): held at their last snapshot quantity.
    held: Vec<String>,
    /// Records dropped for a SKU that is empty or has control characters.
    dropped: usize,
}

impl Stock {
    /// Room for `skus` SKUs with names of `bytes` bytes in all.
    pub fn with_capacity(skus: usize, bytes: usize) -> Stock {
        Stock {
            names: String::with_capacity(bytes),
            ends: Vec::with_capacity(skus),
            quantities: Vec::with_capacity(skus),
            ..Stock::default()
        }
    }

    /// Room for `skus` more SKUs with names of `bytes` more bytes in all.
    pub fn reserve(&mut self, skus: usize, bytes: usize) {
        self.names.reserve(bytes);
        self.ends.reserve(skus);
        self.quantities.reserve(skus);
    }

    /// Adds a SKU.
    pub fn push(&mut self, sku: &str, quantity: i64) {
        self.names.push_str(sku);
        self.seal(quantity);
    }

    /// The name buffer, to append the next SKU's name to in pieces (a prefix, then an id) before
    /// [`Stock::seal`] closes it. Whatever was appended since the last entry is the name.
    pub fn open(&mut self) -> &mut String {
        &mut self.names
    }

    /// Closes the name appended through [`Stock::open`] with its quantity.
    pub fn seal(&mut self, quantity: i64) {
        // Names beyond 4 GiB cannot occur: answers are capped far below that.
        let end = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.ends.push(end);
        self.quantities.push(quantity);
    }

    /// The name being appended through [`Stock::open`], not yet sealed.
    pub fn pending_name(&self) -> &str {
        self.names.get(self.pending_start()..).unwrap_or_default()
    }

    /// Drops whatever was appended through [`Stock::open`] since the last entry.
    pub fn discard_pending(&mut self) {
        self.names.truncate(self.pending_start());
    }

    /// Where the name being appended through [`Stock::open`] starts.
    fn pending_start(&self) -> usize {
        self.ends.last().map_or(0, |&end| end as usize)
    }

    /// Notes a SKU whose quantity could not be read: the caller holds it at its last snapshot
    /// quantity rather than counting it absent (0) or failing the whole source.
    pub fn hold(&mut self, sku: &str) {
        self.held.push(sku.to_owned());
    }

    /// The SKUs to hold at their last snapshot quantity (see [`Stock::hold`]), in the order met.
    pub fn held(&self) -> &[String] {
        &self.held
    }

    /// [`Stock::held`], the answer used up.
    pub fn into_held(self) -> Vec<String> {
        self.held
    }

    /// Counts a record dropped because its SKU is unusable ([`crate::services::usable_sku`]).
    pub fn count_dropped(&mut self) {
        self.dropped += 1;
    }

    /// How many records were dropped for an unusable SKU.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Where the answer stands now, to go back to with [`Stock::rewind`].
    pub fn mark(&self) -> Mark {
        Mark {
            names: self.names.len(),
            entries: self.ends.len(),
            held: self.held.len(),
            dropped: self.dropped,
        }
    }

    /// Forgets everything added since `mark` was taken: a reader that gave up part way through
    /// a page leaves it to be read again from its start.
    pub fn rewind(&mut self, mark: Mark) {
        self.names.truncate(mark.names);
        self.ends.truncate(mark.entries);
        self.quantities.truncate(mark.entries);
        self.held.truncate(mark.held);
        self.dropped = mark.dropped;
    }

    /// How many SKUs.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no SKU.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// A first answer taken as it is, when no SKU is known yet: its names become the SKU table
    /// (SKU `i` is its `i`-th record) and its quantities the column, in the memory they take
    /// here, so five million SKUs are not held twice while they are interned. Also returns the
    /// SKUs to hold ([`Stock::held`]). The answer comes back whole when its names cannot be a
    /// table as they are (see [`SkuTable::from_names`]): it is then interned record by record.
    pub fn into_first(self) -> Result<(SkuTable, Column, Vec<String>), Stock> {
        match SkuTable::from_names(self.names, self.ends) {
            Ok(table) => Ok((table, Column::from_quantities(self.quantities), self.held)),
            Err((names, ends)) => Err(Stock {
                names,
                ends,
                ..self
            }),
        }
    }

    /// Every `(sku, quantity)`, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        let mut start = 0;
        self.ends
            .iter()
            .zip(&self.quantities)
            .map(move |(&end, &quantity)| {
                let name = self.names.get(start..end as usize).unwrap_or_default();
                start = end as usize;
                (name, quantity)
            })
    }
}

/// A point in a [`Stock`] to go back to ([`Stock::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    names: usize,
    entries: usize,
    held: usize,
    dropped: usize,
}

impl FromIterator<(String, i64)> for Stock {
    fn from_iter<I: IntoIterator<Item = (String, i64)>>(items: I) -> Stock {
        let mut stock = Stock::default();
        for (sku, quantity) in items {
            stock.push(&sku, quantity);
        }
        stock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_built_in_pieces_come_back_whole_in_order() {
        let mut stock = Stock::default();
        stock.push("HK-1", 5);
        stock.open().push_str("EA-");
        stock.open().push_str("24752");
        assert_eq!(stock.pending_name(), "EA-24752");
        stock.seal(3);
        stock.open().push_str("EA-");
        stock.discard_pending();
        assert_eq!(
            stock.iter().collect::<Vec<_>>(),
            vec![("HK-1", 5), ("EA-24752", 3)]
        );
        assert_eq!(stock.len(), 2);
    }

    #[test]
    fn a_rewound_answer_is_what_it_was_at_its_mark() {
        let mut stock = Stock::default();
        stock.push("EA-1", 5);
        stock.hold("EA-2");
        let before = stock.clone();
        let mark = stock.mark();
        stock.push("EA-3", 7);
        stock.hold("EA-4");
        stock.count_dropped();
        stock.open().push_str("EA-5");

        stock.rewind(mark);

        assert_eq!(stock, before);
    }

    #[test]
    fn a_first_answer_becomes_the_table_and_column_it_would_be_interned_into() {
        let stock: Stock = [("HK-2", 5), ("HK-1", -3), ("HK-10", 0)]
            .into_iter()
            .map(|(sku, q)| (sku.to_owned(), q))
            .collect();
        let mut interned = SkuTable::default();
        let mut column = Column::default();
        for (sku, quantity) in stock.iter() {
            let id = interned.intern(sku);
            column.set(id, quantity);
        }

        let Ok((table, first, held)) = stock.into_first() else {
            panic!("three names, none twice, make a table");
        };

        assert_eq!(first, column);
        assert_eq!(table.len(), interned.len());
        for id in 0..3 {
            assert_eq!(table.name(id), interned.name(id));
            assert_eq!(table.get(interned.name(id)), Some(id));
        }
        assert_eq!(table.duplicate(), None);
        assert!(held.is_empty());
    }

    #[test]
    fn an_answer_naming_a_sku_twice_comes_back_whole_to_be_interned() {
        let stock: Stock = [("A", 1), ("B", 2), ("A", 3)]
            .into_iter()
            .map(|(sku, q)| (sku.to_owned(), q))
            .collect();

        let back = stock.clone().into_first().err();

        assert_eq!(back, Some(stock));
    }
}
