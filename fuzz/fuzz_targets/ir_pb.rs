//! Fuzzes an IR graph `.pb` (ours, or MMdnn 0.3.1's imported), loaded as `convert -sf mmdnn`
//! loads it (validation and folding included), without weights.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = mmdnn_fuzz::scratch("graph.pb", data);
    if let Ok(loaded) = mmdnn::frontends::ir_files::load_ir(&path, None) {
        mmdnn_fuzz::read_loaded(&loaded);
    }
});
