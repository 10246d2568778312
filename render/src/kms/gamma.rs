//! The CRTC's `GAMMA_LUT`, changed like every other property: as part of a prepared frame.
//!
//! [`OutputPipeline::set_gamma`](super::OutputPipeline::set_gamma) only records the wanted
//! ramps. The next prepare creates the property blob (fallible: it allocates in the
//! kernel) and the frame's request sets `GAMMA_LUT` to it, so the `TEST_ONLY` check covers
//! it too; a frame dropped before its commit destroys the new blob again ([`PreparedGamma`]
//! is RAII). After the commit the blob that was in force before is destroyed (the kernel
//! keeps its own reference while it uses it). `None` sets `GAMMA_LUT` to 0: the driver's
//! linear default. After a VT switch the ramps in force are set again with the modeset.
//! A change whose blob cannot be created, or that `TEST_ONLY` refuses, is given up (logged)
//! so that the frame's retry, and every frame after it, goes ahead without it.

use std::os::fd::AsFd;

use drm::control::Device as _;

use super::{buffers::SharedDevice, KmsError, Props};

/// One entry of the kernel's `struct drm_color_lut`: 16-bit red, green, blue, reserved.
const LUT_ENTRY_BYTES: usize = 8;

/// The gamma state of one CRTC.
#[derive(Debug, Default)]
pub(crate) struct Gamma {
    /// `GAMMA_LUT_SIZE`; `None` when the CRTC has no `GAMMA_LUT`.
    size: Option<u32>,
    /// The ramps in force (`None`: the default), for setting again after a VT switch.
    current: Option<Vec<u16>>,
    /// A change to make with the next frame: `Some(None)` back to the default.
    pending: Option<Option<Vec<u16>>>,
    /// The blob in force, destroyed when another replaces it.
    blob: Option<u32>,
}

/// A created blob (or 0 for the default) waiting for its commit; dropped uncommitted, it
/// destroys the blob.
#[derive(Debug)]
pub(crate) struct PreparedGamma {
    dev: SharedDevice,
    blob: u32,
    ramps: Option<Vec<u16>>,
    committed: bool,
}

impl PreparedGamma {
    /// The value for `GAMMA_LUT`.
    pub(crate) fn blob(&self) -> u64 {
        u64::from(self.blob)
    }
}

impl Drop for PreparedGamma {
    fn drop(&mut self) {
        if !self.committed && self.blob != 0 {
            let _ = self.dev.dev.destroy_property_blob(u64::from(self.blob));
        }
    }
}

impl Gamma {
    /// Reads the CRTC's gamma support from its properties.
    pub(crate) fn new(crtc_props: &Props) -> Self {
        let size = crtc_props
            .has("GAMMA_LUT")
            .then(|| crtc_props.value("GAMMA_LUT_SIZE"))
            .flatten()
            .and_then(|s| u32::try_from(s).ok())
            .filter(|s| *s > 0);
        Self {
            size,
            ..Self::default()
        }
    }

    /// The blob in force (destroyed with the pipeline).
    pub(crate) fn blob_in_force(&self) -> Option<u32> {
        self.blob
    }

    /// Entries per ramp, when the CRTC has a gamma LUT.
    pub(crate) fn size(&self) -> Option<u32> {
        self.size
    }

    /// Records ramps (3 × size values: red, green, blue) for the next frame.
    pub(crate) fn set(&mut self, ramps: Option<Vec<u16>>) -> Result<(), KmsError> {
        let size = self
            .size
            .ok_or_else(|| KmsError::MissingProperty("GAMMA_LUT".into()))?;
        if let Some(r) = &ramps {
            if r.len() != size as usize * 3 {
                return Err(KmsError::BadBuffer(format!(
                    "gamma ramps of {} values for a LUT of size {size}",
                    r.len()
                )));
            }
        }
        self.pending = Some(ramps);
        Ok(())
    }

    /// Whether a change waits for the next frame.
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Gives up the pending change (its blob could not be made, or `TEST_ONLY` refused it):
    /// the frame is prepared again without it.
    pub(crate) fn discard_pending(&mut self) {
        self.pending = None;
    }

    /// Sets the ramps in force again with the next frame (after a VT switch).
    pub(crate) fn reapply(&mut self) {
        if self.size.is_some() && self.pending.is_none() {
            self.pending = Some(self.current.clone());
        }
    }

    /// Creates the blob of a pending change (the fallible part), if there is one.
    pub(crate) fn prepare(&self, dev: &SharedDevice) -> Result<Option<PreparedGamma>, KmsError> {
        let Some(pending) = &self.pending else {
            return Ok(None);
        };
        let blob = match pending {
            None => 0,
            Some(ramps) => {
                let n = ramps.len() / 3;
                let mut bytes = vec![0u8; n * LUT_ENTRY_BYTES];
                for (i, entry) in bytes.chunks_exact_mut(LUT_ENTRY_BYTES).enumerate() {
                    entry[0..2].copy_from_slice(&ramps[i].to_ne_bytes());
                    entry[2..4].copy_from_slice(&ramps[n + i].to_ne_bytes());
                    entry[4..6].copy_from_slice(&ramps[2 * n + i].to_ne_bytes());
                }
                drm_ffi::mode::create_property_blob(dev.dev.as_fd(), &mut bytes)
                    .map_err(|e| KmsError::io("creating the gamma LUT blob", e))?
                    .blob_id
            }
        };
        Ok(Some(PreparedGamma {
            dev: dev.clone(),
            blob,
            ramps: pending.clone(),
            committed: false,
        }))
    }

    /// The prepared change was committed: it is in force, the old blob goes.
    pub(crate) fn committed(&mut self, mut prepared: PreparedGamma) {
        prepared.committed = true;
        if let Some(old) = self.blob.take().filter(|b| *b != 0) {
            let _ = prepared.dev.dev.destroy_property_blob(u64::from(old));
        }
        self.blob = (prepared.blob != 0).then_some(prepared.blob);
        self.current = prepared.ramps.take();
        self.pending = None;
    }
}
