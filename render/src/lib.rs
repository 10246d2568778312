//! lockstep-render: renderers, frame composition and buffers.
#![warn(missing_docs)]
