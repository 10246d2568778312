//! Toplevel lists: a taskbar (zwlr_foreign_toplevel_manager_v1) sees every window's title,
//! app id, state and output, and its requests do what the key bindings do; the read-only
//! ext_foreign_toplevel_list_v1 sees titles and app ids.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use wayland_client::{Connection, Dispatch, Proxy, QueueHandle};
use wayland_protocols::ext::foreign_toplevel_list::v1::client::{
    ext_foreign_toplevel_handle_v1::{self, ExtForeignToplevelHandleV1},
    ext_foreign_toplevel_list_v1::{self, ExtForeignToplevelListV1},
};
use wayland_protocols_wlr::foreign_toplevel::v1::client::{
    zwlr_foreign_toplevel_handle_v1::{self, ZwlrForeignToplevelHandleV1},
    zwlr_foreign_toplevel_manager_v1::{self, ZwlrForeignToplevelManagerV1},
};

use crate::{
    client::ClientData,
    fixture::{ClientId, Fixture},
    GREEN, RED,
};

/// What the taskbar knows about one window (by handle id).
#[derive(Debug, Default, Clone)]
struct Seen {
    title: String,
    app_id: String,
    states: Vec<u32>,
    outputs: usize,
    closed: bool,
    dones: usize,
}

#[derive(Clone, Default)]
struct Taskbar(
    Arc<Mutex<HashMap<u32, Seen>>>,
    Arc<Mutex<Vec<ZwlrForeignToplevelHandleV1>>>,
);

impl Taskbar {
    /// The window titled `title`.
    fn by_title(&self, title: &str) -> (ZwlrForeignToplevelHandleV1, Seen) {
        let seen = self.0.lock().unwrap();
        let handles = self.1.lock().unwrap();
        handles
            .iter()
            .find_map(|h| {
                let s = seen.get(&h.id().protocol_id())?;
                (s.title == title && !s.closed).then(|| (h.clone(), s.clone()))
            })
            .unwrap_or_else(|| panic!("no window titled {title:?}: {seen:?}"))
    }
    fn get(&self, handle: &ZwlrForeignToplevelHandleV1) -> Seen {
        self.0.lock().unwrap()[&handle.id().protocol_id()].clone()
    }
}

impl Dispatch<ZwlrForeignToplevelManagerV1, Taskbar> for ClientData {
    fn event(
        _: &mut Self,
        _: &ZwlrForeignToplevelManagerV1,
        event: zwlr_foreign_toplevel_manager_v1::Event,
        taskbar: &Taskbar,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwlr_foreign_toplevel_manager_v1::Event::Toplevel { toplevel } = event {
            taskbar.1.lock().unwrap().push(toplevel);
        }
    }

    wayland_client::event_created_child!(ClientData, ZwlrForeignToplevelManagerV1, [
        zwlr_foreign_toplevel_manager_v1::EVT_TOPLEVEL_OPCODE => (ZwlrForeignToplevelHandleV1, TASKBAR.with(|t| t.clone())),
    ]);
}

thread_local! {
    /// Handles are created by the library before the manager's event is dispatched: they
    /// get the taskbar of the test running on this thread.
    static TASKBAR: Taskbar = Taskbar::default();
}

impl Dispatch<ZwlrForeignToplevelHandleV1, Taskbar> for ClientData {
    fn event(
        _: &mut Self,
        handle: &ZwlrForeignToplevelHandleV1,
        event: zwlr_foreign_toplevel_handle_v1::Event,
        taskbar: &Taskbar,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zwlr_foreign_toplevel_handle_v1::Event;
        let mut seen = taskbar.0.lock().unwrap();
        let s = seen.entry(handle.id().protocol_id()).or_default();
        match event {
            Event::Title { title } => s.title = title,
            Event::AppId { app_id } => s.app_id = app_id,
            Event::OutputEnter { .. } => s.outputs += 1,
            Event::OutputLeave { .. } => s.outputs -= 1,
            Event::State { state } => {
                s.states = state
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            }
            Event::Done => s.dones += 1,
            Event::Closed => s.closed = true,
            _ => {}
        }
    }
}

const MAXIMIZED: u32 = 0;
const MINIMIZED: u32 = 1;
const ACTIVATED: u32 = 2;
const FULLSCREEN: u32 = 3;

fn taskbar(f: &mut Fixture, c: ClientId) -> Taskbar {
    let (id, version) = f.client(c).data.globals["zwlr_foreign_toplevel_manager_v1"];
    assert_eq!(version, 3);
    let taskbar = TASKBAR.with(|t| t.clone());
    taskbar.0.lock().unwrap().clear();
    taskbar.1.lock().unwrap().clear();
    let cl = f.client(c);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let _manager: ZwlrForeignToplevelManagerV1 = registry.bind(id, 3, &cl.qh, taskbar.clone());
    f.roundtrip(c);
    f.roundtrip(c);
    taskbar
}

/// Maps a window titled `title` with app id `app_id`.
fn titled_window(f: &mut Fixture, c: ClientId, title: &str, argb: u32) -> crate::client::Toplevel {
    let top = f.map_window(c, 120, 90, argb);
    top.toplevel.set_title(title.into());
    top.toplevel.set_app_id(format!("org.example.{title}"));
    top.surface.commit();
    f.roundtrip(c);
    top
}

fn layout_of(f: &Fixture, title: &str) -> String {
    f.windows()
        .into_iter()
        .find(|w| w.title.as_deref() == Some(title))
        .map(|w| w.layout)
        .unwrap_or_else(|| panic!("no window {title}"))
}

#[test]
fn a_taskbar_sees_the_windows_and_drives_them_like_key_bindings() {
    let mut f = Fixture::new();
    let app = f.add_client();
    let _a = titled_window(&mut f, app, "alpha", RED);
    let bar = f.add_client();
    let tb = taskbar(&mut f, bar);
    let b = titled_window(&mut f, app, "beta", GREEN);
    f.dispatch();
    f.roundtrip(bar);
    let (alpha, seen) = tb.by_title("alpha");
    assert_eq!(seen.app_id, "org.example.alpha");
    assert_eq!(seen.outputs, 1, "output_enter for its output");
    assert!(
        !seen.states.contains(&ACTIVATED),
        "beta has focus: {seen:?}"
    );
    let (beta, seen) = tb.by_title("beta");
    assert!(seen.states.contains(&ACTIVATED), "{seen:?}");

    // activate = focus, as a click or a binding would.
    let seat = f.client(bar).seat.clone();
    alpha.activate(&seat);
    f.roundtrip(bar);
    f.dispatch();
    f.roundtrip(bar);
    assert!(tb.get(&alpha).states.contains(&ACTIVATED));
    assert!(!tb.get(&beta).states.contains(&ACTIVATED));
    let focused = f.windows().into_iter().find(|w| w.focused).unwrap();
    assert_eq!(focused.title.as_deref(), Some("alpha"));

    // maximize / fullscreen go through the layout.
    beta.set_maximized();
    f.roundtrip(bar);
    f.dispatch();
    f.roundtrip(bar);
    assert_eq!(layout_of(&f, "beta"), "maximized");
    assert!(tb.get(&beta).states.contains(&MAXIMIZED));
    beta.unset_maximized();
    beta.set_fullscreen(None);
    f.roundtrip(bar);
    f.dispatch();
    f.roundtrip(bar);
    assert_eq!(layout_of(&f, "beta"), "fullscreen");
    assert!(tb.get(&beta).states.contains(&FULLSCREEN));
    beta.unset_fullscreen();
    f.roundtrip(bar);
    assert_ne!(layout_of(&f, "beta"), "fullscreen");

    // A title change reaches the taskbar.
    b.toplevel.set_title("beta two".into());
    b.surface.commit();
    f.roundtrip(app);
    f.dispatch();
    f.roundtrip(bar);
    assert_eq!(tb.get(&beta).title, "beta two");

    // close asks the window; when it goes, the handle gets `closed`.
    beta.close();
    f.roundtrip(bar);
    f.roundtrip(app);
    assert_eq!(
        f.client(app).data.closed,
        vec![b.toplevel.id().protocol_id()]
    );
    b.toplevel.destroy();
    b.xdg_surface.destroy();
    b.surface.destroy();
    f.roundtrip(app);
    f.dispatch();
    f.roundtrip(bar);
    assert!(tb.get(&beta).closed);
    // Requests on a closed handle are ignored.
    beta.set_maximized();
    f.roundtrip(bar);
    assert_eq!(f.client(bar).protocol_error(), None);
}

#[test]
fn a_taskbar_minimizes_and_restores_windows() {
    let mut f = Fixture::new();
    let app = f.add_client();
    let a = titled_window(&mut f, app, "alpha", RED);
    let b = titled_window(&mut f, app, "beta", GREEN);
    let bar = f.add_client();
    let tb = taskbar(&mut f, bar);
    let (alpha, _) = tb.by_title("alpha");
    let (beta, _) = tb.by_title("beta");
    let sync = |f: &mut Fixture| {
        f.roundtrip(bar);
        f.dispatch();
        f.roundtrip(app);
        f.dispatch();
        f.roundtrip(bar);
    };
    let shown = |f: &Fixture, title: &str| {
        let w = f
            .windows()
            .into_iter()
            .find(|w| w.title.as_deref() == Some(title))
            .unwrap();
        assert_eq!(w.minimized, !w.visible, "{w:?}");
        w.visible
    };

    // set_minimized hides it; the other window gets focus.
    beta.set_minimized();
    sync(&mut f);
    let seen = tb.get(&beta);
    assert!(seen.states.contains(&MINIMIZED), "{seen:?}");
    assert!(!seen.states.contains(&ACTIVATED), "{seen:?}");
    assert!(!shown(&f, "beta"));
    assert!(tb.get(&alpha).states.contains(&ACTIVATED));
    // unset_minimized brings it back, focused.
    beta.unset_minimized();
    sync(&mut f);
    let seen = tb.get(&beta);
    assert!(!seen.states.contains(&MINIMIZED) && seen.states.contains(&ACTIVATED));
    assert!(shown(&f, "beta"));

    // A window that minimizes itself keeps its maximized state, and activate brings it back.
    beta.set_maximized();
    sync(&mut f);
    b.toplevel.set_minimized();
    sync(&mut f);
    let seen = tb.get(&beta);
    assert!(seen.states.contains(&MINIMIZED) && seen.states.contains(&MAXIMIZED));
    assert!(!shown(&f, "beta"));
    let seat = f.client(bar).seat.clone();
    beta.activate(&seat);
    sync(&mut f);
    let seen = tb.get(&beta);
    assert!(!seen.states.contains(&MINIMIZED), "{seen:?}");
    assert!(seen.states.contains(&MAXIMIZED) && seen.states.contains(&ACTIVATED));
    assert!(shown(&f, "beta"));

    // Maximizing (or fullscreening) a minimized window brings it back too.
    alpha.set_minimized();
    sync(&mut f);
    assert!(!shown(&f, "alpha"));
    alpha.set_fullscreen(None);
    sync(&mut f);
    let seen = tb.get(&alpha);
    assert!(!seen.states.contains(&MINIMIZED) && seen.states.contains(&FULLSCREEN));
    assert!(shown(&f, "alpha"));
    assert_eq!(f.client(bar).protocol_error(), None);
    let _ = a;
}

#[test]
fn a_negative_rectangle_is_a_protocol_error() {
    let mut f = Fixture::new();
    let app = f.add_client();
    let a = titled_window(&mut f, app, "alpha", RED);
    let bar = f.add_client();
    let tb = taskbar(&mut f, bar);
    let (alpha, _) = tb.by_title("alpha");
    let cl = f.client(bar);
    let surface = cl.compositor.create_surface(&cl.qh, ());
    alpha.set_rectangle(&surface, 0, 0, -5, 10);
    assert!(f.wait_until(std::time::Duration::from_secs(2), |f| f
        .client(bar)
        .protocol_error()
        .is_some()));
    let (code, interface, _) = f.client(bar).protocol_error().unwrap();
    assert_eq!(
        (code, interface.as_str()),
        (
            zwlr_foreign_toplevel_handle_v1::Error::InvalidRectangle as u32,
            "zwlr_foreign_toplevel_handle_v1"
        )
    );
    let _ = a;
}

/// ext list: titles by handle id.
#[derive(Clone, Default)]
struct ExtList(Arc<Mutex<HashMap<u32, (String, bool)>>>);

impl Dispatch<ExtForeignToplevelListV1, ExtList> for ClientData {
    fn event(
        _: &mut Self,
        _: &ExtForeignToplevelListV1,
        _: ext_foreign_toplevel_list_v1::Event,
        _: &ExtList,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }

    wayland_client::event_created_child!(ClientData, ExtForeignToplevelListV1, [
        ext_foreign_toplevel_list_v1::EVT_TOPLEVEL_OPCODE => (ExtForeignToplevelHandleV1, EXT.with(|e| e.clone())),
    ]);
}

thread_local! {
    static EXT: ExtList = ExtList::default();
}

impl Dispatch<ExtForeignToplevelHandleV1, ExtList> for ClientData {
    fn event(
        _: &mut Self,
        handle: &ExtForeignToplevelHandleV1,
        event: ext_foreign_toplevel_handle_v1::Event,
        list: &ExtList,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let mut map = list.0.lock().unwrap();
        let entry = map.entry(handle.id().protocol_id()).or_default();
        match event {
            ext_foreign_toplevel_handle_v1::Event::Title { title } => entry.0 = title,
            ext_foreign_toplevel_handle_v1::Event::Closed => entry.1 = true,
            _ => {}
        }
    }
}

#[test]
fn the_ext_list_sees_titles_and_closed_windows() {
    let mut f = Fixture::new();
    let app = f.add_client();
    let a = titled_window(&mut f, app, "alpha", RED);
    f.dispatch();
    let reader = f.add_client();
    let (id, _) = f.client(reader).data.globals["ext_foreign_toplevel_list_v1"];
    let list = EXT.with(|e| e.clone());
    list.0.lock().unwrap().clear();
    let cl = f.client(reader);
    let registry = cl.conn.display().get_registry(&cl.qh, ());
    let _l: ExtForeignToplevelListV1 = registry.bind(id, 1, &cl.qh, list.clone());
    f.roundtrip(reader);
    let titles = || -> Vec<(String, bool)> { list.0.lock().unwrap().values().cloned().collect() };
    assert_eq!(titles(), vec![("alpha".to_string(), false)]);
    // Iterations in which nothing a list shows changed send nothing; a later title change
    // is still seen (the lists are compared in place before a snapshot is taken).
    for _ in 0..3 {
        f.dispatch();
        f.roundtrip(reader);
    }
    assert_eq!(titles(), vec![("alpha".to_string(), false)]);
    a.toplevel.set_title("beta".into());
    f.roundtrip(app);
    f.dispatch();
    f.roundtrip(reader);
    assert_eq!(titles(), vec![("beta".to_string(), false)]);
    a.toplevel.destroy();
    a.xdg_surface.destroy();
    f.roundtrip(app);
    f.dispatch();
    f.roundtrip(reader);
    assert_eq!(titles(), vec![("beta".to_string(), true)]);
}
