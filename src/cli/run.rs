//! `mmdnn run`: runs a model in the reference interpreter and writes every graph output as
//! `<output name>.npy` (names made safe file names, see [`FileNames`]) with a manifest,
//! `outputs.json` (output name → file, shape, dtype), all appearing as one set; with --intermediate every node's outputs
//! too, as `nodes/<node name>.<i>.npy`.
use super::inputs::{feed, InputFlags};
use crate::frontends::{self, SourceArgs};
use crate::interp::Interpreter;
use crate::output::{commit_all, stage};
use crate::weights::npy;
use anyhow::{Context, Result};
use serde_json::json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Model: an IR graph (.pb) or any model file a frontend reads
    #[arg(short = 'n', long = "network", visible_alias = "inputNetwork")]
    pub network: PathBuf,
    /// Weights (.npz, MMdnn's .npy, or the framework's weights file)
    #[arg(short = 'w', long = "weights", visible_alias = "inputWeight")]
    pub weights: Option<PathBuf>,
    /// Source framework (default: from the file extension; .pb is an IR)
    #[arg(short = 'f', long = "framework", value_parser = super::args::source_parser())]
    pub framework: Option<String>,
    #[command(flatten)]
    pub inputs: InputFlags,
    /// Output directory
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// Also write every node's outputs
    #[arg(long)]
    pub intermediate: bool,
    /// Time N more forward passes after the first and print the median and minimum (benchmarks)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub repeat: usize,
}

pub fn run(a: Args) -> Result<i32> {
    let loaded = load_model(a.framework.as_deref(), &a.network, a.weights.clone())?;
    let feeds = feed(&loaded.graph, &a.inputs)?;
    std::fs::create_dir_all(&a.output)
        .with_context(|| format!("cannot create {}", a.output.display()))?;
    let interp = Interpreter::new(&loaded.graph, loaded.weights.as_ref());
    let mut failed = None;
    let outputs = if a.intermediate {
        let dir = a.output.join("nodes");
        std::fs::create_dir_all(&dir)?;
        let mut names = FileNames::default();
        interp.run_all(&feeds, &mut |node, values| {
            let stem = names.claim(&node.name);
            for (i, v) in values.iter().enumerate() {
                let file = dir.join(format!("{stem}.{i}.npy"));
                if let Err(e) = v
                    .to_natural_tensor()
                    .and_then(|t| npy::write_file(&file, &t))
                {
                    failed.get_or_insert(e);
                }
            }
        })?
    } else {
        interp.run(&feeds)?
    };
    if let Some(e) = failed {
        return Err(e);
    }
    if a.repeat > 0 {
        let mut times = (0..a.repeat)
            .map(|_| {
                let start = std::time::Instant::now();
                interp.run(&feeds).map(|_| start.elapsed().as_secs_f64())
            })
            .collect::<Result<Vec<_>>>()?;
        times.sort_by(f64::total_cmp);
        eprintln!(
            "forward pass: median {:.4} s, min {:.4} s over {} runs",
            times[times.len() / 2],
            times[0],
            times.len()
        );
    }
    let mut names = FileNames::default();
    let mut manifest = serde_json::Map::new();
    let mut files = vec![];
    for (i, v) in outputs.iter().enumerate() {
        let name = loaded.graph.output_name(i);
        let file = format!("{}.npy", names.claim(&name));
        let tensor = v.to_natural_tensor()?;
        files.push(npy::stage_file(&a.output.join(&file), &tensor)?);
        println!(
            "{name}  {:?}  -> {}",
            v.shape(),
            a.output.join(&file).display()
        );
        manifest.insert(
            name,
            json!({"file": file, "shape": tensor.info.shape, "dtype": tensor.info.dtype.name()}),
        );
    }
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    // The outputs and their manifest appear together.
    files.push(stage(&a.output.join("outputs.json"), text.as_bytes())?);
    commit_all(files)?;
    Ok(0)
}

/// Loads a model with the named frontend, or the one that recognises the file.
pub fn load_model(
    framework: Option<&str>,
    network: &Path,
    weights: Option<PathBuf>,
) -> Result<frontends::Loaded> {
    let frontend = match framework {
        Some(f) => frontends::find(f)?,
        None => frontends::detect(network)?,
    };
    let args = SourceArgs {
        network: Some(network.to_path_buf()),
        weights,
        ..Default::default()
    };
    frontend.load(&args)
}

/// File name stems for tensor and node names, distinct in one directory: characters outside
/// `[A-Za-z0-9._-]` become `_` (a leading `.` too; an empty name is `output`); a stem already
/// taken — compared without case, for case-insensitive file systems — gets `_2`, `_3`, … in the
/// order the names come.
#[derive(Default)]
pub struct FileNames {
    taken: HashSet<String>,
}

impl FileNames {
    pub fn claim(&mut self, name: &str) -> String {
        let mut clean = crate::output::plain_file_name(name);
        if clean.starts_with('.') {
            clean.replace_range(..1, "_");
        }
        if clean.is_empty() {
            clean = "output".into();
        }
        let stem = (1..)
            .map(|i| match i {
                1 => clean.clone(),
                n => format!("{clean}_{n}"),
            })
            .find(|s| !self.taken.contains(&s.to_lowercase()))
            .expect("a free name exists");
        self.taken.insert(stem.to_lowercase());
        stem
    }
}

#[cfg(test)]
mod tests {
    use super::FileNames;

    #[test]
    fn file_names_are_safe_and_distinct() {
        let mut names = FileNames::default();
        assert_eq!(names.claim("probs/softmax"), "probs_softmax");
        assert_eq!(names.claim("probs_softmax"), "probs_softmax_2");
        assert_eq!(names.claim("Probs_Softmax"), "Probs_Softmax_3");
        assert_eq!(names.claim("../up"), "_._up");
        assert_eq!(names.claim(""), "output");
        assert_eq!(names.claim("x:1"), "x_1");
    }
}
