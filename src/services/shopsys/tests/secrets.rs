//! The client secret, and the tokens it buys, stay out of everything an operator can read.

use std::io::Write;
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;

use super::*;

/// Log output kept in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MakeWriter<'_> for Captured {
    type Writer = Captured;
    fn make_writer(&self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn the_client_secret_never_appears_in_debug_errors_or_trace_logs() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    let sim = sim(3).await;
    let wrong_secret = "wrong-secret-9f8e7d6c";
    let wrong = target_with(&sim, wrong_secret, Flag::SellingDenied);
    let right = target(&sim);
    let meter = Meter::default();

    let refused = wrong
        .read_catalogue(&meter)
        .await
        .expect_err("a wrong secret is refused");
    right.read_catalogue(&meter).await.expect("read");
    sim.expire_all_tokens();
    right
        .set_flag(&meter, &uuid(1), true)
        .await
        .expect("patched after a renewal");

    assert!(matches!(refused, ConnectorError::Auth(_)), "{refused:?}");
    let tokens: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| r.header("authorization"))
        .map(|h| h.trim_start_matches("Bearer ").to_owned())
        .collect();
    assert!(!tokens.is_empty());
    let seen = [
        refused.to_string(),
        format!("{refused:?}"),
        format!("{wrong:?}"),
        format!("{right:?}"),
        logs.text(),
    ];
    assert!(
        logs.text().contains("token refused"),
        "the renewal is logged"
    );
    for text in &seen {
        for secret in [wrong_secret, sim.client_secret()] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        for token in &tokens {
            assert!(!text.contains(token.as_str()), "a token in {text}");
        }
    }
}
