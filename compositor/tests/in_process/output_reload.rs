//! `[[output]]` on a live config reload (headless): a changed scale, position or mode reaches
//! `lockstep msg outputs`, wl_output and xdg_output clients and the event stream; an invalid
//! one (rejected by the config parser or by the backend) changes nothing and says why.

use std::{
    io::{BufRead, BufReader},
    time::Duration,
};

use lockstep::{
    events::Event,
    ipc::{self, OutputInfo, Request, Response},
};
use wayland_client::{Connection, Dispatch, QueueHandle};
use wayland_protocols::xdg::xdg_output::zv1::client::{
    zxdg_output_manager_v1::ZxdgOutputManagerV1,
    zxdg_output_v1::{self, ZxdgOutputV1},
};

use crate::{
    client::ClientData,
    desktop::{action, OUT},
    fixture::{ClientId, Fixture},
};

/// The user data of this test's xdg-output objects (its own type, so that these impls do not
/// collide with other tests' on the shared `ClientData`).
struct ReloadWatch;

impl Dispatch<ZxdgOutputManagerV1, ReloadWatch> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZxdgOutputManagerV1,
        _: <ZxdgOutputManagerV1 as wayland_client::Proxy>::Event,
        _: &ReloadWatch,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<ZxdgOutputV1, ReloadWatch> for ClientData {
    fn event(
        data: &mut Self,
        _: &ZxdgOutputV1,
        event: zxdg_output_v1::Event,
        _: &ReloadWatch,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zxdg_output_v1::Event::LogicalPosition { x, y } => {
                data.xdg_output_position = Some((x, y))
            }
            zxdg_output_v1::Event::LogicalSize { width, height } => {
                data.xdg_output_size = Some((width, height))
            }
            _ => {}
        }
    }
}

fn output(f: &Fixture) -> OutputInfo {
    match ipc::answer(&f.server.state, Request::Outputs) {
        Response::Outputs(o) => o.into_iter().find(|o| o.name == OUT).expect(OUT),
        other => panic!("{other:?}"),
    }
}

/// A client with the output's wl_output and its xdg_output.
fn watcher(f: &mut Fixture) -> ClientId {
    let c = f.add_client();
    let cl = f.client(c);
    let (name, version) = *cl
        .data
        .globals
        .get("zxdg_output_manager_v1")
        .expect("zxdg_output_manager_v1");
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let manager =
        registry.bind::<ZxdgOutputManagerV1, _, _>(name, version.min(3), &cl.qh, ReloadWatch);
    let wl_output = cl.output.clone().expect("a wl_output");
    manager.get_xdg_output(&wl_output, &cl.qh, ReloadWatch);
    f.roundtrip(c);
    c
}

#[test]
fn a_reload_applies_output_scale_position_and_mode_and_rejects_invalid_ones() {
    let dir = std::env::temp_dir().join(format!("lockstep-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, "").unwrap();
    let mut f = Fixture::tiling();
    f.server.state.core.config_path = Some(config.clone());
    let c = watcher(&mut f);
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    lockstep::events::listen(&mut f.server.state.core, theirs);
    ours.set_nonblocking(true).unwrap();
    let mut reader = BufReader::new(ours);
    let mut read_events = |f: &mut Fixture| {
        f.run_for(Duration::from_millis(50));
        let mut events = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            events.push(serde_json::from_str::<Event>(line.trim()).expect("a JSON event"));
            line.clear();
        }
        events
    };
    let start = output(&f);
    assert_eq!((start.scale, start.position), (1.0, (0, 0)));
    assert_eq!(f.client(c).data.xdg_output_size, Some((1280, 720)));

    // Scale and position.
    std::fs::write(
        &config,
        "[[output]]\nname = \"HEADLESS-1\"\nscale = 2.0\nposition = { x = 100, y = 50 }\n",
    )
    .unwrap();
    action(&mut f, "reload-config");
    f.roundtrip(c);
    let now = output(&f);
    assert_eq!(
        (now.scale, now.position, now.size),
        (2.0, (100, 50), (1280, 720))
    );
    let seen = &f.client(c).data;
    assert_eq!(seen.output_scale, Some(2));
    assert_eq!(seen.output_position, Some((100, 50)));
    assert_eq!(seen.xdg_output_position, Some((100, 50)));
    assert_eq!(seen.xdg_output_size, Some((640, 360)));
    let events = read_events(&mut f);
    assert!(
        events.iter().any(
            |e| matches!(e, Event::OutputChanged { name, scale, position, .. }
            if name == OUT && *scale == 2.0 && *position == (100, 50))
        ),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::ConfigReloaded { .. })));

    // A mode, by size.
    std::fs::write(
        &config,
        "[[output]]\nname = \"HEADLESS-1\"\nscale = 2.0\nposition = { x = 100, y = 50 }\nmode = \"1920x1080\"\n",
    )
    .unwrap();
    action(&mut f, "reload-config");
    f.roundtrip(c);
    assert_eq!(output(&f).size, (1920, 1080));
    assert_eq!(f.client(c).data.output_mode, Some((1920, 1080)));
    assert_eq!(f.client(c).data.xdg_output_size, Some((960, 540)));
    let applied = output(&f);
    let _ = read_events(&mut f);

    // Invalid for the parser (scale 0), then for the backend (more pixels than a headless
    // output takes): the running config and the output stay, and the reload says why.
    for (text, why) in [
        ("[[output]]\nname = \"HEADLESS-1\"\nscale = 0.0\n", "scale"),
        (
            "[[output]]\nname = \"HEADLESS-1\"\nmode = \"16000x16000\"\n",
            "[[output]]: HEADLESS-1: 16000x16000",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let answer = ipc::run_action(&mut f.server.state, &["reload-config".to_owned()]);
        f.roundtrip(c);
        match answer {
            Response::Error(e) => assert!(e.contains(why), "{e}"),
            other => panic!("{text}: {other:?}"),
        }
        let still = output(&f);
        assert_eq!(
            (still.scale, still.position, still.size),
            (applied.scale, applied.position, applied.size),
            "{text}"
        );
        assert_eq!(f.client(c).data.output_scale, Some(2));
        let lines = f.server.state.core.notice.lines().to_vec();
        assert!(lines.iter().any(|l| l.contains(why)), "banner: {lines:?}");
        let events = read_events(&mut f);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::ConfigRejected { error } if error.contains(why))),
            "{events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, Event::OutputChanged { .. })),
            "{events:?}"
        );
        assert_eq!(f.server.state.core.config.outputs[0].scale, 2.0);
    }

    // Removing the entry goes back to scale 1 and the preferred mode; the position stays.
    std::fs::write(&config, "").unwrap();
    action(&mut f, "reload-config");
    f.roundtrip(c);
    let back = output(&f);
    assert_eq!(
        (back.scale, back.size, back.position),
        (1.0, (1280, 720), (100, 50))
    );
    assert_eq!(f.client(c).data.output_scale, Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}
