//! Reading and writing IR files: `<prefix>.pb` (binary GraphDef), `<prefix>.json` (the same
//! graph as protobuf JSON with proto field names, as MMdnn wrote it). A file without
//! `ir_version` was written in other conventions (MMdnn 0.3.1's): it is returned as its raw
//! GraphDef, for the frontend that knows them to import.
use super::dim;
use super::graph::{Graph, Node, TensorRef};
use super::ops;
use super::types::{AttrValue, DType, TensorType};
use super::IR_VERSION;
use crate::output::{commit_all, stage};
use crate::proto;
use crate::weights::{NpzWriter, WeightReader};
use anyhow::{bail, Context, Result};
use prost::Message;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

/// A `.pb` IR file as read.
pub enum IrFile {
    /// A graph in this mmdnn's conventions (IR version 1 to [`IR_VERSION`]).
    Native(Graph),
    /// A GraphDef without `ir_version` (IR version 0): written by Microsoft MMdnn 0.3.1, whose
    /// op names, attributes and weight keys differ from ours; left for its frontend to map.
    Foreign(proto::GraphDef),
}

/// Reads a `.pb` IR file (ours or MMdnn's).
pub fn load(path: &Path) -> Result<IrFile> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read IR file {}", path.display()))?;
    let gd = proto::GraphDef::decode(&bytes[..]).with_context(|| {
        format!(
            "{} is not an IR graph (binary GraphDef protobuf)",
            path.display()
        )
    })?;
    if gd.ir_version == 0 {
        return Ok(IrFile::Foreign(gd));
    }
    if gd.ir_version > IR_VERSION {
        bail!(
            "{} uses IR version {}, newer than this mmdnn understands ({IR_VERSION}); upgrade mmdnn",
            path.display(),
            gd.ir_version
        );
    }
    let graph = from_proto(&gd).with_context(|| format!("reading {}", path.display()))?;
    Ok(IrFile::Native(graph))
}

/// Writes the IR file set — `<prefix>.pb`, `<prefix>.json` and `<prefix>.npz` — streaming the
/// weights one tensor at a time. The three files appear together only when all are written.
/// Returns the paths written.
pub fn write_ir(graph: &Graph, weights: &dyn WeightReader, prefix: &Path) -> Result<Vec<PathBuf>> {
    let npz_path = with_suffix(prefix, "npz");
    let mut npz = NpzWriter::create(&npz_path)?;
    for node in &graph.nodes {
        let def = ops::lookup(node)?;
        for w in def.weights {
            if weights.info(&node.name, w.name).is_none() {
                continue;
            }
            let t = weights.read(&node.name, w.name).with_context(|| {
                format!(
                    "reading weight '{}' of node '{}' ({})",
                    w.name, node.name, node.op
                )
            })?;
            npz.add(&node.name, w.name, &t)?;
        }
    }
    let bytes = to_proto(graph).encode_to_vec();
    let (pb_path, json_path) = (with_suffix(prefix, "pb"), with_suffix(prefix, "json"));
    let files = vec![
        npz.close()?,
        stage(&pb_path, &bytes)?,
        stage(&json_path, to_json(&bytes)?.as_bytes())?,
    ];
    commit_all(files)?;
    Ok(vec![pb_path, json_path, npz_path])
}

/// `prefix` + "." + ext (keeps dots already in the prefix).
pub fn with_suffix(prefix: &Path, ext: &str) -> std::path::PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    s.into()
}

/// Protobuf JSON of an encoded GraphDef (proto field names, like MMdnn's `.json`), keys sorted
/// so the same graph gives the same bytes (prost-reflect gives a map field, such as a node's
/// attributes, in hash order). Written one node at a time: memory stays near the output's size
/// however many nodes the graph has.
pub fn to_json(encoded: &[u8]) -> Result<String> {
    let mut graph = proto::GraphDef::decode(encoded).context("internal: encoded GraphDef")?;
    let nodes = std::mem::take(&mut graph.node);
    let Json::Object(fields) = message_json("mmdnn.ir.GraphDef", &graph.encode_to_vec())? else {
        bail!("internal: a GraphDef is not a JSON object");
    };
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    if !nodes.is_empty() {
        keys.push("node");
    }
    keys.sort_unstable();
    let mut out = String::from("{");
    for (k, key) in keys.iter().enumerate() {
        out.push_str(if k == 0 { "\n  " } else { ",\n  " });
        out.push_str(&serde_json::to_string(key)?);
        out.push_str(": ");
        if *key != "node" {
            push_indented(
                &mut out,
                &serde_json::to_string_pretty(&fields[*key])?,
                "  ",
            );
            continue;
        }
        out.push('[');
        for (i, node) in nodes.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            let json = sorted_keys(message_json("mmdnn.ir.NodeDef", &node.encode_to_vec())?);
            push_indented(&mut out, &serde_json::to_string_pretty(&json)?, "    ");
        }
        out.push_str("\n  ]");
    }
    out.push_str(if keys.is_empty() { "}\n" } else { "\n}\n" });
    Ok(out)
}

/// The protobuf JSON of one encoded message of type `name`.
fn message_json(name: &str, encoded: &[u8]) -> Result<Json> {
    use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    let pool = match POOL.get() {
        Some(pool) => pool,
        None => {
            let pool =
                DescriptorPool::decode(proto::DESCRIPTORS).context("internal: descriptor set")?;
            POOL.get_or_init(|| pool)
        }
    };
    let desc = pool
        .get_message_by_name(name)
        .with_context(|| format!("internal: no {name} descriptor"))?;
    let msg = DynamicMessage::decode(desc, encoded)?;
    Ok(msg.serialize_with_options(
        serde_json::value::Serializer,
        &SerializeOptions::new().use_proto_field_name(true),
    )?)
}

/// Appends pretty-printed `json`, its lines after the first indented by `indent` (a JSON string
/// holds no raw newline, so every newline is between tokens).
fn push_indented(out: &mut String, json: &str, indent: &str) {
    for (i, line) in json.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(line);
    }
}

fn sorted_keys(v: Json) -> Json {
    match v {
        Json::Object(map) => {
            let mut entries: Vec<(String, Json)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sorted_keys(v)))
                    .collect(),
            )
        }
        Json::Array(items) => Json::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

pub fn dtype_to_proto(d: DType) -> proto::DataType {
    use proto::DataType as P;
    match d {
        DType::F32 => P::DtFloat32,
        DType::F16 => P::DtFloat16,
        DType::BF16 => P::DtBfloat16,
        DType::F64 => P::DtFloat64,
        DType::I8 => P::DtInt8,
        DType::I16 => P::DtInt16,
        DType::I32 => P::DtInt32,
        DType::I64 => P::DtInt64,
        DType::U8 => P::DtUint8,
        DType::U16 => P::DtUint16,
        DType::U32 => P::DtUint32,
        DType::U64 => P::DtUint64,
        DType::Bool => P::DtBool,
        DType::F8E4M3FN => P::DtFloat8e4m3fn,
        DType::F8E4M3FNUZ => P::DtFloat8e4m3fnuz,
        DType::F8E5M2 => P::DtFloat8e5m2,
        DType::F8E5M2FNUZ => P::DtFloat8e5m2fnuz,
        DType::F8E8M0 => P::DtFloat8e8m0,
        DType::F4E2M1 => P::DtFloat4e2m1,
        DType::I4 => P::DtInt4,
        DType::U4 => P::DtUint4,
        DType::I2 => P::DtInt2,
        DType::U2 => P::DtUint2,
    }
}

pub fn dtype_from_proto(v: i32) -> Result<DType> {
    use proto::DataType as P;
    Ok(match P::try_from(v) {
        Ok(P::DtFloat32) => DType::F32,
        Ok(P::DtFloat16) => DType::F16,
        Ok(P::DtBfloat16) => DType::BF16,
        Ok(P::DtFloat64) => DType::F64,
        Ok(P::DtInt8) => DType::I8,
        Ok(P::DtInt16) => DType::I16,
        Ok(P::DtInt32) => DType::I32,
        Ok(P::DtInt64) => DType::I64,
        Ok(P::DtUint8) => DType::U8,
        Ok(P::DtUint16) => DType::U16,
        Ok(P::DtUint32) => DType::U32,
        Ok(P::DtUint64) => DType::U64,
        Ok(P::DtBool) => DType::Bool,
        Ok(P::DtFloat8e4m3fn) => DType::F8E4M3FN,
        Ok(P::DtFloat8e4m3fnuz) => DType::F8E4M3FNUZ,
        Ok(P::DtFloat8e5m2) => DType::F8E5M2,
        Ok(P::DtFloat8e5m2fnuz) => DType::F8E5M2FNUZ,
        Ok(P::DtFloat8e8m0) => DType::F8E8M0,
        Ok(P::DtFloat4e2m1) => DType::F4E2M1,
        Ok(P::DtInt4) => DType::I4,
        Ok(P::DtUint4) => DType::U4,
        Ok(P::DtInt2) => DType::I2,
        Ok(P::DtUint2) => DType::U2,
        _ => bail!("unsupported data type {v}"),
    })
}

/// A shape as MMdnn's `TensorShape`: a symbolic dim is size -1 with its text as the name.
pub fn shape_to_proto(shape: &[i64]) -> proto::TensorShape {
    proto::TensorShape {
        dim: shape
            .iter()
            .map(|&d| match dim::is_symbolic(d) {
                true => proto::tensor_shape::Dim {
                    size: -1,
                    name: dim::text(d),
                },
                false => proto::tensor_shape::Dim {
                    size: d,
                    name: String::new(),
                },
            })
            .collect(),
        unknown_rank: false,
    }
}

/// A shape from a `TensorShape`: a negative size with a name that parses is that symbolic dim;
/// any other negative size is unknown (-1).
pub fn shape_from_proto(s: &proto::TensorShape) -> Vec<i64> {
    s.dim
        .iter()
        .map(|d| match d.size {
            n if n >= 0 => n,
            _ if d.name.is_empty() => -1,
            _ => dim::parse(&d.name).unwrap_or(-1),
        })
        .collect()
}

fn attr_to_proto(v: &AttrValue) -> proto::AttrValue {
    use proto::attr_value::{ListValue, Value};
    let list = |l: ListValue| Value::List(l);
    let value = match v {
        // A symbolic int is written as a one-dim shape, which carries the dim's name.
        AttrValue::Int(d) if dim::is_symbolic(*d) => Value::Shape(shape_to_proto(&[*d])),
        AttrValue::Int(i) => Value::I(*i),
        AttrValue::Float(f) => Value::F(*f),
        AttrValue::Bool(b) => Value::B(*b),
        AttrValue::Str(s) => Value::S(s.clone().into_bytes().into()),
        AttrValue::Type(t) => Value::Type(dtype_to_proto(*t) as i32),
        AttrValue::Shape(s) => Value::Shape(shape_to_proto(s)),
        // A list holding symbolic dims (a Reshape target) is written as a shape, whose dims
        // carry their names; reading coerces it back to the list the op declares.
        AttrValue::Ints(v) if v.iter().any(|&d| dim::is_symbolic(d)) => {
            Value::Shape(shape_to_proto(v))
        }
        AttrValue::Ints(v) => list(ListValue {
            i: v.clone(),
            ..Default::default()
        }),
        AttrValue::Floats(v) => list(ListValue {
            f: v.clone(),
            ..Default::default()
        }),
        AttrValue::Strs(v) => list(ListValue {
            s: v.iter().map(|s| s.clone().into_bytes().into()).collect(),
            ..Default::default()
        }),
    };
    proto::AttrValue { value: Some(value) }
}

/// Converts a protobuf attribute; `None` for kinds mmdnn has no use for (tensors, shape lists).
pub fn attr_from_proto(v: &proto::AttrValue) -> Result<Option<AttrValue>> {
    use proto::attr_value::Value;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Ok(Some(match &v.value {
        None => return Ok(None),
        Some(Value::I(i)) => AttrValue::Int(*i),
        Some(Value::F(f)) => AttrValue::Float(*f),
        Some(Value::B(b)) => AttrValue::Bool(*b),
        Some(Value::S(s)) => AttrValue::Str(text(s)),
        Some(Value::Type(t)) => AttrValue::Type(dtype_from_proto(*t)?),
        Some(Value::Shape(s)) => AttrValue::Shape(shape_from_proto(s)),
        Some(Value::Tensor(_)) => return Ok(None),
        Some(Value::List(l)) => {
            if !l.f.is_empty() {
                AttrValue::Floats(l.f.clone())
            } else if !l.s.is_empty() {
                AttrValue::Strs(l.s.iter().map(|s| text(s)).collect())
            } else if !l.b.is_empty()
                || !l.shape.is_empty()
                || !l.tensor.is_empty()
                || !l.r#type.is_empty()
            {
                return Ok(None);
            } else {
                AttrValue::Ints(l.i.clone())
            }
        }
    }))
}

pub fn to_proto(graph: &Graph) -> proto::GraphDef {
    proto::GraphDef {
        node: graph
            .nodes
            .iter()
            .map(|n| proto::NodeDef {
                name: n.name.clone(),
                op: n.op.clone(),
                input: n.inputs.iter().map(|r| r.to_string()).collect(),
                attr: n
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), attr_to_proto(v)))
                    .collect(),
                output_info: n
                    .outputs
                    .iter()
                    .map(|t| proto::TensorInfo {
                        dtype: dtype_to_proto(t.dtype) as i32,
                        shape: Some(shape_to_proto(&t.shape)),
                    })
                    .collect(),
            })
            .collect(),
        version: 0,
        inputs: graph.inputs.clone(),
        outputs: graph.outputs.iter().map(|r| r.to_string()).collect(),
        ir_version: IR_VERSION,
        producer: graph.producer.clone(),
        output_names: graph.output_names.clone(),
    }
}

pub fn from_proto(gd: &proto::GraphDef) -> Result<Graph> {
    let mut nodes = Vec::with_capacity(gd.node.len());
    for n in &gd.node {
        let mut node = Node::new(n.name.clone(), n.op.clone());
        node.inputs = n.input.iter().map(|s| TensorRef::parse(s)).collect();
        for (k, v) in &n.attr {
            if let Some(a) =
                attr_from_proto(v).with_context(|| format!("node '{}' attribute '{k}'", n.name))?
            {
                node.attrs.insert(k.clone(), a);
            }
        }
        for t in &n.output_info {
            node.outputs.push(TensorType::new(
                dtype_from_proto(t.dtype).with_context(|| format!("node '{}' output", n.name))?,
                t.shape.as_ref().map(shape_from_proto).unwrap_or_default(),
            ));
        }
        nodes.push(node);
    }
    Ok(Graph {
        nodes,
        inputs: gd.inputs.clone(),
        outputs: gd.outputs.iter().map(|s| TensorRef::parse(s)).collect(),
        output_names: gd.output_names.clone(),
        producer: gd.producer.clone(),
    })
}
