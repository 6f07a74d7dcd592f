//! The ONNX target's entry in the backend registry: channels-first, `--opset` and
//! `--external-data`, the native writer, and the `onnx.helper` script of [`super::code`].
use super::{code, save, Options};
use crate::backends::{Backend, CodeWeights, TargetOptions, Written};
use crate::ir::passes::layout::Target;
use crate::ir::passes::Prepared;
use anyhow::{bail, Result};
use std::path::Path;

/// ONNX: a `.onnx` file written natively (external data past 2 GB or when asked).
pub struct Onnx;

fn options(opts: &TargetOptions) -> Options {
    Options {
        opset: opts.opset,
        external_data: opts.external_data,
    }
}

impl Backend for Onnx {
    fn name(&self) -> &'static str {
        "onnx"
    }
    fn formats(&self) -> &'static str {
        ".onnx (opset 17 default)"
    }
    fn layout(&self) -> Target {
        Target::ChannelsFirst
    }
    fn model_extensions(&self) -> &'static [&'static str] {
        &["onnx"]
    }
    fn flags(&self) -> &'static [&'static str] {
        &["--opset", "--external-data"]
    }
    fn save_model(&self, model: Prepared<'_>, out: &Path, opts: &TargetOptions) -> Result<Written> {
        save(model, out, options(opts))
    }
    fn emit_code(
        &self,
        model: Prepared<'_>,
        ir_weights: &Path,
        code: &Path,
        weights_out: Option<&Path>,
        opts: &TargetOptions,
    ) -> Result<Written> {
        code::tocode(model, ir_weights, code, weights_out, options(opts))
    }
    /// The script `tocode -f onnx` wrote reads IR weights itself.
    fn reads_weights(&self, code: &Path, _weights: &Path) -> Result<bool> {
        Ok(code.extension().is_some_and(|e| e == "py"))
    }
    fn code_to_model(
        &self,
        code: &Path,
        weights: CodeWeights<'_, '_>,
        out: &Path,
        opts: &TargetOptions,
    ) -> Result<Written> {
        match weights {
            CodeWeights::Native(w) => {
                code::run_script(code, w, out, opts.external_data, opts.python.as_deref())
            }
            CodeWeights::Ir(_) => bail!(
                "{} is not a script written by `tocode -f onnx`: pass it (a .py file) or the IR \
                 graph (.pb) with -n",
                code.display()
            ),
        }
    }
}
