//! The PyTorch target's entry in the backend registry: channels-first, `--format` and
//! `--python`, and the commands of [`super::saver`].
use super::saver::{self, Format};
use crate::backends::{Backend, CodeWeights, TargetOptions, Written};
use crate::ir::passes::layout::Target;
use crate::ir::passes::Prepared;
use anyhow::Result;
use std::path::Path;

/// PyTorch: an `nn.Module` source file and its state dict (or TorchScript, `.pt2`, pickle).
pub struct PyTorch;

impl Backend for PyTorch {
    fn name(&self) -> &'static str {
        "pytorch"
    }
    fn formats(&self) -> &'static str {
        "nn.Module source + state_dict .pth"
    }
    fn layout(&self) -> Target {
        Target::ChannelsFirst
    }
    fn flags(&self) -> &'static [&'static str] {
        &["--format"]
    }
    /// State dicts and pickled modules are `.pth`/`.pt` (`.pkl`, `.bin` also seen), TorchScript
    /// `.pt`, `torch.export` programs `.pt2`.
    fn model_extensions(&self) -> &'static [&'static str] {
        &["pth", "pt", "pt2", "pkl", "bin"]
    }
    fn model_formats(&self) -> &'static [&'static str] {
        &Format::NAMES
    }
    fn save_model(&self, model: Prepared<'_>, out: &Path, opts: &TargetOptions) -> Result<Written> {
        saver::convert(model, out, Format::of(opts)?, opts.python.as_deref())
    }
    fn emit_code(
        &self,
        model: Prepared<'_>,
        _ir_weights: &Path,
        code: &Path,
        weights_out: Option<&Path>,
        _opts: &TargetOptions,
    ) -> Result<Written> {
        saver::tocode(model, code, weights_out)
    }
    /// A state dict written by `tocode -dw` is taken as it is; anything else is IR weights.
    fn reads_weights(&self, _code: &Path, weights: &Path) -> Result<bool> {
        saver::is_state_dict(weights)
    }
    fn code_to_model(
        &self,
        code: &Path,
        weights: CodeWeights<'_, '_>,
        out: &Path,
        opts: &TargetOptions,
    ) -> Result<Written> {
        let format = Format::of(opts)?;
        saver::tomodel(code, weights, out, format, opts.python.as_deref())
    }
}
