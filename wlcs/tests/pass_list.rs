//! Every WLCS case on `wlcs/pass-list.txt` passes against lockstep.
//!
//! The crate is a cdylib and an rlib, so cargo builds the library, plugin included, before
//! this test, into the test binary's own `deps/` directory (a cdylib alone would not be built
//! by `cargo test`, and an older `<profile>/liblockstep_wlcs.so` could be stale). This test
//! hands that plugin to `wlcs/run` (which then builds nothing) and fails with the runner's
//! output if any pass-listed case fails. Without Debian's
//! `wlcs` package it skips with a message, or fails when `LOCKSTEP_REQUIRE_CLIENTS=1` (CI).

use std::{
    path::{Path, PathBuf},
    process::Command,
};

const RUNNER: &str = "/usr/lib/x86_64-linux-gnu/wlcs/wlcs";

/// The plugin cargo built for this test run: `liblockstep_wlcs.so` beside this test binary
/// in `<target>/<profile>/deps/`, else the one `cargo build` put in `<target>/<profile>/`.
fn plugin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe
        .parent()
        .expect("the test binary lives in <target>/<profile>/deps");
    let fresh = deps.join("liblockstep_wlcs.so");
    if fresh.exists() {
        return fresh;
    }
    deps.parent().unwrap_or(deps).join("liblockstep_wlcs.so")
}

#[test]
#[allow(clippy::disallowed_macros)] // test output for the person running the tests
fn pass_list_passes() {
    if !Path::new(RUNNER).exists() {
        let message = format!("{RUNNER} is missing: apt-get install wlcs (scripts/deps does)");
        if std::env::var("LOCKSTEP_REQUIRE_CLIENTS").as_deref() == Ok("1") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
        return;
    }
    let plugin = plugin();
    assert!(
        plugin.exists(),
        "the plugin {} was not built with this test",
        plugin.display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("run");
    let output = Command::new(&script)
        .env("LOCKSTEP_WLCS_PLUGIN", &plugin)
        .output()
        .expect("run wlcs/run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "pass-listed WLCS cases failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
