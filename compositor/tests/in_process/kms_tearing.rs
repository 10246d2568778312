//! wp_tearing_control_v1 on KMS: a fullscreen, directly scanned-out client that accepts
//! tearing gets async page flips where the driver takes them in atomic commits, and normal
//! (vsynced) flips otherwise, with every frame shown and every release point signalled.
//!
//! vkms in Linux 6.12 has no atomic async page flips (`DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP` is
//! 0), so in the VM this tests the fallback; the test reads the capability from the kernel
//! itself and checks the async path instead on a driver that has it.
#![allow(clippy::disallowed_macros)]

use std::{os::fd::AsFd, path::Path, time::Duration};

use lockstep_sync::Point;
use lockstep_vm_support::crc::CrcReader;
use smithay::reexports::drm::{self, Device as _};
use wayland_protocols::wp::tearing_control::v1::client::{
    wp_tearing_control_manager_v1::WpTearingControlManagerV1,
    wp_tearing_control_v1::PresentationHint,
};

use crate::fixture::Fixture;
use crate::kms::{
    bind, crc_now, fullscreen_client, pipeline, planes, quiesce, stats, sync_device, vkms,
    EnterSerial, OUTPUT,
};

/// What the kernel says about async flips in atomic commits on `path` (asked before
/// lockstep opens the device).
fn driver_takes_async_flips(path: &Path) -> bool {
    struct Card(std::fs::File);
    impl AsFd for Card {
        fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
            self.0.as_fd()
        }
    }
    impl drm::Device for Card {}
    let card = Card(std::fs::File::open(path).expect("open the card"));
    let _ = card.set_client_capability(drm::ClientCapability::Atomic, true);
    card.get_driver_capability(drm::DriverCapability::AtomicASyncPageFlip)
        .is_ok_and(|v| v == 1)
}

#[test]
fn kms_tearing_client_gets_async_flips_where_the_driver_has_them_and_vsynced_flips_otherwise() {
    let test = "kms_tearing";
    let (Some(path), Some(device)) = (vkms(test), sync_device(test)) else {
        return;
    };
    let driver_async = driver_takes_async_flips(&path);
    eprintln!("{test}: DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP = {driver_async}");
    let mut f = Fixture::kms(&path);
    assert_eq!(pipeline(&mut f).async_flips_supported(), driver_async);
    let c = f.add_client();
    let client = fullscreen_client(&mut f, c, &device);
    let manager: WpTearingControlManagerV1 = bind(&mut f, c, "wp_tearing_control_manager_v1", 1);
    let cl = f.client(c);
    let control = manager.get_tearing_control(&client.top.surface, &cl.qh, ());
    control.set_presentation_hint(PresentationHint::Async);

    // A game hides the pointer over its window: the cursor plane stays empty, so only the
    // primary plane changes from frame to frame.
    let serial = EnterSerial::default();
    let cl = f.client(c);
    let pointer = cl.seat.get_pointer(&cl.qh, serial.clone());
    f.roundtrip(c);
    let mut crcs = CrcReader::open_vkms(0).expect("crc");
    let mut buffers = Vec::new();
    let colours = [0xff30_a040, 0xff20_30d0, 0xffd0_3020, 0xff10_1010];
    let mut last_crc = crc_now(&mut crcs);
    for (i, colour) in colours.into_iter().enumerate() {
        let point = i as u64 + 1;
        let (heap, buffer) = client.buffer(&mut f, c, colour);
        client.commit_ready(&buffer, point);
        f.roundtrip(c);
        if i == 0 {
            f.server.state.pointer_motion_to((400.0, 300.0).into(), 1);
            quiesce(&mut f);
            f.roundtrip(c);
            let enter = serial.lock().unwrap().expect("pointer entered the window");
            pointer.set_cursor(enter, None, 0, 0);
            f.roundtrip(c);
        }
        quiesce(&mut f);
        let shown = f.wait_until(Duration::from_secs(3), |f| {
            stats(f).direct >= point && !pipeline(f).flip_pending()
        });
        assert!(shown, "frame {point} scanned out: {:?}", stats(&mut f));
        assert!(
            planes(&f)[0].starts_with("primary: surface"),
            "{:?}",
            planes(&f)
        );
        let crc = crc_now(&mut crcs);
        assert_ne!(crc, last_crc, "frame {point} changed the screen");
        last_crc = crc;
        if point > 1 {
            assert!(
                client.release.is_signalled(Point(point - 1)).unwrap(),
                "the buffer frame {point} replaced was released"
            );
        }
        buffers.push((heap, buffer));
    }
    let s = stats(&mut f);
    assert_eq!(
        s.failed_prepares, 0,
        "a refused async flip is not a failed frame: {s:?}"
    );
    if driver_async {
        // The first frame of direct scanout is a normal flip; later ones may tear.
        assert!(s.async_flips >= 1, "{s:?}");
    } else {
        assert_eq!(s.async_flips, 0, "{s:?}");
        assert!(s.direct >= colours.len() as u64, "{s:?}");
        let refused = crate::kms::kms_backend(&mut f)
            .async_refused(OUTPUT)
            .map(str::to_owned);
        assert!(
            refused
                .as_deref()
                .is_some_and(|r| r.contains("DRM_CAP_ATOMIC_ASYNC_PAGE_FLIP")),
            "lockstep tried async flips and says why not: {refused:?}"
        );
    }
    assert_eq!(f.client(c).protocol_error(), None);
}
