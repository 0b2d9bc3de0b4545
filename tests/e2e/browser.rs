//! The console in a real browser (headless Chromium over WebDriver): an
//! operator opens the run history, follows a run to an object and reads its
//! lineage. A screenshot of each view is saved to
//! `target/console-screenshots/` as the test's artifact.

use std::path::PathBuf;

use crate::console::{store, Console};
use crate::webdriver::Browser;

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots")
}

#[test]
fn an_operator_follows_a_run_to_an_object_and_reads_its_lineage() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let env = store();
    let console = Console::start(&env, &["--listen", "127.0.0.1:0"]);
    let base = format!("http://{}", console.addr);
    let shots = artifacts();

    browser.open(&format!("{base}/runs"));
    let title = browser.find("h1");
    assert_eq!(browser.text(&title), "Run history");
    browser.screenshot(&shots, "1-run-history");

    // The second run is HR's full sync.
    browser.click(&browser.find("a[href='/runs/2']"));
    browser.wait_for_url("/runs/2");
    let facts = browser.text(&browser.find("dl.facts"));
    assert!(
        facts.contains("full-sync") && facts.contains("hr"),
        "{facts}"
    );
    browser.screenshot(&shots, "2-run");

    // From the run to its connector space, searched by anchor.
    browser.click(&browser.find("dl.facts a[href='/connectors/hr']"));
    browser.wait_for_url("/connectors/hr");
    browser.type_into(&browser.find("input[name='anchor']"), "E1001");
    browser.click(&browser.find("form.filters button[type='submit']"));
    browser.wait_for_url("anchor=E1001");
    browser.screenshot(&shots, "3-connector-space-search");
    browser.click(&browser.find("table a[href^='/connectors/hr/objects/']"));
    browser.wait_for_url("/objects/");
    let heading = browser.text(&browser.find("h1"));
    assert_eq!(heading, "E1001");
    browser.screenshot(&shots, "4-connector-space-object");

    // Its metaverse object: the phonebook's displayName won over HR's.
    browser.click(&browser.find("dl.facts a[href^='/metaverse/']"));
    browser.wait_for_url("/metaverse/");
    let winner = browser.find_xpath("//tr[th[text()='displayName']]/td[@class='winner']");
    let supplied = browser.text(&winner);
    assert!(supplied.starts_with("phonebook"), "{supplied}");
    let others =
        browser.text(&browser.find_xpath("//tr[th[text()='displayName']]/td[div[@class='loser']]"));
    assert!(
        others.contains("hr") && others.contains("precedence 10"),
        "{others}"
    );
    browser.screenshot(&shots, "5-metaverse-object-lineage");

    // The other views, for the record; the planted <script> never runs.
    for (path, name) in [
        ("/connectors/app/exports", "6-pending-exports"),
        ("/metaverse?value=alert", "7-metaverse-search"),
        ("/connectors", "8-connectors"),
        ("/plan", "9-plan"),
    ] {
        browser.open(&format!("{base}{path}"));
        assert!(!browser.alert_open(), "{path}: a script ran");
        if path.contains("alert") {
            let planted = browser.text(&browser.find("table"));
            assert!(
                planted.contains("<script>alert('mvsync')</script>"),
                "shown as text: {planted}"
            );
        }
        browser.screenshot(&shots, name);
    }
}

#[test]
fn the_console_follows_the_browsers_light_or_dark_scheme() {
    let Some(light) = Browser::start() else {
        return;
    };
    let env = store();
    let console = Console::start(&env, &["--listen", "127.0.0.1:0"]);
    let runs = format!("http://{}/runs", console.addr);
    light.open(&runs);
    let background = light.css(&light.find("body"), "background-color");
    assert_eq!(background, "rgba(251, 251, 250, 1)", "light");
    drop(light);
    let dark = Browser::start_with(&["--force-dark-mode"]).expect("the browser started once");
    dark.open(&runs);
    let background = dark.css(&dark.find("body"), "background-color");
    assert_eq!(background, "rgba(21, 24, 28, 1)", "dark");
    dark.screenshot(&artifacts(), "10-run-history-dark");
}
