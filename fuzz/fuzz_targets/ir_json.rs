//! Fuzzes the IR `.json` writer on any encoded GraphDef: `to_json` decodes the bytes as a
//! dynamic message and prints them as protobuf JSON (the library reads no IR `.json`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mmdnn::ir::serialize::to_json(data);
});
