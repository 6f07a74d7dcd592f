//! `mmdnn run`: runs a model in the reference interpreter and writes every graph output (and
//! with --intermediate every node's outputs) as `.npy` files.
use super::inputs::{feed, InputFlags};
use crate::frontends::{self, SourceArgs};
use crate::interp::Interpreter;
use crate::weights::npy;
use anyhow::{Context, Result};
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
        interp.run_all(&feeds, &mut |node, values| {
            for (i, v) in values.iter().enumerate() {
                let file = dir.join(format!("{}.{i}.npy", file_stem(&node.name)));
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
    for (r, v) in loaded.graph.outputs.iter().zip(&outputs) {
        let file = a.output.join(format!("{}.npy", file_stem(&r.to_string())));
        npy::write_file(&file, &v.to_natural_tensor()?)?;
        println!("{r}  {:?}  -> {}", v.shape(), file.display());
    }
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
    frontend.read(&args)
}

/// A file name stem for a tensor or node name: characters outside [A-Za-z0-9._-] become '_'
/// (plus a hash of the original when anything was replaced, so distinct names stay distinct).
pub fn file_stem(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean == name && !clean.is_empty() {
        clean
    } else {
        let hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        format!("{clean}-{:08x}", hash as u32)
    }
}
