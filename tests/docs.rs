//! Generated documentation must match the code: docs/ops.md and README's support matrix.
//! Set MMDNN_UPDATE_DOCS=1 to rewrite them.
use std::path::Path;

const START: &str = "<!-- support-matrix:start -->\n";
const END: &str = "<!-- support-matrix:end -->";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn update() -> bool {
    std::env::var("MMDNN_UPDATE_DOCS").is_ok_and(|v| v == "1")
}

#[test]
fn ops_md_is_current() {
    let path = root().join("docs/ops.md");
    let want = mmdnn::docs::ops_markdown();
    if update() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "docs/ops.md is stale: run `cargo run -- ops --markdown > docs/ops.md` \
         (or MMDNN_UPDATE_DOCS=1 cargo test --test docs)"
    );
}

#[test]
fn readme_support_matrix_is_current() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(START)
        .expect("README has the support-matrix start marker")
        + START.len();
    let end = readme
        .find(END)
        .expect("README has the support-matrix end marker");
    let want = mmdnn::docs::support_matrix();
    if update() {
        let new = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    assert!(
        readme[start..end] == want,
        "README's support matrix is stale: paste `cargo run -- ops --matrix` between the markers \
         (or MMDNN_UPDATE_DOCS=1 cargo test --test docs)"
    );
}

#[test]
fn every_op_has_doc_and_valid_defaults() {
    for op in mmdnn::ir::ops::all() {
        assert!(!op.doc.is_empty(), "{} has no doc line", op.name);
        for a in op.attrs {
            if let Some(v) = a.default.value() {
                let coerced = v.clone().coerce(a.kind);
                assert!(
                    coerced.is_ok(),
                    "{}.{}: default {v} is not a {}",
                    op.name,
                    a.name,
                    a.kind.name()
                );
                if let mmdnn::ir::AttrValue::Str(s) = v {
                    assert!(
                        a.allowed.is_empty() || a.allowed.contains(&s.as_str()),
                        "{}.{}: default not allowed",
                        op.name,
                        a.name
                    );
                }
            }
        }
        if matches!(op.layout, mmdnn::ir::ops::Layout::DataFormat { .. }) {
            assert!(
                op.attr("data_format").is_some(),
                "{} is layout-sensitive but has no data_format",
                op.name
            );
        }
    }
}
