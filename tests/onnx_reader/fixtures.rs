//! Models written by the `onnx` package (tests/fixtures/onnx), against ONNX Runtime's outputs.
use crate::common::{err, load, ops, run, FIXTURES};
use mmdnn::interp::Value;
use mmdnn::ir::AttrValue;
use mmdnn::weights::npy;
use std::path::Path;

fn check_fixture(name: &str) {
    let path = Path::new(FIXTURES).join(format!("{name}.onnx"));
    let l = load(&path, vec![]).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let x = Value::from_tensor(&npy::read_file(&path.with_extension("in.npy")).unwrap()).unwrap();
    let outs = run(&l, x);
    assert_eq!(outs.len(), l.graph.outputs.len());
    let mut worst = 0f32;
    for (i, got) in outs.iter().enumerate() {
        let file = Path::new(FIXTURES).join(format!("{name}.ref{i}.npy"));
        let want = Value::from_tensor(&npy::read_file(&file).unwrap()).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name} output {i}");
        let (g, w) = (got.to_f32(), want.to_f32());
        for (a, b) in g.iter().zip(w.iter()) {
            let d = (a - b).abs();
            assert!(
                d <= 1e-4 * b.abs().max(1.0),
                "{name} output {i}: {a} vs {b}"
            );
            worst = worst.max(d);
        }
    }
    eprintln!("{name}: {} outputs, max |Δ| {worst:e}", outs.len());
}

#[test]
fn fixtures_match_onnxruntime() {
    for name in [
        "cnn_op7",
        "transformer_op13_symbolic_batch",
        "zoo_op11",
        "zoo_op21",
        "zoo2_op18",
        "resize_op13",
        "recurrent_op14",
        "external/model",
    ] {
        check_fixture(name);
    }
}

#[test]
fn symbolic_batch_stays_symbolic_and_transformer_reshapes_copy_it() {
    let path = Path::new(FIXTURES).join("transformer_op13_symbolic_batch.onnx");
    let l = load(&path, vec![]).unwrap();
    let x = l.graph.node("x").unwrap();
    let AttrValue::Shape(shape) = &x.attrs["shape"] else {
        panic!("{:?}", x.attrs["shape"]);
    };
    assert!(mmdnn::ir::dim::is_symbolic(shape[0]), "{shape:?}");
    assert_eq!(shape[1..], [6, 16]);
    // Shape -> Gather -> Unsqueeze -> Concat chains are folded; the batch entry is a copy.
    assert!(
        !ops(&l).iter().any(|o| o == "Shape" || o == "Concat"),
        "{:?}",
        ops(&l)
    );
    let reshapes: Vec<_> = l.graph.nodes.iter().filter(|n| n.op == "Reshape").collect();
    assert_eq!(
        reshapes[0].attrs["shape"],
        AttrValue::Ints(vec![0, 6, 3, 2, 8])
    );
    assert_eq!(reshapes[1].attrs["shape"], AttrValue::Ints(vec![0, 6, 16]));
    // --inputShape (batch excluded) keeps the batch symbolic and checks the rest.
    assert!(load(&path, vec![vec![6, 16]]).is_ok());
    let e = err(load(&path, vec![vec![7, 16]]));
    assert!(e.contains("conflicts with its declared dim 6"), "{e}");
}
