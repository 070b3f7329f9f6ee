use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        eprintln!("error: {e}");
    }
    let cli = campaign_cockpit::cli::Cli::parse();
    match campaign_cockpit::cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let bad_input = e.chain().any(|c| c.is::<campaign_cockpit::cli::BadInput>());
            let msg: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", msg.join(": "));
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}
