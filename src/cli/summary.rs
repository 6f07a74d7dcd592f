//! The end of every conversion (`convert`, `toir`, `tocode`, `tomodel`): a summary on stderr —
//! inputs and outputs with their types, the op histogram, the parameter count, what changed on
//! the way (the layout conversion of the passes stage, names the target spells otherwise), the
//! files written and the time taken. `--json` prints it as JSON on stdout instead, `--quiet`
//! not at all. A failure is reported the same way: exit 1 ("conversion failed"), or 2 for bad
//! usage, with `--json` a JSON object on stdout too. On a terminal (never in a pipe), a
//! progress line appears once a conversion has run for 2 seconds.
use super::args::usage_error;
use crate::backends::Written;
use crate::ir::passes::layout::Target;
use crate::ir::passes::Prepared;
use crate::ir::{ops, validate, Graph};
use crate::weights::WeightReader;
use anyhow::Result;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// `--quiet` and `--json`, shared by the converting commands.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ReportFlags {
    /// Print no summary at the end
    #[arg(short = 'q', long, conflicts_with = "json")]
    pub quiet: bool,
    /// Print the summary (or what failed) as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

/// What a graph is: its interface, its ops and its parameters (also `inspect`'s report).
pub struct Facts {
    /// (name, type) of each graph input and output.
    pub inputs: Vec<(String, String)>,
    pub outputs: Vec<(String, String)>,
    /// Nodes per op.
    pub ops: BTreeMap<String, usize>,
    pub nodes: usize,
    /// Parameters, their bytes and the tensors holding them (none without weights).
    pub params: Option<(usize, usize, usize)>,
}

impl Facts {
    pub fn of(graph: &Graph, weights: Option<&dyn WeightReader>) -> Facts {
        // The passes leave some output types to be inferred by the backend.
        let typed;
        let graph = if graph.nodes.iter().any(|n| n.outputs.is_empty()) {
            let mut g = graph.clone();
            typed = validate::infer_types(&mut g).map(|()| g);
            typed.as_ref().unwrap_or(graph)
        } else {
            graph
        };
        let type_of = |name: &str, idx: usize| {
            graph
                .node(name)
                .and_then(|n| n.outputs.get(idx))
                .map_or_else(|| "unknown".to_string(), |t| t.to_string())
        };
        let mut ops = BTreeMap::new();
        for n in &graph.nodes {
            *ops.entry(n.op.clone()).or_insert(0) += 1;
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
        Facts {
            inputs: graph
                .inputs
                .iter()
                .map(|n| (n.clone(), type_of(n, 0)))
                .collect(),
            outputs: graph
                .outputs
                .iter()
                .enumerate()
                .map(|(i, r)| (graph.output_name(i), type_of(&r.node, r.index)))
                .collect(),
            ops,
            nodes: graph.nodes.len(),
            params,
        }
    }

    /// The JSON fields: inputs, outputs, nodes, ops, parameters, parameter_bytes.
    pub fn json_fields(&self, doc: &mut serde_json::Value) {
        let pairs = |v: &[(String, String)]| -> Vec<serde_json::Value> {
            v.iter()
                .map(|(n, t)| json!({"name": n, "type": t}))
                .collect()
        };
        doc["inputs"] = pairs(&self.inputs).into();
        doc["outputs"] = pairs(&self.outputs).into();
        doc["nodes"] = self.nodes.into();
        doc["ops"] = json!(self.ops);
        doc["parameters"] = json!(self.params.map(|p| p.0));
        doc["parameter_bytes"] = json!(self.params.map(|p| p.1));
    }

    /// The interface, one tensor a line.
    pub fn io_lines(&self) -> Vec<String> {
        let mut lines = vec!["inputs:".to_string()];
        lines.extend(self.inputs.iter().map(|(n, t)| format!("  {n}  {t}")));
        lines.push("outputs:".into());
        lines.extend(self.outputs.iter().map(|(n, t)| format!("  {n}  {t}")));
        lines
    }

    pub fn params_line(&self) -> Option<String> {
        self.params.map(|(count, bytes, tensors)| {
            format!("parameters: {count} in {tensors} tensors ({bytes} bytes)")
        })
    }
}

/// What a conversion did.
#[derive(Default)]
pub struct Summary {
    /// The written model's graph (none when only code was turned into a model).
    pub facts: Option<Facts>,
    /// What was changed on the way, one line each.
    pub changes: Vec<String>,
    /// What changed at the interface (inputs and outputs renamed or permuted), as JSON objects;
    /// each also has its line in `changes`.
    pub interface: Vec<serde_json::Value>,
    pub written: Written,
}

impl Summary {
    /// The summary of a graph prepared for a target: its facts, the layout conversion, and
    /// what it changed at the interface.
    pub fn prepared(prepared: &Prepared<'_>, layout: Target) -> Summary {
        let g = &prepared.graph;
        let rewritten = prepared
            .log
            .iter()
            .filter(|l| !l.ends_with(": unchanged"))
            .count();
        let mut s = Summary {
            facts: Some(Facts::of(g, Some(&prepared.weights))),
            changes: vec![if rewritten == 0 {
                format!("layout: {} (unchanged)", layout.data_format())
            } else {
                format!(
                    "layout: {} inside ({rewritten} decisions of the passes stage; `mmdnn \
                     layout --verbose` lists them)",
                    layout.data_format()
                )
            }],
            ..Summary::default()
        };
        let facts = s
            .facts
            .as_ref()
            .map(|f| (f.inputs.clone(), f.outputs.clone()));
        let (inputs, outputs) = facts.unwrap_or_default();
        let sources = prepared.source_inputs.iter().map(Option::as_ref);
        for ((name, perm), src) in g.inputs.iter().zip(&prepared.input_perms).zip(sources) {
            if let Some(p) = perm {
                let now = inputs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.as_str());
                let from = src.map(|s| crate::ir::types::shape_string(s));
                s.permuted("input", name, p, from, now);
            }
        }
        for (i, perm) in prepared.output_perms.iter().enumerate() {
            if let Some(p) = perm {
                let now = outputs.get(i).map(|(_, t)| t.as_str());
                s.permuted("output", &g.output_name(i), p, None, now);
            }
        }
        for name in &prepared.io_unknown {
            s.changes.push(format!(
                "{name}: left as it is: --io-layout names it, but its layout is not known (no \
                 convolution, pooling or other data-format op reads or makes it)"
            ));
        }
        s
    }

    /// Notes that interface tensor `name` is fed or produced transposed by `perm`.
    fn permuted(
        &mut self,
        kind: &str,
        name: &str,
        perm: &[usize],
        from: Option<String>,
        now: Option<&str>,
    ) {
        let verb = if kind == "input" { "fed" } else { "produced" };
        let shapes = match (&from, now) {
            (Some(f), Some(n)) => format!(" (the source's {f}, now {n})"),
            (None, Some(n)) => format!(" (now {n})"),
            _ => String::new(),
        };
        self.changes.push(format!(
            "{kind} {name}: now {verb} transposed by {perm:?}{shapes}, as --io-layout asks"
        ));
        self.interface
            .push(json!({"change": "layout", "kind": kind, "name": name,
                                   "perm": perm, "type": now}));
    }

    /// Adds what the backend wrote (its notes and the inputs and outputs it renamed).
    pub fn wrote(mut self, written: Written) -> Summary {
        for r in &written.renamed {
            self.changes
                .push(format!("{} {} renamed {}: {}", r.kind, r.from, r.to, r.why));
            self.interface
                .push(json!({"change": "renamed", "kind": r.kind, "from": r.from,
                                       "to": r.to, "why": r.why}));
        }
        self.changes.extend(written.notes.iter().cloned());
        self.written.files.extend(written.files);
        self
    }

    fn print(&self, elapsed: Duration) {
        let mut lines = vec![];
        if let Some(f) = &self.facts {
            lines.extend(f.io_lines());
            let ops: Vec<String> = f.ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
            lines.push(format!("ops: {} ({} nodes)", ops.join(", "), f.nodes));
            lines.extend(f.params_line());
        }
        if !self.changes.is_empty() {
            lines.push("changed:".into());
            lines.extend(self.changes.iter().map(|c| format!("  {c}")));
        }
        lines.push("wrote:".into());
        for (what, path) in &self.written.files {
            lines.push(format!("  {}  ({what})", path.display()));
        }
        lines.push(format!("elapsed: {:.2} s", elapsed.as_secs_f64()));
        eprintln!("{}", lines.join("\n"));
    }

    fn to_json(&self, command: &str, elapsed: Duration) -> serde_json::Value {
        let mut doc = json!({"ok": true, "command": command});
        if let Some(f) = &self.facts {
            f.json_fields(&mut doc);
        }
        doc["changes"] = json!(self.changes);
        doc["interface"] = json!(self.interface);
        doc["files"] = self
            .written
            .files
            .iter()
            .map(|(what, path)| json!({"path": path, "holds": what}))
            .collect();
        doc["elapsed_seconds"] = json!(elapsed.as_secs_f64());
        doc
    }
}

/// How a conversion ended, short of an error.
pub enum Outcome {
    Done(Box<Summary>),
    /// A usage error found after parsing (exit 2).
    Usage(String),
}

/// Runs a conversion `body` and reports how it ended; returns the exit code, or the error
/// (worded "conversion failed: …") for the caller to print.
pub fn conversion(
    command: &str,
    flags: &ReportFlags,
    body: impl FnOnce(&Progress) -> Result<Outcome>,
) -> Result<i32> {
    let start = Instant::now();
    let progress = Progress::start(command, !flags.quiet && std::io::stderr().is_terminal());
    let result = body(&progress);
    drop(progress);
    let elapsed = start.elapsed();
    let failure = |kind: &str, code: i32, error: String| {
        json!({"ok": false, "command": command, "exit_code": code, "failure": kind,
               "error": error, "elapsed_seconds": elapsed.as_secs_f64()})
    };
    match result {
        Ok(Outcome::Done(summary)) => {
            if flags.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&summary.to_json(command, elapsed))?
                );
            } else if !flags.quiet {
                summary.print(elapsed);
            }
            Ok(0)
        }
        Ok(Outcome::Usage(message)) => {
            if flags.json {
                println!("{}", failure("usage", 2, message.clone()));
            }
            Ok(usage_error(&message))
        }
        Err(e) => {
            if flags.json {
                println!("{}", failure("conversion failed", 1, format!("{e:#}")));
            }
            Err(e.context("conversion failed"))
        }
    }
}

/// The progress line: a spinner with the current stage on stderr, shown from 2 s on when
/// stderr is a terminal; cleared when dropped.
pub struct Progress {
    stage: Arc<Mutex<&'static str>>,
    done: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(command: &str, on: bool) -> Progress {
        let stage = Arc::new(Mutex::new("reading"));
        if !on {
            return Progress {
                stage,
                done: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<()>();
        let shown = Arc::clone(&stage);
        let command = command.to_string();
        let thread = std::thread::spawn(move || {
            if rx.recv_timeout(Duration::from_secs(2)) != Err(mpsc::RecvTimeoutError::Timeout) {
                return;
            }
            let bar = indicatif::ProgressBar::new_spinner();
            while rx.recv_timeout(Duration::from_millis(120))
                == Err(mpsc::RecvTimeoutError::Timeout)
            {
                let stage = *shown.lock().unwrap_or_else(|e| e.into_inner());
                bar.set_message(format!("{command}: {stage}"));
                bar.tick();
            }
            bar.finish_and_clear();
        });
        Progress {
            stage,
            done: Some(tx),
            thread: Some(thread),
        }
    }

    /// Names the stage now running ("reading", "preparing", "writing").
    pub fn stage(&self, stage: &'static str) {
        *self.stage.lock().unwrap_or_else(|e| e.into_inner()) = stage;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
