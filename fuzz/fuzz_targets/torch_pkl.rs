//! Fuzzes the description of a `torch.save` state dict's `data.pkl` (the restricted pickle
//! machine with the torch allow-list), in memory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mmdnn::weights::pickle::torch::load_state_dict(data);
});
