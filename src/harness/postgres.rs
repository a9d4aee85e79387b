//! A throwaway PostgreSQL server for tests: the distribution's own server (Debian's `postgresql`
//! package, under `/usr/lib/postgresql/VERSION/bin`, or the folder `INVSYNC_PG_BIN` names),
//! a cluster made with `initdb` in a temporary folder, listening on a Unix socket in that
//! folder only (no TCP port), run as `nobody` when the tests run as root (the server refuses
//! root). Never a mock: the fleet's promises are PostgreSQL's locks and transactions.
//!
//! One server per test process, started by the first test that asks ([`TestPostgres::get`]);
//! every test makes a database of its own on it ([`TestPostgres::database`]). The server is
//! stopped, and its folder removed, when the test process ends, however it ends: a small
//! shell guardian holds a pipe from the test process, and stops the server once that pipe
//! closes (a test process killed with SIGKILL closes it too).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The test process's PostgreSQL server.
pub struct TestPostgres {
    /// The folder holding the cluster and the socket.
    dir: PathBuf,
    /// The guardian: the server stops when its standard input closes.
    guardian: Mutex<Child>,
    /// The databases made so far.
    made: AtomicU64,
}

/// Why a server could not be started: said in full, since a test that cannot start one fails.
#[derive(Debug)]
pub struct NoPostgres(pub String);

impl std::fmt::Display for NoPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The port number in the socket's name (`.s.PGSQL.PORT`); no TCP port is opened.
const PORT: u16 = 5432;

static SERVER: OnceLock<Result<TestPostgres, String>> = OnceLock::new();

impl TestPostgres {
    /// The test process's server, started now if it is not yet. A machine without PostgreSQL's
    /// server is an error (`.ci/run` installs it), never a skipped test.
    pub fn get() -> Result<&'static TestPostgres, NoPostgres> {
        SERVER
            .get_or_init(|| TestPostgres::start().map_err(|e| e.0))
            .as_ref()
            .map_err(|e| NoPostgres(e.clone()))
    }

    /// A new, empty database on the server: its connection URL, for the superuser `invsync`.
    pub fn database(&self) -> Result<String, NoPostgres> {
        let n = self.made.fetch_add(1, Ordering::SeqCst);
        let name = format!("test_{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// The connection URL of database `name` (over the Unix socket).
    pub fn url(&self, name: &str) -> String {
        // A socket folder is given as `host`, percent-encoded.
        let host: String = self
            .dir
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgres://invsync@{host}:{PORT}/{name}")
    }

    /// Stops the server at once (as a crash would: `immediate`), for a test of what happens
    /// when the database goes away; [`TestPostgres::restart`] brings it back.
    pub fn stop(&self) -> Result<(), NoPostgres> {
        self.pg_ctl(&["stop", "-m", "immediate", "-w"])
    }

    /// Starts the server again after [`TestPostgres::stop`].
    pub fn restart(&self) -> Result<(), NoPostgres> {
        self.pg_ctl(&["start", "-w", "-l"])
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), NoPostgres> {
        let bin = bin_dir()?;
        let mut command = as_owner(Command::new(bin.join("pg_ctl")));
        command.arg("-D").arg(self.dir.join("data"));
        for arg in args {
            command.arg(arg);
            if *arg == "-l" {
                command.arg(self.dir.join("server.log"));
            }
        }
        if args[0] == "start" {
            command.arg("-o").arg(server_options(&self.dir));
        }
        run(command, "pg_ctl")
    }

    fn psql(&self, database: &str, sql: &str) -> Result<(), NoPostgres> {
        let bin = bin_dir()?;
        let mut command = Command::new(bin.join("psql"));
        command
            .arg("-v")
            .arg("ON_ERROR_STOP=1")
            .arg("-q")
            .arg("-h")
            .arg(&self.dir)
            .arg("-p")
            .arg(PORT.to_string())
            .arg("-U")
            .arg("invsync")
            .arg("-d")
            .arg(database)
            .arg("-c")
            .arg(sql);
        run(command, "psql")
    }

    /// A server of the caller's own, beside the shared one: for a test that stops and restarts
    /// its server ([`TestPostgres::stop`]), which the other tests of the process must not see.
    /// Stopped, and its folder removed, when it is dropped (or the process ends).
    pub fn own(tag: &str) -> Result<TestPostgres, NoPostgres> {
        TestPostgres::start_in(
            std::env::temp_dir().join(format!("invsync-pg-{}-{tag}", std::process::id())),
        )
    }

    fn start() -> Result<TestPostgres, NoPostgres> {
        // Not `tempfile`'s drop: the folder outlives every test and goes with the guardian.
        TestPostgres::start_in(
            std::env::temp_dir().join(format!("invsync-pg-{}", std::process::id())),
        )
    }

    fn start_in(dir: PathBuf) -> Result<TestPostgres, NoPostgres> {
        let bin = bin_dir()?;
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| fail("making its folder", e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail("setting its folder's mode", e))?;
        if is_root() {
            chown_nobody(&dir)?;
        }
        let mut initdb = as_owner(Command::new(bin.join("initdb")));
        initdb.arg("-D").arg(dir.join("data")).args([
            "-U",
            "invsync",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(initdb, "initdb")?;
        // The guardian starts the server, then waits for its standard input to close (this
        // process ended) and stops it, then removes the folder.
        let script = format!(
            "{pg_ctl} -D {data} -l {log} -o '{options}' -w start >/dev/null || exit 1; \
             echo started; cat >/dev/null; \
             {pg_ctl} -D {data} -m immediate -w stop >/dev/null 2>&1; rm -rf {dir}",
            pg_ctl = bin.join("pg_ctl").display(),
            data = dir.join("data").display(),
            log = dir.join("server.log").display(),
            options = server_options(&dir),
            dir = dir.display(),
        );
        let mut guardian = as_owner(Command::new("sh"))
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| fail("starting its guardian", e))?;
        let mut started = String::new();
        if let Some(out) = guardian.stdout.as_mut() {
            use std::io::Read;
            let mut byte = [0u8; 1];
            while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                started.push(byte[0] as char);
            }
        }
        if started != "started" {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(NoPostgres(format!("PostgreSQL did not start: {log}")));
        }
        let server = TestPostgres {
            dir,
            guardian: Mutex::new(guardian),
            made: AtomicU64::new(0),
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Waits until the server takes connections (`pg_ctl -w` waits too; this is the check
    /// after a restart).
    fn wait_ready(&self) -> Result<(), NoPostgres> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.psql("postgres", "SELECT 1") {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// The folder holding the cluster (its `server.log` says what the server did).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Closing the guardian's input stops the server (a static is never dropped: the
        // process's end closes it just the same).
        if let Ok(mut guardian) = self.guardian.lock() {
            drop(guardian.stdin.take());
            let _ = guardian.wait();
        }
    }
}

/// The server's options: the socket in `dir`, no TCP, small and quick (`fsync` off does not
/// change what a client sees of a crash that spares the machine). Commits stay synchronous: a
/// server stopped `immediate` (a crash) must keep every commit it reported, as a real one does.
fn server_options(dir: &Path) -> String {
    format!(
        "-k {} -p {PORT} -c listen_addresses= -c fsync=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB",
        dir.display()
    )
}

/// The folder of PostgreSQL's programs: `INVSYNC_PG_BIN`, or the newest
/// `/usr/lib/postgresql/*/bin` holding `initdb`.
fn bin_dir() -> Result<PathBuf, NoPostgres> {
    if let Some(dir) = std::env::var_os("INVSYNC_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| NoPostgres(missing()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| NoPostgres(missing()))
}

fn missing() -> String {
    "PostgreSQL's server is not installed (no /usr/lib/postgresql/*/bin/initdb): install the \
     distribution's `postgresql` package (`.ci/run` does), or set INVSYNC_PG_BIN"
        .to_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

const NOBODY: u32 = 65534;

fn chown_nobody(dir: &Path) -> Result<(), NoPostgres> {
    std::os::unix::fs::chown(dir, Some(NOBODY), Some(NOBODY))
        .map_err(|e| fail("giving its folder to nobody", e))
}

/// `command`, run as `nobody` when this process is root.
fn as_owner(mut command: Command) -> Command {
    if is_root() {
        use std::os::unix::process::CommandExt;
        command.uid(NOBODY).gid(NOBODY);
        // A home nobody can read, for the programs that look at it.
        command.env("HOME", "/tmp");
    }
    command
}

fn run(mut command: Command, what: &str) -> Result<(), NoPostgres> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(what, e))?;
    if out.status.success() {
        return Ok(());
    }
    let mut said = Vec::new();
    let _ = said.write_all(&out.stdout);
    let _ = said.write_all(&out.stderr);
    Err(NoPostgres(format!(
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&said).trim()
    )))
}

fn fail(what: &str, e: std::io::Error) -> NoPostgres {
    NoPostgres(format!("PostgreSQL for the tests: {what}: {e}"))
}
