//! `mmdnn inspect`: inputs and outputs with shapes, op histogram, parameter count and every
//! unsupported op or other problem of an IR (ours or MMdnn's) or a model file.
use crate::frontends::ir_files::{is_ir_file, load_graph, sibling_weights};
use crate::ir::{ops, validate, Graph};
use crate::weights::{self, WeightReader};
use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// IR graph (.pb) or model file
    pub model: PathBuf,
    /// Weights file (default: <prefix>.npz or <prefix>.npy next to an IR graph)
    #[arg(short = 'w', long = "weights")]
    pub weights: Option<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    if !is_ir_file(&a.model) {
        // A model file: its frontend lists every unsupported layer or op in its error.
        let loaded = super::run::load_model(None, &a.model, a.weights.clone())?;
        let report = Report::new(&loaded.graph, Some(loaded.weights.as_ref()), vec![], vec![]);
        return report.emit(&a, &a.weights);
    }
    let loaded = load_graph(&a.model)?;
    let mut graph = loaded.graph;
    let weights_path = a.weights.clone().or_else(|| sibling_weights(&a.model));
    let mut reader: Option<Box<dyn WeightReader>> = match &weights_path {
        Some(p) => Some(weights::open(p)?),
        None => None,
    };
    if let Some(map) = loaded.mmdnn_weights {
        reader = reader.map(|r| map.wrap(r));
    }
    let unsupported: Vec<(String, String)> = graph
        .nodes
        .iter()
        .filter(|n| ops::get(&n.op).is_none())
        .map(|n| (n.name.clone(), n.op.clone()))
        .collect();
    let problems: Vec<String> = match validate::check(&mut graph, reader.as_deref()) {
        Ok(()) => vec![],
        Err(e) => format!("{e:#}")
            .lines()
            .filter_map(|l| l.trim().strip_prefix("- ").map(str::to_string))
            .collect(),
    };
    let report = Report::new(&graph, reader.as_deref(), unsupported, problems);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json(&a, &weights_path))?
        );
    } else {
        report.print(&a, &weights_path);
    }
    Ok(if report.ok() { 0 } else { 1 })
}

struct Report {
    inputs: Vec<(String, String)>,
    outputs: Vec<(String, String)>,
    histogram: BTreeMap<String, usize>,
    params: Option<(usize, usize, usize)>,
    unsupported: Vec<(String, String)>,
    problems: Vec<String>,
    producer: String,
    nodes: usize,
}

impl Report {
    fn new(
        graph: &Graph,
        weights: Option<&dyn WeightReader>,
        unsupported: Vec<(String, String)>,
        problems: Vec<String>,
    ) -> Report {
        let type_of = |name: &str, idx: usize| {
            graph
                .node(name)
                .and_then(|n| n.outputs.get(idx))
                .map(|t| t.to_string())
                .unwrap_or_else(|| "unknown".to_string())
        };
        let mut histogram = BTreeMap::new();
        for n in &graph.nodes {
            *histogram.entry(n.op.clone()).or_insert(0) += 1;
        }
        let params = weights.map(|w| {
            let (mut count, mut bytes, mut tensors) = (0, 0, 0);
            for n in &graph.nodes {
                for def in ops::get(&n.op).map(|d| d.weights).unwrap_or(&[]) {
                    if let Some(info) = w.info(&n.name, def.name) {
                        count += info.numel();
                        bytes += info.nbytes();
                        tensors += 1;
                    }
                }
            }
            (count, bytes, tensors)
        });
        Report {
            inputs: graph
                .inputs
                .iter()
                .map(|n| (n.clone(), type_of(n, 0)))
                .collect(),
            outputs: graph
                .outputs
                .iter()
                .map(|r| (r.to_string(), type_of(&r.node, r.index)))
                .collect(),
            histogram,
            params,
            problems: problems
                .into_iter()
                .filter(|p| !p.contains("unknown op"))
                .collect(),
            unsupported,
            producer: graph.producer.clone(),
            nodes: graph.nodes.len(),
        }
    }

    /// Prints the report; exit code 1 when anything is unsupported or wrong.
    fn emit(&self, a: &Args, weights: &Option<PathBuf>) -> Result<i32> {
        if a.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&self.to_json(a, weights))?
            );
        } else {
            self.print(a, weights);
        }
        Ok(if self.ok() { 0 } else { 1 })
    }

    fn ok(&self) -> bool {
        self.unsupported.is_empty() && self.problems.is_empty()
    }

    fn print(&self, a: &Args, weights: &Option<PathBuf>) {
        println!("model:    {}", a.model.display());
        if !self.producer.is_empty() {
            println!("producer: {}", self.producer);
        }
        match weights {
            Some(p) => println!("weights:  {}", p.display()),
            None => println!("weights:  none found (pass -w)"),
        }
        println!("inputs:");
        for (n, t) in &self.inputs {
            println!("  {n}  {t}");
        }
        println!("outputs:");
        for (n, t) in &self.outputs {
            println!("  {n}  {t}");
        }
        println!("ops ({} nodes):", self.nodes);
        for (op, count) in &self.histogram {
            println!("  {op:<20} {count}");
        }
        if let Some((count, bytes, tensors)) = self.params {
            println!("parameters: {count} in {tensors} tensors ({bytes} bytes)");
        }
        if self.unsupported.is_empty() {
            println!("unsupported ops: none");
        } else {
            println!("unsupported ops ({}):", self.unsupported.len());
            for (n, op) in &self.unsupported {
                println!("  {n}  ({op})");
            }
        }
        if !self.problems.is_empty() {
            println!("problems ({}):", self.problems.len());
            for p in &self.problems {
                println!("  {p}");
            }
        }
    }

    fn to_json(&self, a: &Args, weights: &Option<PathBuf>) -> serde_json::Value {
        let pairs = |v: &[(String, String)], k: &str, t: &str| -> Vec<serde_json::Value> {
            v.iter().map(|(a, b)| json!({ k: a, t: b })).collect()
        };
        json!({
            "model": a.model,
            "producer": self.producer,
            "weights": weights,
            "inputs": pairs(&self.inputs, "name", "type"),
            "outputs": pairs(&self.outputs, "name", "type"),
            "nodes": self.nodes,
            "ops": self.histogram,
            "parameters": self.params.map(|p| p.0),
            "parameter_bytes": self.params.map(|p| p.1),
            "unsupported_ops": pairs(&self.unsupported, "node", "op"),
            "problems": self.problems,
        })
    }
}
