//! `mmtomodel`: MMdnn's command name for `mmdnn tomodel` (see `alias`).
mod alias;

fn main() {
    std::process::exit(alias::exec("mmtomodel"));
}
