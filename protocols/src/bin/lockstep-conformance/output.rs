//! The report: TAP-like lines as cases finish, or one JSON document at the end.
//!
//! ```text
//! 1..3
//! # compositor: ...
//! ok 1 - get_surface_twice
//! not ok 2 - dmabuf_without_points: expected protocol error no_acquire_point (4) on ...
//! ok 3 - wl_shm_with_points # SKIP the compositor has no wl_shm
//! 1 passed, 1 failed, 1 skipped
//! ```
// This module is the binary's CLI output: the one place that prints (clippy.toml bans
// println! elsewhere).
#![allow(clippy::disallowed_macros)]

use std::time::Duration;

use serde_json::json;

use crate::cases::Case;
use crate::outcome::Outcome;

/// One finished case.
#[derive(Debug, Clone)]
pub struct CaseReport {
    /// 1-based position in this run.
    pub index: usize,
    /// The case.
    pub name: &'static str,
    /// What it asserts.
    pub about: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub duration: Duration,
}

/// Totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Passed cases.
    pub passed: usize,
    /// Failed cases.
    pub failed: usize,
    /// Skipped cases.
    pub skipped: usize,
}

impl Totals {
    /// Counts `reports`.
    pub fn of(reports: &[CaseReport]) -> Totals {
        let mut t = Totals::default();
        for r in reports {
            match r.outcome {
                Outcome::Pass(_) => t.passed += 1,
                Outcome::Fail(_) => t.failed += 1,
                Outcome::Skip(_) => t.skipped += 1,
            }
        }
        t
    }

    /// The final line: exactly `N passed, N failed, N skipped`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }
}

/// A reason on one line (TAP lines must not break).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The TAP-like line of a case.
pub fn tap_line(r: &CaseReport) -> String {
    match &r.outcome {
        Outcome::Pass(_) => format!("ok {} - {}", r.index, r.name),
        Outcome::Fail(why) => format!("not ok {} - {}: {}", r.index, r.name, one_line(why)),
        Outcome::Skip(why) => format!("ok {} - {} # SKIP {}", r.index, r.name, one_line(why)),
    }
}

/// Prints the plan and the header comments.
pub fn tap_header(count: usize, header: &[String]) {
    println!("1..{count}");
    for line in header {
        println!("# {}", one_line(line));
    }
}

/// Prints one finished case (and a pass's note as a comment line).
pub fn tap_case(r: &CaseReport) {
    println!("{}", tap_line(r));
    if let Outcome::Pass(Some(note)) = &r.outcome {
        println!("#   {}", one_line(note));
    }
}

/// Prints the final line.
pub fn tap_footer(totals: Totals) {
    println!("{}", totals.line());
}

/// The JSON document of a run.
pub fn json_report(header: &[String], reports: &[CaseReport]) -> serde_json::Value {
    let totals = Totals::of(reports);
    json!({
        "suite": "lockstep-conformance",
        "protocol": "linux-drm-syncobj-v1",
        "environment": header,
        "cases": reports.iter().map(|r| json!({
            "index": r.index,
            "name": r.name,
            "about": r.about,
            "status": r.outcome.status(),
            "reason": r.outcome.reason(),
            "duration_ms": r.duration.as_millis() as u64,
        })).collect::<Vec<_>>(),
        "passed": totals.passed,
        "failed": totals.failed,
        "skipped": totals.skipped,
        "summary": totals.line(),
    })
}

/// Prints the JSON document.
pub fn print_json(header: &[String], reports: &[CaseReport]) {
    let doc = json_report(header, reports);
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| doc.to_string())
    );
}

/// `--list`: one case per line, name then what it asserts.
pub fn print_list(cases: &[Case]) {
    let width = cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for case in cases {
        println!("{:width$}  {}", case.name, case.about);
    }
}

/// A message for the user on stderr (setup errors, usage).
pub fn note(text: &str) {
    eprintln!("lockstep-conformance: {text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(index: usize, outcome: Outcome) -> CaseReport {
        CaseReport {
            index,
            name: "case_name",
            about: "what it checks",
            outcome,
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn tap_lines_have_the_documented_shape() {
        assert_eq!(
            tap_line(&report(3, Outcome::Pass(Some("a note".into())))),
            "ok 3 - case_name"
        );
        assert_eq!(
            tap_line(&report(4, Outcome::Fail("expected x\n  got y".into()))),
            "not ok 4 - case_name: expected x got y"
        );
        assert_eq!(
            tap_line(&report(5, Outcome::Skip("no global".into()))),
            "ok 5 - case_name # SKIP no global"
        );
    }

    #[test]
    fn totals_and_final_line() {
        let reports = [
            report(1, Outcome::Pass(None)),
            report(2, Outcome::Fail("x".into())),
            report(3, Outcome::Skip("y".into())),
            report(4, Outcome::Skip("z".into())),
        ];
        let totals = Totals::of(&reports);
        assert_eq!(totals.line(), "1 passed, 1 failed, 2 skipped");
        let doc = json_report(&["header".into()], &reports);
        assert_eq!(doc["failed"], 1);
        assert_eq!(doc["cases"][1]["status"], "fail");
        assert_eq!(doc["cases"][1]["reason"], "x");
        assert_eq!(doc["cases"][0]["reason"], serde_json::Value::Null);
        assert_eq!(doc["summary"], "1 passed, 1 failed, 2 skipped");
    }
}
