//! Connecting to a PostgreSQL database (the store's, and the fleet's leases): a pool of
//! connections (deadpool), TLS by rustls with the system's certificates (`sslmode` as in the
//! URL: `prefer` by default; a Unix socket never uses TLS).

use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};

/// What went wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL could not be read; the URL itself is not repeated (it may hold a password).
    #[error("daemon.database: not a PostgreSQL URL: {0}")]
    Url(String),
    /// TLS could not be set up.
    #[error("TLS for PostgreSQL: {0}")]
    Tls(String),
    /// No connection could be had from the pool.
    #[error("PostgreSQL: no connection: {0}")]
    Pool(String),
    /// A statement failed: PostgreSQL's own words (and detail), on one line.
    #[error("PostgreSQL: {}", crate::store::pg_one_line(.0))]
    Sql(#[from] tokio_postgres::Error),
}

impl From<deadpool_postgres::PoolError> for DbError {
    fn from(e: deadpool_postgres::PoolError) -> DbError {
        DbError::Pool(e.to_string())
    }
}

/// A pool of at most `size` connections to the database `url` names.
pub fn pool(url: &str, size: usize) -> Result<Pool, DbError> {
    // tokio-postgres's own message names what is wrong, not the URL's secrets.
    let config = tokio_postgres::Config::from_str(url).map_err(|e| DbError::Url(e.to_string()))?;
    let manager = Manager::from_config(
        config,
        tls()?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| DbError::Pool(e.to_string()))
}

/// rustls with the system's verifier and the crypto provider the HTTP client uses.
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect, DbError> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(e.to_string()))?
        .with_platform_verifier()
        .map_err(|e| DbError::Tls(e.to_string()))?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
