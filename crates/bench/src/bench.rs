//! `hirecj-bench`: drives the app over real sockets (loopback only) and
//! prints what it measures — turns per second and the server's own overhead
//! per turn, memory per connected conversation, the time to open the
//! conversation whose post-OAuth message was prepared during the OAuth
//! callback, and the store mirror (backfill time, tool time, a new order's
//! webhook reaching the mirror, store questions end to end). It asserts nothing about timings; it exits 1 only when a phase
//! could not run or a request failed.
//!
//! By default it spawns its own server (`hirecj-bench serve`: `hirecj
//! serve` from this same executable) with a temporary SQLite data
//! directory, and for `--model mock` the test kit's OpenAI-compatible mock
//! model, waiting `--model-latency-ms` before it answers. It speaks the
//! chat protocol through the test kit's client on the server's typed frames.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use hirecj_domain::{ConversationId, Role};
use hirecj_testkit::app::{ServerProcess, new_session};
use hirecj_testkit::model::{MockModel, openai};
use hirecj_testkit::ws::{ChatClient, ClientFrame, ConnectOptions, ServerFrame, WsError};
use reqwest::cookie::{CookieStore as _, Jar};
use tokio::task::JoinSet;

type Res<T> = Result<T, String>;

/// Longest wait for any one expected frame or response.
const FRAME_WAIT: Duration = Duration::from_secs(30);
/// How many connections are being set up at once.
const SETUP_CONCURRENCY: usize = 64;
/// How many development-store installs run at once.
const INSTALL_CONCURRENCY: usize = 4;
/// The server allows this many merchant messages per minute per connection.
const MAX_TURNS: usize = 30;
/// Questions the conversations ask, in turn.
const QUESTIONS: &[&str] = &[
    "How many orders did I get last week?",
    "What are my best sellers?",
    "How is the store doing overall?",
    "Show me my recent orders.",
    "What were my sales this month?",
];

/// The bench's phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Memory per idle connection (needs a spawned server).
    Memory,
    /// Turns per second and server overhead per turn.
    Turns,
    /// The prepared post-OAuth message.
    Prepared,
    /// The store mirror: backfill, webhooks, store questions, tool time.
    Store,
    /// One long conversation: latency, storage and model request size as
    /// it grows.
    Long,
}

/// Which model the spawned server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelKind {
    /// The built-in offline brain.
    Offline,
    /// The test kit's OpenAI-compatible mock model, waiting --model-latency-ms.
    Mock,
}

/// Options of `hirecj-bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Concurrent WebSocket conversations in the turns phase [default: 200, 20 with --quick].
    #[arg(long, value_name = "N")]
    conversations: Option<usize>,
    /// Messages each conversation sends, one after the other (at most 30) [default: 3, 2 with --quick].
    #[arg(long, value_name = "T")]
    turns: Option<usize>,
    /// Idle connections held open for the memory measurement [default: 1000, 50 with --quick].
    #[arg(long, value_name = "I")]
    idle: Option<usize>,
    /// Merchants that install the development store for the post-OAuth phase [default: 50, 5 with --quick].
    #[arg(long, value_name = "K")]
    installs: Option<usize>,
    /// CJ's model in the spawned server.
    #[arg(long, value_enum, default_value_t = ModelKind::Offline)]
    model: ModelKind,
    /// The mock model's delay before its first chunk.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    model_latency_ms: u64,
    /// Base URL of an already running app (loopback); by default one is spawned.
    /// The memory phase needs a spawned server and is skipped otherwise.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Small sizes for CI: 20 conversations × 2 turns, 50 idle, 5 installs, the store phase on a 1,300-order shop.
    #[arg(long)]
    quick: bool,
    /// Longest time any one phase may take.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    phase_timeout_secs: u64,
    /// Pace the turns phase: start at most this many turns per second over
    /// all conversations (0: as fast as the conversations go).
    #[arg(long, value_name = "TURNS_PER_SEC", default_value_t = 0.0)]
    rate: f64,
    /// The development shop the store phase installs and mirrors: a name
    /// ending in `-large` has about 100,000 orders over 365 days
    /// [default: bench-large, bench-mirror (about 1,300 orders) with --quick].
    #[arg(long, value_name = "SHOP")]
    store_shop: Option<String>,
    /// Times each store question is asked in the store phase [default: 20, 5 with --quick].
    #[arg(long, value_name = "N")]
    store_asks: Option<usize>,
    /// Run the spawned server on PostgreSQL: an administrative URL
    /// (`postgres://user@host:port/db`, a role that may create databases).
    /// The bench creates a fresh database `hirecj_bench_<random>` on that
    /// server, runs the server on it and drops it at the end, so the
    /// database named in the URL is only used to connect. By default the
    /// server runs on SQLite in a temporary directory.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The phases to run, comma-separated, e.g. `--phases store`
    /// [default: memory,turns,prepared,store].
    #[arg(long, value_name = "PHASES", value_enum, value_delimiter = ',')]
    phases: Vec<Phase>,
    /// Spawn this many replicas on one PostgreSQL database
    /// (--database-url) behind Debian's `haproxy` (round robin, `/readyz`
    /// as its health check), and measure the turns phase through it (the
    /// only phase run then).
    /// (`--replicas 1`: one server behind the same balancer, to compare.)
    #[arg(long, value_name = "N")]
    replicas: Option<usize>,
    /// Turns of the one conversation the long phase drives (it runs alone
    /// when no --phases are given) [default: 2000, 100 with --quick].
    #[arg(long, value_name = "N")]
    long: Option<usize>,
}

/// The resolved parameters.
#[derive(Debug, Clone)]
struct Params {
    conversations: usize,
    turns: usize,
    idle: usize,
    installs: usize,
    model: ModelKind,
    model_latency: Duration,
    phase_timeout: Duration,
    rate: Option<f64>,
    store_shop: String,
    store_asks: usize,
    long: usize,
    phases: Vec<Phase>,
}

impl Params {
    fn runs(&self, phase: Phase) -> bool {
        self.phases.contains(&phase)
    }
}

impl Params {
    fn from_args(a: &BenchArgs) -> Res<Self> {
        let pick = |v: Option<usize>, full: usize, quick: usize| {
            v.unwrap_or(if a.quick { quick } else { full })
        };
        let p = Self {
            conversations: pick(a.conversations, 200, 20),
            turns: pick(a.turns, 3, 2),
            idle: pick(a.idle, 1000, 50),
            installs: pick(a.installs, 50, 5),
            model: a.model,
            model_latency: Duration::from_millis(a.model_latency_ms),
            phase_timeout: Duration::from_secs(a.phase_timeout_secs.max(1)),
            rate: (a.rate.is_finite() && a.rate > 0.0).then_some(a.rate),
            store_shop: a.store_shop.clone().unwrap_or_else(|| {
                if a.quick {
                    "bench-mirror"
                } else {
                    "bench-large"
                }
                .to_owned()
            }),
            store_asks: pick(a.store_asks, 20, 5).clamp(1, MAX_TURNS),
            long: pick(a.long, 2_000, 100),
            phases: if a.phases.is_empty() && a.replicas.is_some() {
                vec![Phase::Turns]
            } else if a.phases.is_empty() && a.long.is_some() {
                vec![Phase::Long]
            } else if a.phases.is_empty() {
                vec![Phase::Memory, Phase::Turns, Phase::Prepared, Phase::Store]
            } else {
                a.phases.clone()
            },
        };
        if p.turns > MAX_TURNS {
            return Err(format!(
                "--turns {} is more than the server's {MAX_TURNS} messages per minute per connection",
                p.turns
            ));
        }
        if !(1..=100_000).contains(&p.long) {
            return Err("--long: 1 to 100,000 turns".to_owned());
        }
        if p.conversations > 50_000 || p.idle > 50_000 || p.installs > 10_000 {
            return Err("sizes are limited to 50,000 connections and 10,000 installs".to_owned());
        }
        Ok(p)
    }
}

/// Runs the benchmark and prints its report.
pub async fn run(args: BenchArgs) -> Result<(), String> {
    let params = Params::from_args(&args)?;
    if args.url.is_some() && params.model == ModelKind::Mock {
        return Err(
            "--model mock needs a spawned server (omit --url); a running app uses its own model"
                .to_owned(),
        );
    }
    if let Some(replicas) = args.replicas {
        if args.url.is_some() || args.database_url.is_none() {
            return Err(
                "--replicas needs spawned servers on PostgreSQL: give --database-url, omit --url"
                    .to_owned(),
            );
        }
        if params.phases.iter().any(|p| *p != Phase::Turns) {
            return Err("--replicas measures the turns phase only: add --phases turns".to_owned());
        }
        if !(1..=8).contains(&replicas) {
            return Err("--replicas: 1 to 8".to_owned());
        }
    }
    let database = match (&args.database_url, &args.url) {
        (Some(_), Some(_)) => {
            return Err(
                "--database-url configures the spawned server (omit --url); a running app uses its own database"
                    .to_owned(),
            );
        }
        (Some(admin), None) => Some(ScratchDatabase::create(admin).await?),
        (None, _) => None,
    };
    let outcome = run_on(&args, &params, database.as_ref()).await;
    if let Some(db) = database {
        db.drop().await;
    }
    outcome
}

/// A PostgreSQL database of this run (`--database-url`), dropped at its end.
struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// The URL the spawned server connects with.
    url: String,
}

impl ScratchDatabase {
    async fn create(admin_url: &str) -> Res<Self> {
        let mut url =
            url::Url::parse(admin_url).map_err(|e| format!("--database-url: not a URL ({e})"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err("--database-url: only postgres:// URLs (SQLite is the default)".to_owned());
        }
        let nanos = run_nanos();
        let name = format!("hirecj_bench_{}_{nanos:x}", std::process::id());
        url.set_path(&format!("/{name}"));
        hirecj_store::scratch::create_postgres_database(admin_url, &name)
            .await
            .map_err(|e| format!("--database-url: cannot create the database {name}: {e}"))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    async fn drop(self) {
        if let Err(e) =
            hirecj_store::scratch::drop_postgres_database(&self.admin_url, &self.name).await
        {
            eprintln!(
                "hirecj-bench: could not drop the database {} (drop it by hand): {e}",
                self.name
            );
        }
    }
}

async fn run_on(
    args: &BenchArgs,
    params: &Params,
    database: Option<&ScratchDatabase>,
) -> Result<(), String> {
    let params = params.clone();
    let spawned = args.url.is_none();
    // Client sockets: every connection, plus the mock model's side of the
    // server's model calls. The spawned server inherits this limit.
    let mock_fds = if params.model == ModelKind::Mock {
        params.conversations + params.installs
    } else {
        0
    };
    let needed = params.conversations.max(params.idle) + params.installs + mock_fds + 256;
    let fd_limit = ensure_open_files(needed as u64, spawned)?;

    let mock = match params.model {
        ModelKind::Mock => Some(start_mock_model(params.model_latency).await?),
        ModelKind::Offline => None,
    };
    let mut server = match &args.url {
        Some(url) => Target::external(url)?,
        None if let Some(replicas) = args.replicas => {
            Target::spawn_replicas(
                replicas,
                mock.as_ref().map(MockModel::openai_base_url).as_deref(),
                database.map(|d| d.url.as_str()),
            )
            .await?
        }
        None => Target::spawn(
            mock.as_ref().map(MockModel::openai_base_url).as_deref(),
            database.map(|d| d.url.as_str()),
            true,
        )?,
    };

    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    println!(
        "hirecj-bench — {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
    );
    let sync = server
        .data_dir
        .as_deref()
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    let synced = match synced_write(&sync) {
        Ok(median) => median,
        Err(e) => format!("not measured ({e})"),
    };
    println!(
        "machine: {cores} cores, open-file limit {fd_limit}, a synced 4 KB write {synced} \
         (median of {SYNC_SAMPLES}; SQLite's checkpoints wait on these)"
    );
    println!(
        "server: {} ({})",
        server.base,
        match server.pid() {
            Some(_) if server.balancer.is_some() => format!(
                "{} replicas of `hirecj serve` behind haproxy (pids {}), PostgreSQL database {}",
                server.others.len() + 1,
                server.pids().join(", "),
                database.map_or("?", |d| d.name.as_str())
            ),
            Some(pid) => format!(
                "spawned `hirecj-bench serve` (`hirecj serve`), pid {pid}, {}",
                match database {
                    Some(db) => format!(
                        "PostgreSQL database {} (created for this run, dropped at its end)",
                        db.name
                    ),
                    None => "SQLite in a temporary directory".to_owned(),
                }
            ),
            None => "already running".to_owned(),
        }
    );
    println!(
        "parameters: --phases {} --conversations {} --turns {} --idle {} --installs {} --model {}{}{}",
        params
            .phases
            .iter()
            .map(|p| match p {
                Phase::Memory => "memory",
                Phase::Turns => "turns",
                Phase::Prepared => "prepared",
                Phase::Store => "store",
                Phase::Long => "long",
            })
            .collect::<Vec<_>>()
            .join(","),
        params.conversations,
        params.turns,
        params.idle,
        params.installs,
        match params.model {
            ModelKind::Offline => "offline",
            ModelKind::Mock => "mock",
        },
        match params.model {
            ModelKind::Mock => format!(" --model-latency-ms {}", params.model_latency.as_millis()),
            ModelKind::Offline => String::new(),
        },
        params
            .rate
            .map_or(String::new(), |r| format!(" --rate {r}"))
    );
    println!();

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FRAME_WAIT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    new_session(&http, &server.base)
        .await
        .map_err(|e| format!("cannot reach the app at {}: {e}", server.base))?;

    // Memory first, on a fresh server: memory freed by the busier phases
    // would otherwise be reused and hide the cost of a connection.
    let memory = if params.runs(Phase::Memory) {
        Some(
            bounded(
                "memory",
                params.phase_timeout,
                phase_memory(&server, &http, &params),
            )
            .await,
        )
    } else {
        None
    };
    let turns = if params.runs(Phase::Turns) {
        Some(
            bounded(
                "turns",
                params.phase_timeout,
                phase_turns(&server, &http, &params),
            )
            .await,
        )
    } else {
        None
    };
    let prepared = if params.runs(Phase::Prepared) {
        Some(
            bounded(
                "prepared",
                params.phase_timeout,
                phase_prepared(&server, &params),
            )
            .await,
        )
    } else {
        None
    };
    let mirror = if params.runs(Phase::Store) {
        Some(bounded("store", params.phase_timeout, phase_store(&server, &params)).await)
    } else {
        None
    };
    let long = if params.runs(Phase::Long) {
        Some(
            bounded(
                "long",
                params.phase_timeout,
                phase_long(
                    &server,
                    &http,
                    &params,
                    mock.as_ref().map(MockModel::openai_base_url).as_deref(),
                    database,
                ),
            )
            .await,
        )
    } else {
        None
    };

    if let Some(status) = server.exited() {
        println!("the server exited during the benchmark ({status})");
    }
    server.stop();
    drop(mock);

    println!();
    print_summary(
        &params,
        turns.as_ref(),
        memory.as_ref(),
        prepared.as_ref(),
        mirror.as_ref(),
    );
    if let Some(long) = &long {
        print_long(long);
    }

    let mut problems = Vec::new();
    for (name, errors) in [
        (
            "turns",
            turns.as_ref().map(|t| t.as_ref().map(|t| t.errors.len())),
        ),
        (
            "memory",
            memory.as_ref().map(|m| m.as_ref().map(|m| m.errors.len())),
        ),
        (
            "prepared",
            prepared
                .as_ref()
                .map(|p| p.as_ref().map(|p| p.errors.len())),
        ),
        (
            "store",
            mirror.as_ref().map(|m| m.as_ref().map(|m| m.errors.len())),
        ),
        ("long", long.as_ref().map(|l| l.as_ref().map(|_| 0))),
    ] {
        let Some(errors) = errors else {
            continue;
        };
        match errors {
            Err(e) => problems.push(format!("{name}: {e}")),
            Ok(0) => {}
            Ok(n) => problems.push(format!("{name}: {n} failed requests")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("benchmark incomplete — {}", problems.join("; ")))
    }
}

async fn bounded<T>(name: &str, limit: Duration, phase: impl Future<Output = Res<T>>) -> Res<T> {
    match tokio::time::timeout(limit, phase).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the {name} phase did not finish within {} s",
            limit.as_secs()
        )),
    }
}

// ---------------------------------------------------------------------------
// Open files

/// Soft and hard limits of open files from /proc/self/limits (None: unlimited).
fn open_file_limits() -> Res<(Option<u64>, Option<u64>)> {
    let text = std::fs::read_to_string("/proc/self/limits")
        .map_err(|e| format!("cannot read /proc/self/limits: {e}"))?;
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or("no \"Max open files\" line in /proc/self/limits")?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    let parse = |f: Option<&str>| -> Res<Option<u64>> {
        match f {
            Some("unlimited") => Ok(None),
            Some(n) => n
                .parse()
                .map(Some)
                .map_err(|_| format!("cannot read the open-file limit in {line:?}")),
            None => Err(format!("cannot read the open-file limit in {line:?}")),
        }
    };
    Ok((parse(fields.next())?, parse(fields.next())?))
}

/// Makes sure this process (and the server it spawns, which inherits the
/// limit) may open `needed` files, raising the soft limit up to the hard one
/// when necessary. Returns the limit in effect.
fn ensure_open_files(needed: u64, spawned: bool) -> Res<u64> {
    let (soft, hard) = open_file_limits()?;
    let soft_n = soft.unwrap_or(u64::MAX);
    if soft_n >= needed {
        return Ok(soft_n);
    }
    let hard_n = hard.unwrap_or(u64::MAX);
    if hard_n < needed {
        return Err(format!(
            "this run needs about {needed} open files (in this process and in the server), but the limit is \
             {soft_n} (hard limit {hard_n}). Raise it first, e.g. `ulimit -n {needed}` in the shell that runs \
             the bench (as root, or after raising the hard limit in /etc/security/limits.conf), or use smaller \
             --idle / --conversations"
        ));
    }
    let limit = rustix::process::Rlimit {
        current: Some(needed),
        maximum: hard,
    };
    rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).map_err(|e| {
        format!("cannot raise the open-file limit from {soft_n} to {needed}: {e}; run `ulimit -n {needed}` first")
    })?;
    println!("raised the open-file limit from {soft_n} to {needed}");
    if !spawned {
        println!(
            "note: the running app needs at least {needed} open files too (`ulimit -n` where it runs)"
        );
    }
    Ok(needed)
}

// ---------------------------------------------------------------------------
// The server under test

struct Target {
    /// `http://host:port`.
    base: String,
    /// `ws://host:port/ws/chat`.
    ws: String,
    process: Option<ServerProcess>,
    /// With `--replicas N`: the other replicas, and the load balancer in
    /// front of them all (`base` and `ws` are its).
    others: Vec<ServerProcess>,
    balancer: Option<std::process::Child>,
    data_dir: Option<PathBuf>,
}

impl Target {
    fn external(url: &str) -> Res<Self> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--url {url}: {e}"))?;
        if parsed.scheme() != "http" {
            return Err(format!("--url {url}: only http:// (loopback) is supported"));
        }
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if !loopback {
            return Err(format!(
                "--url {url}: the bench only drives an app on this machine (loopback)"
            ));
        }
        let host = parsed.host_str().unwrap_or("127.0.0.1");
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            base: format!("http://{authority}"),
            ws: format!("ws://{authority}/ws/chat"),
            process: None,
            others: Vec::new(),
            balancer: None,
            data_dir: None,
        })
    }

    /// `hirecj-bench serve` (this executable) on a temporary data directory
    /// (SQLite there, or the PostgreSQL `database_url`), with the model at
    /// `model_url` or the offline brain, its debug traces on or off.
    fn spawn(model_url: Option<&str>, database_url: Option<&str>, debug: bool) -> Res<Self> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let nanos = run_nanos();
        let dir = std::env::temp_dir().join(format!("hirecj-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut target = Self {
            base: String::new(),
            ws: String::new(),
            process: None,
            others: Vec::new(),
            balancer: None,
            data_dir: Some(dir.clone()),
        };
        let data_dir = dir.display().to_string();
        let env = server_env(&data_dir, model_url, database_url, debug);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // On failure `target` is dropped, which removes the directory.
        let process = ServerProcess::start(&exe, &dir, &env).map_err(|e| e.to_string())?;
        target.base = process.url("");
        target.ws = process.ws_url();
        target.process = Some(process);
        Ok(target)
    }

    /// `replicas` servers on one PostgreSQL database, each on its own
    /// port, behind `haproxy` (round robin, `/readyz` health checks,
    /// WebSockets passed through); `base` and `ws` are the balancer's.
    async fn spawn_replicas(
        replicas: usize,
        model_url: Option<&str>,
        database_url: Option<&str>,
    ) -> Res<Self> {
        let haproxy = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("haproxy"))
            .find(|p| p.is_file())
            .ok_or("--replicas needs haproxy (Debian: apt-get install haproxy)")?;
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let nanos = run_nanos();
        let dir = std::env::temp_dir().join(format!("hirecj-bench-{}-{nanos}", std::process::id()));
        let mut target = Self {
            base: String::new(),
            ws: String::new(),
            process: None,
            others: Vec::new(),
            balancer: None,
            data_dir: Some(dir.clone()),
        };
        let free_port = || -> Res<u16> {
            std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .map_err(|e| format!("no free port: {e}"))
        };
        let mut ports = Vec::new();
        for i in 0..replicas {
            let replica_dir = dir.join(format!("replica-{i}"));
            std::fs::create_dir_all(&replica_dir)
                .map_err(|e| format!("cannot create {}: {e}", replica_dir.display()))?;
            let port = free_port()?;
            let data_dir = replica_dir.display().to_string();
            let bind = format!("127.0.0.1:{port}");
            let mut env = server_env(&data_dir, model_url, database_url, true);
            env.push(("HIRECJ_BIND", bind));
            // One secret for all: they share the database's sessions.
            env.push((
                "HIRECJ_SECRET_KEY",
                format!("hirecj-bench-replicas-{nanos:x}-shared-secret"),
            ));
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let process =
                ServerProcess::start(&exe, &replica_dir, &env).map_err(|e| e.to_string())?;
            ports.push(port);
            if target.process.is_none() {
                target.process = Some(process);
            } else {
                target.others.push(process);
            }
        }
        let lb_port = free_port()?;
        let mut config = format!(
            "global\n    maxconn 8000\ndefaults\n    mode http\n    timeout connect 2s\n    \
             timeout client 120s\n    timeout server 120s\n    timeout tunnel 1h\n    \
             option redispatch\n    retries 3\nfrontend chat\n    bind 127.0.0.1:{lb_port}\n    \
             default_backend replicas\nbackend replicas\n    balance roundrobin\n    \
             option httpchk GET /readyz\n    http-check expect status 200\n    \
             default-server inter 500ms fall 2 rise 1\n"
        );
        for (i, port) in ports.iter().enumerate() {
            config.push_str(&format!("    server r{i} 127.0.0.1:{port} check\n"));
        }
        let config_file = dir.join("haproxy.cfg");
        std::fs::write(&config_file, config)
            .map_err(|e| format!("cannot write {}: {e}", config_file.display()))?;
        target.balancer = Some(
            std::process::Command::new(&haproxy)
                .args(["-db", "-f"])
                .arg(&config_file)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", haproxy.display()))?,
        );
        target.base = format!("http://127.0.0.1:{lb_port}");
        target.ws = format!("ws://127.0.0.1:{lb_port}/ws/chat");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/readyz", target.base)).await
                && r.status() == reqwest::StatusCode::OK
            {
                break;
            }
            if Instant::now() > deadline {
                return Err("haproxy did not answer /readyz within 30 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(target)
    }

    /// Every replica's pid.
    fn pids(&self) -> Vec<String> {
        self.process
            .iter()
            .chain(&self.others)
            .map(|p| p.pid().to_string())
            .collect()
    }
}

/// Nanoseconds since the epoch: names this run's directory and database.
fn run_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The spawned server's settings.
fn server_env(
    data_dir: &str,
    model_url: Option<&str>,
    database_url: Option<&str>,
    debug: bool,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("HIRECJ_DATA_DIR", data_dir),
        ("HIRECJ_DEBUG", if debug { "true" } else { "false" }),
        // Every bench conversation comes from one address: lift the
        // per-client limits, which would otherwise be what is measured.
        ("HIRECJ_MAX_CONNECTIONS", "1000000"),
        ("HIRECJ_WS_PER_ADDRESS", "1000000"),
        ("HIRECJ_TURNS_PER_MINUTE_ADDRESS", "1000000"),
        ("HIRECJ_TURNS_PER_MINUTE_SESSION", "1000000"),
        ("HIRECJ_TURNS_PER_MINUTE_MERCHANT", "1000000"),
        ("HIRECJ_CONVERSATIONS_PER_HOUR", "1000000"),
    ];
    if let Some(url) = database_url {
        env.push(("DATABASE_URL", url));
    }
    // The server logs at `warn` unless this run asks for more (e.g.
    // `HIRECJ_LOG=warn,sqlx::query=debug` to see each query and its time).
    let log = std::env::var("HIRECJ_LOG").ok();
    if let Some(filter) = &log {
        env.push(("HIRECJ_LOG", filter));
    }
    match model_url {
        Some(url) => env.extend([
            ("HIRECJ_MODEL_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", url),
        ]),
        None => env.push(("HIRECJ_MODEL_PROVIDER", "offline")),
    }
    env.into_iter().map(|(k, v)| (k, v.to_owned())).collect()
}

impl Target {
    fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// The server's resident memory in KB (VmRSS), when it is our child.
    fn rss_kb(&self) -> Option<u64> {
        rss_kb(&self.pid()?.to_string())
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.process.as_mut().and_then(ServerProcess::exited)
    }

    fn stop(&mut self) {
        if let Some(mut balancer) = self.balancer.take() {
            let _ = balancer.kill();
            let _ = balancer.wait();
        }
        self.others.clear();
        drop(self.process.take());
        if let Some(dir) = self.data_dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Synced writes timed by [`synced_write`].
const SYNC_SAMPLES: usize = 50;

/// The median time, formatted, to write 4 KB into a file in `dir` and wait until the
/// disk has it: what a commit or checkpoint that syncs pays on this
/// machine, so runs on different machines can be compared.
fn synced_write(dir: &Path) -> std::io::Result<String> {
    use std::io::{Seek, Write};
    let path = dir.join(format!("hirecj-bench-sync-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&path)?;
        let block = [0x5a_u8; 4096];
        let mut samples = Vec::with_capacity(SYNC_SAMPLES);
        for _ in 0..SYNC_SAMPLES {
            let start = Instant::now();
            file.rewind()?;
            file.write_all(&block)?;
            file.sync_data()?;
            samples.push(ms(start.elapsed()));
        }
        Ok(pct(&sorted(samples), 0.5))
    })();
    let _ = std::fs::remove_file(&path);
    result
}

/// The mock model: every completion is the same short answer, its first
/// chunk `latency` after the request.
async fn start_mock_model(latency: Duration) -> Res<MockModel> {
    let answer = openai::text(&["Here is ", "what I see: ", "your store ", "is doing fine."])
        .stall_before(0, latency);
    MockModel::start_unrecorded(vec![answer])
        .await
        .map_err(|e| format!("cannot start the mock model: {e}"))
}

// ---------------------------------------------------------------------------
// Client helpers

/// A chat socket with the bench's small read buffer (it holds many
/// connections itself).
async fn connect(url: &str, cookie: &str) -> Res<ChatClient> {
    let options = ConnectOptions {
        cookie: Some(cookie.to_owned()),
        read_buffer: Some(8 * 1024),
        wait: FRAME_WAIT,
        ..ConnectOptions::default()
    };
    ChatClient::connect(url, &options)
        .await
        .map_err(|e| e.to_string())
}

/// Opens a new `ad_hoc_support` conversation (no greeting turn).
async fn open_ad_hoc(url: &str, cookie: &str) -> Res<ChatClient> {
    let mut ws = connect(url, cookie).await?;
    ws.start_in(hirecj_agent::workflow::AD_HOC_SUPPORT)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Runs the futures with at most `concurrency` at once; returns the
/// successes and the errors.
async fn run_all<T, Fut>(
    futures: impl IntoIterator<Item = Fut>,
    concurrency: usize,
) -> (Vec<T>, Vec<String>)
where
    Fut: Future<Output = Res<T>>,
{
    let results: Vec<Res<T>> = futures::stream::iter(futures)
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => errors.push(e),
        }
    }
    (ok, errors)
}

// ---------------------------------------------------------------------------
// Phase: one long conversation

/// The long phase opens a new connection (resuming the conversation) this
/// often: the server allows 120 frames a minute per connection, and a
/// merchant's long conversation spans many connections anyway.
const LONG_RECONNECT_EVERY: usize = 100;
/// The turns compared at each end of the long conversation.
const LONG_WINDOW: usize = 100;

struct LongReport {
    /// Send → `cj_message` of every turn, in order.
    latencies: Vec<Duration>,
    /// The database's size before the first turn and after the last
    /// ([`hirecj_store::Store::database_bytes`]: SQLite's pages in use,
    /// PostgreSQL's `pg_database_size`).
    storage: Option<(u64, u64)>,
    /// Bytes of every message's text (the merchant's and CJ's).
    text_bytes: usize,
    /// The first model request of each turn, from the stored traces:
    /// (bytes, messages).
    requests: Vec<(u64, u64)>,
}

impl LongReport {
    /// p50 and p99 in ms of `window` turns from `start`.
    fn window(&self, start: usize) -> (String, String) {
        let end = (start + LONG_WINDOW).min(self.latencies.len());
        let mut v: Vec<f64> = self.latencies[start.min(end)..end]
            .iter()
            .map(|d| ms(*d))
            .collect();
        v.sort_by(f64::total_cmp);
        (pct(&v, 0.50), pct(&v, 0.99))
    }
}

/// The database of the server this bench spawned, when it has one.
async fn open_database(
    server: &Target,
    database: Option<&ScratchDatabase>,
) -> Option<hirecj_store::Store> {
    let url = match (database, &server.data_dir) {
        (Some(db), _) => db.url.clone(),
        (None, Some(dir)) => format!("sqlite:{}", dir.join("hirecj.db").display()),
        (None, None) => return None,
    };
    // Only traces and sizes are read: no token is decrypted.
    let cipher = hirecj_store::Cipher::from_secret_key(&[0; 32]);
    hirecj_store::Store::connect(&url, cipher, &hirecj_store::StoreOptions::default())
        .await
        .ok()
}

/// Each turn's first model request, as its trace recorded it: (bytes,
/// messages).
async fn stored_requests(store: &hirecj_store::Store, id: ConversationId) -> Vec<(u64, u64)> {
    let Ok(traces) = store.traces(id).await else {
        return Vec::new();
    };
    traces
        .iter()
        .filter_map(|t| {
            let round = t.data.pointer("/rounds/0")?;
            let messages = match &round["request"]["messages"] {
                serde_json::Value::Array(m) => m.len() as u64,
                other => other.as_u64()?,
            };
            Some((round["request_bytes"].as_u64()?, messages))
        })
        .collect()
}

/// One conversation of `p.long` turns, one after the other: the latency
/// of its first and last turns and the database's growth per turn. A
/// spawned bench runs it on a server of its own with debug traces off, as
/// merchants' servers run (a trace in debug mode holds the whole history:
/// it grows with the square of the conversation).
async fn phase_long(
    shared: &Target,
    http: &reqwest::Client,
    p: &Params,
    model_url: Option<&str>,
    database: Option<&ScratchDatabase>,
) -> Res<LongReport> {
    let own = match shared.process {
        Some(_) => Some(Target::spawn(
            model_url,
            database.map(|d| d.url.as_str()),
            false,
        )?),
        None => None,
    };
    let server = own.as_ref().unwrap_or(shared);
    println!(
        "long: one conversation of {} turns (message → CJ's reply), resumed on a new connection every {LONG_RECONNECT_EVERY} turns{}",
        p.long,
        if own.is_some() {
            ", on a server of its own with debug traces off"
        } else {
            ""
        }
    );
    let cookie = new_session(http, &server.base).await?;
    let mut ws = connect(&server.ws, &cookie).await?;
    let started = ws
        .start_in(hirecj_agent::workflow::AD_HOC_SUPPORT)
        .await
        .map_err(|e| e.to_string())?;
    let id: ConversationId = started["conversation_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("conversation_started without a conversation id")?;
    let mut last_seq = started["last_seq"].as_i64().unwrap_or(0);
    let store = open_database(server, database).await;
    let before = match &store {
        Some(s) => s.database_bytes().await.ok(),
        None => None,
    };
    let mut latencies = Vec::with_capacity(p.long);
    let mut text_bytes = 0;
    for t in 0..p.long {
        if t > 0 && t % LONG_RECONNECT_EVERY == 0 {
            ws = connect(&server.ws, &cookie).await?;
            ws.resume(id, last_seq).await.map_err(|e| e.to_string())?;
        }
        let text = QUESTIONS[t % QUESTIONS.len()];
        let frame = ClientFrame::Message {
            text: text.to_owned(),
            client_id: format!("long-{t}"),
        };
        let start = Instant::now();
        ws.send(&frame).await.map_err(|e| e.to_string())?;
        match ws.until("cj_message").await.map(|f| f.into_typed()) {
            Ok(ServerFrame::CjMessage { message }) => {
                latencies.push(start.elapsed());
                last_seq = message.seq;
                text_bytes += text.len() + message.content.len();
            }
            Ok(other) => return Err(format!("turn {t}: expected cj_message, got {other:?}")),
            Err(e) => return Err(format!("turn {t}: {e}")),
        }
        if (t + 1) % 500 == 0 {
            println!("  {} turns", t + 1);
        }
    }
    let (after, requests) = match &store {
        Some(s) => (s.database_bytes().await.ok(), stored_requests(s, id).await),
        None => (None, Vec::new()),
    };
    if let Some(s) = store {
        s.close().await;
    }
    Ok(LongReport {
        latencies,
        storage: before.zip(after),
        text_bytes,
        requests,
    })
}

fn print_long(long: &Res<LongReport>) {
    let report = match long {
        Ok(r) => r,
        Err(e) => {
            println!("long conversation: n/a ({e})");
            return;
        }
    };
    let n = report.latencies.len();
    let (first50, first99) = report.window(0);
    let (last50, last99) = report.window(n.saturating_sub(LONG_WINDOW));
    println!("long conversation ({n} turns)");
    println!("  turn latency, first {LONG_WINDOW} turns p50 / p99: {first50} / {first99}");
    println!("  turn latency, last {LONG_WINDOW} turns p50 / p99:  {last50} / {last99}");
    match report.storage {
        Some((before, after)) => println!(
            "  database growth: {:.1} KB in all, {:.0} bytes per turn (messages, traces, indexes; {:.0} bytes of it message text)",
            after.saturating_sub(before) as f64 / 1024.0,
            after.saturating_sub(before) as f64 / n.max(1) as f64,
            report.text_bytes as f64 / n.max(1) as f64
        ),
        None => println!("  database growth: n/a (an external server's database)"),
    }
    let requests = &report.requests;
    match (requests.first(), requests.last()) {
        (Some(first), Some(last)) => {
            let largest = requests.iter().map(|r| r.0).max().unwrap_or(0);
            let most = requests.iter().map(|r| r.1).max().unwrap_or(0);
            println!(
                "  model request: first turn {} bytes ({} messages), last turn {} bytes ({} messages), largest {largest} bytes ({most} messages at most)",
                first.0, first.1, last.0, last.1
            );
        }
        _ => println!("  model request: n/a (an external server's traces)"),
    }
}

// ---------------------------------------------------------------------------
// Phase: memory per idle conversation

struct MemoryReport {
    requested: usize,
    held: usize,
    rss_before_kb: Option<u64>,
    rss_after_kb: Option<u64>,
    errors: Vec<String>,
}

impl MemoryReport {
    fn per_connection_kb(&self) -> Option<f64> {
        let (before, after) = (self.rss_before_kb?, self.rss_after_kb?);
        (self.held > 0).then(|| (after as f64 - before as f64) / self.held as f64)
    }
}

async fn phase_memory(server: &Target, http: &reqwest::Client, p: &Params) -> Res<MemoryReport> {
    println!(
        "memory: {} idle connections, each with an open ad_hoc_support conversation",
        p.idle
    );
    let mut report = MemoryReport {
        requested: p.idle,
        held: 0,
        rss_before_kb: None,
        rss_after_kb: None,
        errors: Vec::new(),
    };
    if server.pid().is_none() {
        println!(
            "  skipped: it reads the server's /proc/<pid>/status, so it needs a spawned server (omit --url)"
        );
        return Ok(report);
    }
    // Warm up what is allocated once (database pool, caches, runtime).
    let warm = 20.min(p.idle.max(1));
    let (warmed, errors) = run_all(
        (0..warm).map(|_| async {
            let cookie = new_session(http, &server.base).await?;
            open_ad_hoc(&server.ws, &cookie).await
        }),
        SETUP_CONCURRENCY,
    )
    .await;
    report.errors.extend(errors);
    drop(warmed);

    let (sessions, errors) = run_all(
        (0..p.idle).map(|_| new_session(http, &server.base)),
        SETUP_CONCURRENCY,
    )
    .await;
    report.errors.extend(errors);
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.rss_before_kb = server.rss_kb();
    let client_before = rss_kb("self");

    let started = Instant::now();
    let (opened, errors) = run_all(
        sessions
            .iter()
            .map(|cookie| open_ad_hoc(&server.ws, cookie)),
        SETUP_CONCURRENCY,
    )
    .await;
    let setup = started.elapsed();
    report.errors.extend(errors);
    // Each connection is read (so the server's pings are answered) until the
    // measurement is over.
    let holders: Vec<tokio::task::JoinHandle<()>> = opened
        .into_iter()
        .map(|ws| tokio::spawn(ws.hold_open()))
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.rss_after_kb = server.rss_kb();
    let client_after = rss_kb("self");
    report.held = holders.iter().filter(|h| !h.is_finished()).count();
    for h in &holders {
        h.abort();
    }
    for h in holders {
        let _ = h.await;
    }
    println!(
        "  held {}/{} (opened in {:.1} s); server RSS {} KB → {} KB; {} per connection",
        report.held,
        report.requested,
        setup.as_secs_f64(),
        opt(report.rss_before_kb),
        opt(report.rss_after_kb),
        report
            .per_connection_kb()
            .map_or("n/a".to_owned(), |kb| format!("{kb:.1} KB"))
    );
    if let (Some(b), Some(a)) = (client_before, client_after)
        && report.held > 0
    {
        println!(
            "  (this bench client, 8 KiB WebSocket read buffers: {:.1} KB per connection)",
            (a as f64 - b as f64) / report.held as f64
        );
    }
    print_errors(&report.errors);
    // Let the server notice the closed connections before the next phase.
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok(report)
}

// ---------------------------------------------------------------------------
// Phase: turns

struct TurnSample {
    latency: Duration,
    /// Time the server recorded for the model and the tools, when known.
    model_tool: Option<Duration>,
}

struct TurnsReport {
    conversations: usize,
    connected: usize,
    wall: Duration,
    samples: Vec<TurnSample>,
    debug_available: bool,
    /// Messages refused with `turn_in_progress` right after CJ's previous
    /// reply (sent again).
    busy: usize,
    errors: Vec<String>,
}

impl TurnsReport {
    fn turns_per_second(&self) -> Option<f64> {
        let secs = self.wall.as_secs_f64();
        (secs > 0.0 && !self.samples.is_empty()).then(|| self.samples.len() as f64 / secs)
    }

    fn latency_ms(&self) -> Vec<f64> {
        sorted(self.samples.iter().map(|s| ms(s.latency)).collect())
    }

    fn overhead_ms(&self) -> Vec<f64> {
        sorted(
            self.samples
                .iter()
                .filter_map(|s| s.model_tool.map(|mt| (ms(s.latency) - ms(mt)).max(0.0)))
                .collect(),
        )
    }
}

/// What one conversation did.
#[derive(Default)]
struct Conversation {
    /// (latency, seq of CJ's message) of each turn.
    turns: Vec<(Duration, i64)>,
    /// Messages refused with `turn_in_progress` (and sent again).
    busy: usize,
    error: Option<String>,
}

/// One conversation's turns, one after the other. A message refused with
/// `turn_in_progress` is sent again (same `client_id`) after a short pause,
/// as the protocol allows; its latency counts from the accepted send.
async fn converse(
    ws: &mut ChatClient,
    conv: usize,
    turns: usize,
    pacer: Option<Arc<tokio::sync::Semaphore>>,
) -> Conversation {
    let mut out = Conversation::default();
    for t in 0..turns {
        if let Some(pacer) = &pacer {
            match pacer.acquire().await {
                Ok(permit) => permit.forget(),
                Err(_) => {
                    out.error = Some("the pacer stopped".to_owned());
                    return out;
                }
            }
        }
        let text = QUESTIONS[(conv + t) % QUESTIONS.len()];
        let frame = ClientFrame::Message {
            text: text.to_owned(),
            client_id: format!("bench-{conv}-{t}"),
        };
        let mut refusals = 0u32;
        loop {
            let start = Instant::now();
            if let Err(e) = ws.send(&frame).await {
                out.error = Some(e.to_string());
                return out;
            }
            match ws.until("cj_message").await.map(|f| f.into_typed()) {
                Ok(ServerFrame::CjMessage { message }) => {
                    out.turns.push((start.elapsed(), message.seq));
                    break;
                }
                Ok(other) => {
                    out.error = Some(format!("expected cj_message, got {other:?}"));
                    return out;
                }
                Err(e) if e.error_code() == Some("turn_in_progress") && refusals < 50 => {
                    refusals += 1;
                    out.busy += 1;
                    tokio::time::sleep(Duration::from_millis(2 * u64::from(refusals))).await;
                }
                Err(WsError::ErrorFrame { code, message, .. }) => {
                    out.error = Some(format!(
                        "error frame instead of cj_message: {code} {message}"
                    ));
                    return out;
                }
                Err(e) => {
                    out.error = Some(e.to_string());
                    return out;
                }
            }
        }
    }
    out
}

/// The model and tool time of each turn, by turn (the seq of CJ's message),
/// from the conversation's debug traces. None when debug is off.
async fn turn_times(ws: &mut ChatClient) -> Res<Option<HashMap<i64, Duration>>> {
    Ok(turn_traces(ws)
        .await?
        .map(|t| t.into_iter().map(|(turn, (m, t))| (turn, m + t)).collect()))
}

/// (model time, tool time) of each turn, by turn, from the conversation's
/// debug traces. None when debug is off.
/// Per turn of the open conversation: its tool time and each tool call's
/// name and time (ms, whole milliseconds as traced). None when the server's
/// debug traces are off.
async fn tool_calls(ws: &mut ChatClient) -> Res<Option<HashMap<i64, ToolTimes>>> {
    let Some(traces) = debug_traces(ws).await? else {
        return Ok(None);
    };
    let mut times = HashMap::new();
    for t in &traces {
        let (Some(turn), Some(tool)) = (t["turn"].as_i64(), t["trace"]["tool_ms"].as_u64()) else {
            continue;
        };
        let calls = t["trace"]["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .filter_map(|c| {
                        Some((
                            c["name"].as_str()?.to_owned(),
                            c["duration_ms"].as_u64()? as f64,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        times.insert(turn, (tool as f64, calls));
    }
    Ok(Some(times))
}

/// A turn's tool time and its calls (name, ms).
type ToolTimes = (f64, Vec<(String, f64)>);

/// The open conversation's turn traces (None: debug traces are off).
async fn debug_traces(ws: &mut ChatClient) -> Res<Option<Vec<serde_json::Value>>> {
    ws.send(&ClientFrame::DebugRequest { turn: None })
        .await
        .map_err(|e| e.to_string())?;
    match ws.until("debug_response").await.map(|f| f.into_typed()) {
        Ok(ServerFrame::DebugResponse { traces }) => Ok(Some(traces)),
        Ok(other) => Err(format!("expected debug_response, got {other:?}")),
        Err(e) if e.error_code() == Some("debug_disabled") => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

async fn turn_traces(ws: &mut ChatClient) -> Res<Option<HashMap<i64, (Duration, Duration)>>> {
    let Some(traces) = debug_traces(ws).await? else {
        return Ok(None);
    };
    let mut times = HashMap::new();
    for t in &traces {
        let (Some(turn), Some(model), Some(tool)) = (
            t["turn"].as_i64(),
            t["trace"]["model_ms"].as_u64(),
            t["trace"]["tool_ms"].as_u64(),
        ) else {
            continue;
        };
        times.insert(
            turn,
            (Duration::from_millis(model), Duration::from_millis(tool)),
        );
    }
    Ok(Some(times))
}

async fn phase_turns(server: &Target, http: &reqwest::Client, p: &Params) -> Res<TurnsReport> {
    println!(
        "turns: {} concurrent conversations × {} messages each (message → CJ's reply, one at a time)",
        p.conversations, p.turns
    );
    if let Some(rate) = p.rate {
        println!("  (paced: at most {rate} turns/s started)");
    }
    if p.model == ModelKind::Mock && !p.model_latency.is_zero() {
        println!(
            "  (closed loop: at most {:.0} turns/s with a {} ms model)",
            p.conversations as f64 / p.model_latency.as_secs_f64(),
            p.model_latency.as_millis()
        );
    }
    let (opened, mut errors) = run_all(
        (0..p.conversations).map(|_| async {
            let cookie = new_session(http, &server.base).await?;
            open_ad_hoc(&server.ws, &cookie).await
        }),
        SETUP_CONCURRENCY,
    )
    .await;
    let connected = opened.len();

    // With --rate, a permit per turn is released at that rate (never more
    // than one per conversation waiting, so no burst builds up).
    let pacer = p.rate.map(|_| Arc::new(tokio::sync::Semaphore::new(0)));
    let pacing = match (p.rate, &pacer) {
        (Some(rate), Some(sem)) => {
            let sem = sem.clone();
            let cap = connected.max(1);
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                loop {
                    tick.tick().await;
                    if sem.available_permits() < cap {
                        sem.add_permits(1);
                    }
                }
            }))
        }
        _ => None,
    };
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, mut ws) in opened.into_iter().enumerate() {
        let turns = p.turns;
        let pacer = pacer.clone();
        tasks.spawn(async move {
            let outcome = converse(&mut ws, i, turns, pacer).await;
            (ws, outcome, started.elapsed())
        });
    }
    let mut finished = Vec::new();
    let mut wall = Duration::ZERO;
    let mut busy = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((ws, outcome, at)) => {
                wall = wall.max(at);
                errors.extend(outcome.error);
                busy += outcome.busy;
                finished.push((ws, outcome.turns));
            }
            Err(e) => errors.push(format!("a conversation task failed: {e}")),
        }
    }

    if let Some(pacing) = pacing {
        pacing.abort();
    }
    // Untimed: each conversation's traces.
    let (looked_up, lookup_errors) = run_all(
        finished.into_iter().map(|(mut ws, done)| async move {
            let times = turn_times(&mut ws).await?;
            Ok((done, times))
        }),
        SETUP_CONCURRENCY,
    )
    .await;
    errors.extend(lookup_errors);
    let mut samples = Vec::new();
    let mut debug_available = true;
    for (done, times) in looked_up {
        debug_available &= times.is_some();
        for (latency, seq) in done {
            let model_tool = times.as_ref().and_then(|t| t.get(&seq).copied());
            samples.push(TurnSample {
                latency,
                model_tool,
            });
        }
    }

    let report = TurnsReport {
        conversations: p.conversations,
        connected,
        busy,
        wall,
        samples,
        debug_available,
        errors,
    };
    let lat = report.latency_ms();
    let over = report.overhead_ms();
    println!(
        "  {}/{} conversations connected; {} turns in {:.2} s = {} turns/s",
        report.connected,
        report.conversations,
        report.samples.len(),
        report.wall.as_secs_f64(),
        report
            .turns_per_second()
            .map_or("n/a".to_owned(), |t| format!("{t:.1}"))
    );
    println!(
        "  latency (send → cj_message):           p50 {} p99 {}",
        pct(&lat, 0.50),
        pct(&lat, 0.99)
    );
    println!(
        "  server overhead (latency − model − tools): p50 {} p99 {} ({} of {} turns traced{})",
        pct(&over, 0.50),
        pct(&over, 0.99),
        over.len(),
        report.samples.len(),
        if report.debug_available {
            ""
        } else {
            "; debug is off on this server"
        }
    );
    if report.busy > 0 {
        println!(
            "  {} messages were refused with turn_in_progress right after CJ's previous cj_message \
             (sent again; latency counts from the accepted send)",
            report.busy
        );
    }
    print_errors(&report.errors);
    Ok(report)
}

// ---------------------------------------------------------------------------
// Phase: the prepared post-OAuth message

struct PreparedReport {
    installs: usize,
    installed: usize,
    samples_ms: Vec<f64>,
    errors: Vec<String>,
}

fn location(r: &reqwest::Response, base: &url::Url, what: &str) -> Res<url::Url> {
    if r.status() != reqwest::StatusCode::FOUND {
        return Err(format!("{what}: expected a 302, got {}", r.status()));
    }
    let to = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| format!("{what}: a redirect without a location"))?;
    base.join(to)
        .map_err(|e| format!("{what}: bad location {to:?}: {e}"))
}

/// A visitor's onboarding conversation, then the development-store install
/// from it, like a browser. Returns the conversation and the merchant's
/// session cookie.
async fn install(server: &Target, shop: String) -> Res<(ConversationId, String)> {
    let base = url::Url::parse(&format!("{}/", server.base)).map_err(|e| e.to_string())?;
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .timeout(FRAME_WAIT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let cookies = |jar: &Jar| {
        jar.cookies(&base)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    };

    let r = http
        .get(base.join("api/v1/me").map_err(|e| e.to_string())?)
        .send()
        .await;
    let r = r.map_err(|e| format!("GET /api/v1/me: {e}"))?;
    if !r.status().is_success() {
        return Err(format!("GET /api/v1/me: {}", r.status()));
    }
    let visitor = cookies(&jar).ok_or("GET /api/v1/me set no session cookie")?;
    let mut ws = connect(&server.ws, &visitor).await?;
    let ws_error = |e: WsError| e.to_string();
    ws.send(&ClientFrame::StartConversation {
        conversation_id: None,
        workflow: None,
        last_seq: 0,
    })
    .await
    .map_err(ws_error)?;
    let id = match ws
        .until("conversation_started")
        .await
        .map_err(ws_error)?
        .into_typed()
    {
        ServerFrame::ConversationStarted {
            conversation_id, ..
        } => conversation_id,
        other => return Err(format!("expected conversation_started, got {other:?}")),
    };
    ws.until("cj_message").await.map_err(ws_error)?;
    drop(ws);

    let start = base.join(&format!(
        "api/v1/shopify/install?shop={shop}&conversation_id={id}"
    ));
    let r = http
        .get(start.map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("install: {e}"))?;
    let authorize = location(&r, &base, "install")?;
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("decision".into(), "install".into()));
    let mut post_url = authorize.clone();
    post_url.set_query(None);
    let r = http
        .post(post_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| format!("authorize: {e}"))?;
    let callback = location(&r, &base, "authorize")?;
    let r = http
        .get(callback)
        .send()
        .await
        .map_err(|e| format!("callback: {e}"))?;
    let landed = location(&r, &base, "callback")?;
    if !landed.as_str().contains(&format!("conversation_id={id}")) {
        return Err(format!(
            "the callback sent the merchant to {landed}, not to the conversation {id}"
        ));
    }
    let merchant = cookies(&jar).ok_or("no session cookie after the install")?;
    Ok((id, merchant))
}

async fn phase_prepared(server: &Target, p: &Params) -> Res<PreparedReport> {
    println!(
        "prepared message: {} merchants install the development store (untimed), then each opens its \
         conversation: start_conversation → conversation_started with CJ's prepared message (timed, one at a time)",
        p.installs
    );
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 100_000);
    let shop = |i: usize| {
        if server.pid().is_some() {
            format!("bench-{i}")
        } else {
            format!("bench-{run}-{i}")
        }
    };
    let (installed, mut errors) = run_all(
        (0..p.installs).map(|i| install(server, shop(i))),
        INSTALL_CONCURRENCY,
    )
    .await;
    let mut samples_ms = Vec::new();
    for (id, cookie) in &installed {
        let mut ws = match connect(&server.ws, cookie).await {
            Ok(ws) => ws,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let start = Instant::now();
        let open = ClientFrame::StartConversation {
            conversation_id: Some(*id),
            workflow: None,
            last_seq: 0,
        };
        let opened = match ws.send(&open).await {
            Ok(()) => ws.until("conversation_started").await,
            Err(e) => Err(e),
        };
        let elapsed = start.elapsed();
        match opened.map(|f| f.into_typed()) {
            Ok(ServerFrame::ConversationStarted {
                messages,
                store_connected,
                ..
            }) => {
                let last = messages.last();
                if last.is_some_and(|m| m.role == Role::Cj) && store_connected {
                    samples_ms.push(ms(elapsed));
                } else {
                    errors.push(format!(
                        "conversation {id}: CJ's prepared message was not there when it opened"
                    ));
                }
            }
            Ok(other) => errors.push(format!("expected conversation_started, got {other:?}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let report = PreparedReport {
        installs: p.installs,
        installed: installed.len(),
        samples_ms: sorted(samples_ms),
        errors,
    };
    println!(
        "  {}/{} installed, {} opened with the prepared message: p50 {} p99 {}",
        report.installed,
        report.installs,
        report.samples_ms.len(),
        pct(&report.samples_ms, 0.50),
        pct(&report.samples_ms, 0.99)
    );
    print_errors(&report.errors);
    Ok(report)
}

// ---------------------------------------------------------------------------
// Phase: the store mirror

struct StoreReport {
    shop: String,
    /// Install → the mirror's backfill complete, as the merchant waits.
    backfill: Option<Duration>,
    /// The server's own backfill time (its started and completed times).
    server_backfill: Option<Duration>,
    orders: u64,
    /// (question, end-to-end latencies) in the order asked.
    questions: Vec<(String, Vec<f64>)>,
    /// Tool time of every store turn (from the turn traces).
    tool_ms: Vec<f64>,
    /// Each tool's own time per call (from the turn traces), by tool name.
    per_tool_ms: Vec<(String, Vec<f64>)>,
    /// An order created in the development store → its webhook applied to
    /// the mirror (the store's last event moves).
    webhook_ms: Vec<f64>,
    errors: Vec<String>,
}

/// The merchant's user id, from `GET /api/v1/me`.
async fn user_id(http: &reqwest::Client, base: &str, cookie: &str) -> Res<String> {
    let r = http
        .get(format!("{base}/api/v1/me"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .map_err(|e| format!("GET /api/v1/me: {e}"))?;
    let me: serde_json::Value = r.json().await.map_err(|e| format!("GET /api/v1/me: {e}"))?;
    me["user_id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("GET /api/v1/me named no merchant: {me}"))
}

async fn phase_store(server: &Target, p: &Params) -> Res<StoreReport> {
    println!(
        "store: a merchant installs the development shop {} and waits for CJ's copy of it (the \
         mirror's backfill), then asks store questions {} times each (message → cj_message, one at \
         a time, offline brain; tool time from the turn traces)",
        p.store_shop, p.store_asks
    );
    let http = reqwest::Client::builder()
        .timeout(FRAME_WAIT)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let (_, cookie) = install(server, p.store_shop.clone()).await?;
    let installed = Instant::now();
    let user = user_id(&http, &server.base, &cookie).await?;
    let mut report = StoreReport {
        shop: p.store_shop.clone(),
        backfill: None,
        server_backfill: None,
        orders: 0,
        questions: Vec::new(),
        tool_ms: Vec::new(),
        per_tool_ms: Vec::new(),
        webhook_ms: Vec::new(),
        errors: Vec::new(),
    };
    loop {
        let r = http
            .get(format!("{}/api/v1/users/{user}/store", server.base))
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await
            .map_err(|e| format!("GET the store's freshness: {e}"))?;
        let body: serde_json::Value = r
            .json()
            .await
            .map_err(|e| format!("GET the store's freshness: {e}"))?;
        let mirror = &body["mirror"];
        match mirror["backfill"].as_str() {
            Some("complete") => {
                report.backfill = Some(installed.elapsed());
                report.orders = mirror["orders_mirrored"].as_u64().unwrap_or(0);
                let at = |k: &str| {
                    mirror[k]
                        .as_str()
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                };
                if let (Some(a), Some(b)) = (at("backfill_started_at"), at("backfill_completed_at"))
                {
                    report.server_backfill = (b - a).to_std().ok();
                }
                break;
            }
            Some("failed") => return Err(format!("the backfill failed: {body}")),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!(
        "  backfill: {} orders mirrored in {} (server: {})",
        report.orders,
        report
            .backfill
            .map_or("n/a".into(), |d| format!("{:.2} s", d.as_secs_f64())),
        report
            .server_backfill
            .map_or("n/a".into(), |d| format!("{:.2} s", d.as_secs_f64())),
    );

    // New orders in the development store reach the mirror by webhook.
    let freshness = format!("{}/api/v1/users/{user}/store", server.base);
    let last_event = || async {
        let body: serde_json::Value = http
            .get(&freshness)
            .header(reqwest::header::COOKIE, &cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(body["mirror"]["last_event_at"].as_str().map(str::to_owned))
    };
    for n in 0..p.store_asks.min(10) {
        let before = last_event().await?;
        let r = http
            .post(format!("{}/devstore/_control/orders", server.base))
            .form(&[("shop", format!("{}.myshopify.com", p.store_shop))])
            .send()
            .await
            .map_err(|e| format!("creating order {n}: {e}"))?;
        if !r.status().is_success() {
            report
                .errors
                .push(format!("creating order {n}: HTTP {}", r.status()));
            continue;
        }
        let created = Instant::now();
        loop {
            if last_event().await? != before {
                report.webhook_ms.push(ms(created.elapsed()));
                break;
            }
            if created.elapsed() > FRAME_WAIT {
                report
                    .errors
                    .push(format!("order {n}: its webhook never reached the mirror"));
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    report.webhook_ms = sorted(std::mem::take(&mut report.webhook_ms));
    println!(
        "  new order → its webhook applied to the mirror: p50 {} p99 {} ({} orders)",
        pct(&report.webhook_ms, 0.50),
        pct(&report.webhook_ms, 0.99),
        report.webhook_ms.len()
    );

    let today = chrono::Utc::now().date_naive();
    let day = |n: u64| {
        today
            .checked_sub_days(chrono::Days::new(n))
            .unwrap_or(today)
    };
    // The questions the targets name, then one per remaining store tool
    // over the whole year (the longest range a tool reads).
    let questions = [
        "What sells best?".to_owned(),
        format!("What were my sales between {} and {}?", day(40), day(26)),
        "What were my sales this month?".to_owned(),
        "Compare this month with last month.".to_owned(),
        "Who are my top customers in the last 365 days?".to_owned(),
        "How many repeat customers did I have in the last 365 days?".to_owned(),
        "How did my products perform in the last 365 days?".to_owned(),
        "Show me my orders by status in the last 365 days.".to_owned(),
        "What were my refunds in the last 365 days?".to_owned(),
        "Show me my sales by week in the last 365 days.".to_owned(),
    ];
    // Each question in a conversation of its own, on its own connection
    // (a connection may send 120 frames a minute).
    let mut turn_tools: Vec<ToolTimes> = Vec::new();
    let mut traced = true;
    for (qi, question) in questions.iter().enumerate() {
        let mut ws = connect(&server.ws, &cookie).await?;
        ws.start_ad_hoc().await.map_err(|e| e.to_string())?;
        let mut seqs = Vec::new();
        let mut samples = Vec::new();
        for n in 0..p.store_asks {
            let frame = ClientFrame::Message {
                text: question.clone(),
                client_id: format!("store-{qi}-{n}"),
            };
            let start = Instant::now();
            if let Err(e) = ws.send(&frame).await {
                report.errors.push(e.to_string());
                break;
            }
            match ws.until("cj_message").await.map(|f| f.into_typed()) {
                Ok(ServerFrame::CjMessage { message }) => {
                    samples.push(ms(start.elapsed()));
                    seqs.push(message.seq);
                }
                Ok(other) => report
                    .errors
                    .push(format!("expected cj_message, got {other:?}")),
                Err(e) => report.errors.push(e.to_string()),
            }
        }
        let samples = sorted(samples);
        println!(
            "  {question:?}: p50 {} p99 {} ({} answers)",
            pct(&samples, 0.50),
            pct(&samples, 0.99),
            samples.len()
        );
        report.questions.push((question.clone(), samples));
        match tool_calls(&mut ws).await {
            Ok(Some(mut traces)) => {
                turn_tools.extend(seqs.iter().filter_map(|seq| traces.remove(seq)));
            }
            Ok(None) => traced = false,
            Err(e) => report.errors.push(e),
        }
    }
    if traced {
        let mut per_tool: std::collections::BTreeMap<String, Vec<f64>> =
            std::collections::BTreeMap::new();
        let mut tool_ms = Vec::new();
        for (tool, calls) in turn_tools {
            tool_ms.push(tool);
            for (name, t) in calls {
                per_tool.entry(name).or_default().push(t);
            }
        }
        report.tool_ms = sorted(tool_ms);
        report.per_tool_ms = per_tool
            .into_iter()
            .map(|(name, v)| (name, sorted(v)))
            .collect();
        println!(
            "  tool time per store turn: p50 {} p99 {} max {}",
            pct(&report.tool_ms, 0.50),
            pct(&report.tool_ms, 0.99),
            pct(&report.tool_ms, 1.0)
        );
        for (name, v) in &report.per_tool_ms {
            println!(
                "    {name}: p50 {} p99 {} max {} ({} calls)",
                pct(v, 0.50),
                pct(v, 0.99),
                pct(v, 1.0),
                v.len()
            );
        }
    } else {
        println!("  tool time: n/a (the server's debug traces are off)");
    }
    print_errors(&report.errors);
    Ok(report)
}

// ---------------------------------------------------------------------------
// Output

fn print_summary(
    p: &Params,
    turns: Option<&Res<TurnsReport>>,
    memory: Option<&Res<MemoryReport>>,
    prepared: Option<&Res<PreparedReport>>,
    mirror: Option<&Res<StoreReport>>,
) {
    let na = |e: &String| format!("n/a ({e})");
    let mut rows: Vec<[String; 3]> = Vec::new();
    match turns {
        None => {}
        Some(Ok(t)) => {
            let (lat, over) = (t.latency_ms(), t.overhead_ms());
            rows.push([
                "concurrent conversations held".into(),
                format!("{}/{}", t.connected, t.conversations),
                "1,000".into(),
            ]);
            rows.push([
                "turns per second".into(),
                t.turns_per_second()
                    .map_or("n/a".into(), |v| format!("{v:.1}")),
                "500 (with the overhead below)".into(),
            ]);
            rows.push([
                "server overhead per turn p50 / p99".into(),
                format!("{} / {}", pct(&over, 0.50), pct(&over, 0.99)),
                "p99 < 10 ms".into(),
            ]);
            rows.push([
                "turn_in_progress refusals after cj_message".into(),
                format!("{} of {} turns", t.busy, t.samples.len()),
                "0".into(),
            ]);
            rows.push([
                "turn latency p50 / p99".into(),
                format!("{} / {}", pct(&lat, 0.50), pct(&lat, 0.99)),
                "—".into(),
            ]);
        }
        Some(Err(e)) => {
            rows.push(["turns per second".into(), na(e), "500".into()]);
            rows.push([
                "server overhead per turn p50 / p99".into(),
                na(e),
                "p99 < 10 ms".into(),
            ]);
        }
    }
    match memory {
        None => {}
        Some(Ok(m)) if m.rss_before_kb.is_none() && m.held == 0 && m.errors.is_empty() => rows
            .push([
                "memory per connected conversation".into(),
                "skipped (needs a spawned server)".into(),
                "< 50 KB".into(),
            ]),
        Some(Ok(m)) => {
            rows.push([
                "idle connections held".into(),
                format!("{}/{}", m.held, m.requested),
                "10,000".into(),
            ]);
            rows.push([
                "memory per connected conversation".into(),
                m.per_connection_kb()
                    .map_or("n/a".into(), |kb| format!("{kb:.1} KB")),
                "< 50 KB".into(),
            ]);
        }
        Some(Err(e)) => rows.push([
            "memory per connected conversation".into(),
            na(e),
            "< 50 KB".into(),
        ]),
    }
    match prepared {
        None => {}
        Some(Ok(r)) => rows.push([
            "prepared message p50 / p99".into(),
            format!(
                "{} / {}",
                pct(&r.samples_ms, 0.50),
                pct(&r.samples_ms, 0.99)
            ),
            "p99 < 20 ms".into(),
        ]),
        Some(Err(e)) => rows.push([
            "prepared message p50 / p99".into(),
            na(e),
            "p99 < 20 ms".into(),
        ]),
    }
    match mirror {
        None => {}
        Some(Ok(m)) => {
            rows.push([
                format!("store backfill ({} orders, {})", m.orders, m.shop),
                m.backfill
                    .map_or("n/a".into(), |d| format!("{:.2} s", d.as_secs_f64())),
                "< 60 s (100,000 orders)".into(),
            ]);
            rows.push([
                "store tool time p99".into(),
                pct(&m.tool_ms, 0.99),
                "< 50 ms".into(),
            ]);
            for (name, v) in &m.per_tool_ms {
                rows.push([format!("  {name} p99"), pct(v, 0.99), "< 50 ms".into()]);
            }
            rows.push([
                "new order → mirror (webhook) p99".into(),
                pct(&m.webhook_ms, 0.99),
                "< 1 s".into(),
            ]);
            for (question, samples) in &m.questions {
                rows.push([
                    format!("{question:?} p50 / p99"),
                    format!("{} / {}", pct(samples, 0.50), pct(samples, 0.99)),
                    "p99 < 300 ms".into(),
                ]);
            }
        }
        Some(Err(e)) => rows.push(["store backfill".into(), na(e), "< 60 s".into()]),
    }
    if rows.is_empty() {
        return;
    }
    let width = |c: usize| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0);
    let (w0, w1) = (width(0).max(6), width(1).max(8));
    println!(
        "summary ({} conversations × {} turns, {} idle, {} installs)",
        p.conversations, p.turns, p.idle, p.installs
    );
    println!("  {:<w0$}  {:<w1$}  target", "metric", "measured");
    for [metric, value, target] in &rows {
        println!("  {metric:<w0$}  {value:<w1$}  {target}");
    }
}

fn print_errors(errors: &[String]) {
    if errors.is_empty() {
        return;
    }
    println!(
        "  {} errors; the first: {}",
        errors.len(),
        errors
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

/// VmRSS in KB of a process (`self` for this one).
fn rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Nearest-rank percentile of sorted values, formatted in ms.
fn pct(sorted: &[f64], q: f64) -> String {
    if sorted.is_empty() {
        return "n/a".to_owned();
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let v = sorted[rank.clamp(1, sorted.len()) - 1];
    format!("{v:.2} ms")
}

fn opt(v: Option<u64>) -> String {
    v.map_or("n/a".to_owned(), |v| v.to_string())
}
