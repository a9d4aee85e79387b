//! Logging: one line per event on stderr, as text for people or JSON for machines, filtered by
//! `RUST_LOG` when set and by `daemon.log_level` otherwise.
//!
//! Under systemd, stderr is a stream to the journal. There the text lines carry no timestamp
//! (the journal stamps every line itself) and no colours, and start with their syslog priority
//! (`<3>` for ERROR, `<4>` WARN, `<6>` INFO, `<7>` DEBUG and TRACE), which journald strips and
//! files the line under: `journalctl -p err -u invsync` then shows exactly the errors. JSON
//! lines stay plain JSON, one object per line.
//!
//! Logging never stops the work: a stderr that nobody reads any more (the pipe's reader gone,
//! EPIPE; a full disk under a redirect) loses the lines, and syncing goes on ([`QuietStderr`]).

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::{self, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Installs the global subscriber. Call once, early; later calls are ignored.
pub fn init(format: LogFormat, level: &str) {
    let filter = super::log_filter::filter(level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(QuietStderr)
        // Its own report of a failed write goes through `eprint!`, which panics on EPIPE.
        .log_internal_errors(false)
        // Colours only for a person at a terminal, never in the journal or a file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .fmt_fields(super::logfmt::fields());
    // Each format keeps a handle to its filter, so a reload (SIGHUP) can change the level.
    let _ = match format {
        LogFormat::Text if stderr_is_journal() => {
            let builder = builder
                .with_ansi(false)
                .event_format(Journald::new())
                .with_filter_reloading();
            super::log_filter::keep_reload(builder.reload_handle());
            builder.try_init()
        }
        LogFormat::Text => {
            let builder = builder.with_filter_reloading();
            super::log_filter::keep_reload(builder.reload_handle());
            builder.try_init()
        }
        LogFormat::Json => {
            let builder = builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_filter_reloading();
            super::log_filter::keep_reload(builder.reload_handle());
            builder.try_init()
        }
    };
}

/// Stderr for log lines, whose write errors are swallowed: a log line that cannot be written is
/// lost, but a daemon killed by its logging (the default writer's failure report panics when
/// stderr is a closed pipe) loses the sync itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietStderr;

impl std::io::Write for QuietStderr {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // Reported as written either way: a writer that says 0 makes `write_all` fail.
        let _ = std::io::stderr().write_all(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietStderr {
    type Writer = QuietStderr;

    fn make_writer(&'a self) -> QuietStderr {
        QuietStderr
    }
}

/// The text format for the journal: `<6>INFO cycle{cycle_id=42}: cycle finished …`, the
/// default text line without its time, led by the syslog priority of its level.
#[derive(Debug)]
pub struct Journald {
    /// The default text format, minus what the prefix and the journal already say.
    text: Format<Full, ()>,
}

impl Journald {
    /// The journald line format.
    pub fn new() -> Journald {
        Journald {
            text: format::format()
                .without_time()
                .with_level(false)
                .with_target(false)
                .with_ansi(false),
        }
    }
}

impl Default for Journald {
    fn default() -> Self {
        Journald::new()
    }
}

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        // The level word stays (unpadded) for whoever reads `journalctl -o cat` or greps.
        let level = *event.metadata().level();
        write!(writer, "{}{} ", priority(level), level)?;
        self.text.format_event(ctx, writer, event)
    }
}

/// The syslog priority prefix journald reads (`sd-daemon(3)`).
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "<3>",
        Level::WARN => "<4>",
        Level::INFO => "<6>",
        Level::DEBUG | Level::TRACE => "<7>",
    }
}

/// Whether stderr is connected to the journal. systemd sets `JOURNAL_STREAM` to the device and
/// inode of that stream; it is checked against stderr itself, as `systemd.exec(5)` advises,
/// because a child of the service whose stderr went to a file or a pipe inherits the variable.
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata());
    match (value.to_str(), stderr) {
        (Some(value), Ok(meta)) => names_stream(value, meta.dev(), meta.ino()),
        _ => false,
    }
}

/// Whether a `JOURNAL_STREAM` value (`DEVICE:INODE`, both decimal) names this device and inode.
fn names_stream(value: &str, device: u64, inode: u64) -> bool {
    let Some((dev, ino)) = value.trim().split_once(':') else {
        return false;
    };
    dev.parse() == Ok(device) && ino.parse() == Ok(inode)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer that keeps what the subscriber wrote.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn journal_lines_start_with_their_syslog_priority_and_carry_no_timestamp() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(Journald::new())
            .finish();

        tracing::subscriber::with_default(subscriber, || {
            let cycle = tracing::info_span!("cycle", cycle_id = 42);
            let _entered = cycle.enter();
            tracing::error!(target = "hardtofind", error = "HTTP 503", "could not push");
            tracing::info!(pushed = 3, "cycle finished");
        });

        let text = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                r#"<3>ERROR cycle{cycle_id=42}: could not push target="hardtofind" error="HTTP 503""#,
                "<6>INFO cycle{cycle_id=42}: cycle finished pushed=3",
            ]
        );
    }

    #[test]
    fn warnings_and_debug_lines_get_their_own_priorities() {
        assert_eq!(priority(Level::WARN), "<4>");
        assert_eq!(priority(Level::DEBUG), "<7>");
        assert_eq!(priority(Level::TRACE), "<7>");
    }

    #[test]
    fn journal_stream_must_name_stderrs_own_device_and_inode() {
        assert!(names_stream("2049:131", 2049, 131));
        assert!(!names_stream("2049:132", 2049, 131));
        assert!(!names_stream("1:1", 2049, 131));
        assert!(!names_stream("", 2049, 131));
        assert!(!names_stream("garbage", 2049, 131));
    }
}
