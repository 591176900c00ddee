//! `antwort`: the command line. `antwort serve` runs the gateway.

use std::path::PathBuf;
use std::process::ExitCode;

use antwort::config::{Config, LogFormat, ReasoningEvents};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "antwort",
    version,
    about = "The OpenAI Responses API in front of any OpenAI-compatible backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Load and validate the configuration, print it, and exit.
    CheckConfig(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// YAML configuration file.
    #[arg(long, env = "ANTWORT_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, HOST:PORT (overrides --port).
    #[arg(long)]
    listen: Option<String>,
    /// Port to listen on, on all interfaces.
    #[arg(long)]
    port: Option<u16>,
    /// Base URL of the OpenAI-compatible backend, with or without /v1.
    #[arg(long)]
    backend_url: Option<String>,
    /// Model used when a request names none.
    #[arg(long)]
    model: Option<String>,
    /// Log filter (info, debug, antwort_engine=trace, ...).
    #[arg(long)]
    log_level: Option<String>,
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Names of the reasoning text events.
    #[arg(long, value_enum)]
    reasoning_events: Option<ReasoningEvents>,
}

impl ServeArgs {
    /// File, then environment, then flags.
    fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_yaml_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        if let Some(listen) = &self.listen {
            config.server.listen = Some(listen.clone());
        }
        if let Some(port) = self.port {
            config.server.port = port;
            if self.listen.is_none() {
                config.server.listen = None;
            }
        }
        if let Some(url) = &self.backend_url {
            config.engine.backend_url = Some(url.as_str().into());
        }
        if let Some(model) = &self.model {
            config.engine.default_model = Some(model.clone());
        }
        if let Some(level) = &self.log_level {
            config.logging.level = level.clone();
        }
        if let Some(format) = self.log_format {
            config.logging.format = format;
        }
        if let Some(names) = self.reasoning_events {
            config.engine.reasoning_events = names;
        }
        config.validate()?;
        Ok(config)
    }
}

fn init_logging(config: &Config) {
    // The MCP SDK logs every session it opens at info; keep that for those who ask
    // for it by name.
    let mut level = config.logging.level.clone();
    if !level.contains("rmcp") {
        level.push_str(",rmcp=warn");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into files or log pipelines.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(ansi);
    match config.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, check_only) = match &cli.command {
        Command::Serve(args) => (args, false),
        Command::CheckConfig(args) => (args, true),
    };
    let config = match args.load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("antwort: {error:#}");
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!("configuration is valid: {config:#?}");
        return ExitCode::SUCCESS;
    }
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("antwort: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let addr = config.listen_addr()?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        // The bound address, which differs from the configured one for port 0.
        let addr = listener.local_addr()?;
        tracing::info!(
            %addr,
            backend = config
                .engine
                .backend_url
                .as_ref()
                .map(antwort::config::SecretUrl::redacted)
                .unwrap_or_default(),
            default_model = config.engine.default_model.as_deref().unwrap_or(""),
            "antwort is serving the Responses API"
        );
        antwort::serve(&config, listener, antwort::shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("antwort: {error:#}");
            ExitCode::FAILURE
        }
    }
}
