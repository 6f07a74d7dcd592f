//! Every catalogue op against reference values computed outside mmdnn
//! (tests/fixtures/make_interp_refs.py: NumPy formulas, onnx.reference, hand-derived values).
//!
//! Each case becomes a one-node graph (DataInput nodes feeding the op, weights in
//! MemoryWeights), is validated (so the catalogue's shape rule must agree with what the
//! interpreter computes) and run; float outputs must match within 1e-5·max(1, |want|).
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::graph::{Graph, Node};
use mmdnn::ir::types::AttrValue;
use mmdnn::ir::{ops, validate, DType, TensorRef};
use mmdnn::weights::{npy, MemoryWeights, Tensor};
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interp")
}

fn manifest() -> Json {
    let text = std::fs::read_to_string(fixtures().join("manifest.json"))
        .expect("run tests/fixtures/make_interp_refs.py to create the fixtures");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// Reads a .npy file into a stored tensor.
fn read_npy(name: &str) -> Tensor {
    let bytes = std::fs::read(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let h = npy::parse_header(&bytes).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    assert!(!h.fortran_order, "{name}: Fortran order");
    let (dtype, big) = npy::dtype_of(&h.descr).unwrap();
    assert!(!big, "{name}: big-endian");
    Tensor::new(dtype, h.shape, bytes[h.data_offset..].to_vec()).unwrap()
}

fn attr(value: &Json) -> AttrValue {
    let (kind, v) = value.as_object().unwrap().iter().next().unwrap();
    let ints = |v: &Json| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect()
    };
    match kind.as_str() {
        "int" => AttrValue::Int(v.as_i64().unwrap()),
        "float" => AttrValue::Float(v.as_f64().unwrap() as f32),
        "bool" => AttrValue::Bool(v.as_bool().unwrap()),
        "str" => AttrValue::Str(v.as_str().unwrap().to_string()),
        "ints" => AttrValue::Ints(ints(v)),
        "shape" => AttrValue::Shape(ints(v)),
        "floats" => AttrValue::Floats(
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect(),
        ),
        "type" => AttrValue::Type(DType::from_name(v.as_str().unwrap()).unwrap()),
        k => panic!("unknown attribute kind {k}"),
    }
}

/// Compares one output; returns a description of the mismatch.
fn compare(got: &Value, want: &Value, tol: f32) -> Option<String> {
    if got.shape() != want.shape() {
        return Some(format!("shape {:?}, want {:?}", got.shape(), want.shape()));
    }
    match (got, want) {
        (Value::F32(g), Value::F32(w)) => {
            let mut worst: Option<(f32, f32, f32)> = None;
            for (&a, &b) in g.iter().zip(w.iter()) {
                if a.is_nan() && b.is_nan() {
                    continue;
                }
                let err = (a - b).abs();
                let within = err <= tol * b.abs().max(1.0);
                if !within && worst.is_none_or(|(e, _, _)| err > e) {
                    worst = Some((err, a, b));
                }
            }
            worst.map(|(e, a, b)| format!("max error {e} (got {a}, want {b})"))
        }
        (Value::I64(g), Value::I64(w)) if g != w => Some(format!("got {g}, want {w}")),
        (Value::Bool(g), Value::Bool(w)) if g != w => Some(format!("got {g}, want {w}")),
        (Value::I64(_), Value::I64(_)) | (Value::Bool(_), Value::Bool(_)) => None,
        _ => Some(format!("got a {} value, want {}", got.kind(), want.kind())),
    }
}

/// Builds and runs one case; returns an error description on failure.
fn run_case(case: &Json) -> Result<(), String> {
    let op = case["op"].as_str().unwrap();
    let mut node = Node::new("op", op);
    for (k, v) in case["attrs"].as_object().unwrap() {
        node.attrs.insert(k.clone(), attr(v));
    }
    let inputs: Vec<Tensor> = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| read_npy(f.as_str().unwrap()))
        .collect();
    let mut weights = MemoryWeights::default();
    for (k, f) in case["weights"].as_object().unwrap() {
        weights.insert("op", k, read_npy(f.as_str().unwrap()));
    }
    let mut graph = Graph::default();
    let mut feeds = Vec::new();
    if op == "DataInput" {
        graph.inputs.push("op".into());
        feeds.push(("op".to_string(), Value::from_tensor(&inputs[0]).unwrap()));
    } else {
        for (i, t) in inputs.iter().enumerate() {
            let name = format!("in{i}");
            let shape = t.info.shape.iter().map(|&d| d as i64).collect();
            graph
                .add(
                    Node::new(&name, "DataInput")
                        .with_attr("dtype", AttrValue::Type(t.info.dtype))
                        .with_attr("shape", AttrValue::Shape(shape)),
                )
                .unwrap();
            graph.inputs.push(name.clone());
            node.inputs.push(TensorRef::new(&name, 0));
            feeds.push((name, Value::from_tensor(t).unwrap()));
        }
    }
    let wants: Vec<Value> = case["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Value::from_tensor(&read_npy(f.as_str().unwrap())).unwrap())
        .collect();
    let n_out = wants.len().max(1);
    graph.add(node).unwrap();
    graph.outputs = (0..n_out).map(|i| TensorRef::new("op", i)).collect();
    let expect_error = case.get("error").and_then(|e| e.as_str());
    let checked = validate::check(&mut graph, Some(&weights));
    if let (Err(e), None) = (&checked, expect_error) {
        return Err(format!("graph does not validate: {e:#}"));
    }
    let result = Interpreter::new(&graph, &weights).run(&feeds);
    let outs = match (result, expect_error) {
        (Err(e), Some(want)) => {
            let msg = format!("{e:#}");
            return if msg.contains(want) && msg.contains("node 'op'") {
                Ok(())
            } else {
                Err(format!("error {msg:?} lacks {want:?} or the node name"))
            };
        }
        (Ok(_), Some(want)) => return Err(format!("succeeded; expected an error with {want:?}")),
        (Err(e), None) => return Err(format!("{e:#}")),
        (Ok(o), None) => o,
    };
    if outs.len() != wants.len() {
        return Err(format!("{} outputs, want {}", outs.len(), wants.len()));
    }
    let tol = case.get("tol").and_then(|t| t.as_f64()).unwrap_or(1e-5) as f32;
    let typed = &graph.node("op").unwrap().outputs;
    for (i, (g, w)) in outs.iter().zip(&wants).enumerate() {
        if let Some(t) = typed.get(i) {
            let fits = t.shape.len() == g.shape().len()
                && t.shape
                    .iter()
                    .zip(g.shape())
                    .all(|(&d, &s)| d < 0 || d as usize == s);
            if !fits || !g.holds(t.dtype) {
                return Err(format!(
                    "output {i}: the shape rule says {t}, the interpreter gave {}",
                    g.describe()
                ));
            }
        }
        if let Some(m) = compare(g, w, tol) {
            return Err(format!("output {i}: {m}"));
        }
    }
    Ok(())
}

#[test]
fn every_reference_case_passes() {
    let m = manifest();
    let mut failures = Vec::new();
    let mut passed = 0;
    for case in m["cases"].as_array().unwrap() {
        let name = format!(
            "{}/{}",
            case["op"].as_str().unwrap(),
            case["name"].as_str().unwrap()
        );
        match std::panic::catch_unwind(|| run_case(case)) {
            Ok(Ok(())) => passed += 1,
            Ok(Err(e)) => failures.push(format!("{name} [{}]: {e}", case["reference"])),
            Err(_) => failures.push(format!("{name}: panicked")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} reference cases failed:\n  {}",
        failures.len(),
        passed + failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn every_catalogue_op_has_an_implementation_and_a_reference_case() {
    let m = manifest();
    let covered: BTreeSet<&str> = m["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("error").is_none())
        .map(|c| c["op"].as_str().unwrap())
        .collect();
    let mut missing = BTreeMap::new();
    for def in ops::all() {
        if mmdnn::interp::lookup(def.name).is_none() {
            missing.insert(def.name, "no interpreter implementation");
        } else if !covered.contains(def.name) {
            missing.insert(def.name, "no reference case in tests/fixtures/interp");
        }
    }
    assert!(missing.is_empty(), "ops lacking coverage: {missing:#?}");
    for op in covered {
        assert!(
            ops::get(op).is_some(),
            "reference cases for unknown op {op}"
        );
    }
}

#[test]
fn every_reference_names_its_source() {
    for case in manifest()["cases"].as_array().unwrap() {
        let r = case["reference"].as_str().unwrap();
        assert!(
            ["numpy formula", "onnx.reference", "hand-derived"].contains(&r),
            "{case}: unknown reference {r}"
        );
    }
}
