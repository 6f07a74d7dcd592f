//! The ONNX reader: models written by the `onnx` package (tests/fixtures/onnx, with ONNX
//! Runtime's outputs) and small models encoded here, covering op versions, constant folding of
//! shape computations, unknown dims, the unsupported-op listing and external data.
mod common;
mod data;
mod fixtures;
mod folding;
mod gather_elements;
mod op_versions;
mod refusals;
mod runtime_shapes;
