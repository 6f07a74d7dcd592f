//! Conv, ConvTranspose and RuntimeConv.
use super::{check, OneOp};
use expect_test::expect;

#[test]
fn conv2d_with_groups_and_asymmetric_pads_pads_explicitly() {
    check(
        OneOp::new("Conv")
            .input("x", &[1, 4, 8, 8])
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[0, 0, 1, 1])
            .int("group", 2)
            .int("out_channels", 6)
            .bool("use_bias", true)
            .weight("weights", &[6, 2, 3, 3])
            .weight("bias", &[6]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(4, 6, kernel_size=3, stride=2, groups=2)

            def forward(self, x):
                conv = self.conv(F.pad(x, [0, 1, 0, 1]))
                return conv
            # state: conv.weight [6, 2, 3, 3]
            # state: conv.bias [6]
        "#]],
    );
}

#[test]
fn depthwise_conv2d_with_symmetric_pads_uses_padding() {
    check(
        OneOp::new("Conv")
            .input("x", &[1, 8, 6, 5])
            .ints("kernel_shape", &[3, 1])
            .ints("pads", &[1, 0, 1, 0])
            .int("group", 8)
            .int("out_channels", 8)
            .weight("weights", &[8, 1, 3, 1]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(8, 8, kernel_size=(3, 1), padding=(1, 0), groups=8, bias=False)

            def forward(self, x):
                conv = self.conv(x)
                return conv
            # state: conv.weight [8, 1, 3, 1]
        "#]],
    );
}

#[test]
fn conv1d_with_dilation() {
    check(
        OneOp::new("Conv")
            .input("x", &[1, 3, 10])
            .ints("kernel_shape", &[3])
            .ints("dilations", &[2])
            .ints("pads", &[2, 2])
            .int("out_channels", 5)
            .weight("weights", &[5, 3, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv1d(3, 5, kernel_size=3, padding=2, dilation=2, bias=False)

            def forward(self, x):
                conv = self.conv(x)
                return conv
            # state: conv.weight [5, 3, 3]
        "#]],
    );
}

#[test]
fn conv_transpose2d_crops_asymmetric_pads() {
    check(
        OneOp::new("ConvTranspose")
            .input("x", &[1, 4, 5, 5])
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[1, 1, 0, 0])
            .ints("output_padding", &[1, 1])
            .int("out_channels", 2)
            .bool("use_bias", true)
            .weight("weights", &[4, 2, 3, 3])
            .weight("bias", &[2]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.convtranspose = nn.ConvTranspose2d(4, 2, kernel_size=3, stride=2, output_padding=1)

            def forward(self, x):
                convtranspose = self.convtranspose(x)[:, :, 1:, 1:]
                return convtranspose
            # state: convtranspose.weight [4, 2, 3, 3]
            # state: convtranspose.bias [2]
        "#]],
    );
}

#[test]
fn grouped_conv_transpose1d() {
    check(
        OneOp::new("ConvTranspose")
            .input("x", &[1, 4, 7])
            .ints("kernel_shape", &[4])
            .ints("strides", &[2])
            .ints("pads", &[1, 1])
            .int("group", 2)
            .int("out_channels", 6)
            .weight("weights", &[4, 3, 4]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.convtranspose = nn.ConvTranspose1d(4, 6, kernel_size=4, stride=2, padding=1, groups=2, bias=False)

            def forward(self, x):
                convtranspose = self.convtranspose(x)
                return convtranspose
            # state: convtranspose.weight [4, 3, 4]
        "#]],
    );
}

#[test]
fn runtime_conv_is_the_functional_conv_on_its_inputs() {
    check(
        OneOp::new("RuntimeConv")
            .input("x", &[1, 4, 8, 8])
            .input("w", &[6, 2, 3, 3])
            .input("b", &[6])
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .ints("pads", &[0, 0, 1, 1])
            .int("group", 2)
            .int("out_channels", 6),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x, w, b):
                runtimeconv = F.conv2d(F.pad(x, [0, 1, 0, 1]), w, b, stride=2, groups=2)
                return runtimeconv
        "#]],
    );
}

#[test]
fn runtime_conv1d_without_bias_and_symmetric_pads() {
    check(
        OneOp::new("RuntimeConv")
            .input("x", &[1, 3, 9])
            .input("w", &[2, 3, 3])
            .ints("kernel_shape", &[3])
            .ints("pads", &[2, 2])
            .ints("dilations", &[2])
            .int("out_channels", 2),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x, w):
                runtimeconv = F.conv1d(x, w, padding=2, dilation=2)
                return runtimeconv
        "#]],
    );
}

#[test]
fn conv_with_same_padding_at_run_time_pads_from_the_input_shape() {
    let (h, w) = (crate::ir::dim::symbol("H"), crate::ir::dim::symbol("W"));
    check(
        OneOp::new("Conv")
            .input("x", &[1, 4, h, w])
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .str("auto_pad", "same_upper")
            .int("group", 4)
            .int("out_channels", 4)
            .weight("weights", &[4, 1, 3, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(4, 4, kernel_size=3, stride=2, groups=4, bias=False)

            def forward(self, x):
                conv_pad = same_pad(x.shape[2:], [3, 3], [2, 2], [1, 1], True)
                conv = self.conv(F.pad(x, conv_pad))
                return conv
            # state: conv.weight [4, 1, 3, 3]
        "#]],
    );
}

#[test]
fn runtime_conv_with_same_lower_padding_at_run_time() {
    let h = crate::ir::dim::symbol("H");
    check(
        OneOp::new("RuntimeConv")
            .input("x", &[1, 2, h])
            .input("w", &[3, 2, 2])
            .ints("kernel_shape", &[2])
            .ints("strides", &[3])
            .str("auto_pad", "same_lower")
            .int("out_channels", 3),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x, w):
                runtimeconv_pad = same_pad(x.shape[2:], [2], [3], [1], False)
                runtimeconv = F.conv1d(F.pad(x, runtimeconv_pad), w, stride=3)
                return runtimeconv
        "#]],
    );
}

#[test]
fn conv_with_same_padding_of_known_sizes_pads_explicitly() {
    check(
        OneOp::new("Conv")
            .input("x", &[1, 3, 7, 8])
            .ints("kernel_shape", &[3, 3])
            .ints("strides", &[2, 2])
            .str("auto_pad", "same_upper")
            .int("out_channels", 2)
            .weight("weights", &[2, 3, 3, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 2, kernel_size=3, stride=2, bias=False)

            def forward(self, x):
                conv = self.conv(F.pad(x, [0, 1, 1, 1]))
                return conv
            # state: conv.weight [2, 3, 3, 3]
        "#]],
    );
}
