//! lockstep-render: pixels that do not depend on a particular renderer.
//!
//! lockstep's renderers (pixman on the headless backend and for KMS devices without a GPU,
//! GLES on the nested backend) live behind smithay's `Renderer` traits in the compositor; what
//! they all share sits here, free of smithay so it can be unit-tested on its own:
//!
//! - [`Frame`]: a captured frame in memory (screenshots, screencopy, tests), with PNG encoding
//!   and [`FrameStats`] to tell a real picture from a blank one;
//! - [`cursor`]: the default pointer image, drawn in code so lockstep needs no cursor theme;
//! - [`kms`]: the atomic plane pipeline (prepare, commit, cleanup) for the KMS backend;
//! - [`heap`]: linear dmabufs without a GPU (dma-heap, udmabuf, dumb buffers) with bracketed
//!   CPU access, for clients in tests and the conformance suite.
//!
//! ```
//! use lockstep_render::{Frame, PixelFormat};
//! let frame = Frame::filled(4, 2, PixelFormat::Xrgb8888, 0xff20_4060);
//! assert_eq!(frame.pixel(3, 1), Some([0x20, 0x40, 0x60, 0xff]));
//! let png = frame.encode_png().unwrap();
//! assert_eq!(&png[1..4], b"PNG");
//! ```
#![warn(missing_docs)]

pub mod cursor;
mod frame;
pub mod heap;
pub mod kms;

pub use frame::{Frame, FrameError, FrameStats, PixelFormat};
