//! `mmdnn verify`: runs a reference and a candidate model on the same inputs, at one or more
//! input sizes, and compares them per graph output and (matching intermediate tensors by name)
//! per layer; names the first divergent layer. The candidate's interface is mapped onto the
//! reference's (`interface.rs`); the sizes come from `--sizes` or are chosen (`sizes.rs`).
//! Exit 1 when any output is out of tolerance ("verification out of tolerance" on stderr, and
//! as `failure` in `--json`) or a model cannot be run; 2 for bad usage.
mod compare;
mod interface;
mod side;
mod sizes;

use super::args::usage_error;
use super::inputs::{random_value, InputFlags, SplitMix};
use crate::interp::Value;
use crate::ir::DType;
use crate::runners::{self, RunOutput};
use anyhow::{bail, Context, Result};
use compare::{compare_any, Diff, Tolerance};
use interface::{map_inputs, pair_names, Link};
use serde_json::json;
use side::Side;
use sizes::{Input, SizeSpec};
use std::collections::HashMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Reference model: an IR graph (.pb), .onnx, .h5 (Keras 2 with tf_keras, else Keras 3),
    /// .keras, generated PyTorch code (.py, its state dict beside it), .pth/.pt (a state dict
    /// with its .py beside it, or TorchScript), .pt2, or a SavedModel directory
    #[arg(long)]
    pub reference: PathBuf,
    /// Weights of the reference (default: next to it)
    #[arg(long)]
    pub reference_weights: Option<PathBuf>,
    /// Candidate model (same kinds as --reference)
    #[arg(long)]
    pub candidate: PathBuf,
    /// Weights of the candidate (default: next to it)
    #[arg(long)]
    pub candidate_weights: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputFlags,
    /// Input sizes of one run, repeatable (one run each): INPUT=D0xD1x… for a whole input
    /// shape, DIM=SIZE for every dynamic dim of that name, comma-separated
    /// (e.g. --sizes x=1x3x32x32 --sizes x=4x3x48x48, or --sizes batch=2,seq=16). Default: two
    /// runs when an input has a dynamic dim (dim 0 at 1 then 2, other dims at 16 then 24)
    #[arg(long, value_name = "SPEC", value_parser = sizes::parse_spec)]
    pub sizes: Vec<SizeSpec>,
    /// Absolute tolerance: an element passes when |Δ| ≤ max(atol, rtol·|ref|)
    #[arg(long, default_value_t = 1e-4)]
    pub atol: f64,
    /// Relative tolerance (see --atol); the defaults give |Δ| ≤ 1e-4·max(1, |ref|)
    #[arg(long, default_value_t = 1e-4)]
    pub rtol: f64,
    /// List every layer both models expose under the same name, with its error (models run by
    /// their framework expose layers only with this flag)
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

/// One input set fed to a model: (name, value, dtype to feed it as).
type Feeds = Vec<(String, Value, Option<DType>)>;

/// The comparison of one run.
struct RunReport {
    sizes: Vec<(String, Vec<usize>)>,
    outputs: Vec<Diff>,
    layers: Vec<Diff>,
    first_divergent: Option<String>,
}

pub fn run(a: Args) -> Result<i32> {
    for (flag, p) in [("--reference", &a.reference), ("--candidate", &a.candidate)] {
        if !p.exists() {
            return Ok(usage_error(&format!(
                "{flag} {}: no such file or directory",
                p.display()
            )));
        }
    }
    if !a.sizes.is_empty() && !a.inputs.input.is_empty() {
        return Ok(usage_error(
            "--sizes sets the sizes of generated inputs; --input files have their own: pass one or the other",
        ));
    }
    if let Some(bytes) = a.inputs.max_memory {
        crate::interp::budget::set_max_bytes(bytes);
    }
    let python = runners::python(a.python.as_deref());
    let reference = Side::open(&a.reference, a.reference_weights.clone(), &python)?;
    let candidate = Side::open(&a.candidate, a.candidate_weights.clone(), &python)?;
    let files = match input_names(&a.inputs) {
        Ok(f) => f,
        Err(e) => return Ok(usage_error(&format!("{e:#}"))),
    };
    let mut notes = vec![];
    let (primary, links) = match (reference.inputs()?, candidate.inputs()?) {
        (Some(mut r), c) => {
            let links = map_inputs(&r, c.as_deref(), &mut notes)?;
            // Sizes the candidate fixes are the only ones both can run at.
            for link in &links {
                if let Some(dims) = r[link.from].dims.as_mut() {
                    for &(axis, n) in &link.pins {
                        dims[axis] = sizes::Dim::Size(n);
                    }
                }
            }
            (r, links)
        }
        (None, Some(c)) => {
            notes.push("the reference declares no inputs: fed the candidate's, in order".into());
            let links = map_inputs(&c, None, &mut vec![])?;
            (c, links)
        }
        (None, None) if !files.is_empty() => {
            let inputs: Vec<Input> = files
                .iter()
                .map(|(name, _)| Input {
                    name: name.clone(),
                    dims: None,
                    dtype: None,
                })
                .collect();
            let links = map_inputs(&inputs, None, &mut vec![])?;
            (inputs, links)
        }
        (None, None) => {
            return Ok(usage_error(
                "neither model declares its inputs: pass --input NAME=FILE.npy for each input, in the model's order",
            ))
        }
    };
    for (name, _) in &files {
        if !primary.iter().any(|i| &i.name == name) {
            return Ok(usage_error(&format!(
                "--input names '{name}', which is not an input of the reference (inputs: {})",
                primary
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    let files = read_inputs(&files)?;
    let specs: Vec<Option<&SizeSpec>> = if !a.sizes.is_empty() {
        a.sizes.iter().map(Some).collect()
    } else if !files.is_empty() || a.inputs.unknown_dim.is_some() {
        vec![None]
    } else {
        vec![None; sizes::auto_runs(&primary)]
    };
    let mut rng = SplitMix::new(a.inputs.seed);
    let (mut ref_feeds, mut cand_feeds) = (vec![], vec![]);
    for (k, spec) in specs.iter().enumerate() {
        let shapes = match sizes::shapes(&primary, *spec, k, a.inputs.unknown_dim) {
            Ok(s) => s,
            Err(e) => return Ok(usage_error(&format!("{e:#}"))),
        };
        let mut feeds: Feeds = vec![];
        for (input, shape) in primary.iter().zip(&shapes) {
            let value = match files.iter().find(|(n, _)| n == &input.name) {
                Some((_, v)) => v.clone(),
                None if a.inputs.random_input => {
                    let dtype = input.dtype.unwrap_or(DType::F32);
                    let what = format!("random value for input '{}'", input.name);
                    crate::interp::budget::check(shape, dtype.size().max(4), &what)?;
                    random_value(dtype, shape, &mut rng)?
                }
                None => {
                    return Ok(usage_error(&format!(
                        "input '{}' has no value: pass --input {}=FILE.npy or --random-input",
                        input.name, input.name
                    )))
                }
            };
            feeds.push((input.name.clone(), value, input.dtype));
        }
        cand_feeds.push(candidate_feeds(&feeds, &links)?);
        ref_feeds.push(feeds);
    }
    let tol = Tolerance {
        atol: a.atol,
        rtol: a.rtol,
    };
    let ref_runs = reference
        .run(&ref_feeds, a.per_layer || reference.is_ir(), &python)
        .with_context(|| format!("running the reference {}", a.reference.display()))?;
    let cand_runs = candidate
        .run(&cand_feeds, a.per_layer || candidate.is_ir(), &python)
        .with_context(|| format!("running the candidate {}", a.candidate.display()))?;
    let mut reports = vec![];
    for ((feeds, r), c) in ref_feeds.iter().zip(&ref_runs).zip(&cand_runs) {
        let mut report = compare_run(r, c, tol)?;
        report.sizes = feeds
            .iter()
            .map(|(n, v, _)| (n.clone(), v.shape().to_vec()))
            .collect();
        reports.push(report);
    }
    let layered = a.per_layer || (reference.is_ir() && candidate.is_ir());
    let runtimes = [reference.runtime(), candidate.runtime()];
    print_report(&a, &runtimes, &notes, &reports, layered)?;
    let bad: Vec<String> = reports
        .iter()
        .filter(|r| r.outputs.iter().any(|d| !d.within))
        .map(|r| {
            let names: Vec<&str> = r
                .outputs
                .iter()
                .filter(|d| !d.within)
                .map(|d| d.name.as_str())
                .collect();
            format!("{} at {}", names.join(", "), sizes_text(&r.sizes))
        })
        .collect();
    if bad.is_empty() {
        return Ok(0);
    }
    eprintln!(
        "verification out of tolerance: {} differ by more than max({}, {}·|ref|){}",
        bad.join("; "),
        a.atol,
        a.rtol,
        if a.per_layer {
            ""
        } else {
            " (--per-layer names the first layer that diverges)"
        }
    );
    Ok(1)
}

/// The candidate's inputs of one run: the reference's values, in the candidate's order and
/// names, permuted where its layout differs.
fn candidate_feeds(feeds: &Feeds, links: &[Link]) -> Result<Feeds> {
    links
        .iter()
        .map(|l| {
            let (_, v, dtype) = &feeds[l.from];
            let v = match &l.perm {
                Some(p) => permute(v, p)?,
                None => v.clone(),
            };
            Ok((l.name.clone(), v, *dtype))
        })
        .collect()
}

fn permute(v: &Value, p: &[usize]) -> Result<Value> {
    if p.len() != v.shape().len() {
        bail!(
            "a value of shape {:?} cannot be permuted by {p:?}",
            v.shape()
        );
    }
    let axes = ndarray::IxDyn(p);
    Ok(match v {
        Value::F32(a) => Value::F32(
            a.clone()
                .permuted_axes(axes)
                .as_standard_layout()
                .to_owned(),
        ),
        Value::I64(a) => Value::I64(
            a.clone()
                .permuted_axes(axes)
                .as_standard_layout()
                .to_owned(),
        ),
        Value::Bool(a) => Value::Bool(
            a.clone()
                .permuted_axes(axes)
                .as_standard_layout()
                .to_owned(),
        ),
    })
}

/// Compares one run's outputs (matched by name when both models name them alike, else by
/// position) and its layers (matched by name).
fn compare_run(r: &RunOutput, c: &RunOutput, tol: Tolerance) -> Result<RunReport> {
    if r.outputs.len() != c.outputs.len() {
        bail!(
            "the reference returned {} outputs, the candidate {}",
            r.outputs.len(),
            c.outputs.len()
        );
    }
    let ours: Vec<String> = r.outputs.iter().map(|(n, _)| n.clone()).collect();
    let theirs: Vec<String> = c.outputs.iter().map(|(n, _)| n.clone()).collect();
    let (order, _) = pair_names(&ours, &theirs);
    let mut outputs = vec![];
    for (i, (name, rv)) in r.outputs.iter().enumerate() {
        let j = order.iter().position(|&k| k == i).unwrap_or(i);
        let (cname, cv) = &c.outputs[j];
        match compare_any(name, rv, cv, tol)? {
            Some(d) => outputs.push(d),
            None => bail!(
                "output '{name}' of the reference has shape {:?}, the candidate's '{cname}' {:?}: no layout change maps one onto the other",
                rv.shape(),
                cv.shape()
            ),
        }
    }
    let layers = match_layers(&r.layers, &c.layers, tol)?;
    let first_divergent = layers
        .iter()
        .find(|d| !d.within && !d.reordered)
        .map(|d| d.name.clone());
    Ok(RunReport {
        sizes: vec![],
        outputs,
        layers,
        first_divergent,
    })
}

/// Names made comparable across frameworks: every character outside [A-Za-z0-9] becomes `_`.
fn normalized(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The reference's layers that the candidate exposes under one of the same names (exactly,
/// else after [`normalized`]), compared, in the reference's order. Layers whose shapes differ
/// by more than a layout change are left out.
fn match_layers(
    r: &[(Vec<String>, Value)],
    c: &[(Vec<String>, Value)],
    tol: Tolerance,
) -> Result<Vec<Diff>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    for pass in 0..4 {
        for (j, (keys, _)) in c.iter().enumerate() {
            let keys = if pass % 2 == 0 {
                keys.get(..1).unwrap_or_default()
            } else {
                keys.get(1..).unwrap_or_default()
            };
            for k in keys {
                let k = if pass >= 2 { normalized(k) } else { k.clone() };
                index.entry(k).or_insert(j);
            }
        }
    }
    let mut out = vec![];
    for (keys, v) in r {
        let found = keys
            .iter()
            .find_map(|k| index.get(k))
            .or_else(|| keys.iter().find_map(|k| index.get(&normalized(k))));
        if let (Some(&j), Some(name)) = (found, keys.first()) {
            if let Some(mut d) = compare_any(name, v, &c[j].1, tol)? {
                compare::mark_reordered(&mut d, v, &c[j].1, tol);
                out.push(d);
            }
        }
    }
    Ok(out)
}

/// `x=1x3x32x32, y=1x4`.
fn sizes_text(sizes: &[(String, Vec<usize>)]) -> String {
    sizes
        .iter()
        .map(|(n, s)| {
            let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
            format!("{n}={}", dims.join("x"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_report(
    a: &Args,
    runtimes: &[&str; 2],
    notes: &[String],
    reports: &[RunReport],
    layered: bool,
) -> Result<()> {
    let ok = reports.iter().all(|r| r.outputs.iter().all(|d| d.within));
    if a.json {
        let runs: Vec<serde_json::Value> = reports
            .iter()
            .map(|r| {
                let mut run = json!({
                    "sizes": r.sizes.iter().map(|(n, s)| (n.clone(), json!(s))).collect::<serde_json::Map<_, _>>(),
                    "outputs": r.outputs.iter().map(Diff::to_json).collect::<Vec<_>>(),
                    "first_divergent_layer": r.first_divergent,
                });
                if a.per_layer {
                    run["layers"] = r.layers.iter().map(Diff::to_json).collect();
                }
                run
            })
            .collect();
        let doc = json!({
            "ok": ok,
            "failure": (!ok).then_some("verification out of tolerance"),
            "atol": a.atol,
            "rtol": a.rtol,
            "runtimes": {"reference": runtimes[0], "candidate": runtimes[1]},
            "interface": notes,
            "runs": runs,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let row = |d: &Diff| {
        println!(
            "    {:<40} max|Δ| {:<12.3e} max rel {:<12.3e} argmax {}  {}{}",
            d.name,
            d.max_abs,
            d.max_rel,
            if d.argmax_agrees { "same" } else { "DIFFERS" },
            match (d.within, d.reordered) {
                (true, _) => "ok",
                (false, true) => "ok: same values in another order (a layout change)",
                (false, false) => "OUT OF TOLERANCE",
            },
            d.perm
                .as_ref()
                .map(|p| format!("  (permuted by {p:?})"))
                .unwrap_or_default()
        )
    };
    println!("reference: {} ({})", a.reference.display(), runtimes[0]);
    println!("candidate: {} ({})", a.candidate.display(), runtimes[1]);
    println!("tolerance: |Δ| ≤ max({}, {}·|ref|)", a.atol, a.rtol);
    if !notes.is_empty() {
        println!("interface:");
        notes.iter().for_each(|n| println!("  {n}"));
    }
    for (k, r) in reports.iter().enumerate() {
        println!(
            "run {} of {}: {}",
            k + 1,
            reports.len(),
            sizes_text(&r.sizes)
        );
        println!("  outputs:");
        r.outputs.iter().for_each(row);
        if a.per_layer {
            println!("  layers (matched by name): {}", r.layers.len());
            r.layers.iter().for_each(row);
        }
        if layered {
            println!(
                "  first divergent layer: {}",
                r.first_divergent.as_deref().unwrap_or("none")
            );
        }
    }
    Ok(())
}

/// The `--input NAME=FILE` flags, in the order given.
fn input_names(flags: &InputFlags) -> Result<Vec<(String, PathBuf)>> {
    flags
        .input
        .iter()
        .map(|spec| {
            let (name, file) = spec
                .split_once('=')
                .with_context(|| format!("--input '{spec}' is not NAME=FILE"))?;
            Ok((name.to_string(), PathBuf::from(file)))
        })
        .collect()
}

fn read_inputs(files: &[(String, PathBuf)]) -> Result<Vec<(String, Value)>> {
    files
        .iter()
        .map(|(name, file)| {
            let t = crate::weights::npy::read_file(file)
                .with_context(|| format!("reading --input {name} from {}", file.display()))?;
            Ok((name.clone(), Value::from_tensor(&t)?))
        })
        .collect()
}
