//! What a model file or directory holds, told by its content first and its name second: the
//! frontend that reads it, the framework it belongs to when no reader exists for it yet
//! (named from [`super::PLANNED`]), or what else it is (weights, a directory). Signatures:
//! TFLite `TFL3` at bytes 4..8; HDF5; zip archives by their entries (`*/data.pkl`: `torch.save`;
//! only `.npy`: an `.npz`); pickles (0x80, protocol 2 to 5); NumPy `.npy`; protobuf `.pb` files
//! by their fields (a TensorFlow SavedModel or GraphDef, or an IR graph); Caffe prototxt,
//! Darknet cfg and MXNet symbol text; then the planned frameworks' extensions and each
//! frontend's own test.
use super::{extension, file_head, Frontend, FRONTENDS, PLANNED};
use std::path::Path;

/// What [`sniff`] found.
pub enum Kind {
    /// A frontend reads it.
    Reader(&'static dyn Frontend),
    /// A model of a framework no reader exists for yet: the framework's name in
    /// [`super::PLANNED`] (none when it is not planned either) and what the file is.
    Planned {
        framework: Option<&'static str>,
        what: String,
    },
    /// No model: what it is instead.
    Other(String),
    /// Nothing known.
    Unknown,
}

fn planned(framework: &'static str, what: &'static str) -> Kind {
    debug_assert!(PLANNED.iter().any(|p| p.name == framework));
    Kind::Planned {
        framework: Some(framework),
        what: what.into(),
    }
}

/// How many bytes are read to tell a file's kind.
const HEAD: u64 = 4096;

/// Tells what `path` holds.
pub fn sniff(path: &Path) -> Kind {
    if path.is_dir() {
        return directory(path);
    }
    let head = file_head(path, HEAD);
    if let Some(kind) = by_signature(path, &head) {
        return kind;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let ext = extension(path);
    if ext == "pb" || ext == "pbtxt" {
        if let Some(kind) = protobuf(&name, &head) {
            return kind;
        }
    }
    if let Some(kind) = text(&ext, &head) {
        return kind;
    }
    // A planned framework's extension outweighs a reader's guess from a byte or two (ONNX's
    // first byte is Core ML's too), not an HDF5 signature.
    if !head.starts_with(HDF5_MAGIC) {
        if let Some(p) = PLANNED
            .iter()
            .find(|p| p.extensions.contains(&ext.as_str()))
        {
            return Kind::Planned {
                framework: Some(p.name),
                what: format!("a .{ext} file ({})", p.formats),
            };
        }
    }
    match FRONTENDS.iter().find(|f| f.detects(path, &head)) {
        Some(f) => Kind::Reader(*f),
        None => Kind::Unknown,
    }
}

/// The signature every HDF5 file starts with.
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

fn directory(path: &Path) -> Kind {
    if path.join("saved_model.pb").is_file() || path.join("saved_model.pbtxt").is_file() {
        return planned("tensorflow", "a TensorFlow SavedModel directory");
    }
    Kind::Other("a directory".into())
}

/// Formats with a signature of their own.
fn by_signature(path: &Path, head: &[u8]) -> Option<Kind> {
    if head.get(4..8) == Some(b"TFL3") {
        return Some(Kind::Planned {
            framework: None,
            what: "a TensorFlow Lite model (TFL3 flatbuffer)".into(),
        });
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return zip(path);
    }
    if head.starts_with(b"\x93NUMPY") {
        return Some(Kind::Other(
            "a NumPy .npy file (weights or a tensor: MMdnn's IR weights go with their graph \
             .pb, given with -n)"
                .into(),
        ));
    }
    if head.first() == Some(&0x80) && head.get(1).is_some_and(|p| (2..=5).contains(p)) {
        return Some(planned(
            "pytorch",
            "a Python pickle (PyTorch's legacy torch.save format, or a pickled model)",
        ));
    }
    None
}

/// A zip archive, by its entries: `torch.save`'s (`<name>/data.pkl`), an `.npz` (NumPy arrays
/// only); anything else (a `.keras` archive) is left to the frontends.
fn zip(path: &Path) -> Option<Kind> {
    let file = std::fs::File::open(path).ok()?;
    let archive = ::zip::ZipArchive::new(file).ok()?;
    let names: Vec<&str> = archive.file_names().collect();
    if names
        .iter()
        .any(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
    {
        return Some(planned(
            "pytorch",
            "a PyTorch archive written by torch.save (.pt/.pth)",
        ));
    }
    if !names.is_empty() && names.iter().all(|n| n.ends_with(".npy")) {
        return Some(Kind::Other(
            "a NumPy .npz archive (weights: give its IR graph .pb with -n)".into(),
        ));
    }
    None
}

/// A `.pb` file: a TensorFlow SavedModel or GraphDef, Caffe2 nets, or (left to the IR reader)
/// an IR graph.
fn protobuf(name: &str, head: &[u8]) -> Option<Kind> {
    // SavedModel: saved_model_schema_version (field 1, varint), then meta_graphs (field 2).
    if name.starts_with("saved_model.") || head.starts_with(&[0x08, 0x01, 0x12]) {
        return Some(planned(
            "tensorflow",
            "a TensorFlow SavedModel (saved_model.pb)",
        ));
    }
    if name.starts_with("init_net") || name.starts_with("predict_net") {
        return Some(planned(
            "caffe2",
            "a Caffe2 net (init_net.pb / predict_net.pb)",
        ));
    }
    (graph_def(head) == Some(GraphKind::TensorFlow))
        .then(|| planned("tensorflow", "a TensorFlow graph (frozen GraphDef .pb)"))
}

#[derive(Debug, PartialEq)]
enum GraphKind {
    TensorFlow,
    Ir,
}

/// Tells a TensorFlow GraphDef from an IR graph (whose schema follows it) by the fields they
/// spell differently: GraphDef's `library` (2) and `versions` (4) are messages where the IR
/// has a varint and strings; NodeDef's `device` (4) is a string and `attr` (5) map entries
/// where the IR has `attr` (4) map entries and `output_info` (5) messages.
fn graph_def(head: &[u8]) -> Option<GraphKind> {
    let mut fields = Fields(head);
    while let Some((number, value)) = fields.next() {
        match (number, value) {
            (1, Value::Bytes(node)) => {
                if let Some(kind) = node_def(node) {
                    return Some(kind);
                }
            }
            (2, Value::Bytes(_)) => return Some(GraphKind::TensorFlow),
            (2, Value::Varint) | (5, Value::Varint) => return Some(GraphKind::Ir),
            (4, Value::Bytes(v)) => {
                return Some(if v.first() == Some(&0x08) {
                    GraphKind::TensorFlow
                } else {
                    GraphKind::Ir
                })
            }
            _ => {}
        }
    }
    None
}

fn node_def(node: &[u8]) -> Option<GraphKind> {
    let mut fields = Fields(node);
    while let Some((number, value)) = fields.next() {
        match (number, value) {
            // A map entry starts with its key (field 1, a string).
            (4, Value::Bytes(v)) => {
                return Some(if v.first() == Some(&0x0a) {
                    GraphKind::Ir
                } else {
                    GraphKind::TensorFlow
                })
            }
            (5, Value::Bytes(v)) => {
                return Some(if v.first() == Some(&0x0a) {
                    GraphKind::TensorFlow
                } else {
                    GraphKind::Ir
                })
            }
            (6.., _) => return Some(GraphKind::TensorFlow),
            _ => {}
        }
    }
    None
}

enum Value<'a> {
    Varint,
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a protobuf message, as far as `0` holds them whole (a length-delimited field
/// cut by the end of the head is given as far as it goes).
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    fn next(&mut self) -> Option<(u64, Value<'a>)> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => {
                self.varint()?;
                Value::Varint
            }
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                self.0 = self.0.get(n..)?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                let (v, rest) = self.0.split_at(len.min(self.0.len()));
                self.0 = rest;
                Value::Bytes(v)
            }
            _ => return None,
        };
        Some((key >> 3, value))
    }
}

/// Text formats: a Caffe prototxt, a Darknet cfg.
fn text(ext: &str, head: &[u8]) -> Option<Kind> {
    let text = std::str::from_utf8(head).ok().or_else(|| {
        // A head cut inside a multi-byte character.
        std::str::from_utf8(&head[..head.len().saturating_sub(3)]).ok()
    })?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let first = lines.first()?;
    if first.starts_with('{') && text.contains("\"arg_nodes\"") {
        return Some(planned("mxnet", "an MXNet symbol file (-symbol.json)"));
    }
    if first.starts_with("[net]") || first.starts_with("[network]") {
        return Some(planned("darknet", "a Darknet network (.cfg)"));
    }
    let caffe = ext == "prototxt"
        || lines.iter().any(|l| {
            l.starts_with("layer {") || l.starts_with("layers {") || l.starts_with("input_dim:")
        });
    caffe.then(|| planned("caffe", "a Caffe network (prototxt)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_defs_are_told_apart() {
        // TensorFlow: node { name: "x" op: "Placeholder" attr { key: "dtype" … } }.
        let entry = [&[0x0a, 5][..], b"dtype", &[0x12, 2, 0x30, 1]].concat();
        let node = [
            &[0x0a, 1][..],
            b"x",
            &[0x12, 11],
            b"Placeholder",
            &[0x2a, entry.len() as u8],
            &entry,
        ]
        .concat();
        let tf = [&[0x0a, node.len() as u8][..], &node].concat();
        assert_eq!(graph_def(&tf), Some(GraphKind::TensorFlow));
        // IR: node { name: "x" op: "DataInput" output_info { dtype: 10 } }, ir_version: 1.
        let node = [
            &[0x0a, 1][..],
            b"x",
            &[0x12, 9],
            b"DataInput",
            &[0x2a, 2, 0x08, 10],
        ]
        .concat();
        let ir = [&[0x0a, node.len() as u8][..], &node, &[0x28, 1]].concat();
        assert_eq!(graph_def(&ir), Some(GraphKind::Ir));
        // Cut short: no answer rather than a wrong one.
        assert_eq!(graph_def(&[0x0a, 40, 0x0a, 1, b'x']), None);
    }

    #[test]
    fn text_formats() {
        let darknet = text("cfg", b"# yolo\n[net]\nbatch=1\n");
        assert!(matches!(
            darknet,
            Some(Kind::Planned {
                framework: Some("darknet"),
                ..
            })
        ));
        let caffe = text("txt", b"name: \"N\"\nlayer {\n name: \"d\"\n}\n");
        assert!(matches!(
            caffe,
            Some(Kind::Planned {
                framework: Some("caffe"),
                ..
            })
        ));
        assert!(text("json", b"{\"class_name\": \"Model\"}").is_none());
        assert!(text("bin", &[0xff, 0xfe, 0x00]).is_none());
    }
}
