//! Pool and GlobalPool.
use super::{check, check_error, OneOp};
use expect_test::expect;

#[test]
fn max_pool_with_symmetric_pads_and_ceil_mode_is_native() {
    check(
        OneOp::new("Pool")
            .input("x", &[1, 3, 8, 8])
            .str("pooling_type", "MAX")
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[1, 1, 1, 1])
            .bool("ceil_mode", true),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pool = F.max_pool2d(x, 3, 2, padding=1, ceil_mode=True)
                return pool
        "#]],
    );
}

#[test]
fn max_pool_with_end_pads_and_ceil_mode_crops_torch_extra_window() {
    check(
        OneOp::new("Pool")
            .input("x", &[1, 3, 6, 6])
            .str("pooling_type", "MAX")
            .ints("kernel_shape", &[2, 2])
            .ints("strides", &[2, 2])
            .ints("pads", &[0, 0, 1, 1])
            .bool("ceil_mode", true),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pool = F.max_pool2d(F.pad(x, [0, 1, 0, 1], value=float("-inf")), 2, 2, ceil_mode=True)[:, :, :3, :3]
                return pool
        "#]],
    );
}

#[test]
fn avg_pool_with_end_pads_divides_by_cells_inside_the_input() {
    check(
        OneOp::new("Pool")
            .input("x", &[1, 2, 5, 5])
            .str("pooling_type", "AVG")
            .ints("kernel_shape", &[2, 2])
            .ints("strides", &[2, 2])
            .ints("pads", &[0, 0, 1, 1]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                # Average over the cells inside the input only: window sums over window counts.
                pool_count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), [0, 1, 0, 1]), 2, 2)
                pool = (F.avg_pool2d(F.pad(x, [0, 1, 0, 1]), 2, 2) / pool_count)
                return pool
        "#]],
    );
}

#[test]
fn dilated_avg_pool_is_two_ones_kernel_convolutions() {
    check(
        OneOp::new("Pool")
            .input("x", &[1, 2, 7])
            .str("pooling_type", "AVG")
            .ints("kernel_shape", &[2])
            .ints("dilations", &[2])
            .ints("pads", &[1, 1])
            .bool("count_include_pad", true),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                # Dilated average pooling: window sums over the number of window cells inside the padded input.
                pool_cells = F.pad(torch.ones_like(x[:1, :1]), [1, 1], value=1.0)
                pool_counts = F.conv1d(pool_cells, torch.ones(1, 1, 2, dtype=x.dtype), stride=1, dilation=2)
                pool = (F.conv1d(F.pad(x, [1, 1]), torch.ones(x.shape[1], 1, 2, dtype=x.dtype), stride=1, dilation=2, groups=x.shape[1]) / pool_counts)
                return pool
        "#]],
    );
}

#[test]
fn ceil_mode_with_end_pads_on_an_unknown_size_is_unsupported() {
    check_error(
        OneOp::new("Pool")
            .input("x", &[1, 3, -1, 6])
            .str("pooling_type", "MAX")
            .ints("kernel_shape", &[2, 2])
            .ints("strides", &[2, 2])
            .ints("pads", &[0, 0, 1, 1])
            .bool("ceil_mode", true),
        expect![[r#"
            cannot generate PyTorch code for 1 node(s) (ops: Pool):
              - node 'pool' (Pool): ceil_mode pooling with end padding on a spatial axis of unknown size
        "#]],
    );
}

#[test]
fn global_max_pool_without_keepdims() {
    check(
        OneOp::new("GlobalPool")
            .input("x", &[2, 3, 4, 4])
            .str("pooling_type", "MAX")
            .bool("keepdims", false),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                globalpool = x.amax(dim=(2, 3))
                return globalpool
        "#]],
    );
}

#[test]
fn max_pool_with_same_padding_at_run_time_pads_with_minus_infinity() {
    let (h, w) = (crate::ir::dim::symbol("H"), crate::ir::dim::symbol("W"));
    check(
        OneOp::new("Pool")
            .input("x", &[1, 3, h, w])
            .str("pooling_type", "MAX")
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .str("auto_pad", "same_lower"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pool_pad = same_pad(x.shape[2:], [3, 3], [2, 2], [1, 1], False)
                pool = F.max_pool2d(F.pad(x, pool_pad, value=float("-inf")), 3, 2)
                return pool
        "#]],
    );
}

#[test]
fn avg_pool_with_same_padding_at_run_time_divides_by_cells_inside_the_input() {
    let h = crate::ir::dim::symbol("H");
    check(
        OneOp::new("Pool")
            .input("x", &[1, 3, h, 8])
            .str("pooling_type", "AVG")
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .str("auto_pad", "same_upper"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pool_pad = same_pad(x.shape[2:], [3, 3], [2, 2], [1, 1], True)
                # Average over the cells inside the input only: window sums over window counts.
                pool_count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pool_pad), 3, 2)
                pool = (F.avg_pool2d(F.pad(x, pool_pad), 3, 2) / pool_count)
                return pool
        "#]],
    );
}

#[test]
fn dilated_avg_pool_with_same_padding_at_run_time_pads_both_convolutions() {
    check(
        OneOp::new("Pool")
            .input("x", &[1, 3, crate::ir::dim::symbol("H")])
            .str("pooling_type", "AVG")
            .ints("kernel_shape", &[3])
            .ints("strides", &[2])
            .ints("dilations", &[2])
            .str("auto_pad", "same_upper"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                pool_pad = same_pad(x.shape[2:], [3], [2], [2], True)
                # Dilated average pooling: window sums over the number of window cells inside the input.
                pool_cells = F.pad(torch.ones_like(x[:1, :1]), pool_pad)
                pool_counts = F.conv1d(pool_cells, torch.ones(1, 1, 3, dtype=x.dtype), stride=2, dilation=2)
                pool = (F.conv1d(F.pad(x, pool_pad), torch.ones(x.shape[1], 1, 3, dtype=x.dtype), stride=2, dilation=2, groups=x.shape[1]) / pool_counts)
                return pool
        "#]],
    );
}
