//! Keyboard resize and move: `resize grow|shrink width|height [N [px|ppt]]` and
//! `move DIRECTION [N px]`, over IPC and through the real keyboard path (Super+Ctrl+arrows),
//! checked on what the clients were configured to and drew.

use lockstep::ipc::WindowInfo;

use crate::{
    desktop::{
        action, drawn_size, one_floating, open, settle, Painted, BLUE, GREEN, KEY_LEFTMETA, OUT,
        RED,
    },
    fixture::{rgb, ClientId, Fixture},
};

// evdev key codes.
const KEY_LEFTCTRL: u32 = 29;
const KEY_RIGHT: u32 = 106;
const KEY_DOWN: u32 = 108;

fn info(f: &Fixture, id: u64) -> WindowInfo {
    f.windows()
        .into_iter()
        .find(|w| w.id == id)
        .unwrap_or_else(|| panic!("no window {id}"))
}

fn focused(f: &Fixture) -> u64 {
    f.windows()
        .into_iter()
        .find(|w| w.focused)
        .map(|w| w.id)
        .expect("a focused window")
}

fn overlap(a: &WindowInfo, b: &WindowInfo) -> bool {
    a.position.0 < b.position.0 + b.size.0
        && b.position.0 < a.position.0 + a.size.0
        && a.position.1 < b.position.1 + b.size.1
        && b.position.1 < a.position.1 + a.size.1
}

/// Presses `keys` in order and releases them in reverse, with a roundtrip after each.
fn chord(f: &mut Fixture, c: ClientId, keys: &[u32]) {
    for &k in keys {
        f.server.state.keyboard_key(k, true, 0);
        f.roundtrip(c);
    }
    for &k in keys.iter().rev() {
        f.server.state.keyboard_key(k, false, 0);
        f.roundtrip(c);
    }
}

/// A tiling fixture with red (the master), green and blue (the stack) open, blue focused,
/// and a client keyboard when `keyboard` is set; the windows and their ids.
fn three_tiled(keyboard: bool) -> (Fixture, ClientId, [Painted; 3], [u64; 3]) {
    let mut f = Fixture::tiling();
    let c = f.add_client();
    if keyboard {
        let cl = f.client(c);
        cl.seat.get_keyboard(&cl.qh, ());
    }
    let mut a = open(&mut f, c, RED);
    let mut b = open(&mut f, c, GREEN);
    let mut d = open(&mut f, c, BLUE);
    settle(&mut f, c, &mut [&mut a, &mut b, &mut d]);
    let ids: Vec<u64> = f.windows().iter().map(|w| w.id).collect();
    let ids = [ids[0], ids[1], ids[2]];
    assert_eq!(focused(&f), ids[2]);
    (f, c, [a, b, d], ids)
}

#[test]
fn resizing_tiled_windows_moves_the_column_edge_and_the_stack_split() {
    let (mut f, c, [mut a, mut b, mut d], [red, green, blue]) = three_tiled(false);
    let before = [info(&f, red), info(&f, green), info(&f, blue)];

    // The master (red) grows by 10 % of the working width; the stack column gives it up.
    action(&mut f, "focus left");
    assert_eq!(focused(&f), red);
    let said = action(&mut f, "resize grow width 10 ppt");
    assert_eq!(said, "master column at 60 %");
    settle(&mut f, c, &mut [&mut a, &mut b, &mut d]);
    let after = [info(&f, red), info(&f, green), info(&f, blue)];
    let grown = after[0].size.0 - before[0].size.0;
    assert!((120..=132).contains(&grown), "master grew by {grown} px");
    assert_eq!(after[1].size.0, before[1].size.0 - grown);
    assert_eq!(after[1].position.0, before[1].position.0 + grown);
    // The clients were configured to the new sizes and drew them.
    assert_eq!(drawn_size(&a), after[0].size);
    assert_eq!(drawn_size(&b), after[1].size);
    let shot = f.screenshot(OUT);
    let edge = before[0].position.0 + before[0].size.0 + 20;
    assert_eq!(
        rgb(&shot, edge, 360),
        RED & 0xff_ffff,
        "red covers x {edge}"
    );

    // Green (top of the stack) takes 100 px of height from blue.
    action(&mut f, "focus right");
    action(&mut f, "focus up");
    assert_eq!(focused(&f), green);
    action(&mut f, "resize grow height 100 px");
    settle(&mut f, c, &mut [&mut a, &mut b, &mut d]);
    let (g, bl) = (info(&f, green), info(&f, blue));
    let taller = g.size.1 - after[1].size.1;
    assert!((99..=101).contains(&taller), "green grew by {taller} px");
    assert_eq!(
        g.size.1 + bl.size.1,
        after[1].size.1 + after[2].size.1,
        "blue gave up what green took"
    );
    assert!(!overlap(&g, &bl), "{g:?} {bl:?}");
    assert_eq!(drawn_size(&d), bl.size);
    // Back to even with the opposite resize.
    action(&mut f, "resize shrink height 100 px");
    settle(&mut f, c, &mut [&mut a, &mut b, &mut d]);
    assert!((info(&f, green).size.1 - after[1].size.1).abs() <= 1);
    // A lone window, the master's height and a fullscreen window: nothing to resize.
    action(&mut f, "focus left");
    assert_eq!(
        action(&mut f, "resize grow height"),
        "nothing to resize that way"
    );
    action(&mut f, "fullscreen");
    assert_eq!(
        action(&mut f, "resize grow width"),
        "nothing to resize that way"
    );
}

#[test]
fn floating_windows_resize_and_move_by_the_amounts_asked() {
    let (mut f, c, mut a) = one_floating();
    let id = focused(&f);
    let start = info(&f, id);
    assert_eq!(start.layout, "floating");

    // Without a unit a floating window changes by pixels (sway's rule).
    action(&mut f, "resize shrink width 300");
    action(&mut f, "resize shrink height 20 ppt");
    settle(&mut f, c, &mut [&mut a]);
    let small = info(&f, id);
    // 20 % of the 720 px working height.
    assert_eq!(small.size, (start.size.0 - 300, start.size.1 - 144));
    assert_eq!(small.position, start.position, "the top-left corner stays");
    assert_eq!(drawn_size(&a), small.size, "the client drew the new size");
    let shot = f.screenshot(OUT);
    let (right, bottom) = (
        small.position.0 + small.size.0,
        small.position.1 + small.size.1,
    );
    assert_eq!(rgb(&shot, right - 2, bottom - 2), RED & 0xff_ffff);
    assert_ne!(rgb(&shot, right + 4, bottom - 2), RED & 0xff_ffff);

    action(&mut f, "move right 300 px");
    action(&mut f, "move up 7");
    settle(&mut f, c, &mut [&mut a]);
    let moved = info(&f, id);
    assert_eq!(
        moved.position,
        (small.position.0 + 300, small.position.1 - 7)
    );
    // Without an amount, a 64 px step; never off the working area.
    action(&mut f, "move left");
    assert_eq!(info(&f, id).position.0, moved.position.0 - 64);
    action(&mut f, "move left 100000 px");
    assert_eq!(info(&f, id).position.0, 0);
    // Growing stops at the output's size.
    action(&mut f, "resize grow width 100000");
    settle(&mut f, c, &mut [&mut a]);
    assert!(info(&f, id).size.0 <= 1280, "{:?}", info(&f, id));
}

#[test]
fn super_ctrl_arrows_resize_through_the_keyboard_and_the_client_never_sees_them() {
    let (mut f, c, [mut a, mut b, mut d], [red, green, blue]) = three_tiled(true);
    let before = [info(&f, red), info(&f, green), info(&f, blue)];

    // Blue is in the stack: Super+Ctrl+Right widens the stack column (10 ppt).
    chord(&mut f, c, &[KEY_LEFTMETA, KEY_LEFTCTRL, KEY_RIGHT]);
    settle(&mut f, c, &mut [&mut a, &mut b, &mut d]);
    let wider = info(&f, blue).size.0 - before[2].size.0;
    assert!((120..=132).contains(&wider), "stack grew by {wider} px");
    assert_eq!(info(&f, red).size.0, before[0].size.0 - wider);
    // Super+Ctrl+Down makes blue taller (10 % of the height) at green's expense.
    chord(&mut f, c, &[KEY_LEFTMETA, KEY_LEFTCTRL, KEY_DOWN]);
    settle(&mut f, c, &mut [&mut a, &mut b, &mut d]);
    let taller = info(&f, blue).size.1 - before[2].size.1;
    assert!((68..=76).contains(&taller), "blue grew by {taller} px");
    assert_eq!(drawn_size(&d), info(&f, blue).size);

    let keys = &f.client(c).data.keys;
    assert!(
        !keys.iter().any(|(k, _)| *k == KEY_RIGHT || *k == KEY_DOWN),
        "the client saw {keys:?}"
    );
}
