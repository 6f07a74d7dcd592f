//! Resize.
use super::{check, OneOp};
use expect_test::expect;

#[test]
fn nearest_by_integer_scales_repeats_samples() {
    check(
        OneOp::new("Resize")
            .input("x", &[1, 3, 4, 5])
            .str("mode", "nearest")
            .floats("scales", &[2.0, 3.0])
            .str("coordinate_transformation_mode", "asymmetric")
            .str("nearest_mode", "floor"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                resize = x.repeat_interleave(2, dim=2).repeat_interleave(3, dim=3)
                return resize
        "#]],
    );
}

#[test]
fn bilinear_half_pixel_to_sizes_is_interpolate() {
    check(
        OneOp::new("Resize")
            .input("x", &[1, 3, 4, 4])
            .str("mode", "linear")
            .ints("sizes", &[7, 9]),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                resize = F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False)
                return resize
        "#]],
    );
}

#[test]
fn linear_align_corners_by_scales_is_interpolate() {
    check(
        OneOp::new("Resize")
            .input("x", &[1, 2, 5])
            .str("mode", "linear")
            .floats("scales", &[1.5])
            .str("coordinate_transformation_mode", "align_corners"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                resize = F.interpolate(x, scale_factor=(1.5,), mode="linear", align_corners=True)
                return resize
        "#]],
    );
}

#[test]
fn cubic_asymmetric_resamples_each_axis() {
    check(
        OneOp::new("Resize")
            .input("x", &[1, 3, 4, 4])
            .str("mode", "cubic")
            .floats("scales", &[2.0, 1.5])
            .str("coordinate_transformation_mode", "asymmetric")
            .float("cubic_coeff_a", -0.5),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                resize_rows = resample(x, 2, None, 2.0, "cubic", "asymmetric", "round_prefer_floor", -0.5, False)
                resize = resample(resize_rows, 3, None, 1.5, "cubic", "asymmetric", "round_prefer_floor", -0.5, False)
                return resize
        "#]],
    );
}

#[test]
fn nearest_on_one_axis_resamples_only_that_axis() {
    check(
        OneOp::new("Resize")
            .input("x", &[1, 3, 4, 6])
            .str("mode", "nearest")
            .ints("sizes", &[4, 9])
            .str("nearest_mode", "round_prefer_ceil"),
        expect![[r#"
            def __init__(self):
                super().__init__()

            def forward(self, x):
                resize = resample(x, 3, 9, None, "nearest", "half_pixel", "round_prefer_ceil", -0.75, False)
                return resize
        "#]],
    );
}
