//! The fields of a text log line as logfmt: `key=value`, a value quoted when it holds a space,
//! a quote, an `=` or nothing, so `grep`, `awk` and log shippers split a line the same way a
//! person reads it (`error="connection refused"`, not `error=connection refused`).
//!
//! Strings recorded as such keep tracing's own quoting (always quoted, escaped); the message
//! stays bare at the front of the line.

use std::fmt;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

/// The field formatter of the text formats (terminal and journal).
pub fn fields() -> impl for<'w> FormatFields<'w> + 'static {
    debug_fn(write_field as fn(&mut Writer<'_>, &Field, &dyn fmt::Debug) -> fmt::Result)
        .delimited(" ")
}

fn write_field(writer: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let text = format!("{value:?}");
    if field.name() == "message" {
        return writer.write_str(&text);
    }
    write!(writer, "{}=", field.name())?;
    write_value(writer, &text)
}

/// `text` as a logfmt value: bare when it can be, else quoted with `\` and `"` escaped.
fn write_value(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    let already_quoted = text.len() >= 2 && text.starts_with('"') && text.ends_with('"');
    let needs_quotes = text.is_empty()
        || text
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '=');
    if already_quoted || !needs_quotes {
        return out.write_str(text);
    }
    out.write_char('"')?;
    for c in text.chars() {
        match c {
            '"' | '\\' => write!(out, "\\{c}")?,
            '\n' => out.write_str("\\n")?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_values_with_spaces_are_quoted_and_plain_ones_are_not() {
        let mut out = String::new();
        for (text, expected) in [
            ("hardtofind", "hardtofind"),
            ("connection refused", "\"connection refused\""),
            ("", "\"\""),
            ("a=b", "\"a=b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("\"quoted already\"", "\"quoted already\""),
        ] {
            out.clear();
            write_value(&mut out, text).expect("writes");
            assert_eq!(out, expected, "{text:?}");
        }
    }

    #[test]
    fn a_log_line_quotes_a_displayed_value_with_spaces_and_keeps_numbers_bare() {
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(sink.clone()))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(fields())
            .finish();

        tracing::subscriber::with_default(subscriber, || {
            let error = "connection refused (os error 111)";
            tracing::warn!(endpoint = "target hardtofind", error = %error, wait_ms = 1925u64, "request failed; retrying");
        });

        let line = String::from_utf8(buffer.lock().expect("buffer").clone()).expect("utf-8");
        println!("{}", line.trim_end());
        assert_eq!(
            line.trim_end(),
            r#" WARN request failed; retrying endpoint="target hardtofind" error="connection refused (os error 111)" wait_ms=1925"#
        );
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
