//! The PyTorch target from the command line, without PyTorch: unsupported nodes are all listed
//! and nothing is written; hostile layer names give valid, safe Python; the state dict has the
//! layout `torch.save` writes.
mod common;

use assert_cmd::Command;
use mmdnn::ir::{serialize, validate, AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor};
use predicates::prelude::*;
use std::io::Read;
use std::path::Path;

fn mmdnn() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("mmdnn"))
}

fn input(g: &mut Graph, name: &str, shape: &[i64]) -> TensorRef {
    g.inputs.push(name.to_string());
    g.add(
        Node::new(name, "DataInput")
            .with_attr("dtype", AttrValue::Type(DType::F32))
            .with_attr("shape", AttrValue::Shape(shape.to_vec())),
    )
    .unwrap()
}

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::from_f32(shape.to_vec(), &vec![0.0; shape.iter().product()]).unwrap()
}

/// `mmdnn tocode -f pytorch` of the IR at `prefix` (.pb and .npz) into `code`.
fn tocode(prefix: &Path, code: &Path) -> Command {
    let mut cmd = mmdnn();
    cmd.args(["tocode", "-f", "pytorch", "-n"])
        .arg(prefix.with_extension("pb"))
        .arg("-w")
        .arg(prefix.with_extension("npz"))
        .arg("-d")
        .arg(code);
    cmd
}

fn save(g: &mut Graph, w: &MemoryWeights, dir: &Path) -> std::path::PathBuf {
    validate::check(g, Some(w)).unwrap();
    let prefix = dir.join("ir");
    serialize::write_ir(g, w, &prefix).unwrap();
    prefix
}

#[test]
fn unsupported_nodes_are_all_listed_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Graph::default();
    let y = input(&mut g, "y", &[1, 3, -1, 7]);
    // A ceil-mode window may start in the end padding of an axis whose size is unknown.
    let pool = Node::new("ceil_pool", "Pool")
        .with_inputs([y.clone()])
        .with_attr("pooling_type", AttrValue::Str("MAX".into()))
        .with_attr("kernel_shape", AttrValue::Ints(vec![2, 2]))
        .with_attr("strides", AttrValue::Ints(vec![2, 2]))
        .with_attr("pads", AttrValue::Ints(vec![0, 0, 1, 1]))
        .with_attr("ceil_mode", AttrValue::Bool(true));
    let pool = g.add(pool).unwrap();
    // Reads the failed node: not reported again.
    let after = g
        .add(Node::new("after", "Relu").with_inputs([pool]))
        .unwrap();
    let slice = Node::new("reversed", "Slice")
        .with_inputs([y])
        .with_attr("starts", AttrValue::Ints(vec![2]))
        .with_attr("ends", AttrValue::Ints(vec![0]))
        .with_attr("axes", AttrValue::Ints(vec![2]))
        .with_attr("steps", AttrValue::Ints(vec![-1]));
    let slice = g.add(slice).unwrap();
    g.outputs = vec![after, slice];
    let prefix = save(&mut g, &MemoryWeights::default(), dir.path());
    let (code, weights) = (dir.path().join("m.py"), dir.path().join("w.pth"));
    tocode(&prefix, &code)
        .arg("-dw")
        .arg(&weights)
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("2 node(s)")
                .and(predicate::str::contains("node 'ceil_pool' (Pool)"))
                .and(predicate::str::contains("'after'").not())
                .and(predicate::str::contains("node 'reversed' (Slice)"))
                .and(predicate::str::contains("ops: Pool, Slice")),
        );
    assert!(!code.exists() && !weights.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("ir."))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn hostile_names_give_safe_python() {
    let names = [
        "x\"); __import__(\"os\").system(\"touch pwned\") #",
        "__init__",
        "class",
        "None",
        "ünï 层",
        "line\nimport os\r\u{2028}x",
    ];
    let long = "é".repeat(10_000);
    let dir = tempfile::tempdir().unwrap();
    let mut g = Graph::default();
    let mut w = MemoryWeights::default();
    let mut t = input(&mut g, names[0], &[1, 2, 4, 4]);
    let conv = Node::new(&long, "Conv")
        .with_inputs([t])
        .with_attr("kernel_shape", AttrValue::Ints(vec![1, 1]))
        .with_attr("out_channels", AttrValue::Int(2));
    w.insert(&long, "weights", zeros(&[2, 2, 1, 1]));
    t = g.add(conv).unwrap();
    for name in &names[1..] {
        t = g.add(Node::new(*name, "Relu").with_inputs([t])).unwrap();
    }
    g.outputs = vec![t];
    let prefix = save(&mut g, &w, dir.path());
    let code = dir.path().join("model.py");
    tocode(&prefix, &code).assert().success();
    let text = std::fs::read_to_string(&code).unwrap();
    assert!(text.is_ascii());
    for line in text.lines() {
        let code_part = line.trim_start();
        if code_part.starts_with('#') {
            continue;
        }
        assert!(
            !code_part.contains("__import__") && !code_part.contains("import os"),
            "injected code in: {line}"
        );
    }
    assert!(text.contains("self.layer = nn.Conv2d(2, 2, kernel_size=1, bias=False)"));
    assert!(text.contains("init = F.relu(layer)\n"));
    assert!(text.contains("class_1 = F.relu(init)\n"));
    assert!(
        text.lines().all(|l| l.len() < 400),
        "a line holds a 10,000-character name"
    );
    // Python itself accepts the file, when it is there to ask.
    if let Ok(out) = std::process::Command::new("python3")
        .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
        .arg(&code)
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn state_dict_has_the_torch_save_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Graph::default();
    let mut w = MemoryWeights::default();
    let x = input(&mut g, "x", &[-1, 6]);
    let fc = Node::new("fc", "FullyConnected")
        .with_inputs([x])
        .with_attr("units", AttrValue::Int(3))
        .with_attr("use_bias", AttrValue::Bool(true));
    w.insert("fc", "weights", zeros(&[6, 3]));
    w.insert("fc", "bias", zeros(&[3]));
    g.outputs = vec![g.add(fc).unwrap()];
    let prefix = save(&mut g, &w, dir.path());
    let pth = dir.path().join("w.pth");
    tocode(&prefix, &dir.path().join("m.py"))
        .arg("-dw")
        .arg(&pth)
        .assert()
        .success();
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&pth).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(String::from).collect();
    assert_eq!(
        names,
        [
            "archive/data.pkl",
            "archive/.format_version",
            "archive/.storage_alignment",
            "archive/byteorder",
            "archive/data/0",
            "archive/data/1",
            "archive/version",
            "archive/.data/serialization_id",
        ]
    );
    let mut pkl = vec![];
    zip.by_name("archive/data.pkl")
        .unwrap()
        .read_to_end(&mut pkl)
        .unwrap();
    assert_eq!(&pkl[..2], b"\x80\x02");
    assert_eq!(pkl.last(), Some(&b'.'));
    let text = String::from_utf8_lossy(&pkl);
    for needle in [
        "collections\nOrderedDict\n",
        "torch._utils\n_rebuild_tensor_v2\n",
        "torch\nFloatStorage\n",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(text.contains(needle), "data.pkl lacks {needle:?}");
    }
    // fc.weight is [3, 6] read through strides (1, 3) from the stored [6, 3].
    let strided = b"K\x03K\x06\x86K\x01K\x03\x86";
    assert!(pkl.windows(strided.len()).any(|w| w == strided));
    for i in 0..zip.len() {
        let f = zip.by_index(i).unwrap();
        assert_eq!(f.compression(), zip::CompressionMethod::Stored);
        assert_eq!(
            f.data_start() % 64,
            0,
            "{} is not 64-byte aligned",
            f.name()
        );
    }
}

/// x [3] + Cast(Cast(Constant `w` of `dtype`, float32), to), saved as an IR in `dir`.
fn narrow_ir(dtype: DType, to: DType, dir: &Path) -> std::path::PathBuf {
    let (mut g, w, s) = common::narrow_constant_add(dtype, vec![1, 2, 3], "s");
    let y = g
        .add(
            Node::new("y", "Cast")
                .with_inputs([s])
                .with_attr("to", AttrValue::Type(to)),
        )
        .unwrap();
    g.outputs = vec![y];
    save(&mut g, &w, dir)
}

#[test]
fn element_types_torch_lacks_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = narrow_ir(DType::I4, DType::F8E5M2, dir.path());
    let code = dir.path().join("m.py");
    tocode(&prefix, &code)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "cannot represent element type(s) int4 (torch lacks them): int4 in node(s) 'w'",
        ));
    assert!(!code.exists());
    // float8 maps to torch's types; a saturating Cast clamps to the largest finite value first.
    let prefix = narrow_ir(DType::F8E4M3FN, DType::F8E5M2, dir.path());
    tocode(&prefix, &code).assert().success();
    let py = std::fs::read_to_string(&code).unwrap();
    assert!(
        py.contains(".float().clamp(-57344.0, 57344.0).to(torch.float8_e5m2)"),
        "{py}"
    );
}
