//! The last stage of every frontend: the graph is validated (types, order, weights), every
//! node whose inputs all come from `Constant` nodes is computed now by the reference
//! interpreter and becomes a `Constant` (within the fold cap), and the nodes no output needs
//! are removed with their weights. The ONNX reader folds as it builds (its shape computations
//! need values), so little is left for it here; readers that map layer by layer (Keras, the
//! MMdnn IR) get their constant subgraphs folded here.
use super::{fits_fold_cap, fold, remove_dead_nodes};
use crate::frontends::Loaded;
use crate::interp::{self, Value};
use crate::ir::{validate, AttrValue, DType, Graph, Node, TensorType};
use crate::weights::derived::{Derived, DerivedWeights};
use crate::weights::{Tensor, WeightReader};
use anyhow::{Context, Result};
use std::collections::{HashMap, HashSet};

/// Validates `graph` (checking its weights too when `check_weights`), folds its constant
/// nodes and removes its dead ones: the model a frontend returns.
pub fn finish_model(
    mut graph: Graph,
    weights: Box<dyn WeightReader>,
    check_weights: bool,
) -> Result<Loaded> {
    validate::check(&mut graph, check_weights.then_some(weights.as_ref()))?;
    let weights = fold_constants(&mut graph, weights)?;
    super::indices::check_constant_indices(&graph, weights.as_ref())?;
    Ok(Loaded { graph, weights })
}

/// Dtypes the interpreter holds exactly; a node reading or making any other (quantized or
/// narrow-float tensors) is left to run as it is, so quantized stays quantized.
fn exact(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::I64 | DType::I32 | DType::Bool)
}

/// Folds every node of the validated, sorted `graph` whose inputs are all constants, then
/// removes the nodes no output needs. Returns the weights with the folded values added and the
/// removed nodes' weights gone (`weights` itself when nothing changed).
pub fn fold_constants<'w>(
    graph: &mut Graph,
    weights: Box<dyn WeightReader + 'w>,
) -> Result<Box<dyn WeightReader + 'w>> {
    let index: HashMap<String, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), i))
        .collect();
    let mut values: HashMap<String, Value> = HashMap::new();
    let mut folded: Vec<(String, Tensor)> = vec![];
    for i in 0..graph.nodes.len() {
        let node = &graph.nodes[i];
        if node.op == "Constant" {
            continue;
        }
        let producers: Option<Vec<&Node>> = node
            .inputs
            .iter()
            .map(|r| index.get(&r.node).map(|&k| &graph.nodes[k]))
            .collect();
        let Some(producers) = producers else {
            continue;
        };
        let in_types: Vec<TensorType> = node
            .inputs
            .iter()
            .zip(&producers)
            .map(|(r, p)| p.outputs.get(r.index).cloned())
            .collect::<Option<_>>()
            .context("internal: folding an untyped graph")?;
        if node.outputs.len() != 1
            || !exact(node.outputs[0].dtype)
            || !in_types.iter().all(|t| exact(t.dtype))
            || !fits_fold_cap(&in_types, &node.outputs)
            || interp::lookup(&node.op).is_none()
        {
            continue;
        }
        let Some(inputs) = constant_inputs(&producers, weights.as_ref(), &mut values)? else {
            continue;
        };
        let out = node.outputs[0].clone();
        let value = fold(node, weights.as_ref(), inputs)?
            .pop()
            .context("internal: a folded node made no value")?;
        let tensor = value
            .to_tensor(out.dtype)
            .with_context(|| format!("storing the folded value of {} '{}'", node.op, node.name))?;
        let name = node.name.clone();
        graph.nodes[i] = Node {
            outputs: vec![out.clone()],
            ..Node::new(name.clone(), "Constant")
                .with_attr("dtype", AttrValue::Type(out.dtype))
                .with_attr("shape", AttrValue::Shape(out.shape))
        };
        values.insert(name.clone(), value);
        folded.push((name, tensor));
    }
    drop(values);
    let dead = remove_dead_nodes(graph);
    if folded.is_empty() && dead.is_empty() {
        return Ok(weights);
    }
    let replaced: HashSet<&str> = folded.iter().map(|(n, _)| n.as_str()).collect();
    let keys = weights.keys();
    let mut out = DerivedWeights::over(weights);
    for (node, param) in keys {
        if !dead.contains(&node) && !replaced.contains(node.as_str()) {
            out.insert(&node, &param, Derived::weight(&node, &param));
        }
    }
    for (node, t) in folded {
        if !dead.contains(&node) {
            out.insert(&node, "value", Derived::literal(t));
        }
    }
    Ok(Box::new(out))
}

/// The values a node reads from `producers` when every one is a `Constant` whose value can be
/// read (an IR without its weights has none); `None` otherwise, or for a node with no inputs.
fn constant_inputs(
    producers: &[&Node],
    weights: &dyn WeightReader,
    values: &mut HashMap<String, Value>,
) -> Result<Option<Vec<Value>>> {
    if producers.is_empty() || producers.iter().any(|p| p.op != "Constant") {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(producers.len());
    for producer in producers {
        if !values.contains_key(&producer.name) {
            if weights.info(&producer.name, "value").is_none() {
                return Ok(None);
            }
            let v = fold(producer, weights, vec![])?
                .pop()
                .context("internal: a Constant made no value")?;
            values.insert(producer.name.clone(), v);
        }
        out.push(values[&producer.name].clone());
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::TensorRef;
    use crate::weights::MemoryWeights;

    fn constant(name: &str, shape: Vec<usize>, values: &[f32], w: &mut MemoryWeights) -> Node {
        w.insert(
            name,
            "value",
            Tensor::from_f32(shape.clone(), values).unwrap(),
        );
        Node::new(name, "Constant")
            .with_attr("dtype", AttrValue::Type(DType::F32))
            .with_attr(
                "shape",
                AttrValue::Shape(shape.iter().map(|&d| d as i64).collect()),
            )
    }

    /// x + relu(c · 2 - 3) with c constant: the Mul, Sub and Relu fold into one Constant, the
    /// nodes they read from are removed with their weights, and the graph computes the same.
    #[test]
    fn constant_chains_fold_and_what_they_read_goes() {
        let mut w = MemoryWeights::default();
        let mut g = Graph::default();
        g.nodes.push(
            Node::new("x", "DataInput")
                .with_attr("dtype", AttrValue::Type(DType::F32))
                .with_attr("shape", AttrValue::Shape(vec![-1, 3])),
        );
        g.inputs.push("x".into());
        g.nodes
            .push(constant("c", vec![3], &[1.0, 2.0, 3.0], &mut w));
        g.nodes.push(constant("two", vec![], &[2.0], &mut w));
        g.nodes.push(constant("three", vec![], &[3.0], &mut w));
        let r = |n: &str| TensorRef::new(n, 0);
        g.nodes
            .push(Node::new("m", "Mul").with_inputs([r("c"), r("two")]));
        g.nodes
            .push(Node::new("s", "Sub").with_inputs([r("m"), r("three")]));
        g.nodes
            .push(Node::new("relu", "Relu").with_inputs([r("s")]));
        g.nodes
            .push(Node::new("y", "Add").with_inputs([r("x"), r("relu")]));
        g.outputs.push(r("y"));
        let before = g.clone();
        let loaded = finish_model(g, Box::new(w.clone()), true).unwrap();
        let ops: Vec<(&str, &str)> = loaded
            .graph
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.op.as_str()))
            .collect();
        assert_eq!(
            ops,
            [("x", "DataInput"), ("relu", "Constant"), ("y", "Add")]
        );
        let keys = loaded.weights.keys();
        assert_eq!(keys, [("relu".to_string(), "value".to_string())]);
        assert_eq!(
            loaded.weights.read("relu", "value").unwrap().to_f32(),
            [0.0, 1.0, 3.0]
        );
        let x = Value::F32(ndarray::ArrayD::from_shape_vec(vec![2, 3], vec![1.0; 6]).unwrap());
        let mut typed = before;
        validate::check(&mut typed, Some(&w)).unwrap();
        let want = interp::Interpreter::new(&typed, &w)
            .run(&[("x".into(), x.clone())])
            .unwrap();
        let got = interp::Interpreter::new(&loaded.graph, loaded.weights.as_ref())
            .run(&[("x".into(), x)])
            .unwrap();
        assert_eq!(got, want);
    }

    /// Without the Constant's value (an IR loaded without weights) nothing folds.
    #[test]
    fn constants_without_values_stay() {
        let mut w = MemoryWeights::default();
        let mut g = Graph::default();
        g.nodes.push(constant("c", vec![2], &[-1.0, 1.0], &mut w));
        g.nodes
            .push(Node::new("relu", "Relu").with_inputs([TensorRef::new("c", 0)]));
        g.outputs.push(TensorRef::new("relu", 0));
        let loaded = finish_model(g, Box::new(MemoryWeights::default()), false).unwrap();
        assert_eq!(loaded.graph.nodes[1].op, "Relu");
        assert!(loaded.weights.keys().is_empty());
    }
}
