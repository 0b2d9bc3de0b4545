//! A real PostgreSQL server for one test: `initdb` into a temporary folder
//! (as the `postgres` user when the tests run as root, which `initdb`
//! refuses), `postgres` started on 127.0.0.1 on a free port with a password
//! for the user `mvsync`, and stopped by its pid when the test ends (or
//! killed mid-test to play a database that goes down).
//!
//! Where the server binaries are missing the test says so and is skipped;
//! under `CI=true` that is a failure, never a skip (`.ci/run` installs them).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::free_port;

/// The password of the `mvsync` user the tests connect as.
pub const PASSWORD: &str = "Pg-test-only-6f1c";

/// A running server.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// The folder of PostgreSQL's server binaries, newest version first.
fn server_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").is_file() && p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command that runs as the `postgres` user when we are root.
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// Starts a fresh server, or returns `None` (saying why) where the
    /// server is not installed and this is not CI.
    pub fn start() -> Option<Postgres> {
        let Some(bin) = server_bin() else {
            let why = "PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin): run ./scripts/test.sh, which installs them";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipped: {why}");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("mvsync-pg-")
            .tempdir()
            .expect("a temporary folder");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("write the password file");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the server's folder to the postgres user");
        }
        let out = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "mvsync",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            child: None,
        };
        pg.run();
        Some(pg)
    }

    /// Starts the server process on the folder and waits until it accepts
    /// connections.
    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("server log");
        let child = as_server_user(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                self.dir.path().display()
            ))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "shared_buffers=32MB",
                "-c",
                "max_connections=40",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "postgres exited ({status}) before accepting connections:\n{}",
                    self.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.try_query("SELECT 1").is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start in 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What the server logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of a database, as a connector configuration writes it (the
    /// password comes from the environment).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://mvsync@127.0.0.1:{}/{database}", self.port)
    }

    fn url_with_password(&self, database: &str) -> String {
        format!(
            "postgres://mvsync:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    fn try_query(&self, sql: &str) -> Result<(), sqlx::Error> {
        crate::database::execute(&self.url_with_password("postgres"), sql)
    }

    /// Runs SQL (several statements) in a database, as the server's owner.
    pub fn execute(&self, database: &str, sql: &str) {
        crate::database::execute(&self.url_with_password(database), sql)
            .unwrap_or_else(|e| panic!("{sql}\nfailed: {e}"));
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) {
        self.execute("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// Rows of a query, each cell as text (null as "NULL").
    pub fn query(&self, database: &str, sql: &str) -> Vec<Vec<String>> {
        crate::database::query(&self.url_with_password(database), sql)
    }

    /// Stops the server at once, as a crash or a power cut would
    /// (immediate shutdown: SIGQUIT to the postmaster, which ends every
    /// connection).
    pub fn stop_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal("QUIT", child.id());
            wait_or_kill(&mut child);
        }
    }

    /// Starts the stopped server again on the same folder and port.
    pub fn restart(&mut self) {
        self.stop_now();
        self.run();
    }

    /// How many of the server's backends serving `application_name` are
    /// running a query now.
    pub fn active_queries(&self, database: &str, application: &str) -> usize {
        self.query(
            database,
            &format!(
                "SELECT pid FROM pg_stat_activity WHERE application_name = '{application}' AND state = 'active'"
            ),
        )
        .len()
    }
}

fn signal(name: &str, pid: u32) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

fn wait_or_kill(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Postgres {
    /// Stops the server by its pid (a fast shutdown), then the folder goes.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal("INT", child.id());
            wait_or_kill(&mut child);
        }
    }
}
