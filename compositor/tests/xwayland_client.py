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
}


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
    delete = d.intern_atom("WM_DELETE_WINDOW")
    window.change_property(d.intern_atom("WM_PROTOCOLS"), Xatom.ATOM, 32, [delete])
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
        # Everything, WM_DELETE_WINDOW included, is read and ignored.
        if d.pending_events():
            d.next_event()
        else:
            time.sleep(0.05)


if __name__ == "__main__":
    main()
