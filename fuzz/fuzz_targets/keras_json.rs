//! Fuzzes a Keras architecture JSON (model.to_json()), read as `convert` reads it, then every weight.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args = mmdnn_fuzz::network(mmdnn_fuzz::scratch("model.json", data));
    if let Ok(loaded) = mmdnn::frontends::keras::load(&args) {
        mmdnn_fuzz::read_loaded(&loaded);
    }
});
