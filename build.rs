//! Records the commit invsync is built from, for `invsync --version` (`invsync 0.1.0 (abc1234)`).
//!
//! The commit comes from `$INVSYNC_COMMIT` when set (a build from a source tarball can say which
//! commit it is), else from `git rev-parse --short HEAD` in this checkout, else it is `unknown`.
//! A build never fails for want of git.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=INVSYNC_COMMIT");
    let commit = match std::env::var("INVSYNC_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => commit.trim().to_owned(),
        _ => from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=INVSYNC_COMMIT={commit}");
}

/// `git` in the crate's folder: its trimmed stdout, or `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let output = Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The short commit of this checkout, and the files to watch so that a new commit or another
/// branch rebuilds with the right one. Only a checkout whose root is this crate counts: a
/// source tarball unpacked inside some other repository must not claim that repository's commit.
fn from_git() -> Option<String> {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != manifest.canonicalize().ok()? {
        return None;
    }
    // HEAD names the branch (or, detached, the commit); the branch's ref file, or the packed
    // refs, name its commit. In a worktree these live in different folders: ask git for each.
    watch(&git(&["rev-parse", "--git-path", "HEAD"])?);
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        let reference = git(&["rev-parse", "--git-path", &branch])?;
        watch_or_parent(Path::new(&reference));
        watch(&git(&["rev-parse", "--git-path", "packed-refs"])?);
    }
    git(&["rev-parse", "--short", "HEAD"])
}

/// Reruns the build script when `path` changes. A path that does not exist is not watched:
/// cargo would take it as changed on every build.
fn watch(path: &str) {
    let path = absolute(Path::new(path));
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Watches a ref file, or, while the ref is only packed, the folder its loose file will appear in.
fn watch_or_parent(path: &Path) {
    let path = absolute(path);
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    } else if let Some(parent) = path.parent().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", parent.display());
    }
}

/// git answers `--git-path` relative to the folder it ran in, which is the crate's.
fn absolute(path: &Path) -> PathBuf {
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) if path.is_relative() => PathBuf::from(dir).join(path),
        _ => path.to_owned(),
    }
}
