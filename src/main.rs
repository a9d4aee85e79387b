//! The `invsync` command line: parse, dispatch, exit with the contract's status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use invsync::commands::{self, Failure, OnceArgs};
use invsync::config::DEFAULT_PATH;

/// `invsync --version`: the version and the commit it was built from (see build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("INVSYNC_COMMIT"), ")");

/// Keeps marketplace stock figures true: syncs Hako and Endless Aisles stock to Hardtofind and Hako.
///
/// On a schedule invsync reads the stock of every source of truth, works out what every channel
/// should show (minus open orders and a safety margin), pushes only what changed, and records a
/// quantity as pushed only once the channel has acknowledged it. `invsync run` is the daemon;
/// `invsync demo` shows it at work against built-in simulators.
#[derive(Parser)]
#[command(name = "invsync", version = VERSION, about)]
struct Cli {
    /// The configuration file (before or after the command).
    #[arg(long, global = true, value_name = "PATH", env = "INVSYNC_CONFIG", default_value = DEFAULT_PATH)]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run as a daemon: sync cycles on the schedule until SIGTERM or SIGINT.
    Run,
    /// Run one sync cycle now; exit 0 when every target ended in sync, 1 otherwise.
    Once {
        /// Fetch and plan, print the planned changes on stdout, push and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Push every SKU, not only those that differ.
        #[arg(long)]
        full: bool,
        /// Push even when the mass-zero guard would hold a target.
        #[arg(long)]
        force: bool,
    },
    /// Validate the configuration, check the database's folder, and log in to every endpoint (changes nothing).
    Check {
        /// Skip the network: validate the configuration and the database's folder only.
        #[arg(long)]
        offline: bool,
    },
    /// Show each target's and source's state and the last cycles, from the database only.
    Status {
        /// As JSON, for scripts and monitoring.
        #[arg(long)]
        json: bool,
        /// Explain one SKU instead: each input's quantity, safety stock, cap, what each target
        /// should show and what it acknowledged.
        #[arg(long, value_name = "SKU")]
        sku: Option<String>,
        /// One line and a monitoring plugin's exit status: 0 in sync, 1 pending, 2 failing, held,
        /// stale or an order stuck, 3 unknown.
        #[arg(long)]
        check: bool,
    },
    /// The dropship relay's queue: Hardtofind orders placed at Endless Aisles (database only).
    Relay {
        #[command(subcommand)]
        action: RelayAction,
    },
    /// Serve many shops from one PostgreSQL database, with any number of workers on any number
    /// of machines: every shop file in `fleet.shops` is synced by exactly one worker at a time.
    ///
    /// `--config` names the fleet file (default /etc/invsync/fleet.toml): `[fleet]` with the
    /// database URL, the shops' folder, the lease's time to live and this worker's name.
    Fleet {
        #[command(subcommand)]
        action: Option<FleetAction>,
    },
    /// Run the daemon against built-in simulators, to see real cycles.
    ///
    /// It starts simulators of Hako, Endless Aisles and Hardtofind on loopback, writes a
    /// configuration for them into a folder that it keeps, prints it and the `status` command to
    /// try beside it, and runs the daemon on it until Ctrl-C, changing stock and now and then
    /// staging a fault.
    Demo {
        /// How the simulators answer where the services' documents are silent: `documented`,
        /// `production`, or `point=value,…` (see the README's "What invsync assumes").
        #[arg(long, value_name = "DIALECT", default_value = "documented",
              value_parser = parse_dialect)]
        dialect: invsync::sim::Dialect,
    },
    /// Serve the built-in simulators alone on loopback; print their URLs and credentials.
    ///
    /// Hako listens on the port base, Endless Aisles on the next port, Hardtofind on the one
    /// after, the catalogue (Shopsys) on the one after that. It prints a configuration that
    /// points at them (with the dropship relay's table commented out), to try invsync or its
    /// systemd unit against, and serves until Ctrl-C or SIGTERM.
    Sim {
        /// Hako listens on this port, Endless Aisles on the next, Hardtofind and the catalogue
        /// on the two after.
        #[arg(long, value_name = "PORT", default_value_t = invsync::demo::DEFAULT_PORT_BASE,
              value_parser = clap::value_parser!(u16).range(1..=65532))]
        port_base: u16,
        /// How many SKUs each source holds: warehouse SKUs at Hako (and products in the
        /// catalogue), dropship items at Endless Aisles; 1 to 10000000 (a million start in
        /// seconds), to rehearse a long first sync.
        #[arg(long, value_name = "N", default_value_t = invsync::demo::Skus::default(),
              value_parser = parse_skus)]
        skus: invsync::demo::Skus,
        /// Accept every request and never answer it, so that a daemon against them stalls (to
        /// see systemd's watchdog restart it).
        #[arg(long)]
        stall: bool,
        /// Change stock every few seconds, and now and then place a Hardtofind order: for a
        /// warehouse SKU, counted by the warehouse a little later and shipped later still (as
        /// the demo does, without its staged faults), or for a dropship item, which the relay
        /// places at Endless Aisles and Endless Aisles ships with tracking: reservations and
        /// the relay's approve flow can be rehearsed.
        #[arg(long)]
        changing: bool,
        /// How often `--changing` changes things (tests shorten it).
        #[arg(long, value_name = "DURATION", hide = true, requires = "changing",
              default_value = "4s", value_parser = parse_change_every)]
        change_every: std::time::Duration,
        /// How the simulators answer where the services' documents are silent: `documented`,
        /// `production`, or `point=value,…` (see the README's "What invsync assumes").
        #[arg(long, value_name = "DIALECT", default_value = "documented",
              value_parser = parse_dialect)]
        dialect: invsync::sim::Dialect,
    },
    /// Print the completion script for a shell on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout; packaging/build-deb writes it to target/man/invsync.1.
    #[command(hide = true)]
    Man,
}

#[derive(Subcommand)]
enum FleetAction {
    /// Which worker holds which shop, how long its lease has left, and each shop's health
    /// (its `status --check` line); exit 0 all held and in sync, 1 pending or not held,
    /// 2 failing, 3 unknown.
    Status {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum RelayAction {
    /// One line per order: id, state, supplier order, age, reason.
    List,
    /// Everything the relay knows of one Hardtofind order, the order as sent included.
    Show {
        /// The Hardtofind order id.
        order: String,
    },
    /// Approve an order (`mode = "approve"`, or one over `max_order_value`): it is placed at
    /// the next cycle. Works beside a running daemon.
    Approve {
        /// The Hardtofind order id.
        order: String,
    },
}

fn main() -> ExitCode {
    invsync::daemon::memory::tune_allocator();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let config_given = matches.value_source("config") == Some(ValueSource::CommandLine);
    if config_given && matches!(cli.command, Command::Demo { .. } | Command::Sim { .. }) {
        eprintln!(
            "invsync: --config: demo and sim make their own configuration (they print it); give no --config"
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say(&format!("invsync: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run => commands::run(&cli.config).await,
            Command::Once {
                dry_run,
                full,
                force,
            } => {
                commands::once(
                    &cli.config,
                    OnceArgs {
                        dry_run,
                        full,
                        force,
                    },
                )
                .await
            }
            Command::Check { offline } => commands::check(&cli.config, offline).await,
            Command::Status { json, sku, check } => {
                commands::status(&cli.config, commands::StatusArgs { json, sku, check }).await
            }
            Command::Relay { action } => {
                let command = match action {
                    RelayAction::List => commands::RelayCommand::List,
                    RelayAction::Show { order } => commands::RelayCommand::Show(order),
                    RelayAction::Approve { order } => commands::RelayCommand::Approve(order),
                };
                commands::relay(&cli.config, command).await
            }
            Command::Fleet { action } => {
                // The fleet's own file, unless one is named.
                let path = if config_given {
                    cli.config.clone()
                } else {
                    PathBuf::from(invsync::fleet::settings::DEFAULT_FLEET_PATH)
                };
                match action {
                    None => commands::fleet(&path).await,
                    Some(FleetAction::Status { json }) => commands::fleet_status(&path, json).await,
                }
            }
            Command::Demo { dialect } => invsync::demo::run(dialect).await,
            Command::Sim {
                port_base,
                skus,
                stall,
                changing,
                change_every,
                dialect,
            } => {
                let options = invsync::demo::SimOptions {
                    port_base,
                    stall,
                    changing,
                    change_every,
                    dialect,
                    skus,
                };
                invsync::demo::serve(options).await
            }
            Command::Completions { shell } => {
                invsync::manual::completions(shell, &Cli::command(), &mut std::io::stdout());
                Ok(ExitCode::SUCCESS)
            }
            Command::Man => invsync::manual::man_page(Cli::command(), &mut std::io::stdout())
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| Failure::Other(format!("cannot write the man page: {e}"))),
        }
    });
    match result {
        Ok(code) => code,
        Err(failure) => {
            commands::report_failure(&failure);
            ExitCode::from(failure.exit_code())
        }
    }
}

/// One line on stderr. Unlike `eprintln!`, a stderr nobody reads any more (EPIPE) is no panic:
/// the exit status still says how it ended.
fn say(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// `--skus`: a count clap can refuse with the range (exit 2).
fn parse_skus(text: &str) -> Result<invsync::demo::Skus, String> {
    text.parse()
}

/// `--change-every`: a positive duration such as `200ms` (a zero one would spin).
fn parse_change_every(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(every) if !every.is_zero() => Ok(every),
        Ok(_) => Err("must be longer than 0".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// `--dialect`: a name clap can refuse with the reason (exit 2).
fn parse_dialect(text: &str) -> Result<invsync::sim::Dialect, String> {
    text.parse()
}
