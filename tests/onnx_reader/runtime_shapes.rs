//! Shape-like operands computed at run time: a Reshape target fed as a graph input stays an
//! int64 input of the IR's Reshape, and shape arithmetic on symbolic dims that no symbolic
//! evaluation can express (`Equal(N, 3)`) is computed at run time from the input's shape —
//! both run at several sizes, with the expected values written out here.
use crate::common::*;
use mmdnn::interp::{Interpreter, Value};
use mmdnn::proto::onnx::{tensor_proto, type_proto, TypeProto, ValueInfoProto};
use ndarray::{ArrayD, IxDyn};

/// A 1-d int64 graph input of `n` entries.
fn ints_input(name: &str, n: i64) -> ValueInfoProto {
    let mut v = value_info(name, &[D::N(n)]);
    v.r#type = Some(TypeProto {
        value: Some(type_proto::Value::TensorType(type_proto::Tensor {
            elem_type: tensor_proto::DataType::Int64 as i32,
            shape: v.r#type.and_then(|t| match t.value {
                Some(type_proto::Value::TensorType(t)) => t.shape,
                _ => None,
            }),
        })),
        ..Default::default()
    });
    v
}

fn ints(v: &[i64]) -> Value {
    Value::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap())
}

#[test]
fn a_reshape_target_fed_as_an_input_is_read_at_run_time() {
    let mut m = model(
        14,
        vec![node("Reshape", &["x", "shape"], &["y"], vec![])],
        vec![],
        value_info("x", &[D::N(2), D::N(3), D::N(4)]),
    );
    m.graph.as_mut().unwrap().input.push(ints_input("shape", 2));
    let l = load_model(&m).unwrap();
    let reshape = l.graph.nodes.iter().find(|n| n.op == "Reshape").unwrap();
    assert_eq!(reshape.runtime_attrs().collect::<Vec<_>>(), ["shape"]);
    assert_eq!(reshape.outputs[0].shape, [-1, -1], "{}", reshape.outputs[0]);
    let x = arange(&[2, 3, 4]);
    for (target, want) in [([6, 4], [6usize, 4]), ([0, 12], [2, 12]), ([-1, 3], [8, 3])] {
        let y = Interpreter::new(&l.graph, l.weights.as_ref())
            .run(&[("x".into(), x.clone()), ("shape".into(), ints(&target))])
            .unwrap();
        assert_eq!(y[0].shape(), want, "target {target:?}");
        assert_eq!(
            y[0].to_f32().iter().copied().collect::<Vec<_>>(),
            x.to_f32().iter().copied().collect::<Vec<_>>()
        );
    }
}

/// `y = x * 2 if x.shape[0] == 3 else x`, as exporters trace such branches into `Where`.
#[test]
fn symbolic_dims_an_op_cannot_use_now_are_computed_at_run_time() {
    let three = i64_typed("three", &[], &[3]);
    let zero = i64_typed("zero", &[], &[0]);
    let two = f32_raw("two", &[], &[2.0]);
    let m = model(
        13,
        vec![
            node("Shape", &["x"], &["s"], vec![]),
            node("Gather", &["s", "zero"], &["n"], vec![]),
            node("Equal", &["n", "three"], &["is3"], vec![]),
            node("Mul", &["x", "two"], &["x2"], vec![]),
            node("Where", &["is3", "x2", "x"], &["y"], vec![]),
        ],
        vec![three, zero, two],
        value_info("x", &[D::S("N"), D::N(4)]),
    );
    let l = load_model(&m).unwrap();
    assert!(ops(&l).contains(&"Shape".to_string()), "{:?}", ops(&l));
    for (n, factor) in [(3, 2.0f32), (2, 1.0), (5, 1.0)] {
        let x = arange(&[n, 4]);
        let y = run(&l, x.clone());
        let want: Vec<f32> = x.to_f32().iter().map(|v| v * factor).collect();
        assert_eq!(
            y[0].to_f32().iter().copied().collect::<Vec<_>>(),
            want,
            "N = {n}"
        );
    }
}
