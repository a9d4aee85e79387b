//! The daemon's side of the mapping in force ([`crate::mapper::Mapper`]): what it keeps in the
//! database and reads back at start ([`notes`]): the notes `status` shows, the parts a restart
//! needs, the file in force and the acknowledgements a new key voids.

pub mod notes;

#[cfg(test)]
mod tests;
