//! Fuzzes a Keras 3 .keras zip (config.json, metadata.json, model.weights.h5), read as `convert` reads it, then every weight.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args = mmdnn_fuzz::network(mmdnn_fuzz::scratch("model.keras", data));
    if let Ok(loaded) = mmdnn::frontends::keras::load(&args) {
        mmdnn_fuzz::read_loaded(&loaded);
    }
});
