//! The binary: parse flags, set up logging, run the chosen command, map errors
//! to an exit code. Everything else lives in the library.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use codedeploy_exporter::app::{App, DemoFeed};
use std::path::Path;

use codedeploy_exporter::config::{Cli, Command, ReplayArgs, ServeArgs, DEFAULT_STORAGE_PATH};
use codedeploy_exporter::ingest::Exporter;
use codedeploy_exporter::metrics::{Format, Source};
use codedeploy_exporter::simulator::Fleet;
use codedeploy_exporter::sources::replay;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    codedeploy_exporter::logging::init(&cli.log_level, cli.log_format);
    let result = match cli.command {
        Command::Replay(args) => run_replay(&args),
        Command::Setup(args) => codedeploy_exporter::setup::run_command(&args),
        Command::Serve(args) => run_server(&args, Some(Path::new(DEFAULT_STORAGE_PATH)), None),
        Command::Demo(args) => {
            let feed = DemoFeed { fleet: Fleet::new(args.seed), history_days: args.history_days };
            run_server(&args.serve_args(), None, Some(feed))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_replay(args: &ReplayArgs) -> anyhow::Result<()> {
    // Everything settles at the end, so the settle time plays no part.
    let labels = args.group_labels.validate()?;
    let mut exporter = Exporter::in_memory(0)
        .with_defaults(args.location())
        .with_lead_time(args.lead_time.config())
        .with_group_labels(labels);
    exporter.register(Source::Replay);
    for path in &args.files {
        let rejections = replay::replay_file(&mut exporter, path, Source::Replay, 0)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        for rejection in rejections {
            eprintln!("{rejection}");
        }
    }
    exporter.settle(0, true);
    let now = args.now.or(exporter.latest_time()).unwrap_or(0);
    let mut stdout = std::io::stdout().lock();
    exporter.exposition(now).write(Format::Text, &mut stdout)?;
    stdout.flush()?;
    Ok(())
}

fn run_server(args: &ServeArgs, default_storage: Option<&Path>, demo: Option<DemoFeed>) -> anyhow::Result<()> {
    let config = args.validate(default_storage)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signals(shutdown.clone()));
        App::build(config, demo).await?.run(shutdown).await
    })
}

/// The first SIGTERM or SIGINT starts a graceful shutdown; a second one exits at once.
async fn stop_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot install signal handlers; stop the process with SIGKILL");
        return;
    };
    for attempt in 0..2 {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        if attempt == 0 {
            tracing::info!("shutting down gracefully; signal again to exit at once");
            shutdown.cancel();
        }
    }
    std::process::exit(130);
}
