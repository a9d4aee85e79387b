//! The relay's two ends as a configuration wires them: the `[relay] from` order feed (a
//! Hardtofind one) and the `to` source (an Endless Aisles one), and the SKU mapping between
//! them. The daemon hands over its clients; which services they are is the relay's business.

use std::sync::Arc;

use super::config::RelaySpec;
use super::ready::{Memory, ReadAs};
use super::step::{Clients, RelayDone};
use crate::config::SourceKind;
use crate::mapper::Mapper;
use crate::services::{Feed, Source};
use crate::store::{Store, StoreError};

/// The relay's ends, as the engine holds them.
pub struct Ends<'a> {
    /// The `from` feed's name.
    pub feed_name: &'a str,
    /// The `from` feed's client.
    pub feed: &'a Feed,
    /// The `to` source's name.
    pub source_name: &'a str,
    /// The `to` source's client.
    pub source: &'a Source,
    /// The `to` source's settings.
    pub source_kind: &'a SourceKind,
}

/// Runs the relay's step (see [`super::step::step`]) between `ends`: `Ok(None)` when the `to`
/// source is not an Endless Aisles one. A line's SKU is the feed's name for it: canonical
/// through `mapper` when the configuration has a mapping (`mapped`), then the `to` source's key
/// (its option id); without one, the source's `sku_prefix` and the option id.
pub async fn step_between(
    spec: &RelaySpec,
    ends: Ends<'_>,
    mapper: &Mapper,
    mapped: bool,
    store: &Store,
    memory: &mut Memory,
    full_sync: bool,
) -> Result<Option<RelayDone>, StoreError> {
    let Feed::Hardtofind(client) = ends.feed;
    let (Source::EndlessAisles(ea), SourceKind::EndlessAisles(settings)) =
        (ends.source, ends.source_kind)
    else {
        return Ok(None);
    };
    // The version first: a mapping rebuilt in between is then read again at the next cycle.
    let ask = ReadAs {
        full_sync,
        mapping: mapper.version(),
    };
    let mapping = if mapped {
        mapper.mapping().await?
    } else {
        Arc::default()
    };
    let (feed_name, source_name) = (ends.feed_name.to_owned(), ends.source_name.to_owned());
    let prefix = settings.sku_prefix.clone();
    let supplier_key = move |line: &str| -> Option<u64> {
        if !mapped {
            return super::decide::supplier_key(line, &prefix);
        }
        let canonical = mapping.canonical(&feed_name, line).unwrap_or(line);
        mapping.key_at(&source_name, canonical)?.0.parse().ok()
    };
    let clients = Clients {
        feed_name: ends.feed_name,
        feed: client,
        orders: ea.orders(),
        products: ea.products(),
        supplier_key: &supplier_key,
    };
    let done = super::step::step(spec, clients, store, memory, ask).await?;
    Ok(Some(done))
}
