//! Reading model data: external data files, outputs picked by --dstNodeName, and packed INT4
//! initializers.
use crate::common::{
    arange, attr_i, err, i64_typed, load, load_model, model, node, ops, run, save, value_info, D,
};
use mmdnn::frontends::{self, SourceArgs};
use mmdnn::interp::Value;
use mmdnn::proto::onnx::{tensor_proto, ModelProto, StringStringEntryProto, TensorProto};
use ndarray::{ArrayD, IxDyn};

fn external(location: &str, offset: usize) -> ModelProto {
    let w = TensorProto {
        name: "w".into(),
        dims: vec![4],
        data_type: tensor_proto::DataType::Float as i32,
        data_location: tensor_proto::DataLocation::External as i32,
        external_data: [
            ("location", location.to_string()),
            ("offset", offset.to_string()),
            ("length", "16".into()),
        ]
        .into_iter()
        .map(|(k, v)| StringStringEntryProto {
            key: k.into(),
            value: v,
        })
        .collect(),
        ..Default::default()
    };
    model(
        13,
        vec![node("Mul", &["x", "w"], &["y"], vec![])],
        vec![w],
        value_info("x", &[D::N(4)]),
    )
}

#[test]
fn external_data_is_read_from_the_models_directory_only() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).unwrap();
    let data: Vec<u8> = [0f32, 0.0, 1.0, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    std::fs::write(dir.join("w.bin"), &data).unwrap();
    std::fs::write(root.path().join("outside.bin"), &data).unwrap();

    let l = load(&save(&dir, "ok.onnx", &external("w.bin", 8)), vec![]).unwrap();
    let y = run(&l, Value::F32(ArrayD::from_elem(IxDyn(&[4]), 2.0)));
    assert_eq!(
        y[0].to_f32().iter().copied().collect::<Vec<_>>(),
        [2.0, 4.0, 6.0, 8.0]
    );

    for bad in [
        "../outside.bin",
        "./../model/w.bin",
        &root.path().join("outside.bin").display().to_string(),
    ] {
        let e = err(load(&save(&dir, "bad.onnx", &external(bad, 0)), vec![]));
        assert!(e.contains("is refused"), "{bad}: {e}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.path().join("outside.bin"), dir.join("link.bin")).unwrap();
        let e = err(load(
            &save(&dir, "link.onnx", &external("link.bin", 0)),
            vec![],
        ));
        assert!(e.contains("outside the model's directory"), "{e}");
    }
    let e = err(load(
        &save(&dir, "short.onnx", &external("w.bin", 12)),
        vec![],
    ));
    assert!(
        e.contains("has 24 bytes; the tensor needs bytes 12..28"),
        "{e}"
    );
    let e = err(load(
        &save(&dir, "missing.onnx", &external("nope.bin", 0)),
        vec![],
    ));
    assert!(e.contains("cannot open external data file"), "{e}");
}

#[test]
fn dst_node_name_picks_outputs_and_reads_only_what_they_need() {
    let mut m = model(
        13,
        vec![
            node("Relu", &["x"], &["r"], vec![]),
            node("TopK", &["r", "k"], &["v", "i"], vec![]),
            node("Sigmoid", &["r"], &["y"], vec![]),
        ],
        vec![i64_typed("k", &[1], &[2])],
        value_info("x", &[D::N(4)]),
    );
    m.graph.as_mut().unwrap().output = vec![value_info("v", &[]), value_info("y", &[])];
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "m.onnx", &m);
    assert!(err(load(&path, vec![])).contains("TopK"));
    let args = |dst: &[&str]| SourceArgs {
        network: Some(path.clone()),
        dst_nodes: dst.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let l = frontends::load("onnx", &args(&["y"])).unwrap();
    assert_eq!(ops(&l), ["DataInput", "Relu", "Sigmoid"]);
    assert_eq!(l.graph.outputs.len(), 1);
    let e = err(frontends::load("onnx", &args(&["nope"])));
    assert!(e.contains("'nope' is not a value of the model"), "{e}");
}

#[test]
fn int4_initializers_are_unpacked() {
    // INT4 [1, −1, 7] packed low nibble first: 0xF1, 0x07; as raw_data or in int32_data.
    let raw = TensorProto {
        name: "w".into(),
        dims: vec![3],
        data_type: tensor_proto::DataType::Int4 as i32,
        raw_data: vec![0xf1, 0x07].into(),
        ..Default::default()
    };
    let typed = TensorProto {
        raw_data: Default::default(),
        int32_data: vec![0xf1, 0x07],
        ..raw.clone()
    };
    for w in [raw, typed] {
        let m = model(
            21,
            vec![
                node("Cast", &["w"], &["wf"], vec![attr_i("to", 1)]),
                node("Add", &["x", "wf"], &["y"], vec![]),
            ],
            vec![w],
            value_info("x", &[D::N(3)]),
        );
        let l = load_model(&m).unwrap();
        let y = run(&l, arange(&[3]));
        let y: Vec<f32> = y[0].as_f32().unwrap().iter().copied().collect();
        for (got, want) in y.iter().zip([-1.0 + 1.0, -0.9 - 1.0, -0.8 + 7.0]) {
            assert!((got - want).abs() < 1e-6, "{y:?}");
        }
    }
}
