//! Rust types generated from `proto/` by build.rs.
#![allow(clippy::all, missing_docs)]
include!(concat!(env!("OUT_DIR"), "/mmdnn.ir.rs"));

/// The compiled descriptor set of every schema in `proto/` (for protobuf JSON).
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
