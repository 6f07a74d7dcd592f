//! Fuzzes an `.npz` weights archive, opened as the IR frontend opens it, every tensor read.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = mmdnn_fuzz::scratch("weights.npz", data);
    if let Ok(reader) = mmdnn::weights::npz::NpzReader::open(&path) {
        mmdnn_fuzz::read_weights(&reader);
    }
});
