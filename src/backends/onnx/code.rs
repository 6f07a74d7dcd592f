//! `tocode -f onnx`: the lowered model as a readable Python script that rebuilds it with
//! `onnx.helper` from the IR weights file (`templates/onnx/model.py.tera`), and `tomodel` on
//! such a script. Every name and string from the model reaches the script only as an escaped
//! string literal (`pytorch::names::py_str`); numbers are formatted here, and synthesized
//! constants are hex strings.
use super::builder::Payload;
use super::ops::onnx_dtype;
use super::{build, ir_version, writer, Model, Options};
use crate::backends::pytorch::names::py_str;
use crate::backends::Written;
use crate::ir::passes::layout::{derivation, Derivation};
use crate::ir::passes::Prepared;
use crate::output::{commit_all, stage, AtomicFile};
use crate::proto::onnx::{attribute_proto::AttributeType, type_proto, AttributeProto};
use crate::runners;
use crate::weights;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

#[cfg(test)]
mod snapshots;

/// Writes the script for a prepared graph to `code`; it reads `weights_path` by default, or
/// with `-dw` a copy of them written there (MMdnn's staged commands pass the weights on).
pub fn tocode(
    prepared: Prepared<'_>,
    weights_path: &Path,
    code: &Path,
    weights_out: Option<&Path>,
    opts: Options,
) -> Result<Written> {
    if !is_npz(weights_path)? {
        bail!(
            "the generated script reads .npz IR weights with numpy; {} is MMdnn's pickled \
             format: convert it first with `mmdnn toir -f mmdnn`",
            weights_path.display()
        );
    }
    let model = build(prepared, opts)?;
    let mut files = vec![stage_copy(weights_path, weights_out)?];
    let script_weights = match weights_out {
        Some(out) => absolute(&weights_file(out))?,
        None => std::fs::canonicalize(weights_path)
            .with_context(|| format!("cannot resolve {}", weights_path.display()))?,
    };
    let text = render(&model, &script_weights, code)?;
    files.insert(0, Some(stage(code, text.as_bytes())?));
    commit_all(files.into_iter().flatten().collect())?;
    let written = super::renames(&model).file("ONNX script", code);
    Ok(match weights_out {
        Some(out) => written.file("weights the script reads (.npz)", &weights_file(out)),
        None => written,
    })
}

/// Where `tocode -dw` puts the weights the script reads: an `.npz` archive, so a `.npy` name
/// (MMdnn's) becomes `.npz` — where `tomodel -iw <prefix>.npy` looks, as for IR weights.
fn weights_file(out: &Path) -> PathBuf {
    if out.extension().is_some_and(|e| e == "npy") {
        out.with_extension("npz")
    } else {
        out.to_path_buf()
    }
}

/// A copy of the IR weights at `-dw`, staged (none without `-dw`).
fn stage_copy(weights: &Path, out: Option<&Path>) -> Result<Option<AtomicFile>> {
    let Some(out) = out else {
        return Ok(None);
    };
    let out = weights_file(out);
    let mut file = AtomicFile::create(&out)?;
    let mut src = std::fs::File::open(weights)
        .with_context(|| format!("cannot read weights file {}", weights.display()))?;
    std::io::copy(&mut src, file.file())
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(Some(file))
}

/// `path` made absolute through its (existing) directory.
fn absolute(path: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir =
        std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    Ok(dir.join(
        path.file_name()
            .context("the weights path has no file name")?,
    ))
}

fn is_npz(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .with_context(|| format!("cannot read weights file {}", path.display()))?;
    Ok(&magic[..2] == b"PK")
}

/// The script's text.
pub fn render(model: &Model, weights_path: &Path, code: &Path) -> Result<String> {
    let mut inits = vec![];
    for init in &model.inits {
        let ty = onnx_dtype(init.dtype);
        let dims = list(init.dims.iter().map(|d| d.to_string()));
        let data = match &init.payload {
            Payload::Data(bytes) if init.dtype.bits() < 8 => format!(
                "bytes.fromhex({})",
                hex(&crate::ir::narrow::pack(init.dtype, bytes))
            ),
            Payload::Data(bytes) => format!("bytes.fromhex({})", hex(bytes)),
            Payload::Weight { node, param } => {
                let (src_node, src_param, extra) = match derivation(&model.weights, node, param)
                    .with_context(|| {
                        format!("internal: weight '{param}' of node '{node}' has no source")
                    })? {
                    Derivation::Same => (node.as_str(), param.as_str(), String::new()),
                    Derivation::Permute(n, p, perm) => (n, p, format!(", perm={}", ints(perm))),
                    Derivation::Rows(n, p, rows) => (n, p, format!(", rows={}", ints(rows))),
                };
                let key = weights::key(src_node, src_param, init.dtype);
                let bits = match init.dtype.bits() {
                    8.. => String::new(),
                    b => format!(", bits={b}"),
                };
                format!("weight(store, {}{extra}{bits})", py_str(&key))
            }
        };
        inits.push(format!(
            "tensor({}, {ty}, {dims}, {data})",
            py_str(&init.name)
        ));
    }
    let mut nodes = vec![];
    for n in &model.nodes {
        let attrs = n
            .attribute
            .iter()
            .map(|a| Ok(format!("{}: {}", py_str(&a.name), attr_value(a)?)))
            .collect::<Result<Vec<_>>>()?;
        nodes.push(format!(
            "node({}, {}, {}, {}, {{{}}})",
            py_str(&n.op_type),
            list(n.input.iter().map(|s| py_str(s))),
            list(n.output.iter().map(|s| py_str(s))),
            py_str(&n.name),
            attrs.join(", ")
        ));
    }
    let value = |v: &crate::proto::onnx::ValueInfoProto| -> String {
        let (ty, dims) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => (
                t.elem_type,
                t.shape.as_ref().map(|s| {
                    list(s.dim.iter().map(|d| match &d.value {
                        Some(
                            crate::proto::onnx::tensor_shape_proto::dimension::Value::DimValue(v),
                        ) => v.to_string(),
                        _ => "None".to_string(),
                    }))
                }),
            ),
            _ => (0, None),
        };
        format!(
            "helper.make_tensor_value_info({}, {ty}, {})",
            py_str(&v.name),
            dims.unwrap_or_else(|| "None".into())
        )
    };
    let script = code
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let output = code.with_extension("onnx");
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    tera.add_raw_template(
        "model.py",
        include_str!("../../../templates/onnx/model.py.tera"),
    )
    .context("internal: ONNX template")?;
    let mut ctx = tera::Context::new();
    ctx.insert("version", env!("CARGO_PKG_VERSION"));
    ctx.insert("version_literal", &py_str(env!("CARGO_PKG_VERSION")));
    ctx.insert("opset", &model.opset);
    ctx.insert("ir_version", &ir_version(model.opset));
    // The docstring line is an example command: keep only plain file-name characters there.
    let plain = crate::output::plain_file_name(&script);
    ctx.insert("script", &plain);
    ctx.insert("default_weights", &py_str(&weights_path.to_string_lossy()));
    ctx.insert("default_output", &py_str(&output.to_string_lossy()));
    ctx.insert("inits", &inits);
    ctx.insert("nodes", &nodes);
    ctx.insert(
        "inputs",
        &model.inputs.iter().map(value).collect::<Vec<_>>(),
    );
    ctx.insert(
        "outputs",
        &model.outputs.iter().map(value).collect::<Vec<_>>(),
    );
    tera.render("model.py", &ctx)
        .context("internal: rendering the ONNX script")
}

fn list(items: impl Iterator<Item = String>) -> String {
    format!("[{}]", items.collect::<Vec<_>>().join(", "))
}

fn ints<T: ToString>(v: &[T]) -> String {
    list(v.iter().map(|x| x.to_string()))
}

/// A Python float literal for an f32 (shortest round-trip form; NaN and infinities spelt out).
fn float(v: f32) -> String {
    if v.is_nan() {
        "float(\"nan\")".into()
    } else if v.is_infinite() {
        format!("float(\"{}inf\")", if v < 0.0 { "-" } else { "" })
    } else {
        format!("{v:?}")
    }
}

fn hex(bytes: &[u8]) -> String {
    let s: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{s}\"")
}

fn attr_value(a: &AttributeProto) -> Result<String> {
    let text = |b: &[u8]| py_str(&String::from_utf8_lossy(b));
    Ok(match AttributeType::try_from(a.r#type) {
        Ok(AttributeType::Int) => a.i.to_string(),
        Ok(AttributeType::Float) => float(a.f),
        Ok(AttributeType::String) => text(&a.s),
        Ok(AttributeType::Ints) => ints(&a.ints),
        Ok(AttributeType::Floats) => list(a.floats.iter().map(|&f| float(f))),
        Ok(AttributeType::Strings) => list(a.strings.iter().map(|s| text(s))),
        _ => bail!("internal: attribute '{}' has an unexpected type", a.name),
    })
}

/// `tomodel -f onnx` on a script written by `tocode`: runs it with Python into a temporary
/// directory beside `out`, then moves the model (and its data file) into place together.
pub fn run_script(
    script: &Path,
    weights: &Path,
    out: &Path,
    external_data: bool,
    python: Option<&Path>,
) -> Result<Written> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let work = crate::output::TempDir::new_in(&dir)?;
    let name = out.file_name().context("the output has no file name")?;
    let tmp_model = work.path().join(name);
    let python = runners::python(python);
    let mut cmd = Command::new(&python);
    cmd.arg(script)
        .arg("--weights")
        .arg(weights)
        .arg("--output")
        .arg(&tmp_model);
    if external_data {
        cmd.arg("--external-data");
    }
    let result = crate::output::run_child(&mut cmd)
        .with_context(|| format!("cannot start {}", python.display()))?;
    if !result.status.success() {
        bail!(
            "the ONNX script {} failed:\n{}",
            script.display(),
            String::from_utf8_lossy(&result.stderr)
        );
    }
    let tmp_data = writer::data_path(&tmp_model);
    let data = writer::data_path(out);
    let mut made = vec![(tmp_model, out)];
    if tmp_data.exists() {
        made.push((tmp_data, &data));
    }
    crate::output::commit_made(&made)?;
    let mut written = Written::default();
    if made.len() > 1 {
        written = written.file("ONNX external data", &data);
    }
    Ok(written.file("ONNX model", out))
}
