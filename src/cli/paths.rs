//! The paths a command is given, checked before any work: each input is an existing file (a
//! missing `prefix.npy` is read as `prefix.npz`, as everywhere), each output can be written (its
//! directory exists and it is a regular file if it exists), a model file's extension fits its target
//! (the extensions come from the backend registry), and no output is an input or another
//! output (compared as canonical paths, so `./a/../m.onnx` and symbolic links are seen
//! through). A failed check is a usage error naming the flag, the path and what is wrong.
use crate::backends::Backend;
use crate::weights::resolve_path;
use std::path::{Path, PathBuf};

/// The files of one command: flags and paths, inputs and outputs.
#[derive(Default)]
pub struct Paths {
    inputs: Vec<(&'static str, PathBuf)>,
    outputs: Vec<(&'static str, PathBuf)>,
}

impl Paths {
    pub fn new() -> Paths {
        Paths::default()
    }

    /// An input file given with `flag` (nothing when not given).
    pub fn input(mut self, flag: &'static str, path: Option<&Path>) -> Paths {
        if let Some(p) = path {
            self.inputs.push((flag, p.to_path_buf()));
        }
        self
    }

    /// An output file given with `flag` (nothing when not given).
    pub fn output(mut self, flag: &'static str, path: Option<&Path>) -> Paths {
        if let Some(p) = path {
            self.outputs.push((flag, p.to_path_buf()));
        }
        self
    }

    /// The first problem found, as a usage error message.
    pub fn check(&self) -> Result<(), String> {
        let mut inputs = vec![];
        for (flag, path) in &self.inputs {
            inputs.push((*flag, path, check_input(flag, path)?));
        }
        let mut outputs: Vec<(&str, &PathBuf, PathBuf)> = vec![];
        for (flag, path) in &self.outputs {
            let canonical = check_output(flag, path)?;
            if let Some((in_flag, input, _)) = inputs.iter().find(|(_, _, c)| *c == canonical) {
                return Err(format!(
                    "{flag} {} would overwrite the input {in_flag} {}: write the output \
                     elsewhere",
                    path.display(),
                    input.display()
                ));
            }
            if let Some((other, first, _)) = outputs.iter().find(|(_, _, c)| *c == canonical) {
                return Err(format!(
                    "{flag} {} and {other} {} name the same file",
                    path.display(),
                    first.display()
                ));
            }
            outputs.push((flag, path, canonical));
        }
        Ok(())
    }
}

/// An input: exists and is a file. Returns its canonical path.
fn check_input(flag: &str, path: &Path) -> Result<PathBuf, String> {
    let resolved = resolve_path(path);
    if !resolved.exists() {
        let npz = path.with_extension("npz");
        let nor = if path.extension().is_some_and(|e| e == "npy") {
            format!(" (nor does {})", npz.display())
        } else {
            String::new()
        };
        return Err(format!("{flag} {} does not exist{nor}", path.display()));
    }
    if resolved.is_dir() {
        return Err(format!(
            "{flag} {} is a directory; give the model or weights file in it",
            path.display()
        ));
    }
    std::fs::canonicalize(&resolved).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// An output: not a directory, no device, FIFO or socket, in a directory that exists. Returns
/// its canonical path (its directory's, joined with its name, when it does not exist yet).
/// What a killed earlier run left in that directory is cleaned up first (`output::recover`).
fn check_output(flag: &str, path: &Path) -> Result<PathBuf, String> {
    if path.is_dir() {
        return Err(format!(
            "{flag} {} is a directory; give a file path",
            path.display()
        ));
    }
    if let Some(why) = crate::output::unwritable(path) {
        return Err(format!("{flag} {} {why}", path.display()));
    }
    let Some(name) = path.file_name() else {
        return Err(format!("{flag} {} names no file", path.display()));
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        // The nearest existing ancestor says what is wrong: a file, or nothing at all.
        let blocker = dir
            .ancestors()
            .find(|a| a.exists() && !a.as_os_str().is_empty());
        return Err(match blocker {
            Some(file) if !file.is_dir() => format!(
                "{flag} {}: cannot write there, {} is a file, not a directory",
                path.display(),
                file.display()
            ),
            _ => format!(
                "{flag} {}: cannot write there, directory {} does not exist",
                path.display(),
                dir.display()
            ),
        });
    }
    crate::output::recover(dir);
    if path.exists() {
        return std::fs::canonicalize(path).map_err(|e| format!("{flag} {}: {e}", path.display()));
    }
    let dir = std::fs::canonicalize(dir).map_err(|e| format!("{flag} {}: {e}", dir.display()))?;
    Ok(dir.join(name))
}

/// A model file's extension must be one its target writes (no extension is fine).
pub fn check_model_extension(backend: &dyn Backend, flag: &str, path: &Path) -> Result<(), String> {
    let Some(ext) = path.extension().map(|e| e.to_string_lossy().to_lowercase()) else {
        return Ok(());
    };
    let allowed = backend.model_extensions();
    if allowed.contains(&ext.as_str()) {
        return Ok(());
    }
    let list: Vec<String> = allowed.iter().map(|e| format!(".{e}")).collect();
    Err(format!(
        "{flag} {}: the {} target writes {} files, not .{ext} (name it {})",
        path.display(),
        backend.name(),
        list.join(", "),
        path.with_extension(allowed[0]).display()
    ))
}
