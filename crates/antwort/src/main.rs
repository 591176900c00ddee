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
    /// Create, list and revoke API keys kept in the database (`storage`):
    /// every replica using it honours them within seconds, without a restart.
    Keys(KeysArgs),
}

#[derive(clap::Args)]
struct KeysArgs {
    /// YAML configuration file (only `storage` is read).
    #[arg(long, env = "ANTWORT_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    action: KeysAction,
}

#[derive(Subcommand)]
enum KeysAction {
    /// Create a key and print it; it is shown this once and kept only as a hash.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        subject: String,
        /// A scope to grant (repeatable); none means a user's scopes.
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// List keys (never the keys themselves): id, prefix, tenant, subject, scopes, state.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revoke a key by its id.
    Revoke {
        id: String,
        /// Only a key of this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
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

/// Runs `antwort keys ...` against the configured store.
fn run_keys(args: &KeysArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => Config::from_yaml_file(path)?,
        None => Config::default(),
    };
    config.apply_env(|name| std::env::var(name).ok())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store: std::sync::Arc<dyn antwort_engine::KeyStore> =
            std::sync::Arc::new(antwort::open_store(&config).await?);
        match &args.action {
            KeysAction::Create {
                tenant,
                subject,
                scopes,
            } => {
                let created = antwort_auth::create_key(&store, tenant, subject, scopes).await?;
                eprintln!(
                    "created {} for {subject} of tenant {tenant}; the key is shown only now:",
                    created.key.id
                );
                println!("{}", created.secret);
            }
            KeysAction::List { tenant } => {
                for key in store.list_keys(tenant.as_deref()).await? {
                    let scopes = if key.scopes.is_empty() {
                        "(user)".to_owned()
                    } else {
                        key.scopes.join(",")
                    };
                    let state = if key.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}\t{}...\t{}\t{}\t{scopes}\t{state}",
                        key.id, key.prefix, key.tenant, key.subject
                    );
                }
            }
            KeysAction::Revoke { id, tenant } => {
                let now = antwort_engine::clock::unix_now();
                if !store.revoke_key(tenant.as_deref(), id, now).await? {
                    anyhow::bail!("no active key with id {id}");
                }
                eprintln!("revoked {id}");
            }
        }
        Ok(())
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (args, check_only) = match &cli.command {
        Command::Serve(args) => (args, false),
        Command::CheckConfig(args) => (args, true),
        Command::Keys(args) => {
            return match run_keys(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("antwort: {error:#}");
                    ExitCode::FAILURE
                }
            };
        }
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
