//! GatherElements with indices of symbolic shape, as BERT's embeddings write it
//! (`torch.gather(table, 1, position_ids[:, :seq])`): the indices are a Slice of a constant to a
//! symbolic end, so they exist only at run time. The model must run at any sequence length.
use crate::common::{
    arange, attr_i, f32_raw, i64_typed, load_model, model, node, run, value_info, D,
};
use mmdnn::ir::types::shape_string;
use mmdnn::proto::onnx::NodeProto;

/// Nodes computing `idx = ids[..seq]` along the axis in "axes" of the constant "ids", `seq`
/// being x's dim 1.
fn sliced_ids() -> Vec<NodeProto> {
    vec![
        node("Shape", &["x"], &["s"], vec![]),
        node("Gather", &["s", "one"], &["seq"], vec![attr_i("axis", 0)]),
        node("Unsqueeze", &["seq", "zero_1"], &["end"], vec![]),
        node("Slice", &["ids", "zero_1", "end", "axes"], &["idx"], vec![]),
    ]
}

fn values(v: &mmdnn::interp::Value) -> Vec<f32> {
    v.as_f32().unwrap().iter().copied().collect()
}

/// y = x + table[0, ids[0, j]] with ids = 63, 62, … (axis 1 of [1, 64] data; the indices'
/// other dim is 1).
#[test]
fn gather_elements_of_a_position_slice_runs_at_any_length() {
    let mut nodes = sliced_ids();
    nodes.push(node(
        "GatherElements",
        &["table", "idx"],
        &["g"],
        vec![attr_i("axis", 1)],
    ));
    nodes.push(node("Add", &["x", "g"], &["y"], vec![]));
    let table: Vec<f32> = (0..64).map(|k| 10.0 * k as f32).collect();
    let ids: Vec<i64> = (0..64).rev().collect();
    let inits = vec![
        f32_raw("table", &[1, 64], &table),
        i64_typed("ids", &[1, 64], &ids),
        i64_typed("axes", &[1], &[1]),
        i64_typed("one", &[], &[1]),
        i64_typed("zero_1", &[1], &[0]),
    ];
    let x = value_info("x", &[D::S("batch"), D::S("seq")]);
    let l = load_model(&model(13, nodes, inits, x)).unwrap();
    let y = l.graph.node("y").unwrap();
    assert_eq!(shape_string(&y.outputs[0].shape), "[batch, seq]");
    for (n, s) in [(2, 7), (3, 40)] {
        let x = arange(&[n, s]);
        let got = values(&run(&l, x.clone())[0]);
        let x = values(&x);
        let want: Vec<f32> = (0..n * s)
            .map(|i| x[i] + 10.0 * (63 - (i % s)) as f32)
            .collect();
        assert_eq!(got, want, "batch {n}, seq {s}");
    }
}

/// Gathering along axis 1 of [64, 4] data with [seq, 2] indices (negative ones included): the
/// indices' symbolic dim is the other axis, whose coordinates are an arange of length seq.
#[test]
fn gather_elements_with_a_symbolic_dim_off_the_axis() {
    let mut nodes = sliced_ids();
    nodes.push(node(
        "GatherElements",
        &["table", "idx"],
        &["y"],
        vec![attr_i("axis", 1)],
    ));
    let table: Vec<f32> = (0..256).map(|k| k as f32).collect();
    // Row i picks columns (i % 4) and -1 - (i % 3) (counted from the end).
    let ids: Vec<i64> = (0..64).flat_map(|i| [i % 4, -1 - (i % 3)]).collect();
    let inits = vec![
        f32_raw("table", &[64, 4], &table),
        i64_typed("ids", &[64, 2], &ids),
        i64_typed("axes", &[1], &[0]),
        i64_typed("one", &[], &[1]),
        i64_typed("zero_1", &[1], &[0]),
    ];
    let x = value_info("x", &[D::N(1), D::S("seq")]);
    let l = load_model(&model(13, nodes, inits, x)).unwrap();
    let y = l.graph.node("y").unwrap();
    assert_eq!(shape_string(&y.outputs[0].shape), "[seq, 2]");
    for s in [5, 33] {
        let got = values(&run(&l, arange(&[1, s]))[0]);
        let want: Vec<f32> = (0..s as i64)
            .flat_map(|i| [4 * i + i % 4, 4 * i + 4 - 1 - i % 3])
            .map(|v| v as f32)
            .collect();
        assert_eq!(got, want, "seq {s}");
    }
}
