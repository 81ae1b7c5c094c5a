//! The `kammer` binary's library half: the configuration file and its validation, and the
//! audit log.
//!
//! The configuration is read in two steps: TOML is parsed into a raw shape that rejects unknown
//! keys, then every value is validated into a [`config::Config`], which cannot be built any other
//! way. All problems are reported together, each naming its key.

pub mod audit;
pub mod config;
