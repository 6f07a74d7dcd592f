//! The PyTorch commands: code and weights from an IR (`tocode`), a model file from code and
//! weights (`tomodel`), and both in one step from any source (`convert`). A state dict is
//! written natively; TorchScript, `torch.export` and pickled-module files are made by running
//! the generated code with Python (`--python`, `MMDNN_PYTHON`, the active virtual environment,
//! else `python3`). Outputs appear together, whole, or not at all.
use super::{generate, state, Renamed};
use crate::backends::{CodeWeights, IoRename, Written};
use crate::ir::passes::Prepared;
use crate::output::{commit_all, stage, AtomicFile};
use crate::runners;
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;

/// The model file formats `tomodel` and `convert` write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A state dict for the generated class (`torch.load(path, weights_only=True)`).
    StateDict,
    /// `torch.jit.script` (or trace) of the module.
    TorchScript,
    /// `torch.export` program (`.pt2`).
    Export,
    /// The whole module pickled by `torch.save`, as MMdnn wrote it.
    Pickle,
}

impl Format {
    pub const NAMES: [&'static str; 4] = ["state_dict", "torchscript", "export", "pickle"];

    pub fn parse(name: &str) -> Result<Format> {
        Ok(match name {
            "state_dict" => Format::StateDict,
            "torchscript" => Format::TorchScript,
            "export" => Format::Export,
            "pickle" => Format::Pickle,
            other => bail!(
                "unknown PyTorch format '{other}'; use one of {}",
                Format::NAMES.join(", ")
            ),
        })
    }

    /// The format `--format` picked; state_dict when not given.
    pub fn of(opts: &crate::backends::TargetOptions) -> Result<Format> {
        Format::parse(opts.format.as_deref().unwrap_or(Format::NAMES[0]))
    }

    fn name(self) -> &'static str {
        Format::NAMES[self as usize]
    }
}

/// `tocode`: writes the module to `code` and, when asked, its state dict to `weights_out`.
pub fn tocode(model: Prepared<'_>, code: &Path, weights_out: Option<&Path>) -> Result<Written> {
    let g = generate(model)?;
    let mut files = vec![];
    if let Some(path) = weights_out {
        files.push(state::write_state_dict(path, &g.state, &g.weights)?);
    }
    files.push(stage(code, g.code.as_bytes())?);
    commit_all(files)?;
    let mut written = renames(&g.renamed).file("PyTorch code", code);
    if let Some(path) = weights_out {
        written = written.file("PyTorch state dict", path);
    }
    Ok(written)
}

/// The summary's notes on the graph names the code spells as other identifiers: each renamed
/// `forward()` argument, and the layers in one line.
fn renames(renamed: &Renamed) -> Written {
    let mut written = Written::default();
    for (name, arg, why) in &renamed.args {
        written.renamed.push(IoRename {
            kind: "input",
            from: name.clone(),
            to: arg.clone(),
            why: format!("as a forward() argument, {name:?} is {why}"),
        });
    }
    if let Some((name, ident)) = renamed.layers.first() {
        let more = match renamed.layers.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        written.notes.push(format!(
            "names made Python identifiers: {name:?} → {ident}{more}"
        ));
    }
    written
}

/// `tomodel`: makes `out` from the generated `code` and its weights (a state dict written by
/// `tocode -dw`, or the IR weights with their graph prepared).
pub fn tomodel(
    code: &Path,
    weights: CodeWeights<'_, '_>,
    out: &Path,
    format: Format,
    python: Option<&Path>,
) -> Result<Written> {
    let work = crate::output::TempDir::new()?;
    let mut written = Written::default();
    let state_dict = match weights {
        CodeWeights::Native(path) => path.to_path_buf(),
        CodeWeights::Ir(model) => {
            let g = generate(*model)?;
            let path = work.path().join("weights.pth");
            state::write_state_dict(&path, &g.state, &g.weights)?.commit()?;
            written = renames(&g.renamed);
            path
        }
    };
    let file = match format {
        Format::StateDict => copy_into(&state_dict, out)?,
        _ => run_saver(format, code, &state_dict, out, python, work.path())?,
    };
    file.commit()?;
    Ok(written.file(format!("PyTorch {}", format.name()), out))
}

/// `convert`: the module and its model file from a prepared graph; the code is kept next to
/// `out`, named after it (`out.pth` → `out.py`).
pub fn convert(
    model: Prepared<'_>,
    out: &Path,
    format: Format,
    python: Option<&Path>,
) -> Result<Written> {
    let code_path = out.with_extension("py");
    if code_path == out {
        bail!(
            "the output model {} must not be a .py file: the generated code goes there",
            out.display()
        );
    }
    let g = generate(model)?;
    let code_file = stage(&code_path, g.code.as_bytes())?;
    let model_file = match format {
        Format::StateDict => state::write_state_dict(out, &g.state, &g.weights)?,
        _ => {
            let work = crate::output::TempDir::new()?;
            let state_dict = work.path().join("weights.pth");
            state::write_state_dict(&state_dict, &g.state, &g.weights)?.commit()?;
            let code = work
                .path()
                .join(code_path.file_name().context("output has no file name")?);
            std::fs::write(&code, &g.code)?;
            run_saver(format, &code, &state_dict, out, python, work.path())?
        }
    };
    commit_all(vec![model_file, code_file])?;
    Ok(renames(&g.renamed)
        .file("PyTorch code", &code_path)
        .file(format!("PyTorch {}", format.name()), out))
}

/// Whether `path` is a zip written by `torch.save` (it holds a `data.pkl`), not an `.npz`.
pub fn is_state_dict(path: &Path) -> Result<bool> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open weights file {}", path.display()))?;
    let Ok(archive) = zip::ZipArchive::new(file) else {
        return Ok(false);
    };
    let found = archive.file_names().any(|n| n.ends_with("/data.pkl"));
    Ok(found)
}

/// A copy of `from` staged at `to`.
fn copy_into(from: &Path, to: &Path) -> Result<AtomicFile> {
    let mut file = AtomicFile::create(to)?;
    let mut src =
        std::fs::File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    std::io::copy(&mut src, file.file())
        .with_context(|| format!("cannot write {}", to.display()))?;
    Ok(file)
}

/// Runs `save.py` to make `out` in `format`; returns it staged.
fn run_saver(
    format: Format,
    code: &Path,
    state_dict: &Path,
    out: &Path,
    python: Option<&Path>,
    work: &Path,
) -> Result<AtomicFile> {
    let python = runners::python(python);
    let script = work.join("mmdnn_save.py");
    std::fs::write(&script, include_str!("save.py"))?;
    let module = module_name(code);
    let target = work.join("model.out");
    let result = crate::output::run_child(
        Command::new(&python)
            .arg(&script)
            .arg(format.name())
            .arg(&module)
            .arg(code)
            .arg(state_dict)
            .arg(&target),
    )
    .with_context(|| format!("cannot start {}", python.display()))?;
    let stderr = String::from_utf8_lossy(&result.stderr);
    if !result.status.success() {
        if stderr.contains("No module named 'torch'") {
            bail!(
                "saving a PyTorch {} needs torch, which {} lacks; install it with `{} -m pip install torch` (or pass --python, or use --format state_dict, which needs no Python)",
                format.name(),
                python.display(),
                python.display()
            );
        }
        bail!(
            "PyTorch could not save the {} model:\n{stderr}",
            format.name()
        );
    }
    if !stderr.trim().is_empty() {
        eprint!("{stderr}");
    }
    copy_into(&target, out)
}

/// The module name the code is imported under (its file stem when that is an identifier), so
/// a pickled module finds its class again when the code is importable under that name.
fn module_name(code: &Path) -> String {
    let stem = code
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ok = stem
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        stem
    } else {
        "kit_model".to_string()
    }
}
