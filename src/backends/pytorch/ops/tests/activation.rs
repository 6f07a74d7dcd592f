//! Activations and unary math.
use super::{check, OneOp};
use crate::ir::DType;
use expect_test::expect;

#[test]
fn relu() {
    check(
        OneOp::new("Relu").input("x", &[2, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                relu = F.relu(x)
                return relu
        "#]],
    );
}

#[test]
fn sigmoid() {
    check(
        OneOp::new("Sigmoid").input("x", &[2, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                sigmoid = torch.sigmoid(x)
                return sigmoid
        "#]],
    );
}

#[test]
fn leaky_relu() {
    check(
        OneOp::new("LeakyRelu")
            .input("x", &[2, 3])
            .float("alpha", 0.2),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                leakyrelu = F.leaky_relu(x, 0.2)
                return leakyrelu
        "#]],
    );
}

#[test]
fn prelu_with_a_per_channel_slope_is_a_prelu_layer() {
    check(
        OneOp::new("PRelu")
            .input("x", &[1, 3, 4, 4])
            .weight("slope", &[3, 1, 1]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.prelu = nn.PReLU(3)

            def forward(self, x):
                prelu = self.prelu(x)
                return prelu
            # state: prelu.weight [3]
        "#]],
    );
}

#[test]
fn prelu_with_another_slope_is_a_parameter() {
    check(
        OneOp::new("PRelu")
            .input("x", &[1, 3, 4, 4])
            .weight("slope", &[4]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.prelu = nn.Parameter(torch.zeros((4,)))

            def forward(self, x):
                prelu = torch.where(x >= 0, x, self.prelu * x)
                return prelu
            # state: prelu [4]
        "#]],
    );
}

#[test]
fn selu_with_other_constants_is_a_scaled_elu() {
    check(
        OneOp::new("Selu")
            .input("x", &[2, 3])
            .float("alpha", 1.5)
            .float("gamma", 2.0),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                selu = 2.0 * F.elu(x, alpha=1.5)
                return selu
        "#]],
    );
}

#[test]
fn hard_sigmoid_with_onnx_defaults_is_a_clamp() {
    check(
        OneOp::new("HardSigmoid").input("x", &[2, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                hardsigmoid = torch.clamp(x * 0.2 + 0.5, 0.0, 1.0)
                return hardsigmoid
        "#]],
    );
}

#[test]
fn gelu_tanh() {
    check(
        OneOp::new("Gelu")
            .input("x", &[2, 3])
            .str("approximate", "tanh"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                gelu = F.gelu(x, approximate="tanh")
                return gelu
        "#]],
    );
}

#[test]
fn clip_to_0_6_is_relu6() {
    check(
        OneOp::new("Clip")
            .input("x", &[2, 3])
            .float("min", 0.0)
            .float("max", 6.0),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                clip = F.relu6(x)
                return clip
        "#]],
    );
}

#[test]
fn clip_of_integers_rounds_the_bounds_inwards() {
    check(
        OneOp::new("Clip")
            .typed_input("x", DType::I32, &[4])
            .float("min", -1.5)
            .float("max", 2.5),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                clip = torch.clamp(x, -1, 2)
                return clip
        "#]],
    );
}

#[test]
fn log_softmax_on_the_last_axis() {
    check(
        OneOp::new("LogSoftmax")
            .input("x", &[2, 3, 4])
            .int("axis", -1),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                logsoftmax = F.log_softmax(x, dim=2)
                return logsoftmax
        "#]],
    );
}

#[test]
fn identity_returns_its_input() {
    check(
        OneOp::new("Identity").input("x", &[2, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                return x
        "#]],
    );
}
