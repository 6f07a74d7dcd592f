//! Elementwise binary ops, comparisons, logic and Where.
use super::{check, OneOp};
use crate::ir::DType;
use expect_test::expect;

#[test]
fn add_broadcasts() {
    check(
        OneOp::new("Add").input("a", &[2, 3]).input("b", &[3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b):
                add = a + b
                return add
        "#]],
    );
}

#[test]
fn integer_div_truncates() {
    check(
        OneOp::new("Div")
            .typed_input("a", DType::I64, &[4])
            .typed_input("b", DType::I64, &[4]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b):
                div = torch.div(a, b, rounding_mode="trunc")
                return div
        "#]],
    );
}

#[test]
fn mod_takes_the_divisors_sign() {
    check(
        OneOp::new("Mod").input("a", &[4]).input("b", &[4]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b):
                mod = torch.remainder(a, b)
                return mod
        "#]],
    );
}

#[test]
fn pow() {
    check(
        OneOp::new("Pow").input("a", &[4]).input("b", &[1]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b):
                pow = torch.pow(a, b)
                return pow
        "#]],
    );
}

#[test]
fn greater_or_equal() {
    check(
        OneOp::new("GreaterOrEqual")
            .input("a", &[4])
            .input("b", &[4]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, a, b):
                greaterorequal = torch.ge(a, b)
                return greaterorequal
        "#]],
    );
}

#[test]
fn where_selects() {
    check(
        OneOp::new("Where")
            .typed_input("cond", DType::Bool, &[2, 3])
            .input("a", &[2, 3])
            .input("b", &[3]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, cond, a, b):
                where = torch.where(cond, a, b)
                return where
        "#]],
    );
}
