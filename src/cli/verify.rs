//! `mmdnn verify`: runs a reference and a candidate model on the same inputs and compares them,
//! per graph output and, matching nodes by name, per layer; names the first divergent node.
//! Exit 1 when any output is out of tolerance ("verification out of tolerance" on stderr, and
//! as `failure` in `--json`), or when the models cannot be run.
use super::inputs::{feed, InputFlags};
use super::run::load_model;
use crate::interp::{Interpreter, Value};
use crate::ir::Graph;
use crate::runners;
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Reference model (an IR graph .pb, or a model file a frontend reads)
    #[arg(long)]
    pub reference: PathBuf,
    /// Weights of the reference (default: next to it)
    #[arg(long)]
    pub reference_weights: Option<PathBuf>,
    /// Candidate model
    #[arg(long)]
    pub candidate: PathBuf,
    /// Weights of the candidate (default: next to it)
    #[arg(long)]
    pub candidate_weights: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputFlags,
    /// Absolute tolerance: an element passes when |Δ| ≤ max(atol, rtol·|ref|)
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f64,
    /// Relative tolerance (see --atol); the defaults give |Δ| ≤ 1e-4·max(1, |ref|)
    #[arg(long, default_value_t = 1e-4)]
    pub rtol: f64,
    /// Report every layer whose name both models share, not only the first divergent one
    #[arg(long = "per-layer")]
    pub per_layer: bool,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Python interpreter for models run by their own framework (default: $MMDNN_PYTHON, the
    /// active virtual environment, python3)
    #[arg(long)]
    pub python: Option<PathBuf>,
}

/// One side of the comparison: an IR run by the interpreter, or a model file run by its own
/// framework.
enum Side {
    Ir(crate::frontends::Loaded),
    Native(&'static str, PathBuf),
}

impl Side {
    fn open(model: &std::path::Path, weights: Option<PathBuf>) -> Result<Side> {
        if crate::frontends::ir_files::is_ir_file(model) {
            return Ok(Side::Ir(load_model(None, model, weights)?));
        }
        match runners::framework_of(model) {
            Some(fw) => Ok(Side::Native(fw, model.to_path_buf())),
            None => bail!(
                "cannot tell how to run {}: pass an IR graph (.pb) or a .onnx, .h5, .keras, .pt, .pt2 file or a SavedModel directory",
                model.display()
            ),
        }
    }

    fn graph(&self) -> Option<&Graph> {
        match self {
            Side::Ir(l) => Some(&l.graph),
            Side::Native(..) => None,
        }
    }

    fn run(&self, feeds: &[(String, Value)], python: &std::path::Path) -> Result<Recording> {
        match self {
            Side::Ir(l) => run_recording(&l.graph, l.weights.as_ref(), feeds),
            Side::Native(fw, path) => Ok(Recording {
                outputs: runners::run(fw, path, feeds, python)?
                    .into_iter()
                    .map(|(_, v)| v)
                    .collect(),
                nodes: HashMap::new(),
                order: vec![],
            }),
        }
    }

    fn output_names(&self, n: usize) -> Vec<String> {
        match self {
            Side::Ir(l) => l.graph.outputs.iter().map(|r| r.to_string()).collect(),
            Side::Native(..) => (0..n).map(|i| format!("output {i}")).collect(),
        }
    }
}

/// Comparison of one tensor.
#[derive(Clone, Debug)]
pub struct Diff {
    pub name: String,
    pub max_abs: f64,
    pub max_rel: f64,
    pub argmax_agrees: bool,
    pub within: bool,
}

impl Diff {
    fn to_json(&self) -> serde_json::Value {
        json!({"name": self.name, "max_abs_error": self.max_abs, "max_rel_error": self.max_rel,
               "argmax_agrees": self.argmax_agrees, "within_tolerance": self.within})
    }
}

/// Compares two values element by element.
pub fn compare(
    name: &str,
    reference: &Value,
    candidate: &Value,
    atol: f64,
    rtol: f64,
) -> Result<Diff> {
    if reference.shape() != candidate.shape() {
        bail!(
            "'{name}': reference shape {:?} differs from candidate shape {:?}",
            reference.shape(),
            candidate.shape()
        );
    }
    let (r, c) = (reference.to_f32(), candidate.to_f32());
    let (mut max_abs, mut max_rel, mut within) = (0f64, 0f64, true);
    for (&a, &b) in r.iter().zip(c.iter()) {
        let (a, b) = (a as f64, b as f64);
        let d = (a - b).abs();
        let d = if d.is_nan() && !(a.is_nan() && b.is_nan()) {
            f64::INFINITY
        } else if d.is_nan() {
            0.0
        } else {
            d
        };
        max_abs = max_abs.max(d);
        max_rel = max_rel.max(d / a.abs().max(f64::MIN_POSITIVE));
        if d > atol.max(rtol * a.abs()) {
            within = false;
        }
    }
    let argmax = |v: &ndarray::ArrayD<f32>| {
        v.iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                if x > best.1 {
                    (i, x)
                } else {
                    best
                }
            })
            .0
    };
    Ok(Diff {
        name: name.to_string(),
        max_abs,
        max_rel,
        argmax_agrees: r.is_empty() || argmax(&r) == argmax(&c),
        within,
    })
}

/// A run's graph outputs, every node output keyed "node:i", and those keys in execution order.
struct Recording {
    outputs: Vec<Value>,
    nodes: HashMap<String, Value>,
    order: Vec<String>,
}

fn run_recording(
    graph: &Graph,
    weights: &dyn crate::weights::WeightReader,
    feeds: &[(String, Value)],
) -> Result<Recording> {
    let mut seen = HashMap::new();
    let mut order = vec![];
    let outs = Interpreter::new(graph, weights).run_all(feeds, &mut |node, values| {
        for (i, v) in values.iter().enumerate() {
            let key = format!("{}:{i}", node.name);
            order.push(key.clone());
            seen.insert(key, v.clone());
        }
    })?;
    Ok(Recording {
        outputs: outs,
        nodes: seen,
        order,
    })
}

pub fn run(a: Args) -> Result<i32> {
    let reference = Side::open(&a.reference, a.reference_weights.clone())?;
    let candidate = Side::open(&a.candidate, a.candidate_weights.clone())?;
    if let (Some(r), Some(c)) = (reference.graph(), candidate.graph()) {
        if r.inputs != c.inputs {
            bail!(
                "the models' inputs differ: reference {:?}, candidate {:?}",
                r.inputs,
                c.inputs
            );
        }
    }
    let feeds = match reference.graph().or(candidate.graph()) {
        Some(g) => feed(g, &a.inputs)?,
        None => files_in_order(&a.inputs)?,
    };
    let python = runners::python(a.python.as_deref());
    let reference_run = reference.run(&feeds, &python)?;
    let candidate_run = candidate.run(&feeds, &python)?;
    let (ref_out, ref_nodes, order) = (
        reference_run.outputs,
        reference_run.nodes,
        reference_run.order,
    );
    let (cand_out, cand_nodes) = (candidate_run.outputs, candidate_run.nodes);
    if ref_out.len() != cand_out.len() {
        bail!(
            "reference has {} outputs, candidate {}",
            ref_out.len(),
            cand_out.len()
        );
    }
    let outputs = reference
        .output_names(ref_out.len())
        .iter()
        .zip(ref_out.iter().zip(&cand_out))
        .map(|(name, (x, y))| compare(name, x, y, a.atol, a.rtol))
        .collect::<Result<Vec<_>>>()?;
    let mut layers = vec![];
    for key in &order {
        if let (Some(x), Some(y)) = (ref_nodes.get(key), cand_nodes.get(key)) {
            if x.shape() == y.shape() {
                layers.push(compare(key, x, y, a.atol, a.rtol)?);
            }
        }
    }
    let ok = outputs.iter().all(|d| d.within);
    // Only looked for when an output diverges: a node of the same name may legitimately hold
    // its tensor in another layout (e.g. after `mmdnn layout`) while the outputs agree.
    let first_divergent = (!ok)
        .then(|| layers.iter().find(|d| !d.within).map(|d| d.name.clone()))
        .flatten();
    if a.json {
        let mut doc = json!({
            "ok": ok,
            "failure": (!ok).then_some("verification out of tolerance"),
            "atol": a.atol,
            "rtol": a.rtol,
            "outputs": outputs.iter().map(Diff::to_json).collect::<Vec<_>>(),
            "first_divergent_node": first_divergent,
        });
        if a.per_layer {
            doc["layers"] = layers.iter().map(Diff::to_json).collect();
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        let row = |d: &Diff| {
            println!(
                "  {:<40} max|Δ| {:<12.3e} max rel {:<12.3e} argmax {}  {}",
                d.name,
                d.max_abs,
                d.max_rel,
                if d.argmax_agrees { "same" } else { "DIFFERS" },
                if d.within { "ok" } else { "OUT OF TOLERANCE" }
            )
        };
        println!("tolerance: |Δ| ≤ max({}, {}·|ref|)", a.atol, a.rtol);
        println!("outputs:");
        outputs.iter().for_each(row);
        if a.per_layer {
            println!("layers (matched by name):");
            layers.iter().for_each(row);
        }
        match &first_divergent {
            Some(n) => println!("first divergent node: {n}"),
            None => println!("first divergent node: none"),
        }
    }
    if !ok {
        let bad = outputs.iter().filter(|d| !d.within).count();
        eprintln!(
            "verification out of tolerance: {bad} of {} outputs differ by more than \
             max({}, {}·|ref|)",
            outputs.len(),
            a.atol,
            a.rtol
        );
    }
    Ok(if ok { 0 } else { 1 })
}

/// Inputs from `--input NAME=FILE` flags in the order given (when no side is an IR).
fn files_in_order(flags: &InputFlags) -> Result<Vec<(String, Value)>> {
    if flags.input.is_empty() {
        bail!("neither model is an IR, so inputs cannot be generated: pass --input NAME=FILE.npy for each input");
    }
    flags
        .input
        .iter()
        .map(|spec| {
            let (name, file) = spec
                .split_once('=')
                .with_context(|| format!("--input '{spec}' is not NAME=FILE"))?;
            let t = crate::weights::npy::read_file(std::path::Path::new(file))?;
            Ok((name.to_string(), Value::from_tensor(&t)?))
        })
        .collect()
}
