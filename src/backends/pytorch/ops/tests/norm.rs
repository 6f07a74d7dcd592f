//! BatchNorm, LayerNorm, GroupNorm, InstanceNorm, LRN and LpNormalize.
use super::{check, OneOp};
use expect_test::expect;

#[test]
fn batch_norm2d() {
    check(
        OneOp::new("BatchNorm")
            .input("x", &[1, 4, 5, 5])
            .float("epsilon", 0.001)
            .weight("mean", &[4])
            .weight("var", &[4])
            .weight("scale", &[4])
            .weight("bias", &[4]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.batchnorm = nn.BatchNorm2d(4, eps=0.001)

            def forward(self, x):
                batchnorm = self.batchnorm(x)
                return batchnorm
            # state: batchnorm.weight [4]
            # state: batchnorm.bias [4]
            # state: batchnorm.running_mean [4]
            # state: batchnorm.running_var [4]
            # state: batchnorm.num_batches_tracked []
        "#]],
    );
}

#[test]
fn batch_norm_on_the_last_axis_without_scale_moves_the_channels() {
    check(
        OneOp::new("BatchNorm")
            .input("x", &[2, 7, 3])
            .int("axis", -1)
            .bool("use_scale", false)
            .weight("mean", &[3])
            .weight("var", &[3])
            .weight("bias", &[3]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.batchnorm = nn.BatchNorm1d(3, eps=1e-5)

            def forward(self, x):
                batchnorm = self.batchnorm(x.movedim(2, 1)).movedim(1, 2)
                return batchnorm
            # state: batchnorm.weight [3]
            # state: batchnorm.bias [3]
            # state: batchnorm.running_mean [3]
            # state: batchnorm.running_var [3]
            # state: batchnorm.num_batches_tracked []
        "#]],
    );
}

#[test]
fn layer_norm_over_trailing_axes() {
    check(
        OneOp::new("LayerNorm")
            .input("x", &[2, 5, 3, 4])
            .ints("axes", &[-2, -1])
            .weight("scale", &[3, 4])
            .weight("bias", &[3, 4]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.layernorm = nn.LayerNorm((3, 4), eps=1e-5)

            def forward(self, x):
                layernorm = self.layernorm(x)
                return layernorm
            # state: layernorm.weight [3, 4]
            # state: layernorm.bias [3, 4]
        "#]],
    );
}

#[test]
fn layer_norm_over_a_middle_axis_without_bias_permutes() {
    check(
        OneOp::new("LayerNorm")
            .input("x", &[2, 5, 3])
            .ints("axes", &[1])
            .bool("use_bias", false)
            .weight("scale", &[5]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.layernorm = nn.LayerNorm(5, eps=1e-5, bias=False)

            def forward(self, x):
                layernorm = self.layernorm(x.permute(0, 2, 1)).permute(0, 2, 1)
                return layernorm
            # state: layernorm.weight [5]
        "#]],
    );
}

#[test]
fn group_norm() {
    check(
        OneOp::new("GroupNorm")
            .input("x", &[1, 6, 4, 4])
            .int("groups", 3)
            .weight("scale", &[6])
            .weight("bias", &[6]),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.groupnorm = nn.GroupNorm(3, 6, eps=1e-5)

            def forward(self, x):
                groupnorm = self.groupnorm(x)
                return groupnorm
            # state: groupnorm.weight [6]
            # state: groupnorm.bias [6]
        "#]],
    );
}

#[test]
fn instance_norm_without_affine() {
    check(
        OneOp::new("InstanceNorm")
            .input("x", &[1, 3, 8])
            .bool("use_scale", false)
            .bool("use_bias", false),
        expect![[r#"
            def __init__(self):
                super().__init__()
                self.instancenorm = nn.InstanceNorm1d(3, eps=1e-5)

            def forward(self, x):
                instancenorm = self.instancenorm(x)
                return instancenorm
        "#]],
    );
}

#[test]
fn lrn_of_even_size_flips_the_channels() {
    check(
        OneOp::new("LRN")
            .input("x", &[1, 6, 4, 4])
            .int("size", 4)
            .float("alpha", 0.0002)
            .float("beta", 0.5)
            .float("bias", 2.0),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                lrn = F.local_response_norm(x.flip(1), 4, alpha=0.0002, beta=0.5, k=2.0).flip(1)
                return lrn
        "#]],
    );
}

#[test]
fn lp_normalize() {
    check(
        OneOp::new("LpNormalize").input("x", &[2, 8]).int("p", 1),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                lpnormalize = F.normalize(x, p=1.0, dim=1, eps=1e-12)
                return lpnormalize
        "#]],
    );
}
