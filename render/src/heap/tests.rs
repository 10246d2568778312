//! Unit tests of the heap allocator. Layout and error reporting run everywhere; the
//! allocation tests need the kernel's devices: on a host without them they print a skip line
//! and pass, in the VM (`LOCKSTEP_VM=1`, `vm/test -p lockstep-render`) a missing device fails.

use super::*;

fn in_vm() -> bool {
    std::env::var_os("LOCKSTEP_VM").is_some_and(|v| v == "1")
}

/// Allocates a 64x16 XRGB8888 buffer from `source` alone, or skips loudly (host) / fails (VM).
#[allow(clippy::disallowed_macros)] // the skip line is for the person running the tests
fn alloc_or_skip(source: Source, test: &str) -> Option<HeapBuffer> {
    match HeapAllocator::only(source).allocate(64, 16, Fourcc::XRGB8888) {
        Ok(buffer) => Some(buffer),
        Err(e) if !in_vm() => {
            eprintln!("skipped {test}: {source} unavailable here: {e}");
            None
        }
        Err(e) => panic!("{test}: {source} must work in the VM: {e}"),
    }
}

#[test]
fn linear_layout_aligns_stride_and_pages() {
    let layout = Layout::linear(33, 3, Fourcc::ARGB8888).unwrap();
    assert_eq!(layout.stride, 192); // 132 bytes rounded up to 64
    assert_eq!(layout.size % page_size(), 0);
    assert!(layout.size >= 192 * 3);
    assert_eq!(layout.modifier, Modifier::LINEAR);
    assert_eq!(layout.pixel_offset(1, 2), Some(2 * 192 + 4));
    assert_eq!(layout.pixel_offset(33, 0), None);
    assert_eq!(layout.pixel_offset(0, 3), None);
}

#[test]
fn bad_layouts_are_typed_errors() {
    assert_eq!(
        Layout::linear(4, 4, Fourcc::from_code(*b"NV12")),
        Err(LayoutError::UnsupportedFormat(Fourcc::from_code(*b"NV12")))
    );
    assert!(matches!(
        Layout::linear(0, 4, Fourcc::XRGB8888),
        Err(LayoutError::Empty { .. })
    ));
    assert!(matches!(
        Layout::linear(u32::MAX, 4, Fourcc::XRGB8888),
        Err(LayoutError::TooBig { .. })
    ));
    assert!(matches!(
        Layout::linear(40_000, 40_000, Fourcc::XRGB8888),
        Err(LayoutError::TooBig { .. })
    ));
    assert!(matches!(
        HeapAllocator::new().allocate(0, 1, Fourcc::XRGB8888),
        Err(HeapError::Layout(_))
    ));
}

#[test]
fn fourcc_prints_its_code() {
    assert_eq!(Fourcc::ARGB8888.to_string(), "AR24");
    assert_eq!(Fourcc::XRGB8888.0, 0x3432_5258);
    assert_eq!(format!("{:?}", Fourcc(1)), "0x00000001");
}

#[test]
fn every_failed_fallback_says_why() {
    let allocator = HeapAllocator::with_sources([
        SourceConfig::DmaHeap("/nonexistent/dma_heap/system".into()),
        SourceConfig::Udmabuf("/nonexistent/udmabuf".into()),
        SourceConfig::Dumb(DumbNode::Path("/nonexistent/dri/card0".into())),
    ]);
    let err = allocator.allocate(8, 8, Fourcc::XRGB8888).unwrap_err();
    let HeapError::Exhausted { attempts } = &err else {
        panic!("expected Exhausted, got {err:?}");
    };
    let sources: Vec<Source> = attempts.iter().map(|a| a.source).collect();
    assert_eq!(sources, [Source::DmaHeap, Source::Udmabuf, Source::Dumb]);
    assert!(attempts
        .iter()
        .all(|a| matches!(a.error, SourceError::Open { .. })));
    let text = err.to_string();
    for needle in [
        "dma-heap: cannot open /nonexistent/dma_heap/system: No such file",
        "udmabuf: cannot open /nonexistent/udmabuf",
        "dumb buffer: cannot open /nonexistent/dri/card0",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from {text:?}");
    }
    assert!(HeapAllocator::with_sources([])
        .allocate(8, 8, Fourcc::XRGB8888)
        .unwrap_err()
        .to_string()
        .contains("no allocator is configured"));
}

#[test]
fn a_non_drm_node_fails_create_dumb() {
    let allocator =
        HeapAllocator::with_sources([SourceConfig::Dumb(DumbNode::Path("/dev/null".into()))]);
    let err = allocator.allocate(8, 8, Fourcc::XRGB8888).unwrap_err();
    let HeapError::Exhausted { attempts } = err else {
        panic!("expected Exhausted");
    };
    assert!(matches!(attempts[0].error, SourceError::CreateDumb { .. }));
}

/// Fill, read back, write through a guard, read back through a second mapping of a cloned fd.
fn round_trip(buffer: &HeapBuffer) {
    let layout = *buffer.layout();
    assert_eq!((layout.width, layout.height), (64, 16));
    assert!(layout.stride >= 64 * 4);
    assert_eq!(
        buffer.pixel(5, 5).unwrap(),
        Some(0),
        "fresh buffers are zeroed"
    );
    buffer.fill(0xff20_4060).unwrap();
    assert_eq!(buffer.pixel(63, 15).unwrap(), Some(0xff20_4060));
    {
        let mut map = buffer.map().unwrap();
        assert!(map.len() >= layout.stride as usize * 16);
        let mut rw = map.access::<ReadWrite>().unwrap();
        let at = layout.pixel_offset(1, 2).unwrap();
        assert_eq!(&rw[at..at + 4], &[0x60, 0x40, 0x20, 0xff]);
        rw[at..at + 4].copy_from_slice(&0xff0a_0b0cu32.to_le_bytes());
        rw.end().unwrap();
    }
    let twin = HeapBuffer {
        fd: buffer.try_clone_fd().unwrap(),
        layout,
        source: buffer.source(),
    };
    assert_eq!(twin.pixel(1, 2).unwrap(), Some(0xff0a_0b0c));
    assert_eq!(twin.pixel(2, 2).unwrap(), Some(0xff20_4060));
    assert_eq!(twin.pixel(64, 0).unwrap(), None);
}

#[test]
fn dma_heap_round_trip() {
    if let Some(buffer) = alloc_or_skip(Source::DmaHeap, "dma_heap_round_trip") {
        assert_eq!(buffer.source(), Source::DmaHeap);
        round_trip(&buffer);
    }
}

#[test]
fn udmabuf_round_trip() {
    if let Some(buffer) = alloc_or_skip(Source::Udmabuf, "udmabuf_round_trip") {
        assert_eq!(buffer.source(), Source::Udmabuf);
        round_trip(&buffer);
    }
}

#[test]
fn dumb_round_trip() {
    if let Some(buffer) = alloc_or_skip(Source::Dumb, "dumb_round_trip") {
        assert_eq!(buffer.source(), Source::Dumb);
        round_trip(&buffer);
    }
}

#[test]
#[allow(clippy::disallowed_macros)]
fn default_order_prefers_dma_heap() {
    match HeapAllocator::new().allocate(16, 16, Fourcc::ARGB8888) {
        Ok(buffer) => {
            if Path::new(DMA_HEAP_SYSTEM).exists() {
                assert_eq!(buffer.source(), Source::DmaHeap);
            }
        }
        Err(e) if !in_vm() => eprintln!("skipped default_order_prefers_dma_heap: {e}"),
        Err(e) => panic!("the VM has every allocator: {e}"),
    }
}

#[test]
fn fallback_skips_a_broken_first_choice() {
    let allocator = HeapAllocator::with_sources([
        SourceConfig::DmaHeap("/nonexistent/dma_heap/system".into()),
        SourceConfig::standard(Source::Udmabuf),
    ]);
    match allocator.allocate(16, 16, Fourcc::ARGB8888) {
        Ok(buffer) => assert_eq!(buffer.source(), Source::Udmabuf),
        Err(HeapError::Exhausted { attempts }) => {
            assert!(!in_vm(), "udmabuf must work in the VM: {attempts:?}");
            assert_eq!(attempts.len(), 2);
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn allocations_do_not_leak_fds() {
    // Other tests run in parallel on the host; in the VM tests run one at a time.
    for source in [Source::DmaHeap, Source::Udmabuf, Source::Dumb] {
        let Some(first) = alloc_or_skip(source, "allocations_do_not_leak_fds") else {
            continue;
        };
        drop(first);
        let before = open_fds();
        for _ in 0..50 {
            let buffer = HeapAllocator::only(source)
                .allocate(32, 32, Fourcc::XRGB8888)
                .unwrap();
            buffer.fill(0x1234_5678).unwrap();
        }
        if in_vm() {
            assert_eq!(open_fds(), before, "{source} leaked fds");
        }
    }
}
