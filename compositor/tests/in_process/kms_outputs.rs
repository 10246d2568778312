//! Output management, power and gamma on vkms (the VM): what the kernel's CRTC says after
//! lockstep changed the mode, turned the display off and on, and set gamma ramps. Like
//! `kms.rs`, these skip with a message without vkms and fail with
//! `LOCKSTEP_REQUIRE_KERNEL=1`.
#![allow(clippy::disallowed_macros)]

use lockstep_protocols::{
    wlr_gamma_control::{GammaControlHandler, GammaRamps},
    wlr_output_management::{
        HeadSettings, ModeRequest, ModeState, OutputConfiguration, OutputManagementHandler,
    },
};

use crate::{
    fixture::Fixture,
    kms::{pipeline, quiesce, stats, vkms, OUTPUT},
};

/// The value the kernel has now for property `name` of the output's CRTC.
fn crtc_prop(f: &mut Fixture, name: &str) -> Option<u64> {
    let p = pipeline(f);
    let crtc = p.crtc();
    p.device()
        .dev
        .props(crtc)
        .expect("CRTC properties")
        .value(name)
}

fn vkms_fixture(test: &str) -> Option<Fixture> {
    let path = vkms(test)?;
    let mut f = Fixture::kms(&path);
    let c = f.add_client();
    f.map_window(c, 300, 200, 0xff20_c040);
    quiesce(&mut f);
    Some(f)
}

#[test]
fn kms_power_off_makes_the_crtc_inactive_and_on_brings_it_back() {
    let Some(mut f) = vkms_fixture("kms_power_off_makes_the_crtc_inactive") else {
        return;
    };
    assert_eq!(crtc_prop(&mut f, "ACTIVE"), Some(1));
    f.server
        .state
        .set_output_power(OUTPUT, false)
        .expect("power off");
    let off = f.wait_until(std::time::Duration::from_secs(3), |f| {
        crtc_prop(f, "ACTIVE") == Some(0)
    });
    assert!(off, "the CRTC is still active");
    let commits = stats(&mut f).commits;
    f.run_for(std::time::Duration::from_millis(200));
    assert_eq!(
        stats(&mut f).commits,
        commits,
        "nothing committed while off"
    );
    f.server
        .state
        .set_output_power(OUTPUT, true)
        .expect("power on");
    quiesce(&mut f);
    assert_eq!(crtc_prop(&mut f, "ACTIVE"), Some(1));
    assert!(stats(&mut f).commits > commits, "a modeset turned it on");
}

#[test]
fn kms_output_management_switches_to_an_offered_mode_and_refuses_others() {
    let Some(mut f) = vkms_fixture("kms_output_management_switches_mode") else {
        return;
    };
    let output = f.server.state.core.output_by_name(OUTPUT).expect("output");
    let mode = output
        .modes()
        .into_iter()
        .find(|m| (m.size.w, m.size.h) == (800, 600))
        .expect("vkms offers 800x600");
    let config = |mode: ModeRequest| OutputConfiguration {
        heads: vec![(
            OUTPUT.to_string(),
            Some(HeadSettings {
                mode: Some(mode),
                ..Default::default()
            }),
        )],
    };
    let state = &mut f.server.state;
    let refused = state.test_configuration(&config(ModeRequest::Custom {
        size: (1000, 999),
        refresh_mhz: 0,
    }));
    assert!(refused.is_err(), "a mode the connector lacks passed test");
    state
        .apply_configuration(&config(ModeRequest::Advertised(ModeState {
            size: (800, 600),
            refresh_mhz: mode.refresh,
            preferred: false,
        })))
        .expect("apply 800x600");
    quiesce(&mut f);
    assert_eq!(pipeline(&mut f).mode().size(), (800, 600));
    let frame = f.screenshot(OUTPUT);
    assert_eq!((frame.width(), frame.height()), (800, 600));
    let presented = f.server.state.core.outputs[OUTPUT].sequence;
    crate::animate(&mut f, crate::fixture::ClientId(0), 3);
    assert!(
        f.server.state.core.outputs[OUTPUT].sequence > presented,
        "flips go on in the new mode"
    );
}

/// A config reload's `[[output]]` goes the prepare-before-update way on KMS: a mode the
/// connector lacks, or turning the output off, rejects the reload with nothing changed; an
/// offered mode and a scale apply.
#[test]
fn kms_config_reload_applies_an_offered_mode_and_rejects_what_kms_cannot_do() {
    let Some(mut f) = vkms_fixture("kms_config_reload_applies_an_offered_mode") else {
        return;
    };
    let config =
        std::env::temp_dir().join(format!("lockstep-kms-reload-{}.toml", std::process::id()));
    f.server.state.core.config_path = Some(config.clone());
    let before = pipeline(&mut f).mode().size();
    let reload = |f: &mut Fixture, text: &str| {
        std::fs::write(&config, text).unwrap();
        let answer = lockstep::ipc::run_action(&mut f.server.state, &["reload-config".to_owned()]);
        quiesce(f);
        answer
    };
    for (text, why) in [
        (
            format!("[[output]]\nname = \"{OUTPUT}\"\nmode = \"1000x999\"\n"),
            "does not offer",
        ),
        (
            format!("[[output]]\nname = \"{OUTPUT}\"\nenabled = false\n"),
            "cannot turn outputs off",
        ),
    ] {
        match reload(&mut f, &text) {
            lockstep::ipc::Response::Error(e) => assert!(e.contains(why), "{e}"),
            other => panic!("{text}: {other:?}"),
        }
        assert_eq!(pipeline(&mut f).mode().size(), before, "{text}");
        let lines = f.server.state.core.notice.lines().to_vec();
        assert!(lines.iter().any(|l| l.contains(why)), "banner: {lines:?}");
    }
    let answer = reload(
        &mut f,
        &format!("[[output]]\nname = \"{OUTPUT}\"\nmode = \"800x600\"\nscale = 2.0\n"),
    );
    let _ = std::fs::remove_file(&config);
    assert!(
        matches!(answer, lockstep::ipc::Response::Done(_)),
        "{answer:?}"
    );
    assert_eq!(pipeline(&mut f).mode().size(), (800, 600));
    let output = f.server.state.core.output_by_name(OUTPUT).expect("output");
    assert_eq!(output.current_scale().fractional_scale(), 2.0);
    assert!(
        f.server.state.core.notice.lines().is_empty(),
        "the banner went away"
    );
    let frame = f.screenshot(OUTPUT);
    assert_eq!((frame.width(), frame.height()), (800, 600));
}

#[test]
fn kms_gamma_ramps_go_to_the_crtc_gamma_lut_and_back() {
    let Some(mut f) = vkms_fixture("kms_gamma_ramps_go_to_the_crtc") else {
        return;
    };
    let output = f.server.state.core.output_by_name(OUTPUT).expect("output");
    let size = GammaControlHandler::gamma_size(&mut f.server.state, &output);
    eprintln!("vkms GAMMA_LUT_SIZE: {size:?}");
    let size = size.expect("vkms has a gamma LUT") as usize;
    let values: Vec<u16> = (0..size * 3).map(|i| (i * 7) as u16).collect();
    assert!(f
        .server
        .state
        .set_gamma(&output, Some(GammaRamps { values })));
    quiesce(&mut f);
    let blob = crtc_prop(&mut f, "GAMMA_LUT").unwrap_or(0);
    assert_ne!(blob, 0, "GAMMA_LUT was set");
    assert!(f.server.state.set_gamma(&output, None));
    quiesce(&mut f);
    assert_eq!(crtc_prop(&mut f, "GAMMA_LUT"), Some(0), "the default again");
}
