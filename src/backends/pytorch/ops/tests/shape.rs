//! Shape, indexing and data movement.
use super::{check, OneOp};
use crate::ir::{AttrValue, DType};
use expect_test::expect;

#[test]
fn reshape_copies_a_dim_and_infers_one() {
    check(
        OneOp::new("Reshape")
            .input("x", &[-1, 3, 4])
            .ints("shape", &[0, -1]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                reshape = x.reshape(x.shape[0], -1)
                return reshape
        "#]],
    );
}

#[test]
fn flatten_from_axis_2() {
    check(
        OneOp::new("Flatten")
            .input("x", &[2, 3, 4, 5])
            .int("axis", 2),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                flatten = x.flatten(0, 1).flatten(1)
                return flatten
        "#]],
    );
}

#[test]
fn transpose_and_unsqueeze() {
    check(
        OneOp::new("Transpose")
            .input("x", &[2, 3, 4])
            .ints("perm", &[0, -1, 1]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                transpose = x.permute(0, 2, 1)
                return transpose
        "#]],
    );
    check(
        OneOp::new("Unsqueeze")
            .input("x", &[2, 3])
            .ints("axes", &[-1, 0]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                unsqueeze = x.unsqueeze(0).unsqueeze(3)
                return unsqueeze
        "#]],
    );
}

#[test]
fn concat_on_the_last_axis() {
    check(
        OneOp::new("Concat")
            .input("a", &[2, 3])
            .input("b", &[2, 5])
            .int("axis", -1),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b):
                concat = torch.cat([a, b], dim=1)
                return concat
        "#]],
    );
}

#[test]
fn split_leaves_out_unused_pieces() {
    check(
        OneOp::new("Split")
            .input("x", &[2, 10])
            .int("axis", 1)
            .ints("split", &[3, 3, 4])
            .outputs(2),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                split, split_1, _ = torch.split(x, [3, 3, 4], dim=1)
                return split, split_1
        "#]],
    );
}

#[test]
fn slice_with_a_negative_step_flips() {
    check(
        OneOp::new("Slice")
            .input("x", &[4, 10])
            .ints("starts", &[1, -2])
            .ints("ends", &[3, 0])
            .ints("axes", &[0, 1])
            .ints("steps", &[1, -3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                # "slice" (Slice)
                slice_1 = x.flip(1)[1:3, 1:9:3]
                return slice_1
        "#]],
    );
}

#[test]
fn constant_pad_lists_the_last_axes_first() {
    check(
        OneOp::new("Pad")
            .input("x", &[1, 2, 3, 4])
            .ints("pads", &[0, 0, 1, 2, 0, 0, 3, 4])
            .float("value", 1.5),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pad = F.pad(x, [2, 4, 1, 3], value=1.5)
                return pad
        "#]],
    );
}

#[test]
fn reflect_pad_is_native_on_spatial_axes() {
    check(
        OneOp::new("Pad")
            .input("x", &[1, 2, 5, 5])
            .ints("pads", &[0, 0, 1, 2, 0, 0, 2, 1])
            .str("mode", "reflect"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pad = F.pad(x, [2, 1, 1, 2], mode="reflect")
                return pad
        "#]],
    );
}

#[test]
fn symmetric_pad_joins_mirrored_edges() {
    check(
        OneOp::new("Pad")
            .input("x", &[3, 4])
            .ints("pads", &[0, 2, 0, 1])
            .str("mode", "symmetric"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pad = torch.cat([x[:, :2].flip(1), x, x[:, -1:].flip(1)], dim=1)
                return pad
        "#]],
    );
}

#[test]
fn tile_expand_and_shape() {
    check(
        OneOp::new("Tile")
            .input("x", &[2, 3])
            .ints("repeats", &[1, 2]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                tile = x.repeat(1, 2)
                return tile
        "#]],
    );
    check(
        OneOp::new("Expand")
            .input("x", &[3, 1])
            .ints("shape", &[2, 3, 4]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                expand = x.expand(2, 3, 4)
                return expand
        "#]],
    );
    check(
        OneOp::new("Shape").input("x", &[2, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                shape = torch.tensor(x.shape, dtype=torch.int64)
                return shape
        "#]],
    );
}

#[test]
fn gather_on_axis_1() {
    check(
        OneOp::new("Gather")
            .input("data", &[3, 5])
            .typed_input("idx", DType::I64, &[2])
            .int("axis", 1),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, data, idx):
                gather = data[:, idx]
                return gather
        "#]],
    );
}

#[test]
fn scatter_nd_adds_rows() {
    check(
        OneOp::new("ScatterND")
            .input("data", &[4, 3])
            .typed_input("idx", DType::I64, &[2, 1])
            .input("upd", &[2, 3])
            .str("reduction", "add"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, data, idx, upd):
                scatternd_idx = idx.reshape(-1, 1).long()
                scatternd_row = torch.remainder(scatternd_idx[:, 0], 4)
                scatternd = data.flatten(0, 0).index_add(0, scatternd_row, upd.flatten(0, 0)).reshape(data.shape)
                return scatternd
        "#]],
    );
}

#[test]
fn cast_to_float8_without_saturation_overflows_to_nan() {
    check(
        OneOp::new("Cast")
            .input("x", &[4])
            .attr("to", AttrValue::Type(DType::F8E4M3FN))
            .bool("saturate", false),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                cast = torch.where(x.float().abs() <= 464.0, x.float(), x.float() * float("nan")).to(torch.float8_e4m3fn)
                return cast
        "#]],
    );
}

#[test]
fn cast_to_int32() {
    check(
        OneOp::new("Cast")
            .input("x", &[4])
            .attr("to", AttrValue::Type(DType::I32)),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                cast = x.to(torch.int32)
                return cast
        "#]],
    );
}

#[test]
fn depth_to_space_dcr_and_crd() {
    check(
        OneOp::new("DepthToSpace")
            .input("x", &[1, 8, 2, 3])
            .int("blocksize", 2),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                # depth-column-row order: channel blocks (row, column, depth).
                depthtospace = x.reshape(1, 2, 2, 2, 2, 3).permute(0, 3, 4, 1, 5, 2).reshape(1, 2, 4, 6)
                return depthtospace
        "#]],
    );
    check(
        OneOp::new("DepthToSpace")
            .input("x", &[1, 8, 2, 3])
            .int("blocksize", 2)
            .str("mode", "CRD"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                depthtospace = F.pixel_shuffle(x, 2)
                return depthtospace
        "#]],
    );
}

#[test]
fn space_to_depth() {
    check(
        OneOp::new("SpaceToDepth")
            .input("x", &[1, 2, 4, 6])
            .int("blocksize", 2),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                spacetodepth = x.reshape(1, 2, 2, 2, 3, 2).permute(0, 3, 5, 1, 2, 4).reshape(1, 8, 2, 3)
                return spacetodepth
        "#]],
    );
}

#[test]
fn symbolic_dims_are_read_from_the_inputs_shapes() {
    let (n, s) = (crate::ir::dim::symbol("N"), crate::ir::dim::symbol("S"));
    let ns = crate::ir::dim::mul(n, s).unwrap();
    check(
        OneOp::new("Reshape")
            .input("x", &[n, s, 768])
            .ints("shape", &[ns, 12, 64]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                reshape = x.reshape(x.shape[0]*x.shape[1], 12, 64)
                return reshape
        "#]],
    );
}

#[test]
fn range_is_arange() {
    check(
        OneOp::new("Range")
            .int("start", 2)
            .int("limit", 9)
            .int("delta", 3),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, ):
                # "range" (Range)
                range_1 = torch.arange(2, 9, 3)
                return range_1
        "#]],
    );
}

#[test]
fn slice_bounds_may_be_symbolic() {
    // `position_ids[:, 2:seq]` of a known 64-wide axis, seq declared by the input.
    let s = crate::ir::dim::symbol("S");
    check(
        OneOp::new("Slice")
            .input("x", &[s, 64])
            .ints("starts", &[2])
            .ints("ends", &[s])
            .ints("axes", &[1]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                # "slice" (Slice)
                slice_1 = x[:, 2:x.shape[0]]
                return slice_1
        "#]],
    );
}
