//! What the command line says about itself outside `--help`: shell completions
//! (`invsync completions SHELL`) and the man page `invsync.1` (the hidden `invsync man`, which
//! packaging runs; the page is generated, never committed).
//!
//! Both are made from the same `clap::Command` as the parser, so they cannot drift from it. The
//! man page is one page, as an operator expects of `man invsync`: every command with its options,
//! then what `--help` cannot say at length (exit statuses, environment, files, signals).

use std::io::Write;

use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// Writes the completion script of `shell` for `command` to `out`.
pub fn completions(shell: clap_complete::Shell, command: &clap::Command, out: &mut dyn Write) {
    let name = command.get_name().to_owned();
    clap_complete::generate(shell, &mut without_hidden(command), name, out);
}

/// `command` without its hidden subcommands, which the completion generators would offer.
fn without_hidden(command: &clap::Command) -> clap::Command {
    let mut visible = clap::Command::new(command.get_name().to_owned())
        .args(command.get_arguments().cloned())
        .subcommands(
            command
                .get_subcommands()
                .filter(|s| !s.is_hide_set())
                .cloned(),
        );
    if let Some(version) = command.get_version() {
        visible = visible.version(version.to_owned());
    }
    if let Some(about) = command.get_about() {
        visible = visible.about(about.clone());
    }
    visible
}

/// Writes the man page of `command` (roff, section 1) to `out`.
pub fn man_page(command: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let mut page = Vec::new();
    render_page(command, &mut page)?;
    // Every piece rendered starts with the same two-line preamble (how to typeset an
    // apostrophe): once, at the top, is enough.
    let page = String::from_utf8_lossy(&page);
    let mut preamble_seen = [false, false];
    for line in page.lines() {
        let slot = match line {
            l if l.starts_with(".ie \\n(.g .ds Aq ") => Some(0),
            l if l.starts_with(".el .ds Aq ") => Some(1),
            _ => None,
        };
        if let Some(slot) = slot
            && std::mem::replace(&mut preamble_seen[slot], true)
        {
            continue;
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn render_page(mut command: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    // Building gives each subcommand its full name (`invsync once`) for its synopsis.
    command.build();
    let man = Man::new(command.clone()).manual("invsync manual");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    Roff::new().control("SH", ["COMMANDS"]).to_writer(out)?;
    let documented = |s: &&clap::Command| !s.is_hide_set() && s.get_name() != "help";
    for sub in command.get_subcommands().filter(documented) {
        command_section(sub, out)?;
        // `relay list`, `relay show`, `relay approve`: each its own subsection.
        for nested in sub.get_subcommands().filter(documented) {
            command_section(nested, out)?;
        }
    }
    operator_sections().to_writer(out)?;
    man.render_version_section(out)
}

/// One command as a subsection: its synopsis, what it does, its options.
fn command_section(sub: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
    Roff::new().control("SS", [name]).to_writer(out)?;
    let man = Man::new(sub.clone());
    let mut body = Vec::new();
    man.render_synopsis_section(&mut body)?;
    man.render_description_section(&mut body)?;
    if sub.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut body)?;
    }
    // The sections' own headings would end the COMMANDS section: a paragraph break stands in.
    let body = String::from_utf8_lossy(&body);
    for line in body.lines() {
        let line = if line.starts_with(".SH ") {
            ".PP"
        } else {
            line
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A `.TP` list: each term in bold, then its explanation.
fn list(roff: &mut Roff, items: &[(&str, &str)]) {
    for (term, text) in items {
        roff.control("TP", [])
            .text([bold(*term)])
            .text([roman(*text)]);
    }
}

/// Exit statuses, environment, files, signals: the contract an operator scripts against.
fn operator_sections() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    list(
        &mut roff,
        &[
            ("0", "Success."),
            (
                "1",
                "The work ran but did not succeed: a remote failed, a target is out of sync, the database is inconsistent.",
            ),
            (
                "2",
                "The configuration or the command line is wrong; restarting will not help (the systemd units do not restart on 2).",
            ),
            (
                "75",
                "A temporary local condition (the database is locked by another invsync, the disk is full, the database file or its lock file was removed or replaced under a running invsync): restarting later may help.",
            ),
        ],
    );
    roff.control("PP", []).text([roman(
        "status --check exits like a monitoring plugin instead: 0 all in sync; 1 pending or syncing, or a relay order awaiting approval longer than relay.approval_alert_after; 2 a failing, held or stale target or source, a failing or stale order feed, a stuck order, a MANUAL relay order or a mapping conflict; 3 unknown (no database).",
    )]);
    roff.control("SH", ["ENVIRONMENT"]);
    list(
        &mut roff,
        &[
            (
                "INVSYNC_CONFIG",
                "The configuration file when --config is not given.",
            ),
            (
                "RUST_LOG",
                "A log filter (e.g. invsync=debug); when set it wins over daemon.log_level.",
            ),
            (
                "CREDENTIALS_DIRECTORY",
                "Set by systemd's LoadCredential=: where relative *_file paths of the configuration are looked up.",
            ),
        ],
    );
    roff.control("SH", ["FILES"]);
    list(
        &mut roff,
        &[
            (
                "/etc/invsync/config.toml",
                "The configuration of invsync.service (invsync@SHOP.service reads /etc/invsync/SHOP.toml).",
            ),
            (
                "/etc/invsync/config.example.toml",
                "Every configuration key, explained.",
            ),
            (
                "/etc/invsync/credentials/",
                "The secrets the units hand over with LoadCredential=.",
            ),
            (
                "/var/lib/invsync/",
                "The state of invsync.service (invsync@SHOP.service: /var/lib/invsync-SHOP/); the database's lock is the database's name plus .lock.",
            ),
        ],
    );
    roff.control("SH", ["SIGNALS"]);
    list(
        &mut roff,
        &[
            (
                "SIGTERM, SIGINT",
                "Finish the request in flight, commit, exit 0; a second signal exits at once, losing nothing.",
            ),
            (
                "SIGHUP",
                "Reload the configuration (systemctl reload): valid, it takes effect from the next cycle; invalid, an ERROR names the key and the old one stays.",
            ),
        ],
    );
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        italic("systemctl"),
        roman("(1), "),
        italic("journalctl"),
        roman("(1), "),
        italic("systemd.exec"),
        roman("(5); /usr/share/doc/invsync/README.md"),
    ]);
    roff
}
