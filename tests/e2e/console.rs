//! `mvsync console` over HTTP, against the quickstart's store: each view's
//! status and content, escaping of a `<script>` planted in HR data, the
//! security headers, paging, the token beyond loopback, and the console
//! giving the store up to a run.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::harness::{code, stderr, Env};
use crate::http::{self, Reply};
use crate::quickstart::quickstart;

pub const CONFIG: &str = "samples/quickstart/mvsync.toml";
const PLANTED: &str = "<script>alert('mvsync')</script>";
/// Workers added to the quickstart's 22, so that lists have pages.
const EXTRA: usize = 100;

/// A running console, stopped when dropped.
pub struct Console {
    child: Child,
    /// `127.0.0.1:port`.
    pub addr: String,
}

impl Console {
    /// Starts `mvsync console` with `args` and waits for its address.
    pub fn start(env: &Env, args: &[&str]) -> Console {
        let all: Vec<&str> = ["-c", CONFIG, "console"]
            .iter()
            .chain(args)
            .copied()
            .collect();
        let mut child = env.spawn(&all, Stdio::piped());
        let out = child.stdout.take().expect("the console's stdout");
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .expect("the console says where it listens");
        let served = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let port = served.rsplit(':').next().expect("a port");
        Console {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Reply {
        http::get(&self.addr, path)
    }

    /// `GET path`, which must answer 200.
    pub fn page(&self, path: &str) -> String {
        let reply = self.get(path);
        assert_eq!(reply.status, 200, "GET {path}: {}", reply.body);
        reply.body
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The quickstart's store after `run full`, with a `<script>` in one
/// worker's department and 100 more workers; then one department changed
/// in HR, imported and synchronized, so `app` has a pending update.
pub fn store() -> Env {
    let env = quickstart();
    let hr = env.path("samples/quickstart/data/hr.csv");
    let mut text = std::fs::read_to_string(&hr).expect("read hr.csv");
    text = text.replacen(
        "E1000,Margaret,Hamilton,,Executive Office,",
        &format!("E1000,Margaret,Hamilton,,\"{PLANTED}\","),
        1,
    );
    for i in 0..EXTRA {
        // The last one works where there is no office: a flow error.
        let city = if i + 1 == EXTRA { "Nowhere" } else { "Lyon" };
        text.push_str(&format!(
            "E{},Worker,Number{i},,Operations,{city},Employee,Active,E1000\n",
            2000 + i
        ));
    }
    std::fs::write(&hr, &text).expect("write hr.csv");
    let config = env.path(CONFIG);
    let rules = std::fs::read_to_string(&config).expect("read config");
    let failing = rules.replacen(
        "city = \"city\"",
        "city = 'IIF(city == \"Nowhere\", Error(\"no office in \" + city), city)'",
        1,
    );
    assert_ne!(failing, rules, "HR's city flow fails for Nowhere");
    std::fs::write(&config, failing).expect("write config");
    let run = env.mvsync(&["-c", CONFIG, "run", "full"]);
    assert_eq!(
        code(&run),
        3,
        "run full, one per-object error: {}",
        stderr(&run)
    );
    let moved = text.replacen(",Engineering,Madrid,", ",Research,Madrid,", 1);
    assert_ne!(moved, text, "E1001 moves to Research");
    std::fs::write(&hr, moved).expect("write hr.csv");
    env.expect(&["-c", CONFIG, "import", "hr"], 0);
    env.expect(&["-c", CONFIG, "sync", "hr"], 3);
    env
}

/// The hrefs of `page` that start with `prefix`.
fn links<'a>(page: &'a str, prefix: &str) -> Vec<&'a str> {
    page.match_indices(&format!("href=\"{prefix}"))
        .map(|(at, _)| {
            let rest = &page[at + 6..];
            &rest[..rest.find('"').expect("a closed href")]
        })
        .collect()
}

/// The rel="next" link of a page.
fn next(page: &str) -> Option<String> {
    let at = page.find("rel=\"next\" href=\"")?;
    let rest = &page[at + 17..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

#[test]
fn every_view_answers_escaped_and_paged_and_the_store_is_unchanged() {
    let env = store();
    let history_before = env.json(&["-c", CONFIG, "history"]);
    let preview_before = env.json(&["-c", CONFIG, "preview"]);
    let console = Console::start(&env, &["--listen", "127.0.0.1:0"]);
    let mut seen = Vec::new();

    // Run history, with its filters and the security headers.
    let runs = console.get("/runs");
    assert_eq!(runs.status, 200);
    let csp = runs.header("content-security-policy").expect("a CSP");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(runs.header("x-content-type-options"), Some("nosniff"));
    assert!(
        runs.body.contains("full-import") && runs.body.contains("<svg"),
        "{}",
        runs.body
    );
    assert!(links(&runs.body, "/runs/").len() >= 7, "a link per run");
    let only_hr = console.page("/runs?connector=hr&status=success");
    assert!(
        !only_hr.contains(">phonebook</a></td>"),
        "filtered by connector"
    );
    let bad = console.get("/runs?status=sideways");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("not a run status"), "{}", bad.body);
    let bad_date = console.get("/runs?since=yesterday");
    assert_eq!(bad_date.status, 400, "{}", bad_date.body);
    seen.push(runs.body);

    // One run, with its counters.
    let run = console.page("/runs/1");
    assert!(
        run.contains("import-adds") && run.contains("full-import"),
        "{run}"
    );
    assert_eq!(console.get("/runs/999").status, 404);
    // HR's sync with its per-object error, the object linked.
    let sync = console.page("/runs/2");
    assert!(sync.contains("no office in Nowhere"), "{sync}");
    let failed: Vec<String> = links(&sync, "/connectors/hr/objects/")
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(failed.len(), 1, "{sync}");
    assert!(
        console.page(&failed[0]).contains("E2099"),
        "the failed object"
    );
    let errors = console.page("/connectors/hr?state=error");
    assert_eq!(
        links(&errors, "/connectors/hr/objects/"),
        failed,
        "found by state"
    );
    let failing_runs = console.page("/runs?status=completed-with-errors");
    assert!(
        !links(&failing_runs, "/runs/2\"").is_empty(),
        "{failing_runs}"
    );
    assert!(
        links(&failing_runs, "/runs/1\"").is_empty(),
        "only runs with errors"
    );
    seen.push(sync);
    seen.push(run);

    // Connector-space search: the planted value, found and escaped.
    let found = console.page("/connectors/hr?attribute=department&value=alert");
    let objects = links(&found, "/connectors/hr/objects/");
    assert_eq!(objects.len(), 1, "{found}");
    let upper = console.page("/connectors/hr?attribute=department&value=ALERT");
    assert_eq!(
        links(&upper, "/connectors/hr/objects/"),
        objects,
        "case is ignored"
    );
    let mv_upper = console.page("/metaverse?value=ALERT");
    assert_eq!(links(&mv_upper, "/metaverse/").len(), 1, "{mv_upper}");
    let object = console.page(objects[0]);
    assert!(
        object.contains("&lt;script&gt;alert('mvsync')&lt;/script&gt;"),
        "{object}"
    );
    seen.push(found);
    seen.push(object);

    // Paging: every HR object once, 50 to a page.
    let mut ids = std::collections::BTreeSet::new();
    let mut url = Some("/connectors/hr".to_string());
    let mut pages = 0;
    while let Some(u) = url {
        let page = console.page(&u);
        let on_page = links(&page, "/connectors/hr/objects/");
        assert!(on_page.len() <= 50, "{u}: {} rows", on_page.len());
        for l in on_page {
            assert!(ids.insert(l.to_string()), "{l} on two pages");
        }
        pages += 1;
        url = next(&page);
    }
    assert_eq!(ids.len(), 22 + EXTRA, "every HR object");
    assert_eq!(pages, 3);
    let by_anchor = console.page("/connectors/hr?anchor=E20");
    assert_eq!(
        links(&by_anchor, "/connectors/hr/objects/").len(),
        50,
        "E2000…E2049 on the first page"
    );
    let pending_import = console.page("/connectors/hr?state=pending-import");
    assert_eq!(
        links(&pending_import, "/connectors/hr/objects/"),
        failed,
        "only the object whose sync failed keeps its import"
    );
    assert_eq!(console.get("/connectors/hr?state=sideways").status, 400);
    assert_eq!(console.get("/connectors/nope").status, 404);
    assert_eq!(console.get("/connectors/hr/objects/99999").status, 404);
    seen.push(by_anchor);

    // Metaverse search, then one object's lineage: the phonebook's
    // displayName (precedence 5) beats HR's (10).
    let search = console.page("/metaverse?attribute=employeeId&value=E1001");
    let mv = links(&search, "/metaverse/");
    assert_eq!(mv.len(), 1, "{search}");
    let person = console.page(mv[0]);
    let row = person
        .split("<tr>")
        .find(|r| r.contains("<th>displayName</th>"))
        .expect("a displayName row");
    assert!(row.contains("Pepe García"), "{row}");
    assert!(
        row.contains("class=\"winner\"><a href=\"/connectors/phonebook\">phonebook</a>"),
        "{row}"
    );
    assert!(row.contains("class=\"loser\">hr"), "HR's offer lost: {row}");
    let link = links(&person, "/connectors/app/find")
        .pop()
        .expect("the app account");
    let found = console.get(&link.replace("&amp;", "&"));
    assert_eq!(found.status, 303, "{}", found.body);
    seen.push(search);
    seen.push(person);

    // Pending exports, with the deletion threshold.
    let exports = console.page("/connectors/app/exports");
    assert!(exports.contains("Deletion threshold"), "{exports}");
    assert!(
        exports.contains("Engineering") && exports.contains("Research"),
        "old → new: {exports}"
    );
    let deletes = console.page("/connectors/app/exports?op=delete");
    assert!(
        deletes.contains("No pending export on this page"),
        "{deletes}"
    );
    assert_eq!(
        console.get("/connectors/app/exports?op=sideways").status,
        400
    );
    let list = console.page("/connectors");
    assert!(list.contains(">app</a>"), "{list}");
    seen.push(exports);

    // The plan: none saved, then one.
    assert!(console.page("/plan").contains("No plan is saved"));
    seen.push(console.page("/metaverse?value=alert"));
    drop(console);
    env.expect(&["-c", CONFIG, "plan", "--rules", CONFIG, "--save"], 0);
    let console = Console::start(&env, &["--listen", "127.0.0.1:0"]);
    let plan = console.page("/plan");
    assert!(plan.contains("Metaverse objects changed"), "{plan}");
    assert_eq!(console.get("/nowhere").status, 404);

    for page in &seen {
        assert!(!page.contains("<script"), "nothing executable on any page");
    }
    drop(console);
    let history_after = env.json(&["-c", CONFIG, "history"]);
    let preview_after = env.json(&["-c", CONFIG, "preview"]);
    assert_eq!(history_before, history_after, "the console wrote no run");
    assert_eq!(
        preview_before, preview_after,
        "the console changed no pending export"
    );
}

#[test]
fn a_run_takes_the_store_from_the_console_which_shows_it_again_after() {
    let env = store();
    let console = Console::start(&env, &["--listen", "127.0.0.1:0"]);
    let before = links(&console.page("/runs"), "/runs/").len();
    // The console holds the store now; a run asks for it and gets it (and
    // meets the planted flow error again).
    env.expect(&["-c", CONFIG, "run", "full"], 3);
    let after = links(&console.page("/runs"), "/runs/").len();
    assert!(
        after > before,
        "the run's steps are listed: {before} → {after}"
    );

    // While another process holds the store, the console says who.
    let other = Console::start(&env, &["--listen", "127.0.0.1:0"]);
    drop(console);
    other.page("/runs");
    let console = Console::start(&env, &["--listen", "127.0.0.1:0"]);
    let busy = console.get("/runs");
    assert_eq!(busy.status, 503, "{}", busy.body);
    assert!(busy.body.contains("mvsync console (pid"), "{}", busy.body);
    assert!(
        busy.body.contains("http-equiv=\"refresh\""),
        "{}",
        busy.body
    );
    drop(other);
    assert_eq!(console.get("/runs").status, 200, "the store is free again");
}

#[test]
fn beyond_loopback_the_console_needs_a_token() {
    let mut env = store();
    let refused = env.mvsync(&["-c", CONFIG, "console", "--listen", "0.0.0.0:0"]);
    assert_eq!(code(&refused), 2, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("not a loopback address") && stderr(&refused).contains("token"),
        "{}",
        stderr(&refused)
    );

    let config = env.path(CONFIG);
    let text = std::fs::read_to_string(&config).expect("read config");
    std::fs::write(
        &config,
        format!("{text}\n[console]\nlisten = \"0.0.0.0:8470\"\n"),
    )
    .expect("write config");
    let invalid = env.mvsync(&["-c", CONFIG, "validate"]);
    assert_eq!(code(&invalid), 2, "{}", stderr(&invalid));
    assert!(
        stderr(&invalid).contains("not a loopback address"),
        "{}",
        stderr(&invalid)
    );

    std::fs::write(
        &config,
        format!("{text}\n[console]\ntoken = {{ env = \"MVSYNC_CONSOLE_TOKEN\" }}\n"),
    )
    .expect("write config");
    env.set_var("MVSYNC_CONSOLE_TOKEN", "short");
    let short = env.mvsync(&["-c", CONFIG, "console", "--listen", "0.0.0.0:0"]);
    assert_eq!(code(&short), 2, "{}", stderr(&short));
    assert!(
        !stderr(&short).contains("short\""),
        "the token is never printed"
    );

    let token = "0123456789abcdef0123456789abcdef";
    env.set_var("MVSYNC_CONSOLE_TOKEN", token);
    let console = Console::start(&env, &["--listen", "0.0.0.0:0"]);
    let anonymous = console.get("/runs");
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.header("location"), Some("/login"));
    assert_eq!(console.get("/metaverse/1").status, 303, "every view");
    let wrong = http::request(
        &console.addr,
        "GET",
        "/runs",
        &[("Authorization", "Bearer 0123456789abcdef0123456789abcdee")],
        None,
    );
    assert_eq!(wrong.status, 303);
    let bearer = format!("Bearer {token}");
    let right = http::request(
        &console.addr,
        "GET",
        "/runs",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(right.status, 200, "{}", right.body);
    assert!(!right.body.contains(token), "the token is never rendered");

    let failed = http::request(
        &console.addr,
        "POST",
        "/login",
        &[],
        Some(("application/x-www-form-urlencoded", "token=guess")),
    );
    assert_eq!(failed.status, 401);
    let login = http::request(
        &console.addr,
        "POST",
        "/login",
        &[],
        Some((
            "application/x-www-form-urlencoded",
            &format!("token={token}"),
        )),
    );
    assert_eq!(login.status, 303, "{}", login.body);
    let cookie = login.header("set-cookie").expect("a cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value");
    let with_cookie = http::request(&console.addr, "GET", "/runs", &[("Cookie", pair)], None);
    assert_eq!(with_cookie.status, 200);
}
