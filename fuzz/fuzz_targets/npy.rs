//! Fuzzes a `.npy` file both ways the CLI reads one: as an array (`run --input`) and as
//! weights (MMdnn's pickled `.npy`, through the restricted pickle machine), every tensor read.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = mmdnn_fuzz::scratch("weights.npy", data);
    let _ = mmdnn::weights::npy::read_file(&path);
    if let Ok(reader) = mmdnn::weights::open(&path) {
        mmdnn_fuzz::read_weights(reader.as_ref());
    }
});
