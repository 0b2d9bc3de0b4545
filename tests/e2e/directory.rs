//! Real directory servers for the LDAP connector's tests, on 127.0.0.1 with
//! certificates of a test CA (so the connector verifies them as it would
//! in production):
//!
//! - [`Slapd`]: an OpenLDAP `slapd` per test, from a generated
//!   `slapd.conf` (mdb, the syncprov overlay with a session log, no refint)
//!   on two free ports (LDAP with StartTLS, and LDAPS), stopped by its pid
//!   when the test ends or killed mid-test to play a server that goes down.
//! - [`samba`]: one Samba AD domain controller per test process (its ports
//!   are fixed), provisioned on first use (`samba-tool domain provision`)
//!   and served by `samba -M single` with only its LDAP service; each test
//!   works under its own OU. A watcher stops it by its pid when the test
//!   process ends.
//!
//! The directory is read and written with the OpenLDAP tools (`ldapadd`,
//! `ldapmodify`, `ldapsearch`), as an administrator would. Where a server
//! is not installed the test says so and is skipped; under `CI=true` that
//! is a failure, never a skip (`./scripts/test.sh` installs them).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::harness::free_port;

/// The password of both servers' administrators.
pub const ADMIN_PASSWORD: &str = "Dir-test-only-7a2e!";

fn skip(why: &str) {
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipped: {why}");
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The test CA and a server certificate for 127.0.0.1 and localhost, made
/// once per test process: `ca.pem`, `server.pem`, `server.key`.
pub fn test_ca() -> &'static Path {
    static CA: OnceLock<PathBuf> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("mvsync-test-ca-")
            .tempdir()
            .expect("a temporary folder")
            .keep();
        make_ca(&dir, "mvsync test CA");
        dir
    })
}

/// A CA and a server certificate signed by it, in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    let script = format!(
        r#"set -e
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 \
  -subj "/CN={name}" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 3650 -extfile server.ext 2>/dev/null
chmod 600 server.key ca.key
rm -f server.csr server.ext ca.srl"#
    );
    run(Command::new("sh").arg("-c").arg(script).current_dir(dir));
}

/// The OpenLDAP client tools against one server, bound as its administrator
/// over LDAPS with the test CA.
#[derive(Clone)]
pub struct Tools {
    url: String,
    admin: String,
}

impl Tools {
    fn tool(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("LDAPTLS_CACERT", test_ca().join("ca.pem"))
            .env("LDAPTLS_REQCERT", "demand")
            .args([
                "-x",
                "-H",
                &self.url,
                "-D",
                &self.admin,
                "-w",
                ADMIN_PASSWORD,
            ]);
        c
    }

    /// Runs LDIF through `ldapadd`.
    pub fn add(&self, ldif: &str) {
        self.feed("ldapadd", &[], ldif);
    }

    /// Runs LDIF through `ldapmodify` (changetype records).
    pub fn modify(&self, ldif: &str) {
        self.feed("ldapmodify", &[], ldif);
    }

    fn feed(&self, program: &str, args: &[&str], ldif: &str) {
        use std::io::Write;
        let mut child = self
            .tool(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        // Written from a thread while the output is read: a large LDIF
        // would otherwise fill both pipes and wait forever.
        let mut stdin = child.stdin.take().expect("stdin");
        let text = ldif.to_owned();
        let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
        let out = child.wait_with_output().expect("wait");
        writer.join().expect("the LDIF writer").expect("write LDIF");
        assert!(
            out.status.success(),
            "{program} failed:\n{}{}\nLDIF:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            ldif.chars().take(2000).collect::<String>()
        );
    }

    /// `ldapsearch` under `base` (subtree), LDIF without wrapping.
    pub fn search(&self, base: &str, filter: &str, attrs: &[&str]) -> String {
        run(self
            .tool("ldapsearch")
            .args(["-LLL", "-o", "ldif-wrap=no", "-b", base, filter])
            .args(attrs))
    }

    /// One attribute's values on the entry at `dn` (`ldapsearch` base scope),
    /// base64 values decoded; `None` when there is no such entry.
    pub fn values(&self, dn: &str, attr: &str) -> Option<Vec<String>> {
        let out = self
            .tool("ldapsearch")
            .args([
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-s",
                "base",
                "-b",
                dn,
                "(objectClass=*)",
                attr,
            ])
            .output()
            .expect("run ldapsearch");
        if out.status.code() == Some(32) {
            return None;
        }
        assert!(
            out.status.success(),
            "ldapsearch {dn}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(ldif_values(&String::from_utf8_lossy(&out.stdout), attr))
    }
}

/// The values of `attr` in LDIF text (case-insensitive, base64 decoded).
pub fn ldif_values(ldif: &str, attr: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for line in ldif.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if !name.eq_ignore_ascii_case(attr) {
            continue;
        }
        if let Some(b64) = rest.strip_prefix(": ") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .unwrap_or_default();
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        } else {
            out.push(rest.trim_start().to_owned());
        }
    }
    out
}

/// Waits until `port` on 127.0.0.1 accepts connections and `ready` holds.
fn wait_until(what: &str, child: &mut Child, log: &Path, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before it accepted binds:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if ready() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not accept binds in 60 s:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An OpenLDAP server for one test, suffix `dc=example,dc=org`.
pub struct Slapd {
    dir: tempfile::TempDir,
    /// LDAP (StartTLS) port.
    pub port: u16,
    /// LDAPS port.
    pub tls_port: u16,
    child: Option<Child>,
}

impl Slapd {
    /// The suffix.
    pub const BASE: &'static str = "dc=example,dc=org";
    /// The administrator's DN.
    pub const ADMIN: &'static str = "cn=admin,dc=example,dc=org";

    /// Starts a fresh server with its base entry, or `None` (saying why)
    /// where slapd is not installed and this is not CI.
    pub fn start() -> Option<Slapd> {
        let slapd = have("slapd") || Path::new("/usr/sbin/slapd").exists();
        if !slapd || !have("ldapadd") {
            skip("OpenLDAP's slapd and ldap-utils are not installed: run ./scripts/test.sh, which installs them");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("mvsync-slapd-")
            .tempdir()
            .expect("a temporary folder");
        std::fs::create_dir(dir.path().join("db")).expect("db folder");
        let ca = test_ca();
        let conf = format!(
            r#"include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
pidfile {d}/slapd.pid
argsfile {d}/slapd.args
loglevel none
TLSCACertificateFile {ca}/ca.pem
TLSCertificateFile {ca}/server.pem
TLSCertificateKeyFile {ca}/server.key
sizelimit unlimited

database mdb
suffix "{base}"
rootdn "{admin}"
rootpw {password}
directory {d}/db
maxsize 1073741824
dbnosync
index objectClass eq
index entryUUID,entryCSN eq
index uid,cn eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
overlay syncprov
syncprov-checkpoint 100 10
syncprov-sessionlog 10000
"#,
            d = dir.path().display(),
            ca = ca.display(),
            base = Slapd::BASE,
            admin = Slapd::ADMIN,
            password = ADMIN_PASSWORD,
        );
        std::fs::write(dir.path().join("slapd.conf"), conf).expect("write slapd.conf");
        let mut slapd = Slapd {
            dir,
            port: free_port(),
            tls_port: free_port(),
            child: None,
        };
        slapd.run();
        slapd.tools().add(&format!(
            "dn: {}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
            Slapd::BASE
        ));
        Some(slapd)
    }

    fn run(&mut self) {
        let log = self.dir.path().join("slapd.log");
        let program = if have("slapd") {
            "slapd"
        } else {
            "/usr/sbin/slapd"
        };
        let mut child = Command::new(program)
            .arg("-f")
            .arg(self.dir.path().join("slapd.conf"))
            .arg("-h")
            .arg(format!(
                "ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/",
                self.port, self.tls_port
            ))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("slapd log"))
            .spawn()
            .expect("start slapd");
        let tools = self.tools();
        let port = self.port;
        wait_until("slapd", &mut child, &log, || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                && tools
                    .tool("ldapsearch")
                    .args(["-s", "base", "-b", "", "(objectClass=*)"])
                    .output()
                    .is_ok_and(|o| o.status.success())
        });
        self.child = Some(child);
    }

    /// The client tools, as the administrator over LDAPS.
    pub fn tools(&self) -> Tools {
        Tools {
            url: format!("ldaps://127.0.0.1:{}", self.tls_port),
            admin: Slapd::ADMIN.to_owned(),
        }
    }

    /// Kills the server at once (a crash), keeping its data.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops it (SIGTERM, as an operator would) and starts it again on
    /// the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shared Samba AD domain controller of this test process.
pub struct Samba {
    /// The domain's DN.
    pub base: String,
    /// The administrator, as it binds (`Administrator@TEST.LOCAL`).
    pub admin: String,
}

impl Samba {
    /// The client tools, as the administrator over LDAPS.
    pub fn tools(&self) -> Tools {
        Tools {
            url: "ldaps://127.0.0.1:636".into(),
            admin: self.admin.clone(),
        }
    }

    /// A fresh OU for one test (`OU=<name>,DC=test,DC=local`), with
    /// sub-OUs; any earlier one of that name is deleted first.
    pub fn ou(&self, name: &str, children: &[&str]) -> String {
        let dn = format!("OU={name},{}", self.base);
        let tools = self.tools();
        let _ = tools
            .tool("ldapdelete")
            .args(["-r", &dn])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let mut ldif = format!("dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n");
        for child in children {
            ldif.push_str(&format!(
                "\ndn: OU={child},{dn}\nobjectClass: organizationalUnit\nou: {child}\n"
            ));
        }
        tools.add(&ldif);
        dn
    }
}

/// The domain controller, provisioned and started on first use; `None`
/// (saying why) where Samba is not installed and this is not CI.
pub fn samba() -> Option<&'static Samba> {
    static DC: OnceLock<Option<Samba>> = OnceLock::new();
    DC.get_or_init(start_samba).as_ref()
}

fn start_samba() -> Option<Samba> {
    if !have("samba-tool") || !have("samba") || !have("ldapadd") {
        skip("Samba's AD domain controller and ldap-utils are not installed: run ./scripts/test.sh, which installs them");
        return None;
    }
    // One folder per machine: a DC left by a test process that was killed
    // is stopped by its pid first, since the ports are fixed.
    let dir = std::env::temp_dir().join("mvsync-test-samba");
    if let Ok(pid) = std::fs::read_to_string(dir.join("samba.pid")) {
        let pid = pid.trim();
        let _ = Command::new("kill").arg(pid).stderr(Stdio::null()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("kill")
            .args(["-0", pid])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(
        TcpStream::connect(("127.0.0.1", 636)).is_err(),
        "port 636 on 127.0.0.1 is taken by another server: the Samba DC of the tests needs it (is a system slapd or samba running?)"
    );
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).expect("samba folder");
    let ca = test_ca();
    let provision = Command::new("samba-tool")
        .args(["domain", "provision"])
        .arg(format!("--targetdir={}", dir.join("dc").display()))
        .args([
            "--realm=TEST.LOCAL",
            "--domain=TEST",
            "--server-role=dc",
            "--dns-backend=NONE",
            "--host-name=dc1",
        ])
        .arg(format!("--adminpass={ADMIN_PASSWORD}"))
        .args([
            "--option=interfaces=lo",
            "--option=bind interfaces only=yes",
        ])
        .args(["--option=tls enabled=yes", "--option=ldb:nosync=true"])
        .arg(format!(
            "--option=tls keyfile={}",
            ca.join("server.key").display()
        ))
        .arg(format!(
            "--option=tls certfile={}",
            ca.join("server.pem").display()
        ))
        .arg(format!(
            "--option=tls cafile={}",
            ca.join("ca.pem").display()
        ))
        .arg(format!(
            "--option=pid directory={}",
            dir.join("run").display()
        ))
        .arg(format!(
            "--option=log file={}",
            dir.join("log.%m").display()
        ))
        .output()
        .expect("run samba-tool");
    assert!(
        provision.status.success(),
        "samba-tool domain provision failed:\n{}{}",
        String::from_utf8_lossy(&provision.stdout),
        String::from_utf8_lossy(&provision.stderr)
    );
    // The watcher starts samba in the foreground (one process, only the
    // LDAP service), records its pid, and stops it by that pid when this
    // test process is gone.
    let conf = dir.join("dc/etc/smb.conf");
    let log = dir.join("samba.log");
    let watcher = format!(
        r#"setsid samba -s '{conf}' -i -M single --option='server services=ldap' --option='ldb:nosync=true' </dev/null >'{log}' 2>&1 &
pid=$!
echo $pid > '{pidfile}'
while kill -0 {me} 2>/dev/null && kill -0 $pid 2>/dev/null; do sleep 0.5; done
kill -TERM $pid 2>/dev/null
wait $pid"#,
        conf = conf.display(),
        log = log.display(),
        pidfile = dir.join("samba.pid").display(),
        me = std::process::id(),
    );
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(watcher)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start samba");
    let samba = Samba {
        base: "DC=test,DC=local".into(),
        admin: "Administrator@TEST.LOCAL".into(),
    };
    let tools = samba.tools();
    wait_until("samba", &mut child, &log, || {
        TcpStream::connect(("127.0.0.1", 636)).is_ok()
            && tools
                .tool("ldapsearch")
                .args([
                    "-s",
                    "base",
                    "-b",
                    "DC=test,DC=local",
                    "(objectClass=*)",
                    "dn",
                ])
                .output()
                .is_ok_and(|o| o.status.success())
    });
    Some(samba)
}
