//! The clients of a configuration: every source, target and order feed of the file, each
//! built by its kind ([`crate::services::kinds`]) and sending through an endpoint of its own,
//! endpoints of one account sharing a rate limit.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Config;
use crate::http::limits::AccountKey;
use crate::http::metrics::Tally;
use crate::http::{Endpoint, HttpClient, Limiters};
use crate::services::Clients;
use crate::services::session::Logins;

/// Builds every client of `config`, endpoints of one account sharing a rate limit, and a
/// Hardtofind target and order feed of one account (and password) sharing one login (one
/// token). Every endpoint sends through its own label (`source NAME`, `target NAME`,
/// `orders NAME`), which the logs and the metrics name it by, and counts its requests and
/// retries in `tally` (the shop's metrics).
pub fn build_all(
    config: &Config,
    cancel: &CancellationToken,
    tally: &Arc<dyn Tally>,
) -> Result<Clients, reqwest::Error> {
    let client = HttpClient::new(
        config.daemon.request_timeout,
        config.daemon.max_response_bytes,
    )?;
    let source_accounts: Vec<AccountKey> = config
        .sources
        .iter()
        .map(|s| s.identity().budget_key())
        .collect();
    let target_accounts: Vec<AccountKey> = config
        .targets
        .iter()
        .map(|t| t.identity().budget_key())
        .collect();
    let mut limiters = Limiters::default();
    for (account, source) in source_accounts.iter().zip(&config.sources) {
        limiters.declare(account, source.remote.requests_per_minute);
    }
    for (account, target) in target_accounts.iter().zip(&config.targets) {
        limiters.declare(account, target.remote.requests_per_minute);
    }
    let feed_accounts: Vec<AccountKey> = config
        .feeds
        .iter()
        .map(|f| f.identity().budget_key())
        .collect();
    for (account, feed) in feed_accounts.iter().zip(&config.feeds) {
        limiters.declare(account, feed.remote.requests_per_minute);
    }
    let mut logins = Logins::default();
    let mut endpoint = |label: String, base_url: &str, account: &AccountKey| {
        let limiter: Arc<_> = limiters.get(account);
        Endpoint::new(
            label,
            base_url.to_owned(),
            client.clone(),
            limiter,
            config.daemon.retry,
            cancel.clone(),
        )
        .counted_by(tally.clone())
    };
    let sources = config
        .sources
        .iter()
        .zip(&source_accounts)
        .map(|(spec, account)| {
            let ep = endpoint(
                format!("source {}", spec.name),
                &spec.remote.base_url,
                account,
            );
            spec.kind.client(ep, account, &mut logins)
        })
        .collect();
    let targets = config
        .targets
        .iter()
        .zip(&target_accounts)
        .map(|(spec, account)| {
            let ep = endpoint(
                format!("target {}", spec.name),
                &spec.remote.base_url,
                account,
            );
            spec.kind.client(ep, account, &mut logins)
        })
        .collect();
    let feeds = config
        .feeds
        .iter()
        .zip(&feed_accounts)
        .map(|(spec, account)| {
            let ep = endpoint(
                format!("orders {}", spec.name),
                &spec.remote.base_url,
                account,
            );
            spec.kind.client(ep, account, &mut logins)
        })
        .collect();
    Ok(Clients {
        sources,
        targets,
        feeds,
    })
}
