//! The simulated inventory: warehouses, their entries, and the answers that list them.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::Deserialize;

use crate::harness::server::{SimResponse, push_json_str};

use super::RATE_WINDOW;

#[derive(Default, Deserialize)]
pub(super) struct Filter {
    #[serde(rename = "warehouseID")]
    pub(super) warehouse: Option<String>,
    pub(super) sku: Option<String>,
}

/// One element of a `POST` (`quantity`) or `PUT` (`updates.quantity`) body.
#[derive(Deserialize)]
pub(super) struct Write {
    pub(super) sku: String,
    #[serde(rename = "warehouseID")]
    pub(super) warehouse: String,
    pub(super) quantity: Option<u64>,
    pub(super) updates: Option<Updates>,
}

#[derive(Deserialize)]
pub(super) struct Updates {
    pub(super) quantity: u64,
}

impl Write {
    /// The quantity to set: `quantity` for a POST, `updates.quantity` for a PUT.
    pub(super) fn quantity(&self, create: bool) -> Option<i64> {
        let quantity = match create {
            true => self.quantity,
            false => self.updates.as_ref().map(|u| u.quantity),
        };
        quantity.and_then(|q| i64::try_from(q).ok())
    }
}

/// An RFC 3339 timestamp, rendered once and shared by everything written
/// at the same time.
type Stamp = Arc<str>;

pub(super) fn stamp() -> Stamp {
    humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .into()
}

pub(super) struct Entry {
    pub(super) id: u64,
    pub(super) quantity: i64,
    pub(super) created: Stamp,
    pub(super) updated: Stamp,
}

pub(super) struct Warehouse {
    pub(super) id: u64,
    pub(super) warehouse_id: String,
    pub(super) created: Stamp,
    pub(super) stock: HashMap<String, Entry>,
}

#[derive(Default)]
pub(super) struct Inner {
    /// Few warehouses, so a list searched linearly.
    pub(super) warehouses: Vec<Warehouse>,
    pub(super) next_id: u64,
    pub(super) window: VecDeque<Instant>,
    pub(super) rate_limited: u64,
    pub(super) writes: usize,
    /// SKUs whose writes are answered 2xx but neither applied nor listed in the answer.
    pub(super) skipped: HashSet<String>,
    /// SKUs whose writes are refused (400), as a service that will not take one SKU.
    pub(super) refused: HashSet<String>,
}

impl Inner {
    pub(super) fn warehouse(&self, id: &str) -> Option<&Warehouse> {
        self.warehouses.iter().find(|w| w.warehouse_id == id)
    }

    /// Index of a warehouse, creating it if needed.
    pub(super) fn add_warehouse(&mut self, id: &str) -> usize {
        if let Some(index) = self.warehouses.iter().position(|w| w.warehouse_id == id) {
            return index;
        }
        self.next_id += 1;
        self.warehouses.push(Warehouse {
            id: self.next_id,
            warehouse_id: id.to_string(),
            created: stamp(),
            stock: HashMap::new(),
        });
        self.warehouses.len() - 1
    }

    pub(super) fn set(
        &mut self,
        warehouse: &str,
        sku: String,
        quantity: i64,
        now: &Stamp,
    ) -> &Entry {
        let index = self.add_warehouse(warehouse);
        let next_id = &mut self.next_id;
        match self.warehouses[index].stock.entry(sku) {
            Slot::Occupied(slot) => {
                let entry = slot.into_mut();
                entry.quantity = quantity;
                entry.updated = now.clone();
                entry
            }
            Slot::Vacant(slot) => {
                *next_id += 1;
                let (created, updated) = (now.clone(), now.clone());
                slot.insert(Entry {
                    id: *next_id,
                    quantity,
                    created,
                    updated,
                })
            }
        }
    }

    /// Count the request against the window unless the budget is spent
    /// (then count a rate-limited answer instead).
    pub(super) fn admit(&mut self, limit: u32, now: Instant) -> bool {
        while let Some(&first) = self.window.front() {
            if now.duration_since(first) < RATE_WINDOW {
                break;
            }
            self.window.pop_front();
        }
        if self.window.len() >= limit as usize {
            self.rate_limited += 1;
            return false;
        }
        self.window.push_back(now);
        true
    }
}

/// Append one inventory object to a JSON array being written into `out`.
pub(super) fn push_entry(out: &mut Vec<u8>, sku: &str, warehouse: &str, entry: &Entry) {
    out.push(if out.is_empty() { b'[' } else { b',' });
    let _ = write!(out, "{{\"id\":{},\"sku\":", entry.id);
    push_json_str(out, sku);
    out.extend_from_slice(b",\"warehouseID\":");
    push_json_str(out, warehouse);
    let (quantity, created, updated) = (entry.quantity, &entry.created, &entry.updated);
    let _ = write!(out, ",\"quantity\":{quantity},\"createdAt\":\"{created}\"");
    let _ = write!(out, ",\"updatedAt\":\"{updated}\"}}");
}

/// Close the array [`push_entry`] wrote into `out`.
pub(super) fn finish(mut out: Vec<u8>) -> SimResponse {
    if out.is_empty() {
        out.push(b'[');
    }
    out.push(b']');
    SimResponse::raw(200, out)
}
