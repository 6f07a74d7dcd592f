//! Reductions and ArgMax / ArgMin.
use super::{check, OneOp};
use expect_test::expect;

#[test]
fn reduce_mean_over_spatial_axes_keeping_them() {
    check(
        OneOp::new("ReduceMean")
            .input("x", &[1, 3, 4, 4])
            .ints("axes", &[2, 3])
            .bool("keepdims", true),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                reducemean = x.mean(dim=(2, 3), keepdim=True)
                return reducemean
        "#]],
    );
}

#[test]
fn reduce_prod_over_two_axes_reduces_the_last_first() {
    check(
        OneOp::new("ReduceProd")
            .input("x", &[2, 3, 4])
            .ints("axes", &[0, -1])
            .bool("keepdims", false),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                reduceprod = x.prod(dim=2).prod(dim=0)
                return reduceprod
        "#]],
    );
}

#[test]
fn reduce_l2_over_every_axis() {
    check(
        OneOp::new("ReduceL2")
            .input("x", &[2, 3])
            .bool("keepdims", false),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                reducel2 = torch.linalg.vector_norm(x, dim=(0, 1))
                return reducel2
        "#]],
    );
}

#[test]
fn argmax_of_the_last_best_index() {
    check(
        OneOp::new("ArgMax")
            .input("x", &[2, 5])
            .int("axis", 1)
            .bool("select_last_index", true),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                argmax = (5 - 1) - torch.argmax(x.flip(1), dim=1, keepdim=True)
                return argmax
        "#]],
    );
}
