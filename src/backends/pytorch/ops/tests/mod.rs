//! Snapshot tests of the code generated for each op, one file per family. Each builds a
//! one-op graph ([`OneOp`]) and pins the module's `__init__` and `forward` as generated, then
//! the node's state-dict entries (key and shape). A snapshot is a reviewed expected output:
//! when the emitter changes on purpose, rewrite them with
//! `UPDATE_EXPECT=1 cargo test --lib backends::pytorch` and check each changed one is correct
//! PyTorch for its graph before committing it.
mod activation;
mod conv;
mod dense;
mod elementwise;
mod io;
mod norm;
mod pool;
mod recurrent;
mod reduce;
mod resize;
mod shape;

use super::lookup;
use crate::backends::pytorch::generate;
use crate::backends::pytorch::test_graph::{channels_first, OneOp};
use expect_test::Expect;

/// The module from `def __init__` on, dedented, and the state dict as `# state:` lines.
fn module_lines(op: OneOp) -> String {
    let (graph, weights) = op.build();
    let prepared = channels_first(&graph, &weights).expect("converts the layout");
    let generated =
        generate(prepared).unwrap_or_else(|e| panic!("no PyTorch code for the graph: {e:#}"));
    let code = &generated.code;
    let start = code
        .find("    def __init__(self):")
        .expect("the module has an __init__");
    let mut text: String = code[start..]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    for entry in &generated.state {
        text.push_str(&format!("# state: {} {:?}\n", entry.key, entry.shape));
    }
    text
}

/// Pins the code generated for `op`'s graph.
fn check(op: OneOp, expect: Expect) {
    expect.assert_eq(&module_lines(op));
}

/// Pins the error the PyTorch backend reports for `op`'s graph.
fn check_error(op: OneOp, expect: Expect) {
    let (graph, weights) = op.build();
    let generated = channels_first(&graph, &weights).and_then(generate);
    match generated {
        Ok(g) => panic!("expected an error, got:\n{}", g.code),
        Err(e) => expect.assert_eq(&format!("{e:#}\n")),
    };
}

#[test]
fn every_catalogue_op_has_a_lowering() {
    let missing: Vec<&str> = crate::ir::ops::all()
        .iter()
        .map(|def| def.name)
        .filter(|op| lookup(op).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "ops without a PyTorch lowering: {missing:?}"
    );
}
