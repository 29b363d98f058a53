//! The `servebench` binary: parses the command line and hands over to one module per command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = servebench::cli::Cli::parse();
    servebench::cli::init_logging(cli.verbose);
    match servebench::cli::dispatch(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let code = servebench::cli::exit::code_of(&err);
            let text = servebench::cli::exit::message(&err);
            if code == servebench::cli::exit::INTERRUPTED {
                eprintln!("{text}");
            } else {
                eprintln!("error: {text}");
            }
            std::process::ExitCode::from(code)
        }
    }
}
