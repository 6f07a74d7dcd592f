//! `mmdnn inspect`: the framework, inputs and outputs with shapes, op histogram, parameter
//! count and every unsupported op or other problem of an IR (ours or MMdnn's) or a model file.
//! A model its reader cannot convert whole is still reported (as far as it was read, with
//! every problem); exit 1 then, or when anything is unsupported or wrong.
use super::args::source_parser;
use super::summary::Facts;
use crate::frontends::ir_files::{is_ir_file, load_graph, sibling_weights};
use crate::frontends::{self, SourceArgs, Unconverted};
use crate::ir::{ops, validate, Graph};
use crate::weights::{self, WeightReader};
use anyhow::Result;
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// IR graph (.pb) or model file
    pub model: PathBuf,
    /// Weights file (default: <prefix>.npz or <prefix>.npy next to an IR graph; the model file
    /// itself for a model that holds its weights)
    #[arg(short = 'w', long = "weights")]
    pub weights: Option<PathBuf>,
    /// Source framework (default: told by the file's content, then its extension)
    #[arg(short = 'f', long = "framework", value_parser = source_parser())]
    pub framework: Option<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let frontend = match &a.framework {
        Some(f) => frontends::find(f)?,
        None => frontends::detect(&a.model)?,
    };
    if is_ir_file(&a.model) && frontend.detects(&a.model, &[]) {
        return inspect_ir(&a, frontend.name());
    }
    let source = SourceArgs {
        network: Some(a.model.clone()),
        weights: a.weights.clone(),
        ..Default::default()
    };
    let mut report = Report {
        framework: frontend.name(),
        weights: a.weights.clone(),
        ..Report::default()
    };
    match frontend.load(&source) {
        Ok(loaded) => {
            if report.weights.is_none() && !loaded.weights.keys().is_empty() {
                report.weights = Some(a.model.clone());
                report.in_model = true;
            }
            report.producer = loaded.graph.producer.clone();
            report.facts = Some(Facts::of(&loaded.graph, Some(loaded.weights.as_ref())));
        }
        Err(e) => {
            let Some(u) = e.downcast_ref::<Unconverted>() else {
                return Err(e);
            };
            report.failure = Some(u.message.lines().next().unwrap_or_default().to_string());
            report.problems = u.problems.clone();
            if let Some(g) = &u.partial {
                report.producer = g.producer.clone();
                report.facts = Some(Facts::of(g, None));
            }
        }
    }
    report.emit(&a)
}

/// An IR graph: read as it is, so unknown ops and invalid parts are reported, not refused.
fn inspect_ir(a: &Args, framework: &'static str) -> Result<i32> {
    let loaded = load_graph(&a.model)?;
    let mut graph: Graph = loaded.graph;
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
            .filter(|p| !p.contains("unknown op"))
            .collect(),
    };
    Report {
        framework,
        producer: graph.producer.clone(),
        weights: weights_path,
        in_model: false,
        facts: Some(Facts::of(&graph, reader.as_deref())),
        unsupported,
        problems,
        failure: None,
    }
    .emit(a)
}

#[derive(Default)]
struct Report {
    framework: &'static str,
    producer: String,
    weights: Option<PathBuf>,
    /// The weights are the model file's own.
    in_model: bool,
    /// None when the reader did not get as far as the graph's inputs.
    facts: Option<Facts>,
    /// (node, op) of each node of an IR whose op the catalogue does not have.
    unsupported: Vec<(String, String)>,
    problems: Vec<String>,
    /// Why the model could not be converted, when it could not.
    failure: Option<String>,
}

impl Report {
    /// Prints the report; exit code 1 when anything is unsupported or wrong.
    fn emit(&self, a: &Args) -> Result<i32> {
        if a.json {
            println!("{}", serde_json::to_string_pretty(&self.to_json(a))?);
        } else {
            self.print(a);
        }
        Ok(if self.ok() { 0 } else { 1 })
    }

    fn ok(&self) -> bool {
        self.unsupported.is_empty() && self.problems.is_empty() && self.failure.is_none()
    }

    fn print(&self, a: &Args) {
        println!("model:     {}", a.model.display());
        println!("framework: {}", self.framework);
        if !self.producer.is_empty() {
            println!("producer:  {}", self.producer);
        }
        match (&self.weights, self.in_model) {
            (Some(p), true) => println!("weights:   {} (in the model file)", p.display()),
            (Some(p), false) => println!("weights:   {}", p.display()),
            (None, _) if self.failure.is_some() => println!("weights:   not read"),
            (None, _) => println!("weights:   none found (pass -w)"),
        }
        match &self.facts {
            Some(f) => {
                for line in f.io_lines() {
                    println!("{line}");
                }
                println!("ops ({} nodes):", f.nodes);
                for (op, count) in &f.ops {
                    println!("  {op:<20} {count}");
                }
                if let Some(line) = f.params_line() {
                    println!("{line}");
                }
            }
            None => println!("inputs, outputs, ops: unknown (the model was not read)"),
        }
        if self.failure.is_some() {
            let n = self.problems.len();
            println!(
                "cannot be converted ({n} problem{}):",
                if n == 1 { "" } else { "s" }
            );
        } else if self.unsupported.is_empty() {
            println!("unsupported ops: none");
        } else {
            println!("unsupported ops ({}):", self.unsupported.len());
            for (n, op) in &self.unsupported {
                println!("  {n}  ({op})");
            }
        }
        if !self.problems.is_empty() && self.failure.is_none() {
            println!("problems ({}):", self.problems.len());
        }
        for p in &self.problems {
            println!("  {p}");
        }
    }

    fn to_json(&self, a: &Args) -> serde_json::Value {
        let mut doc = json!({
            "ok": self.ok(),
            "model": a.model,
            "framework": self.framework,
            "producer": self.producer,
            "weights": self.weights,
            "unsupported_ops": self.unsupported.iter()
                .map(|(n, op)| json!({"node": n, "op": op}))
                .collect::<Vec<_>>(),
            "problems": self.problems,
            "failure": self.failure.as_deref().map(|f| f.trim_end_matches(':')),
        });
        if let Some(f) = &self.facts {
            f.json_fields(&mut doc);
        }
        doc
    }
}
