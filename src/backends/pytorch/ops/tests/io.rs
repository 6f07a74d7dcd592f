//! Constant (every other test has DataInputs: its `forward` arguments).
use super::{check, OneOp};
use crate::ir::{AttrValue, DType};
use expect_test::expect;

#[test]
fn constant_is_a_registered_buffer() {
    check(
        OneOp::new("Constant")
            .attr("dtype", AttrValue::Type(DType::F32))
            .attr("shape", AttrValue::Shape(vec![2, 3]))
            .weight("value", &[2, 3]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.register_buffer("constant", torch.zeros((2, 3), dtype=torch.float32))

            def forward(self, ):
                return self.constant
            # state: constant [2, 3]
        "#]],
    );
}
