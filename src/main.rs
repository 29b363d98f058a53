//! The `servebench` binary: parses the command line and hands over to one module per command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = servebench::cli::Cli::parse();
    servebench::cli::init_logging(cli.verbose);
    match servebench::cli::dispatch(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
