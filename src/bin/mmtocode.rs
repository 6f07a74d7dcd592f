//! `mmtocode`: MMdnn's command name for `mmdnn tocode` (see `alias`).
mod alias;

fn main() {
    std::process::exit(alias::exec("mmtocode"));
}
