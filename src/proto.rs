//! Rust types generated from `proto/` by build.rs.
#![allow(clippy::all, missing_docs)]
include!(concat!(env!("OUT_DIR"), "/mmdnn.ir.rs"));

/// The ONNX model format (package `onnx`, proto/onnx/onnx.proto).
pub mod onnx {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

/// The compiled descriptor set of every schema in `proto/` (for protobuf JSON).
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
