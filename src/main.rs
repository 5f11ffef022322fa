fn main() {
    std::process::exit(cometflow::run());
}
