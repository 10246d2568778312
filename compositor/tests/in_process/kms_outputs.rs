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
    fixture::{rgb, Fixture},
    kms::{
        crc_now, fullscreen_client, kms_backend, pipeline, planes, quiesce, reference_crc, stats,
        sync_device, vkms, OUTPUT,
    },
};
use lockstep_render::kms::{drm::control::crtc, SharedDevice};
use lockstep_vm_support::crc::CrcReader;

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
    // Off and on again: it comes back in the mode it had.
    let state = &mut f.server.state;
    state.apply_configuration(&off_config()).expect("off");
    state.apply_configuration(&on_config()).expect("on");
    quiesce(&mut f);
    assert_eq!(pipeline(&mut f).mode().size(), (800, 600));
    let frame = f.screenshot(OUTPUT);
    assert_eq!((frame.width(), frame.height()), (800, 600));
}

/// A config reload's `[[output]]` goes the prepare-before-update way on KMS: a mode the
/// connector lacks rejects the reload with nothing changed; an offered mode and a scale
/// apply.
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
    {
        let (text, why) = (
            format!("[[output]]\nname = \"{OUTPUT}\"\nmode = \"1000x999\"\n"),
            "does not offer",
        );
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

/// What the kernel says about the output's CRTC, connector and primary plane.
#[derive(Debug, PartialEq, Eq)]
struct KernelState {
    crtc_active: Option<u64>,
    crtc_mode_blob: Option<u64>,
    connector_crtc: Option<u64>,
    primary_fb: Option<u64>,
    primary_crtc: Option<u64>,
}

/// The device and the ids to read [`KernelState`] with after the output's pipeline is gone.
struct KernelView {
    dev: SharedDevice,
    crtc: crtc::Handle,
    connector: lockstep_render::kms::drm::control::connector::Handle,
}

impl KernelView {
    fn of(f: &mut Fixture) -> Self {
        let p = pipeline(f);
        Self {
            dev: p.device().clone(),
            crtc: p.crtc(),
            connector: p.connector().handle,
        }
    }

    fn read(&self) -> KernelState {
        let crtc = self.dev.dev.props(self.crtc).expect("CRTC properties");
        let connector = self.dev.dev.props(self.connector).expect("connector");
        let planes = self.dev.dev.planes_for(self.crtc).expect("planes");
        KernelState {
            crtc_active: crtc.value("ACTIVE"),
            crtc_mode_blob: crtc.value("MODE_ID"),
            connector_crtc: connector.value("CRTC_ID"),
            primary_fb: planes.primary.props.value("FB_ID"),
            primary_crtc: planes.primary.props.value("CRTC_ID"),
        }
    }

    fn off(&self) -> bool {
        self.read()
            == KernelState {
                crtc_active: Some(0),
                crtc_mode_blob: Some(0),
                connector_crtc: Some(0),
                primary_fb: Some(0),
                primary_crtc: Some(0),
            }
    }
}

fn off_config() -> OutputConfiguration {
    OutputConfiguration {
        heads: vec![(OUTPUT.to_string(), None)],
    }
}

fn on_config() -> OutputConfiguration {
    OutputConfiguration {
        heads: vec![(OUTPUT.to_string(), Some(HeadSettings::default()))],
    }
}

fn head_enabled(f: &mut Fixture) -> bool {
    let heads = OutputManagementHandler::current_heads(&mut f.server.state);
    heads
        .iter()
        .find(|h| h.name == OUTPUT)
        .expect("the head is listed on or off")
        .enabled
}

/// Output management turns the vkms output off for good (the kernel's CRTC inactive with no
/// mode, connector and primary plane unbound; the output out of the layout, its window
/// parked) and on again (the window shown, the CRC that of the same pixels put on screen by
/// a plain modeset). `test` and a refused apply (session away) leave everything as it was.
#[test]
fn kms_output_management_turns_the_output_off_and_on() {
    let Some(path) = vkms("kms_output_management_turns_the_output_off_and_on") else {
        return;
    };
    let mut f = Fixture::kms(&path);
    let c = f.add_client();
    f.map_window(c, 300, 200, 0xff20_c040);
    quiesce(&mut f);
    let view = KernelView::of(&mut f);
    let lit = view.read();
    assert_eq!(lit.crtc_active, Some(1), "{lit:?}");
    assert_ne!(lit.primary_fb, Some(0), "{lit:?}");

    // `test` checks the disabling commit with TEST_ONLY and changes nothing.
    let state = &mut f.server.state;
    state.test_configuration(&off_config()).expect("test off");
    assert_eq!(view.read(), lit, "test touched the CRTC");
    assert!(state.core.output_by_name(OUTPUT).is_some());

    // Away on another VT, test and apply are refused with nothing changed.
    kms_backend(&mut f).pause();
    let state = &mut f.server.state;
    let refused = state.apply_configuration(&off_config());
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("VT")),
        "{refused:?}"
    );
    assert!(state.test_configuration(&off_config()).is_err());
    assert!(state.core.output_by_name(OUTPUT).is_some());
    let state = &mut f.server.state;
    if let lockstep::backend::Backend::Kms(kms) = &mut state.backend {
        kms.resume(&mut state.core);
    }
    quiesce(&mut f);
    assert_eq!(view.read().crtc_active, Some(1));

    // Off.
    let state = &mut f.server.state;
    state.apply_configuration(&off_config()).expect("apply off");
    assert!(
        state.core.output_by_name(OUTPUT).is_none(),
        "left the layout"
    );
    assert!(state.core.layout.outputs().is_empty());
    assert!(!head_enabled(&mut f), "listed as off");
    let off = f.wait_until(std::time::Duration::from_secs(3), |_| view.off());
    assert!(off, "the CRTC is not off: {:?}", view.read());
    f.run_for(std::time::Duration::from_millis(200));
    assert!(view.off(), "nothing lit it up again: {:?}", view.read());
    assert_eq!(f.client(c).protocol_error(), None);

    // On: the window comes back on it.
    let state = &mut f.server.state;
    state.test_configuration(&on_config()).expect("test on");
    assert!(view.off(), "test of turning on touched the CRTC");
    state.apply_configuration(&on_config()).expect("apply on");
    quiesce(&mut f);
    assert!(head_enabled(&mut f));
    let back = view.read();
    assert_eq!(back.crtc_active, Some(1), "{back:?}");
    assert_ne!(back.crtc_mode_blob, Some(0), "{back:?}");
    let frame = f.screenshot(OUTPUT);
    assert_eq!(
        rgb(&frame, frame.width() as i32 / 2, frame.height() as i32 / 2),
        0x20c040,
        "the window is back on it"
    );
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let on_screen = crc_now(&mut crcs);
    drop(crcs);
    drop(view);
    drop(f);
    assert_eq!(reference_crc(&path, &frame), on_screen);
}

/// `[[output]] enabled` on a config reload takes the same way on KMS: `false` turns the
/// output off, `true` on again; a connector the config turned off at start is listed as an
/// off head and comes on by a reload.
#[test]
fn kms_config_reload_turns_the_output_off_and_on() {
    let Some(path) = vkms("kms_config_reload_turns_the_output_off_and_on") else {
        return;
    };
    let mut config = lockstep_config::Config::default();
    config.render.renderer = lockstep_config::Renderer::Pixman;
    let mut f = Fixture::kms(&path);
    quiesce(&mut f);
    let view = KernelView::of(&mut f);
    let file =
        std::env::temp_dir().join(format!("lockstep-kms-enable-{}.toml", std::process::id()));
    f.server.state.core.config_path = Some(file.clone());
    let reload = |f: &mut Fixture, text: &str| {
        std::fs::write(&file, format!("[render]\nrenderer = \"pixman\"\n{text}")).unwrap();
        let answer = lockstep::ipc::run_action(&mut f.server.state, &["reload-config".to_owned()]);
        assert!(
            matches!(answer, lockstep::ipc::Response::Done(_)),
            "{text}: {answer:?}"
        );
    };
    reload(
        &mut f,
        &format!("[[output]]\nname = \"{OUTPUT}\"\nenabled = false\n"),
    );
    assert!(f.server.state.core.output_by_name(OUTPUT).is_none());
    let off = f.wait_until(std::time::Duration::from_secs(3), |_| view.off());
    assert!(off, "the CRTC is not off: {:?}", view.read());
    reload(
        &mut f,
        &format!("[[output]]\nname = \"{OUTPUT}\"\nenabled = true\n"),
    );
    quiesce(&mut f);
    assert_eq!(view.read().crtc_active, Some(1));
    drop(view);
    drop(f);

    // Off from the start: an off head, turned on by a reload.
    config.outputs = vec![lockstep_config::OutputConfig {
        name: Some(OUTPUT.into()),
        enabled: false,
        ..Default::default()
    }];
    let mut f = Fixture::kms_with_config(&path, config);
    f.settle();
    assert!(f.server.state.core.output_by_name(OUTPUT).is_none());
    assert!(!head_enabled(&mut f));
    f.server.state.core.config_path = Some(file.clone());
    reload(
        &mut f,
        &format!("[[output]]\nname = \"{OUTPUT}\"\nenabled = true\n"),
    );
    quiesce(&mut f);
    let _ = std::fs::remove_file(&file);
    assert!(head_enabled(&mut f));
    let view = KernelView::of(&mut f);
    assert_eq!(view.read().crtc_active, Some(1));
    let frame = f.screenshot(OUTPUT);
    assert_eq!((frame.width(), frame.height()), (1024, 768));
}

/// Turning the output off while a flip of a directly scanned-out client buffer is pending:
/// the disabling commit waits for that flip, the CRTC goes off, and the buffers that were on
/// the plane are released (none is forgotten); once it is on again, the window's buffer is
/// shown and its next one scanned out.
#[test]
fn kms_output_off_during_a_pending_flip_of_a_scanned_out_buffer() {
    let test = "kms_output_off_during_a_pending_flip";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let mut f = Fixture::kms(&path);
    let c = f.add_client();
    let client = fullscreen_client(&mut f, c, &device);
    quiesce(&mut f);
    let view = KernelView::of(&mut f);
    // Buffer `n`: a dmabuf of `xrgb`, its acquire point `n` signalled, release point `n`.
    let show = |f: &mut Fixture, n: u64, xrgb: u32| {
        let (heap, buffer) = client.buffer(f, c, xrgb);
        client.commit_ready(&buffer, n);
        (heap, buffer)
    };
    let scanned_out = |f: &mut Fixture| {
        f.wait_until(std::time::Duration::from_secs(5), |f| {
            planes(f)[0].starts_with("primary: surface") && !pipeline(f).flip_pending()
        })
    };
    let _buffer1 = show(&mut f, 1, 0xff30_a040);
    let shown = scanned_out(&mut f);
    assert!(shown, "scanned out: {:?}", planes(&f));
    let _buffer2 = show(&mut f, 2, 0xff20_30d0);
    let pending = f.wait_until(std::time::Duration::from_secs(3), |f| {
        stats(f).direct == 2 && pipeline(f).flip_pending()
    });
    assert!(pending, "frame 2 in flight: {:?}", stats(&mut f));

    f.server
        .state
        .apply_configuration(&off_config())
        .expect("apply off while a flip is pending");
    let off = f.wait_until(std::time::Duration::from_secs(3), |_| view.off());
    assert!(off, "the CRTC is not off: {:?}", view.read());
    let released = |f: &mut Fixture, point: u64| {
        f.wait_until(std::time::Duration::from_secs(3), |_| {
            client
                .release
                .is_signalled(lockstep_sync::Point(point))
                .unwrap_or(false)
        })
    };
    assert!(released(&mut f, 1), "buffer 1 released");
    // Buffer 2 is still the surface's buffer; replacing it releases it now that no CRTC
    // reads it.
    let _buffer3 = show(&mut f, 3, 0xffc0_4020);
    f.roundtrip(c);
    assert!(
        released(&mut f, 2),
        "buffer 2 released after the CRTC went off"
    );

    f.server
        .state
        .apply_configuration(&on_config())
        .expect("apply on");
    quiesce(&mut f);
    assert_eq!(view.read().crtc_active, Some(1));
    let frame = f.screenshot(OUTPUT);
    assert_eq!(rgb(&frame, 512, 384), 0xc04020, "buffer 3 is shown");
    // The client's next buffer goes on the primary plane again.
    let _buffer4 = show(&mut f, 4, 0xff40_2080);
    let back = scanned_out(&mut f);
    assert!(back, "buffer 4 scanned out: {:?}", planes(&f));
    assert!(released(&mut f, 3), "buffer 3 released");
    assert!(
        !client
            .release
            .is_signalled(lockstep_sync::Point(4))
            .unwrap_or(false),
        "buffer 4 is held while on screen"
    );
    assert_eq!(f.client(c).protocol_error(), None);
}
