//! The `invsync` command line: parse, dispatch, exit with the contract's status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use invsync::commands::{self, OnceArgs};
use invsync::config::DEFAULT_PATH;

/// Keeps marketplace stock figures true: syncs Hako and Endless Aisles stock to Hardtofind and Hako.
#[derive(Parser)]
#[command(name = "invsync", version, about)]
struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = "INVSYNC_CONFIG", default_value = DEFAULT_PATH)]
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
        /// One line and a monitoring plugin's exit status: 0 in sync, 1 pending, 2 failing, held
        /// or stale, 3 unknown.
        #[arg(long)]
        check: bool,
    },
    /// Run against built-in simulators of Hako, Endless Aisles and Hardtofind, to see real cycles.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("invsync: cannot start the async runtime: {e}");
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
            Command::Demo => invsync::demo::run().await,
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
