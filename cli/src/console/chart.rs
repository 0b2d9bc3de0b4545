//! The run history's chart: adds, updates and deletes per run, as stacked
//! bars in inline SVG (no script; colours come from the stylesheet, so the
//! chart follows the light or dark scheme).

use engine::RunRecord;
use maud::{html, Markup};

/// What a run changed, in three numbers: adds, updates, deletes.
pub fn changes(r: &RunRecord) -> [u64; 3] {
    let c = &r.counters;
    [
        c.import_adds + c.projections + c.provisioned + c.export_adds + c.export_adopted,
        c.import_updates + c.flow_updates + c.joins + c.export_updates + c.export_renames,
        c.import_deletes + c.mv_deletes + c.deprovisioned + c.disconnects + c.export_deletes,
    ]
}

const KINDS: [&str; 3] = ["adds", "updates", "deletes"];

/// Stacked bars for `runs` (oldest first), each linked to its run.
pub fn bars(runs: &[&RunRecord]) -> Markup {
    let (width, height, gap) = (720.0_f64, 120.0_f64, 2.0_f64);
    let most = runs
        .iter()
        .map(|r| changes(r).iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = width / runs.len().max(1) as f64;
    let bar = (slot - gap).max(1.0);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {width} {height}")) role="img"
                aria-label="Adds, updates and deletes per run" preserveAspectRatio="none" {
                @for (i, r) in runs.iter().enumerate() {
                    @let counts = changes(r);
                    @let total: u64 = counts.iter().sum();
                    a href=(format!("/runs/{}", r.id)) {
                        title {
                            "run " (r.id) " · " (r.step.name()) " " (r.connector) ": "
                            (counts[0]) " adds, " (counts[1]) " updates, " (counts[2]) " deletes"
                        }
                        rect.slot x=(format!("{:.1}", i as f64 * slot)) y="0"
                            width=(format!("{bar:.1}")) height=(height) {}
                        @let mut top = height;
                        @for (k, n) in counts.iter().enumerate() {
                            @if *n > 0 {
                                @let h = (*n as f64 / most * height).max(1.0);
                                @let y = { top -= h; top };
                                rect class=(KINDS[k]) x=(format!("{:.1}", i as f64 * slot))
                                    y=(format!("{y:.1}")) width=(format!("{bar:.1}"))
                                    height=(format!("{h:.1}")) {}
                            }
                        }
                        @if total == 0 {
                            rect.none x=(format!("{:.1}", i as f64 * slot)) y=(height - 1.0)
                                width=(format!("{bar:.1}")) height="1" {}
                        }
                    }
                }
            }
            figcaption {
                @for k in KINDS { span class=(format!("key {k}")) { (k) } }
                span.muted { " per run, oldest on the left; the tallest bar is " (most as u64) " changes" }
            }
        }
    }
}
