//! FullyConnected, MatMul, Gemm and Embedding.
use super::{check, OneOp};
use crate::ir::DType;
use expect_test::expect;

#[test]
fn fully_connected_is_linear_with_transposed_weights() {
    check(
        OneOp::new("FullyConnected")
            .input("x", &[2, 4])
            .int("units", 3)
            .bool("use_bias", true)
            .weight("weights", &[4, 3])
            .weight("bias", &[3]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.fullyconnected = nn.Linear(4, 3)

            def forward(self, x):
                fullyconnected = self.fullyconnected(x)
                return fullyconnected
            # state: fullyconnected.weight [3, 4]
            # state: fullyconnected.bias [3]
        "#]],
    );
}

#[test]
fn fully_connected_without_bias_on_a_sequence() {
    check(
        OneOp::new("FullyConnected")
            .input("x", &[2, 5, 4])
            .int("units", 3)
            .weight("weights", &[4, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.fullyconnected = nn.Linear(4, 3, bias=False)

            def forward(self, x):
                fullyconnected = self.fullyconnected(x)
                return fullyconnected
            # state: fullyconnected.weight [3, 4]
        "#]],
    );
}

#[test]
fn matmul() {
    check(
        OneOp::new("MatMul")
            .input("a", &[2, 3, 4])
            .input("b", &[4, 5]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b):
                matmul = torch.matmul(a, b)
                return matmul
        "#]],
    );
}

#[test]
fn gemm_with_transposes_and_scales() {
    check(
        OneOp::new("Gemm")
            .input("a", &[4, 3])
            .input("b", &[5, 4])
            .input("c", &[5])
            .bool("trans_a", true)
            .bool("trans_b", true)
            .float("alpha", 0.5)
            .float("beta", 2.0),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b, c):
                gemm = 0.5 * torch.matmul(a.t(), b.t()) + 2.0 * c
                return gemm
        "#]],
    );
}

#[test]
fn embedding_of_int32_indices() {
    check(
        OneOp::new("Embedding")
            .typed_input("ids", DType::I32, &[2, 7])
            .int("input_dim", 10)
            .int("output_dim", 4)
            .weight("weights", &[10, 4]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(10, 4)

            def forward(self, ids):
                embedding = self.embedding(ids)
                return embedding
            # state: embedding.weight [10, 4]
        "#]],
    );
}

#[test]
fn embedding_of_uint8_indices_converts_them_to_long() {
    check(
        OneOp::new("Embedding")
            .typed_input("ids", DType::U8, &[3])
            .int("input_dim", 10)
            .int("output_dim", 4)
            .weight("weights", &[10, 4]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.embedding = nn.Embedding(10, 4)

            def forward(self, ids):
                embedding = self.embedding(ids.long())
                return embedding
            # state: embedding.weight [10, 4]
        "#]],
    );
}
