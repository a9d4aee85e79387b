//! One record of the stock answer taken into a [`Stock`]: the rules both readers of the answer
//! (serde_json's in [`super::stock`], the scanner in `plain_stock`) follow.

use crate::services::{RecordQuantity, Stock, non_negative, usable_sku, warn_held};

/// Takes the record whose name (`prefix` + id) is pending in `stock`, with its quantity: an
/// empty id or one with control characters is dropped and counted, a negative quantity counts
/// as 0 with a WARN, one that is not a whole number holds the SKU with a WARN naming it.
pub(super) fn take_record(stock: &mut Stock, prefix: &str, label: &str, quantity: RecordQuantity) {
    let name = stock.pending_name();
    // The id is what follows the prefix: an empty id names nothing, prefix or not.
    if name.len() == prefix.len() || !usable_sku(name) {
        stock.discard_pending();
        stock.count_dropped();
        return;
    }
    match quantity {
        RecordQuantity::Whole(quantity) => {
            let quantity = non_negative(label, name, quantity);
            stock.seal(quantity);
        }
        RecordQuantity::Unusable(written) => {
            let sku = name.to_owned();
            stock.discard_pending();
            stock.hold(&sku);
            warn_held(label, &sku, &written, stock.held().len());
        }
    }
}
