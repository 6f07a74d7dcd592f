//! Fuzzes an ONNX model (decoded, converted, folded), read as `convert` reads it, then every weight.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args = mmdnn_fuzz::network(mmdnn_fuzz::scratch("model.onnx", data));
    if let Ok(loaded) = mmdnn::frontends::onnx::load(&args) {
        mmdnn_fuzz::read_loaded(&loaded);
    }
});
