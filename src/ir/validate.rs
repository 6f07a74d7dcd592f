//! Validation and type inference. `check` reports every problem in one error: unknown ops,
//! attributes of the wrong type or value, wrong input counts, dangling inputs, cycles, shape
//! mismatches, weights missing or of the wrong shape, and ranks above `MAX_RANK` — each naming
//! the node and its op.
use super::dim;
use super::graph::{Graph, Node};
use super::ops::{self, Attrs, Default, InferCtx, Inputs};
use super::types::{AttrValue, TensorType};
use crate::weights::{WeightReader, MAX_RANK};
use anyhow::{bail, Result};
use std::collections::{HashMap, HashSet};

/// Checks the graph (and its weights, when given) and fills in every node's output types.
/// On failure the error lists every problem found.
pub fn check(graph: &mut Graph, weights: Option<&dyn WeightReader>) -> Result<()> {
    let mut problems = Vec::new();
    check_names(graph, &mut problems);
    let names: HashSet<String> = graph.nodes.iter().map(|n| n.name.clone()).collect();
    let mut broken: HashSet<String> = HashSet::new();
    for node in &graph.nodes {
        let before = problems.len();
        check_node(node, &mut problems);
        if let Some(w) = weights {
            check_weights(node, w, &mut problems);
        }
        for r in node.inputs.iter().filter(|r| !names.contains(&r.node)) {
            problems.push(format!(
                "node '{}' ({}): input '{r}' is dangling: no node is named '{}'",
                node.name, node.op, r.node
            ));
        }
        if problems.len() > before {
            broken.insert(node.name.clone());
        }
    }
    if problems.iter().any(|p| p.contains("is dangling")) {
        return report(problems);
    }
    if let Err(e) = graph.sort() {
        problems.push(format!("{e:#}"));
        return report(problems);
    }
    let mut types: HashMap<String, Vec<TensorType>> = HashMap::new();
    for node in &mut graph.nodes {
        if broken.contains(&node.name) {
            continue;
        }
        match infer_node(node, &types) {
            Ok(Some(inferred)) => {
                if let Some(w) = weights {
                    problems.extend(check_weight_shapes(node, &types, w));
                }
                if let Some(t) = inferred.iter().find(|t| t.rank() > MAX_RANK) {
                    problems.push(format!(
                        "node '{}' ({}): its output {t} has {} dims; at most {MAX_RANK} are allowed",
                        node.name,
                        node.op,
                        t.rank()
                    ));
                    broken.insert(node.name.clone());
                    continue;
                }
                if let Some(e) = inferred
                    .iter()
                    .find_map(|t| t.shape.iter().find_map(|&d| dim::check(d).err()))
                {
                    problems.push(format!("node '{}' ({}): {e:#}", node.name, node.op));
                    broken.insert(node.name.clone());
                    continue;
                }
                if let Some(t) = inferred.iter().find(|t| too_large(t)) {
                    problems.push(format!(
                        "node '{}' ({}): its output {t} has more elements than memory can address",
                        node.name, node.op
                    ));
                    broken.insert(node.name.clone());
                    continue;
                }
                if !node.outputs.is_empty() && !compatible(&node.outputs, &inferred) {
                    problems.push(format!(
                        "node '{}' ({}): declared output types {} do not match the inferred {}",
                        node.name,
                        node.op,
                        list(&node.outputs),
                        list(&inferred)
                    ));
                }
                node.outputs = inferred;
                types.insert(node.name.clone(), node.outputs.clone());
            }
            Ok(None) => {}
            Err(e) => problems.push(format!("node '{}' ({}): {e:#}", node.name, node.op)),
        }
    }
    check_endpoints(graph, &mut problems);
    report(problems)
}

/// Fills in output types without reporting (used after a pass rewrote a checked graph).
pub fn infer_types(graph: &mut Graph) -> Result<()> {
    check(graph, None)
}

fn report(problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    bail!(
        "invalid IR graph ({n} problem{}):\n  - {}",
        if n == 1 { "" } else { "s" },
        problems.join("\n  - ")
    )
}

fn list(types: &[TensorType]) -> String {
    types
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a tensor of type `t` has more bytes than memory can address (its known dims only:
/// a shape that only grows that large at run time is the interpreter's to refuse).
fn too_large(t: &TensorType) -> bool {
    let known: Vec<usize> = t
        .shape
        .iter()
        .filter_map(|&d| usize::try_from(d).ok())
        .collect();
    crate::weights::checked_bytes(&known, t.dtype.size()).is_none()
}

/// Declared and inferred types agree where both are known.
fn compatible(declared: &[TensorType], inferred: &[TensorType]) -> bool {
    declared.len() == inferred.len()
        && declared.iter().zip(inferred).all(|(d, i)| {
            d.dtype == i.dtype
                && d.shape.len() == i.shape.len()
                && d.shape
                    .iter()
                    .zip(&i.shape)
                    .all(|(&a, &b)| a < 0 || b < 0 || a == b)
        })
}

/// A dim in an attribute that is not one: in a shape any negative other than -1 must be a
/// symbolic dim; in an integer list (where negatives are axes, offsets or "to the start"
/// sentinels) a value in the range of symbolic ids must be one.
fn bad_dim(value: &AttrValue) -> Option<anyhow::Error> {
    match value {
        AttrValue::Shape(s) => s.iter().find_map(|&d| dim::check(d).err()),
        AttrValue::Ints(v) => v
            .iter()
            .filter(|&&d| dim::in_id_range(d))
            .find_map(|&d| dim::check(d).err()),
        AttrValue::Int(d) if dim::in_id_range(*d) => dim::check(*d).err(),
        _ => None,
    }
}

fn check_names(graph: &Graph, problems: &mut Vec<String>) {
    let mut seen = HashSet::new();
    for n in &graph.nodes {
        if n.name.is_empty() {
            problems.push(format!("a node of op {} has an empty name", n.op));
        } else if !seen.insert(n.name.as_str()) {
            problems.push(format!("two nodes are named '{}'", n.name));
        }
    }
}

fn check_node(node: &Node, problems: &mut Vec<String>) {
    let at = |msg: String| format!("node '{}' ({}): {msg}", node.name, node.op);
    let Some(def) = ops::get(&node.op) else {
        problems.push(format!("node '{}': unknown op '{}'", node.name, node.op));
        return;
    };
    let runtime: Vec<&str> = node.runtime_attrs().collect();
    for (name, value) in &node.attrs {
        if name.starts_with('_') {
            continue; // tool-private annotation, e.g. MMdnn's _output_shapes
        }
        if name == ops::FROM_INPUTS {
            if !matches!(value, AttrValue::Strs(_)) {
                problems.push(at(format!("attribute '{name}' must list attribute names")));
            }
            for r in &runtime {
                match def.attr(r) {
                    Some(a) if a.runtime.is_some() => {}
                    Some(_) => problems.push(at(format!(
                        "attribute '{r}' cannot be a tensor computed at run time"
                    ))),
                    None => problems.push(at(format!("'{name}' names unknown attribute '{r}'"))),
                }
                if node.attrs.contains_key(*r) {
                    problems.push(at(format!(
                        "attribute '{r}' is given both as a value and as a tensor"
                    )));
                }
            }
            continue;
        }
        let Some(a) = def.attr(name) else {
            problems.push(at(format!("unknown attribute '{name}'")));
            continue;
        };
        if let Some(e) = bad_dim(value) {
            problems.push(at(format!("attribute '{name}': {e:#}")));
            continue;
        }
        match value.clone().coerce(a.kind) {
            Err(e) => problems.push(at(format!("attribute '{name}': {e}"))),
            Ok(AttrValue::Str(s)) if !a.allowed.is_empty() && !a.allowed.contains(&s.as_str()) => {
                problems.push(at(format!(
                    "attribute '{name}' is \"{s}\"; allowed: {}",
                    a.allowed.join(", ")
                )))
            }
            Ok(_) => {}
        }
    }
    for a in def.attrs {
        if matches!(a.default, Default::Required)
            && !node.attrs.contains_key(a.name)
            && !runtime.contains(&a.name)
        {
            problems.push(at(format!("required attribute '{}' is missing", a.name)));
        }
    }
    let Some(n) = node.inputs.len().checked_sub(runtime.len()) else {
        problems.push(at(format!(
            "{} attributes are given by tensors but the node has {} inputs",
            runtime.len(),
            node.inputs.len()
        )));
        return;
    };
    match def.inputs {
        Inputs::Fixed { names, required } if n < required || n > names.len() => {
            problems.push(at(if required == names.len() {
                format!("takes {required} input(s), got {n}")
            } else {
                format!("takes {required} to {} inputs, got {n}", names.len())
            }))
        }
        Inputs::Variadic { min, .. } if n < min => {
            problems.push(at(format!("takes at least {min} input(s), got {n}")))
        }
        _ => {}
    }
}

fn check_weights(node: &Node, weights: &dyn WeightReader, problems: &mut Vec<String>) {
    let Some(def) = ops::get(&node.op) else {
        return;
    };
    for w in def.weights {
        let wanted = !w.optional || weight_enabled(node, w.name);
        let present = weights.info(&node.name, w.name).is_some();
        if wanted && !present {
            problems.push(format!(
                "node '{}' ({}): weight '{}' ({}) is missing from the weights file",
                node.name, node.op, w.name, w.layout
            ));
        }
    }
}

/// Whether an optional weight is switched on by its node's flag (`use_bias`, `use_scale`).
pub fn weight_enabled(node: &Node, weight: &str) -> bool {
    let flag = match weight {
        "bias" => "use_bias",
        "scale" => "use_scale",
        _ => return false,
    };
    Attrs::of(node)
        .and_then(|a| {
            if a.def.attr(flag).is_some() {
                a.bool(flag)
            } else {
                Ok(false)
            }
        })
        .unwrap_or_default()
}

/// The types of `node`'s inputs; `None` when some input's type is unknown.
fn input_types<'t>(
    node: &Node,
    types: &'t HashMap<String, Vec<TensorType>>,
) -> Result<Option<Vec<&'t TensorType>>> {
    let mut inputs = Vec::with_capacity(node.inputs.len());
    for r in &node.inputs {
        let Some(outs) = types.get(&r.node) else {
            return Ok(None);
        };
        match outs.get(r.index) {
            Some(t) => inputs.push(t),
            None => bail!(
                "input '{r}' names output {} of a node with {}",
                r.index,
                outs.len()
            ),
        }
    }
    Ok(Some(inputs))
}

/// Every stored weight of `node` whose shape differs from the one its op expects for the
/// node's attributes and input types (a Conv bias of rank 100 would make a model file its
/// framework cannot load).
fn check_weight_shapes(
    node: &Node,
    types: &HashMap<String, Vec<TensorType>>,
    weights: &dyn WeightReader,
) -> Vec<String> {
    let (Ok(Some(inputs)), Ok(attrs)) = (input_types(node, types), Attrs::of(node)) else {
        return vec![];
    };
    let ctx = InferCtx { attrs, inputs };
    let mut problems = vec![];
    for w in ctx.attrs.def.weights {
        let (Some(expected), Some(info)) = (w.shape, weights.info(&node.name, w.name)) else {
            continue;
        };
        let Ok(expected) = expected(&ctx) else {
            continue; // the shape rule reports what is wrong with the attributes
        };
        let fits = expected.len() == info.shape.len()
            && expected
                .iter()
                .zip(&info.shape)
                .all(|(&e, &d)| e < 0 || usize::try_from(e) == Ok(d));
        if !fits {
            problems.push(format!(
                "node '{}' ({}): weight '{}' has shape {:?}; the op expects {expected:?} ({})",
                node.name, node.op, w.name, info.shape, w.layout
            ));
        }
    }
    problems
}

/// Runs the op's shape rule; `None` when some input's type is unknown.
fn infer_node(
    node: &Node,
    types: &HashMap<String, Vec<TensorType>>,
) -> Result<Option<Vec<TensorType>>> {
    let Some(inputs) = input_types(node, types)? else {
        return Ok(None);
    };
    let attrs = Attrs::of(node)?;
    let ctx = InferCtx { attrs, inputs };
    let out = ops::infer(&ctx)?;
    let expected = ops::output_count(&ctx)?;
    if out.len() != expected {
        bail!(
            "internal: shape rule gave {} outputs, expected {expected}",
            out.len()
        );
    }
    Ok(Some(out))
}

fn check_endpoints(graph: &Graph, problems: &mut Vec<String>) {
    let index = graph.index();
    for name in &graph.inputs {
        match index.get(name.as_str()).map(|&i| &graph.nodes[i]) {
            None => problems.push(format!("graph input '{name}' is not a node")),
            Some(n) if n.op != "DataInput" => problems.push(format!(
                "graph input '{name}' is a {} node, not DataInput",
                n.op
            )),
            _ => {}
        }
    }
    for n in graph.nodes.iter().filter(|n| n.op == "DataInput") {
        if !graph.inputs.contains(&n.name) {
            problems.push(format!(
                "DataInput node '{}' is not listed as a graph input",
                n.name
            ));
        }
    }
    if graph.outputs.is_empty() {
        problems.push("the graph declares no outputs".to_string());
    }
    if !graph.output_names.is_empty() && graph.output_names.len() != graph.outputs.len() {
        problems.push(format!(
            "the graph names {} outputs but has {}",
            graph.output_names.len(),
            graph.outputs.len()
        ));
    }
    let mut names = std::collections::HashSet::new();
    for name in &graph.output_names {
        if !names.insert(name) {
            problems.push(format!("two graph outputs are named '{name}'"));
        }
    }
    for r in &graph.outputs {
        match index.get(r.node.as_str()).map(|&i| &graph.nodes[i]) {
            None => problems.push(format!("graph output '{r}' names no node")),
            Some(n) if !n.outputs.is_empty() && r.index >= n.outputs.len() => {
                problems.push(format!(
                    "graph output '{r}': node '{}' has {} outputs",
                    n.name,
                    n.outputs.len()
                ))
            }
            _ => {}
        }
    }
}
