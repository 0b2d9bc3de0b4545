//! The console's views timed against a built store: `mvsync console` is
//! started on a free loopback port and each view fetched three times (the
//! first read of a cold page cache, then the best of two more).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Times every view; `employee` and `id` name an object in the middle.
pub fn time_views(mvsync: &Path, dir: &Path, employee: &str, id: usize) -> Result<(), String> {
    let mut child = Command::new(mvsync)
        .current_dir(dir)
        .args([
            "-q",
            "-c",
            "mvsync.toml",
            "console",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", mvsync.display()))?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let console = Running(child);
    let mut line = String::new();
    BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .ok_or_else(|| format!("the console said {line:?}"))?
        .to_string();
    let prefix = &employee[..employee.len() - 2];
    let views = [
        ("run history", "/runs".to_string()),
        ("one run", "/runs/2".to_string()),
        (
            "connectors (export queues counted)",
            "/connectors".to_string(),
        ),
        ("connector space, first page", "/connectors/hr".to_string()),
        (
            "connector space by anchor prefix",
            format!("/connectors/hr?anchor={prefix}"),
        ),
        (
            "connector space by value, no match",
            "/connectors/hr?attribute=title&value=nobody".to_string(),
        ),
        (
            "connector space, pending exports",
            "/connectors/scim?state=pending-export".to_string(),
        ),
        (
            "connector-space object",
            format!("/connectors/hr/objects/{id}"),
        ),
        (
            "pending exports (adds)",
            "/connectors/scim/exports".to_string(),
        ),
        (
            "pending exports, deletes only (none)",
            "/connectors/scim/exports?op=delete".to_string(),
        ),
        ("metaverse, first page", "/metaverse".to_string()),
        (
            "metaverse by join attribute",
            format!("/metaverse?attribute=employeeId&value={employee}"),
        ),
        (
            "metaverse by value, no match",
            "/metaverse?value=nobody".to_string(),
        ),
        (
            "metaverse object with lineage",
            format!("/metaverse/{}", id + 1),
        ),
    ];
    println!(
        "  {:<40} {:>8} {:>8} {:>7}",
        "console view", "cold ms", "warm ms", "status"
    );
    for (name, path) in views {
        let mut times = Vec::new();
        let mut status = 0;
        for _ in 0..3 {
            let started = Instant::now();
            status = get(&addr, &path)?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let warm = times[1].min(times[2]);
        println!("  {name:<40} {:>8.0} {:>8.0} {status:>7}", times[0], warm);
    }
    drop(console);
    Ok(())
}

/// `GET path`, read to its end; the status.
fn get(addr: &str, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: no status"))
}
