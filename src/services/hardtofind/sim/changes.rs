//! The changes a test has the simulated store make while a client pages: an order updated,
//! moved to another state or placed between two `GET /orders`.

use super::orders::{OrderBook, OrderChange};

impl OrderBook {
    /// Touch `id` once `after` more `GET /orders` have been answered.
    pub(super) fn touch_after(&mut self, after: usize, id: &str) {
        self.change_after(after, OrderChange::Touch(id.to_owned()));
    }

    /// Makes `change` once `after` more `GET /orders` have been answered.
    pub(super) fn change_after(&mut self, after: usize, change: OrderChange) {
        self.later.push((after, change));
    }

    /// Forgets the changes waiting for more `GET /orders`.
    pub(super) fn cancel_later(&mut self) {
        self.later.clear();
    }

    /// Makes one change now.
    pub(super) fn apply(&mut self, change: OrderChange) {
        match change {
            OrderChange::Touch(id) => {
                self.update(&id, |_| ());
            }
            OrderChange::Lines(id, lines) => {
                self.update(&id, |o| o.lines = lines);
            }
            OrderChange::Status(id, status) => {
                self.change_state(&id, |o| o.status = status);
            }
            OrderChange::Place(order) => {
                self.place(*order);
            }
        }
    }

    /// Makes the changes that were waiting for the `GET /orders` just answered.
    pub(super) fn fire_changes(&mut self) {
        let mut due = Vec::new();
        let mut waiting = Vec::new();
        for (after, change) in std::mem::take(&mut self.later) {
            match after.saturating_sub(1) {
                0 => due.push(change),
                left => waiting.push((left, change)),
            }
        }
        self.later = waiting;
        for change in due {
            self.fired.push(self.answered);
            self.apply(change);
        }
    }
}
