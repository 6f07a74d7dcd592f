//! Writes a lowered model as a `.onnx` file without ever holding more than one weight tensor in
//! memory. The protobuf is encoded by hand around the initializers: the model's and graph's
//! other fields are encoded with prost (they are small), each initializer's metadata too, and
//! each tensor's bytes are then streamed from the weight store behind its length-delimited
//! framing, every length computed beforehand from the tensor infos. A model over 2 GB (or with
//! `external_data`) keeps its tensors of 1 KiB or more in `<model>.data` next to it, at
//! 4 KiB-aligned offsets (`location`/`offset`/`length`, data_location EXTERNAL). Both files are
//! staged as temporaries and appear together on commit.
use super::builder::{Init, Payload};
use super::ops::onnx_dtype;
use super::{ir_version, Model};
use crate::ir::narrow;
use crate::output::AtomicFile;
use crate::proto::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataLocation, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
};
use crate::weights::{Sink, WeightReader};
use anyhow::{bail, Context, Result};
use prost::Message;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Largest model written as one protobuf (protobuf's limit is 2 GiB; this leaves room).
pub const INLINE_LIMIT: u64 = 2_000_000_000;
/// Tensors smaller than this stay inline even in a model with external data.
pub const EXTERNAL_MIN: u64 = 1024;
/// Alignment of each tensor in the external data file (lets runtimes map it).
pub const ALIGN: u64 = 4096;

// Field tags (field number << 3 | wire type 2) of the length-delimited fields written by hand.
const MODEL_GRAPH: u8 = 7 << 3 | 2;
const GRAPH_INITIALIZER: u8 = 5 << 3 | 2;
const TENSOR_RAW_DATA: u8 = 9 << 3 | 2;
const GRAPH_NODE: u8 = 1 << 3 | 2;
const NODE_ATTRIBUTE: u8 = 5 << 3 | 2;

/// The external data file of a model: `<model file name>.data` beside it.
pub fn data_path(model: &Path) -> PathBuf {
    let mut name = model.file_name().unwrap_or_default().to_os_string();
    name.push(".data");
    model.with_file_name(name)
}

fn varint_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(w: &mut impl Write, mut v: u64) -> std::io::Result<()> {
    let mut buf = [0u8; 10];
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    w.write_all(&buf[..=i])
}

/// Where one initializer's bytes go.
enum Place {
    Inline,
    /// Offset in the external data file.
    External(u64),
}

/// One initializer ready to write: its metadata message and where its data goes.
struct Planned<'m> {
    init: &'m Init,
    meta: Vec<u8>,
    place: Place,
}

impl Planned<'_> {
    /// Length of the TensorProto message.
    fn message_len(&self) -> u64 {
        let n = self.init.nbytes();
        self.meta.len() as u64
            + match self.place {
                Place::Inline => 1 + varint_len(n) + n,
                Place::External(_) => 0,
            }
    }
}

/// The graph without its initializers: nodes, inputs, outputs.
fn encode_graph(model: &Model) -> Vec<u8> {
    let mut out = GraphProto {
        name: "mmdnn".into(),
        input: model.inputs.clone(),
        output: model.outputs.clone(),
        ..Default::default()
    }
    .encode_to_vec();
    for node in &model.nodes {
        let mut bytes = NodeProto {
            attribute: vec![],
            ..node.clone()
        }
        .encode_to_vec();
        for a in &node.attribute {
            put_message(&mut bytes, NODE_ATTRIBUTE, &encode_attribute(a));
        }
        put_message(&mut out, GRAPH_NODE, &bytes);
    }
    out
}

/// An attribute's encoding. The ONNX schema's scalar fields are proto2 `optional`, so a zero
/// int, float or empty string must be present on the wire (runtimes check for it), while the
/// generated proto3 types leave defaults out: they are appended explicitly.
fn encode_attribute(a: &AttributeProto) -> Vec<u8> {
    let mut bytes = a.encode_to_vec();
    match AttributeType::try_from(a.r#type) {
        Ok(AttributeType::Int) if a.i == 0 => bytes.extend([3 << 3, 0]),
        Ok(AttributeType::Float) if a.f == 0.0 => {
            bytes.push(2 << 3 | 5);
            bytes.extend(a.f.to_le_bytes());
        }
        Ok(AttributeType::String) if a.s.is_empty() => bytes.extend([4 << 3 | 2, 0]),
        _ => {}
    }
    bytes
}

/// Appends a length-delimited field.
fn put_message(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    put_varint(out, bytes.len() as u64).expect("writing to a Vec");
    out.extend_from_slice(bytes);
}

/// Plans every initializer: inline, or (when `external`) at an aligned offset of the data file.
fn plan<'m>(model: &'m Model, external: bool, location: &str) -> Vec<Planned<'m>> {
    let mut offset = 0u64;
    model
        .inits
        .iter()
        .map(|init| {
            let n = init.nbytes();
            let mut t = TensorProto {
                dims: init.dims.clone(),
                data_type: onnx_dtype(init.dtype),
                name: init.name.clone(),
                ..Default::default()
            };
            let place = if external && n >= EXTERNAL_MIN {
                offset = offset.div_ceil(ALIGN) * ALIGN;
                let at = offset;
                offset += n;
                let entry = |k: &str, v: String| StringStringEntryProto {
                    key: k.into(),
                    value: v,
                };
                t.external_data = vec![
                    entry("location", location.to_string()),
                    entry("offset", at.to_string()),
                    entry("length", n.to_string()),
                ];
                t.data_location = DataLocation::External as i32;
                Place::External(at)
            } else {
                Place::Inline
            };
            Planned {
                init,
                meta: t.encode_to_vec(),
                place,
            }
        })
        .collect()
}

/// Stages `path` (and, when the weights go external, its data file). The caller commits them
/// together (data file first).
pub fn write(model: &Model, path: &Path, force_external: bool) -> Result<Vec<AtomicFile>> {
    let graph_base = encode_graph(model);
    let total: u64 = model.inits.iter().map(Init::nbytes).sum::<u64>() + graph_base.len() as u64;
    let external = force_external || total > INLINE_LIMIT;
    let data = data_path(path);
    let location = data
        .file_name()
        .context("the output has no file name")?
        .to_string_lossy()
        .into_owned();
    let planned = plan(model, external, &location);
    // No data file when every tensor is small enough to stay inline.
    let external = planned
        .iter()
        .any(|p| matches!(p.place, Place::External(_)));
    let graph_len = graph_base.len() as u64
        + planned
            .iter()
            .map(|p| {
                let m = p.message_len();
                1 + varint_len(m) + m
            })
            .sum::<u64>();
    if !external && graph_len > INLINE_LIMIT {
        bail!("internal: an inline model of {graph_len} bytes is over the protobuf limit");
    }
    let header = ModelProto {
        ir_version: ir_version(model.opset),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: model.opset,
        }],
        producer_name: "mmdnn".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: model.doc.clone(),
        ..Default::default()
    }
    .encode_to_vec();

    let mut model_file = AtomicFile::create(path)?;
    let mut data_file = if external {
        Some(AtomicFile::create(&data)?)
    } else {
        None
    };
    {
        let ctx = || format!("cannot write {}", path.display());
        let mut w = BufWriter::with_capacity(1 << 20, &*model_file.file());
        let mut d = data_file
            .as_mut()
            .map(|f| BufWriter::with_capacity(1 << 20, &*f.file()));
        let mut d_at = 0u64;
        w.write_all(&header).with_context(ctx)?;
        w.write_all(&[MODEL_GRAPH]).with_context(ctx)?;
        put_varint(&mut w, graph_len).with_context(ctx)?;
        w.write_all(&graph_base).with_context(ctx)?;
        for p in &planned {
            let m = p.message_len();
            w.write_all(&[GRAPH_INITIALIZER]).with_context(ctx)?;
            put_varint(&mut w, m).with_context(ctx)?;
            w.write_all(&p.meta).with_context(ctx)?;
            let n = p.init.nbytes();
            match p.place {
                Place::Inline => {
                    w.write_all(&[TENSOR_RAW_DATA]).with_context(ctx)?;
                    put_varint(&mut w, n).with_context(ctx)?;
                    write_bytes(p.init, &model.weights, &mut w).with_context(ctx)?;
                }
                Place::External(at) => {
                    let d = d.as_mut().expect("external data file is open");
                    let dctx = || format!("cannot write {}", data.display());
                    d.write_all(&vec![0u8; (at - d_at) as usize])
                        .with_context(dctx)?;
                    write_bytes(p.init, &model.weights, d).with_context(dctx)?;
                    d_at = at + n;
                }
            }
        }
        w.flush().with_context(ctx)?;
        if let Some(mut d) = d {
            d.flush()
                .with_context(|| format!("cannot write {}", data.display()))?;
        }
    }
    Ok(data_file.into_iter().chain([model_file]).collect())
}

/// Writes an initializer's bytes to `w`: a synthesized tensor's, or the weight streamed from
/// the store (checked against its planned size first; mapped pages are released as written).
/// Sub-byte types are packed as ONNX stores them (read whole, not streamed).
fn write_bytes(init: &Init, weights: &dyn WeightReader, w: &mut dyn Sink) -> Result<()> {
    let packed = init.dtype.bits() < 8;
    match &init.payload {
        Payload::Data(bytes) if packed => Ok(w.write_all(&narrow::pack(init.dtype, bytes))?),
        Payload::Data(bytes) => Ok(w.write_all(bytes)?),
        Payload::Weight { node, param } => {
            let info = weights
                .info(node, param)
                .with_context(|| format!("no weight '{param}' for node '{node}'"))?;
            let stored = narrow::packed_len(info.dtype, info.numel()) as u64;
            if stored != init.nbytes() || info.dtype != init.dtype {
                bail!(
                    "weight '{param}' of node '{node}' is {} {:?} ({} bytes), but {} {:?} was planned",
                    info.dtype,
                    info.shape,
                    info.nbytes(),
                    init.dtype,
                    init.dims
                );
            }
            if packed {
                let t = weights
                    .read(node, param)
                    .with_context(|| format!("reading weight '{param}' of node '{node}'"))?;
                return Ok(w.write_all(&narrow::pack(init.dtype, &t.data))?);
            }
            let written = weights
                .write_to(node, param, w)
                .with_context(|| format!("reading weight '{param}' of node '{node}'"))?;
            if written != init.nbytes() {
                bail!(
                    "weight '{param}' of node '{node}': wrote {written} bytes, expected {}",
                    init.nbytes()
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut buf = vec![];
            put_varint(&mut buf, v).unwrap();
            assert_eq!(buf.len() as u64, varint_len(v), "{v}");
            assert_eq!(
                prost::encoding::decode_varint(&mut buf.as_slice()).unwrap(),
                v
            );
        }
    }

    #[test]
    fn data_file_sits_beside_the_model() {
        assert_eq!(
            data_path(Path::new("/a/b/m.onnx")),
            PathBuf::from("/a/b/m.onnx.data")
        );
    }
}
