//! Shared by the ONNX reader tests: building ONNX models in memory, saving and loading them,
//! running them, and reading what the reader made of them.
use mmdnn::frontends::{self, Loaded, SourceArgs};
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::AttrValue;
use mmdnn::proto::onnx::{
    attribute_proto::AttributeType, tensor_proto, tensor_shape_proto, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use ndarray::{ArrayD, IxDyn};
use prost::Message;
use std::path::{Path, PathBuf};

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnx");

pub fn attr(name: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ..Default::default()
    }
}
pub fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::Int as i32,
        i: v,
        ..attr(name)
    }
}
pub fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::Float as i32,
        f: v,
        ..attr(name)
    }
}
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..attr(name)
    }
}
pub fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        r#type: AttributeType::String as i32,
        s: v.as_bytes().to_vec().into(),
        ..attr(name)
    }
}

pub fn node(op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: format!("n_{}", outputs[0]),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

pub fn f32_raw(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: tensor_proto::DataType::Float as i32,
        raw_data: v
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
        ..Default::default()
    }
}
pub fn i64_typed(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: tensor_proto::DataType::Int64 as i32,
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

/// A dim: a number, or a symbolic name.
pub enum D {
    N(i64),
    S(&'static str),
}

pub fn value_info(name: &str, dims: &[D]) -> ValueInfoProto {
    use tensor_shape_proto::{dimension::Value as V, Dimension};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                D::N(n) => V::DimValue(*n),
                D::S(s) => V::DimParam(s.to_string()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: tensor_proto::DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn model(
    opset: i64,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    x: ValueInfoProto,
) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "onnx_reader.rs".into(),
        graph: Some(GraphProto {
            output: vec![value_info(nodes.last().map_or("x", |n| &n.output[0]), &[])],
            node: nodes,
            initializer: inits,
            input: vec![x],
            name: "g".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn save(dir: &Path, name: &str, m: &ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    path
}

pub fn load(path: &Path, shapes: Vec<Vec<i64>>) -> anyhow::Result<Loaded> {
    frontends::load(
        "onnx",
        &SourceArgs {
            network: Some(path.to_path_buf()),
            input_shapes: shapes,
            ..Default::default()
        },
    )
}

pub fn load_model(m: &ModelProto) -> anyhow::Result<Loaded> {
    let dir = tempfile::tempdir().unwrap();
    load(&save(dir.path(), "m.onnx", m), vec![])
}

pub fn run(l: &Loaded, x: Value) -> Vec<Value> {
    let name = l.graph.inputs[0].clone();
    Interpreter::new(&l.graph, l.weights.as_ref())
        .run(&[(name, x)])
        .unwrap()
}

pub fn arange(shape: &[usize]) -> Value {
    let n: usize = shape.iter().product();
    Value::F32(
        ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|v| v as f32 * 0.1 - 1.0).collect())
            .unwrap(),
    )
}

pub fn ops(l: &Loaded) -> Vec<String> {
    l.graph.nodes.iter().map(|n| n.op.clone()).collect()
}

pub fn attr_of(l: &Loaded, op: &str, name: &str) -> AttrValue {
    l.graph
        .nodes
        .iter()
        .find(|n| n.op == op)
        .unwrap_or_else(|| panic!("no {op} node in {:?}", ops(l)))
        .attrs[name]
        .clone()
}

pub fn err(r: anyhow::Result<Loaded>) -> String {
    match r {
        Ok(_) => panic!("the model loaded"),
        Err(e) => format!("{e:#}"),
    }
}
