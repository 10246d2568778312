//! lockstep-config: the configuration file model.
#![warn(missing_docs)]
