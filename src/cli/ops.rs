//! `mmdnn ops`: lists the IR op catalogue; `--markdown` prints docs/ops.md and `--matrix` the
//! README's support matrix.
use crate::docs;
use crate::ir::ops;
use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// Print the catalogue as docs/ops.md
    #[arg(long, conflicts_with = "matrix")]
    pub markdown: bool,
    /// Print the support matrix as in README.md
    #[arg(long)]
    pub matrix: bool,
}

pub fn run(a: Args) -> Result<i32> {
    if a.markdown {
        print!("{}", docs::ops_markdown());
    } else if a.matrix {
        print!("{}", docs::support_matrix());
    } else {
        for op in ops::all() {
            println!("{:<16} {:<48} {}", op.name, op.family.title(), op.doc);
        }
    }
    Ok(0)
}
