//! The commands as the command line runs them: load the configuration, start logging, open the
//! database, do the one thing, and say how it ended with the contract's exit status.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;

use crate::config::{Config, ConfigError, ConfigErrors};
use crate::daemon::cycle::{CycleOptions, Engine, EngineError};
use crate::daemon::{self, DaemonError};
use crate::daemon::{clock, shutdown};
use crate::http::Meter;
use crate::ops::notify::Notifier;
use crate::ops::report::PlanLine;
use crate::ops::{log_filter, metrics, telemetry};
use crate::store::{Store, StoreError, Trouble};

/// `print!` for data on stdout, minus its panic when the reader has gone (`invsync status |
/// head -1`): what could not be written is simply not read.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `println!` for data on stdout, without its panic (see `out!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod database;
mod fleet;
mod relay;
mod status;

use database::{Reach, engine_failure, lock_database, open_store, store_failure};

pub use fleet::{fleet, fleet_status};
pub use relay::{RelayCommand, relay};
pub use status::{StatusArgs, status};

/// Why a command could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The configuration is wrong (exit 2): every error of the file, one per line.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// The database is corrupt or inconsistent: the message says how to rebuild it (exit 1).
    #[error("{0}")]
    Inconsistent(String),
    /// The engine could not start or the database failed mid-way (exit 1).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The database failed mid-way (exit 1).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The command line or its environment is wrong, e.g. a `RUST_LOG` that is no filter (exit 2).
    #[error("{0}")]
    Usage(String),
    /// A local condition that may pass: restarting later may help (exit 75).
    #[error("{0}")]
    Temporary(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Other(String),
}

/// The exit status of a temporary local condition (`EX_TEMPFAIL` of `sysexits.h`).
pub const EXIT_TEMPORARY: u8 = 75;

impl Failure {
    /// The exit status: 2 only for a wrong configuration or command line (restarting cannot
    /// help, and the unit does not), 75 for a passing local condition, 1 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Config(_) | Failure::Usage(_) => 2,
            Failure::Temporary(_) => EXIT_TEMPORARY,
            Failure::Store(e) | Failure::Engine(EngineError::Store(e))
                if e.trouble() == Trouble::Temporary =>
            {
                EXIT_TEMPORARY
            }
            _ => 1,
        }
    }
}

/// Flags of `once`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnceArgs {
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--full`.
    pub full: bool,
    /// `--force`.
    pub force: bool,
}

/// Set once logging is up: from then on a failure is logged, not printed.
static LOGGING: AtomicBool = AtomicBool::new(false);

/// Loads the configuration and starts logging as it says (warnings are for the caller to log,
/// after its own first line).
fn start(path: &Path) -> Result<Config, Failure> {
    let config = Config::load(path)?;
    log_filter::check_env().map_err(Failure::Usage)?;
    telemetry::init(config.daemon.log_format, &config.daemon.log_level);
    LOGGING.store(true, Ordering::SeqCst);
    Ok(config)
}

/// The configuration's warnings, one WARN each.
fn log_warnings(config: &Config) {
    for warning in &config.warnings {
        tracing::warn!(config = %config.path.display(), "{warning}");
    }
}

/// Says on stderr why a command failed: one line per problem (every error of a configuration
/// file at once). Once logging is up, or when stderr is the journal (a service that fails to
/// start), each is an ERROR log line, so `journalctl -p err` shows it; otherwise a plain line
/// led by `invsync: `, for the person at the terminal.
pub fn report_failure(failure: &Failure) {
    let logged = LOGGING.load(Ordering::SeqCst) || telemetry::stderr_is_journal();
    if logged {
        // Ignored when logging is up already; else the defaults, to say why it could not start.
        telemetry::init(crate::config::LogFormat::Text, "info");
    }
    for line in failure.to_string().lines() {
        if logged {
            tracing::error!(exit_status = failure.exit_code(), "{line}");
        } else {
            // Not `eprintln!`: a stderr nobody reads any more (EPIPE) is no panic.
            let _ = writeln!(std::io::stderr(), "invsync: {line}");
        }
    }
}

/// The mapping file of `config`, checked unless the database (`store`, else the one configured,
/// read-only and only if it exists) vouches for it: before the database is opened for writing,
/// so a mistake in it stops a start (exit 2) the way any configuration mistake does.
async fn prepare_mapping(
    config: &Arc<Config>,
    reach: &Reach,
    store: Option<&Store>,
) -> Result<crate::mapper::file::Prepared, Failure> {
    let opened;
    let store = match store {
        Some(store) => Some(store),
        None => {
            // A database that cannot be read as it is (none yet, an older schema, damaged)
            // vouches for nothing: the file is read, and the open that follows says the rest.
            opened = reach.read_only().await.ok().flatten();
            opened.as_ref()
        }
    };
    let prepared = match crate::mapper::file::prepare_with(config.clone(), store).await {
        Ok(prepared) => prepared,
        Err(_) => crate::mapper::file::prepare_with(config.clone(), None).await?,
    };
    Ok(prepared?)
}

/// `invsync run`.
pub async fn run(path: &Path) -> Result<ExitCode, Failure> {
    let config = Arc::new(start(path)?);
    // The first line: what runs, from which file, on which database, and when it starts work.
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        config = %config.path.display(),
        database = %config.daemon.database,
        schedule = %clock::describe(&config.daemon.trigger),
        first_cycle = %clock::first_start(&config.daemon.trigger),
        "invsync starting"
    );
    log_warnings(&config);
    // Signals are handled from the start: a stop during start-up is a clean stop too, and a
    // SIGHUP a reload once the daemon runs.
    let cancel = CancellationToken::new();
    shutdown::watch_signals(cancel.clone());
    let reloads = shutdown::reload_requests();
    let reach = Reach::of(&config.daemon.database)?;
    let lock = lock_database(&config, &reach).await?;
    let prepared = prepare_mapping(&config, &reach, None).await?;
    let store = open_store(&config, &reach, &lock).await?;
    let database = config.daemon.database.clone();
    let engine = Engine::with_mapping(config.clone(), prepared, store.clone(), &cancel, false)
        .await
        .map_err(|e| engine_failure(&config.daemon.database, e))?;
    if let Some(addr) = config.daemon.metrics_listen {
        serve_metrics(&config.path, "daemon.metrics_listen", addr, &cancel).await?;
        daemon::refresh_metrics(&store, engine.metrics());
    }
    // Ready only now: the configuration is valid and the database open and migrated.
    let mut notifier = Notifier::from_env();
    notifier.ready();
    notifier.stopping_on(&cancel);
    let running = daemon::Daemon {
        engine,
        config,
        store,
        cancel: cancel.clone(),
        reloads,
    };
    daemon::run(running, &notifier)
        .await
        .map_err(|DaemonError::Moved(e)| store_failure(&database, e))?;
    Ok(ExitCode::SUCCESS)
}

/// Starts the `/metrics` listener; an address in use is temporary (75), any other failure a
/// configuration error naming the key (`key` of `file`).
async fn serve_metrics(
    file: &Path,
    key: &str,
    addr: std::net::SocketAddr,
    cancel: &CancellationToken,
) -> Result<(), Failure> {
    match metrics::serve(addr, cancel.clone()).await {
        Ok(bound) => {
            tracing::info!(addr = %bound, "metrics served at GET /metrics");
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(Failure::Temporary(format!("{key}: {addr} is in use: {e}")))
        }
        Err(e) => Err(Failure::Config(
            ConfigError {
                file: file.to_path_buf(),
                key: key.to_owned(),
                message: format!("cannot listen on {addr}: {e}"),
            }
            .into(),
        )),
    }
}

/// `invsync once`.
pub async fn once(path: &Path, args: OnceArgs) -> Result<ExitCode, Failure> {
    let config = Arc::new(start(path)?);
    log_warnings(&config);
    let cancel = CancellationToken::new();
    shutdown::watch_signals(cancel.clone());
    // A dry run changes nothing, so it takes no lock and runs beside a daemon: it reads the
    // database read-only (or plans from nothing when there is none yet).
    let reach = Reach::of(&config.daemon.database)?;
    let (_lock, store, prepared) = if args.dry_run {
        let store = match reach.read_only().await {
            Ok(Some(store)) => store,
            Ok(None) => Store::in_memory().await?,
            Err(e) if e.trouble() == Trouble::Unusable => {
                return Err(database::database_error(&config, e));
            }
            Err(e) => return Err(store_failure(&config.daemon.database, e)),
        };
        let prepared = prepare_mapping(&config, &reach, Some(&store)).await?;
        (None, store, prepared)
    } else {
        let lock = lock_database(&config, &reach).await?;
        let prepared = prepare_mapping(&config, &reach, None).await?;
        let store = open_store(&config, &reach, &lock).await?;
        (Some(lock), store, prepared)
    };
    let database = config.daemon.database.clone();
    let engine = Engine::with_mapping(config, prepared, store, &cancel, args.dry_run)
        .await
        .map_err(|e| engine_failure(&database, e))?;
    let options = CycleOptions {
        dry_run: args.dry_run,
        full: args.full,
        force: args.force,
    };
    let Some(report) =
        shutdown::finish_within_grace(engine.run_cycle(options, engine.turn().await), &cancel)
            .await
    else {
        return Ok(ExitCode::FAILURE);
    };
    let report = report.map_err(|e| store_failure(&database, e))?;
    if args.dry_run {
        print_plan(&report.plan)
            .map_err(|e| Failure::Other(format!("cannot write the plan: {e}")))?;
    }
    Ok(if report.all_in_sync() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The dry-run plan on stdout: a header, then one tab-separated line per target and SKU (see
/// [`PlanLine::HEADER`]).
fn print_plan(plan: &[PlanLine]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(out, "{}", PlanLine::HEADER)?;
    // By target, then SKU: two runs of one plan print the same lines in the same order, so
    // they can be compared (`diff`), whatever order the planning found them in.
    let mut sorted: Vec<&PlanLine> = plan.iter().collect();
    sorted.sort_by(|a, b| (&a.target, &a.sku).cmp(&(&b.target, &b.sku)));
    for line in sorted {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// `invsync check [--offline]`: `offline` skips the network, for a machine that cannot reach the
/// services yet.
///
/// Every endpoint is checked at once and tried once: `check` answers whether it works now, so
/// four unreachable endpoints take one connection timeout, not four retry policies in a row.
pub async fn check(path: &Path, offline: bool) -> Result<ExitCode, Failure> {
    let mut config = start(path)?;
    log_warnings(&config);
    config.daemon.retry.max_attempts = 1;
    // `check` reads and checks the mapping file whatever a database says of it.
    if let Some(file) = config.mapping.as_ref().and_then(|m| m.file.as_deref()) {
        let names = crate::config::mapping::endpoint_names(&config);
        crate::config::mapping::read_file(&config.path, file, &names)?;
    }
    outln!("ok    configuration {}", config.path.display());
    let reach = Reach::of(&config.daemon.database)?;
    let mut all_ok = database::check_line(&config, &reach).await?;
    if offline {
        outln!("skip  endpoints: --offline");
    } else {
        all_ok &= check_endpoints(&config).await?;
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Logs in to every source, target and order feed at once; prints one line each, in the file's
/// order. A feed on a target's account with the same password shares its login (its token);
/// with another password it logs in with its own, so a wrong one fails its own line.
async fn check_endpoints(config: &Config) -> Result<bool, Failure> {
    // A check's requests are no cycle's: they count in no metrics.
    let uncounted: Arc<dyn crate::http::metrics::Tally> = Arc::new(crate::http::metrics::Uncounted);
    let clients = crate::config::build_all(config, &CancellationToken::new(), &uncounted)
        .map_err(|e| Failure::Other(format!("HTTP client: {e}")))?;
    let meter = &Meter::default();
    let source_checks = config
        .sources
        .iter()
        .zip(&clients.sources)
        .map(|(spec, c)| {
            let what = format!("source {} ({})", spec.name, spec.kind_name());
            async move { (what, c.check(meter).await) }
        });
    let target_checks = config
        .targets
        .iter()
        .zip(&clients.targets)
        .map(|(spec, c)| {
            let what = format!("target {} ({})", spec.name, spec.kind_name());
            async move { (what, c.check(meter).await) }
        });
    let feed_checks = config.feeds.iter().zip(&clients.feeds).map(|(spec, c)| {
        let what = format!("order feed {} (hardtofind)", spec.name);
        async move { (what, c.check(meter).await) }
    });
    let (sources, targets, feeds) = futures_util::future::join3(
        futures_util::future::join_all(source_checks),
        futures_util::future::join_all(target_checks),
        futures_util::future::join_all(feed_checks),
    )
    .await;
    let mut all_ok = true;
    for (what, result) in sources.into_iter().chain(targets).chain(feeds) {
        match result {
            Ok(detail) => outln!("ok    {what}: {detail}"),
            Err(e) => {
                all_ok = false;
                outln!("FAIL  {what}: {e}");
            }
        }
    }
    Ok(all_ok)
}

fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::Other(e.to_string()))?;
    outln!("{text}");
    Ok(())
}
