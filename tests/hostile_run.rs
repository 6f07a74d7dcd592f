//! Hostile sizes at run time: an op whose output exceeds the memory budget, and a graph input
//! too large to make up with --random-input, fail with exit 1 and a message naming the node or
//! input, instead of asking the allocator for terabytes and aborting.
use mmdnn::ir::serialize::write_ir;
use mmdnn::ir::validate::check;
use mmdnn::ir::{AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::MemoryWeights;
use std::path::Path;
use std::process::Command;

fn ir(dir: &Path, input: Vec<i64>, repeats: Vec<i64>) -> std::path::PathBuf {
    let mut g = Graph {
        nodes: vec![
            Node::new("x", "DataInput")
                .with_attr("dtype", AttrValue::Type(DType::F32))
                .with_attr("shape", AttrValue::Shape(input)),
            Node::new("tile", "Tile")
                .with_inputs([TensorRef::parse("x")])
                .with_attr("repeats", AttrValue::Ints(repeats)),
        ],
        inputs: vec!["x".into()],
        outputs: vec![TensorRef::parse("tile")],
        output_names: vec![],
        producer: "test".into(),
    };
    check(&mut g, None).unwrap();
    let prefix = dir.join("g");
    write_ir(&g, &MemoryWeights::default(), &prefix).unwrap();
    prefix.with_extension("pb")
}

fn run(pb: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mmdnn"))
        .arg("run")
        .arg("-n")
        .arg(pb)
        .args(["--random-input", "-o"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_op_over_the_memory_budget_fails_naming_the_node() {
    let dir = tempfile::tempdir().unwrap();
    // 1 × 1024 floats tiled 1024 × 1024 times: 4 GiB, over a budget of 64 MiB.
    let pb = ir(dir.path(), vec![1, 1024], vec![1024, 1024]);
    let out = run(&pb, &dir.path().join("out"), &["--max-memory", "64M"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("node 'tile' (Tile)") && err.contains("memory budget"),
        "{err}"
    );
    // Within the budget it runs.
    let pb = ir(dir.path(), vec![1, 4], vec![2, 2]);
    let out = run(&pb, &dir.path().join("out2"), &["--max-memory", "64M"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_random_input_over_the_budget_fails_naming_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let pb = ir(dir.path(), vec![1 << 40], vec![1]);
    let out = run(&pb, &dir.path().join("out"), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("graph input 'x'") && err.contains("memory budget"),
        "{err}"
    );
}
