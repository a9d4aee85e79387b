//! What the examples that run the release binary share.

use std::path::PathBuf;

/// The release binary: `INVSYNC_BIN` when set, else `invsync` in the release folder of the
/// target directory cargo builds into (`CARGO_TARGET_DIR` honoured, as cargo does: relative to
/// the working directory).
pub fn release_binary() -> PathBuf {
    if let Some(binary) = std::env::var_os("INVSYNC_BIN") {
        return PathBuf::from(binary);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("release").join("invsync")
}
