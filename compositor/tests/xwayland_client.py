#!/usr/bin/python3
"""Small X11 clients for lockstep's Xwayland tests (python3-xlib).

Each mode opens $DISPLAY, maps one window filled with a solid colour (its background pixel,
which the X server paints) and keeps running until killed:

  override-redirect X Y W H   a menu-like override-redirect window at X,Y (root coordinates)
  stubborn                    a managed window that says it speaks WM_DELETE_WINDOW but
                              ignores it (the second close must kill it)
  fullscreen                  a managed window that asks for _NET_WM_STATE_FULLSCREEN once
                              mapped (EWMH client message to the root window)
  fixed W H                   a managed window whose min and max size are both W x H
  take-focus                  a managed window with the input hint false that speaks
                              WM_TAKE_FOCUS: prints "take-focus" for each WM_TAKE_FOCUS
  hostile                     a mapped window with malformed ICCCM/EWMH properties (short
                              size hints and WM_HINTS, WM_CLASS without NULs, invalid UTF-8
                              in _NET_WM_NAME, a transient-for window that does not exist, a
                              junk window type) and 200 windows that are never mapped
"""

import sys
import time

from Xlib import X, Xatom, Xutil, display
from Xlib.protocol import event

COLOURS = {
    "override-redirect": 0xFF0000,
    "stubborn": 0x00C000,
    "fullscreen": 0x0000FF,
    "fixed": 0xFFFF00,
    "hostile": 0xFF00FF,
    "take-focus": 0x808080,
}


def make_hostile(d, window):
    """Properties with the right names and wrong contents."""
    def atom(name):
        return d.intern_atom(name)

    window.change_property(Xatom.WM_NORMAL_HINTS, Xatom.WM_SIZE_HINTS, 32, [0xFFFFFFFF, 5, 7])
    window.change_property(Xatom.WM_HINTS, Xatom.WM_HINTS, 32, [1])
    window.change_property(Xatom.WM_CLASS, Xatom.STRING, 8, b"no-nul-terminators")
    window.change_property(atom("_NET_WM_NAME"), atom("UTF8_STRING"), 8, b"\xff\xfe\xc3(")
    window.change_property(Xatom.WM_TRANSIENT_FOR, Xatom.WINDOW, 32, [0x7FFFFFF0])
    window.change_property(atom("_NET_WM_WINDOW_TYPE"), Xatom.ATOM, 32, [0xFFFFFF])
    window.change_property(atom("WM_PROTOCOLS"), Xatom.ATOM, 32, [])
    window.change_property(atom("_MOTIF_WM_HINTS"), Xatom.CARDINAL, 32, [2])
    window.change_property(atom("_NET_WM_STATE"), Xatom.ATOM, 32, [0, 1, 2, 3])


def main():
    mode = sys.argv[1]
    d = display.Display()
    screen = d.screen()
    root = screen.root
    override = mode == "override-redirect"
    if override:
        x, y, w, h = (int(v) for v in sys.argv[2:6])
    elif mode == "fixed":
        x, y = 0, 0
        w, h = (int(v) for v in sys.argv[2:4])
    else:
        x, y, w, h = 0, 0, 300, 200
    window = root.create_window(
        x, y, w, h, 0, screen.root_depth,
        background_pixel=COLOURS[mode],
        override_redirect=override,
        event_mask=X.StructureNotifyMask | X.ExposureMask,
    )
    window.set_wm_name("lockstep-test-" + mode)
    window.set_wm_class("lockstep-test", "LockstepTest")
    protocols = d.intern_atom("WM_PROTOCOLS")
    take_focus = d.intern_atom("WM_TAKE_FOCUS")
    if mode == "take-focus":
        # ICCCM "globally active": no input hint, focus only through WM_TAKE_FOCUS.
        window.set_wm_hints(flags=Xutil.InputHint, input=0)
        window.change_property(protocols, Xatom.ATOM, 32, [take_focus])
    elif mode != "hostile":
        delete = d.intern_atom("WM_DELETE_WINDOW")
        window.change_property(protocols, Xatom.ATOM, 32, [delete])
    if mode == "hostile":
        make_hostile(d, window)
        for i in range(200):
            # Never mapped: the WM must not wait for them.
            root.create_window(i, i, 10, 10, 0, screen.root_depth)
    if mode == "fixed":
        window.set_wm_normal_hints(
            flags=Xutil.PMinSize | Xutil.PMaxSize, min_width=w, min_height=h, max_width=w, max_height=h
        )
    window.map()
    d.flush()
    if mode == "fullscreen":
        # Wait until the window manager mapped it, then ask like EWMH says.
        while d.next_event().type != X.MapNotify:
            pass
        state = d.intern_atom("_NET_WM_STATE")
        fullscreen = d.intern_atom("_NET_WM_STATE_FULLSCREEN")
        message = event.ClientMessage(
            window=window, client_type=state, data=(32, [1, fullscreen, 0, 1, 0])
        )
        root.send_event(
            message, event_mask=X.SubstructureRedirectMask | X.SubstructureNotifyMask
        )
        d.flush()
    print("mapped", flush=True)
    while True:
        # Everything, WM_DELETE_WINDOW included, is read and ignored; WM_TAKE_FOCUS is told.
        if d.pending_events():
            e = d.next_event()
            if (
                e.type == X.ClientMessage
                and e.client_type == protocols
                and e.data[1][0] == take_focus
            ):
                print("take-focus", flush=True)
        else:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
