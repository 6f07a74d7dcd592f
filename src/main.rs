fn main() {
    std::process::exit(mmdnn::cli::main());
}
