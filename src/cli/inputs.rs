//! Graph inputs for `run` and `verify`: `--input NAME=file.npy`, or seeded random values.
use crate::interp::Value;
use crate::ir::{ops::Attrs, DType, Graph};
use crate::weights::npy;
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug)]
pub struct InputFlags {
    /// A graph input from a .npy file: NAME=FILE (repeat for each input)
    #[arg(long = "input", value_name = "NAME=FILE")]
    pub input: Vec<String>,
    /// Feed inputs given no file with seeded random values (standard normal floats)
    #[arg(long = "random-input")]
    pub random_input: bool,
    /// Seed for --random-input
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Size used for unknown (-1) input dims, e.g. the batch (default 1; `verify` without it
    /// runs at two automatic sizes)
    #[arg(long = "unknown-dim")]
    pub unknown_dim: Option<usize>,
    /// The most bytes one value may take while the model runs (e.g. 4G, 512M; default: half
    /// the machine's memory); an op whose output would be larger fails, naming the node
    #[arg(long = "max-memory", value_parser = crate::interp::budget::parse_size)]
    pub max_memory: Option<u64>,
}

/// The value of every graph input, by name.
pub fn feed(graph: &Graph, flags: &InputFlags) -> Result<Vec<(String, Value)>> {
    if let Some(bytes) = flags.max_memory {
        crate::interp::budget::set_max_bytes(bytes);
    }
    let mut files = std::collections::HashMap::new();
    for spec in &flags.input {
        let (name, file) = spec
            .split_once('=')
            .with_context(|| format!("--input '{spec}' is not NAME=FILE"))?;
        if !graph.inputs.iter().any(|i| i == name) {
            bail!(
                "--input names '{name}', which is not a graph input (inputs: {})",
                graph.inputs.join(", ")
            );
        }
        files.insert(name.to_string(), PathBuf::from(file));
    }
    let mut rng = SplitMix::new(flags.seed);
    let mut out = vec![];
    for name in &graph.inputs {
        let value = match files.get(name) {
            Some(file) => Value::from_tensor(&npy::read_file(file)?)
                .with_context(|| format!("input '{name}' from {}", file.display()))?,
            None if flags.random_input => {
                let node = graph.node(name).context("graph input without a node")?;
                let attrs = Attrs::of(node)?;
                let shape: Vec<usize> = attrs
                    .ints("shape")?
                    .iter()
                    .map(|&d| {
                        if d < 0 {
                            flags.unknown_dim.unwrap_or(1)
                        } else {
                            d as usize
                        }
                    })
                    .collect();
                let dtype = attrs.dtype("dtype")?;
                let what = format!("random value for graph input '{name}'");
                crate::interp::budget::check(&shape, dtype.size().max(4), &what)?;
                random_value(dtype, &shape, &mut rng)?
            }
            None => bail!(
                "graph input '{name}' has no value: pass --input {name}=FILE.npy or --random-input"
            ),
        };
        out.push((name.clone(), value));
    }
    Ok(out)
}

/// A seeded random value: standard normal floats, integers 0 to 9 (within the type), bools.
pub fn random_value(dtype: DType, shape: &[usize], rng: &mut SplitMix) -> Result<Value> {
    let n: usize = shape.iter().product();
    Ok(match dtype {
        d if d.is_float() => Value::F32(ArrayD::from_shape_vec(
            IxDyn(shape),
            (0..n).map(|_| rng.normal()).collect(),
        )?),
        DType::Bool => Value::Bool(ArrayD::from_shape_vec(
            IxDyn(shape),
            (0..n).map(|_| rng.next() & 1 == 1).collect(),
        )?),
        // 0 to 9, within the type's range (int2 holds at most 1).
        d => {
            let top = d.int_range().1.min(9) as u64 + 1;
            Value::I64(ArrayD::from_shape_vec(
                IxDyn(shape),
                (0..n).map(|_| (rng.next() % top) as i64).collect(),
            )?)
        }
    })
}

/// SplitMix64: a small, seedable generator (stable across releases, unlike library RNGs).
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal by Box–Muller.
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}
