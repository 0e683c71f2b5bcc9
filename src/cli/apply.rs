//! `pkgsign apply`: the worker's one command. Verify a release once, over
//! a private copy, refuse a rollback or a reused version, apply the copy
//! (write it out, or hand it to a command), then record it.

use std::path::PathBuf;

use pkgsign::apply::extract::Limits;
use pkgsign::apply::install;
use pkgsign::apply::state::{Standing, StateDir};
use pkgsign::apply::{self, ApplyError, Request};
use pkgsign::audit::{AuditEvent, AuditLog, Event};
use pkgsign::error::Code;
use pkgsign::sign::identity::{Version, VersionScheme};
use pkgsign::verify::VerifyOptions;
use pkgsign::verify::staged::Source;
use serde_json::json;

use pkgsign::config::Config;

use super::common::{GuardArgs, audit, load_trust, now, parse_size, required, required_or_config};
use super::error::CliError;
use super::{print_json, shown};

#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("action").args(["output", "exec", "install_dir"])),
    after_help = "The package is read once (O_NOFOLLOW, or standard input) into a private staging \
file while it is hashed; the signature is checked over exactly those bytes, then the signed name \
(--name), expiry and version are checked against STATE, and only the staged copy is applied. \
STATE keeps, per name, the highest version applied and its digest: an older version is ROLLBACK, \
the same version with other bytes VERSION_REUSED (exit 1); the same release again is a no-op \
(exit 0, \"already applied\"). A state file that does not parse stops the command (exit 2).\n\n\
Exit codes: 0 applied (or already applied), 1 refused, 2 could not run (or the --exec command failed)."
)]
pub struct Args {
    /// The release package, or - for standard input.
    #[arg(long, value_name = "FILE|-")]
    package: PathBuf,
    /// Its signature (default: FILE.sig; required with --package -).
    #[arg(long, value_name = "SIG")]
    signature: Option<PathBuf>,
    /// A trusted public key; repeat for several. Without this and
    /// --trusted-keys: [worker] public_keys and trusted_keys of the --config
    /// file.
    #[arg(long = "public-key", value_name = "PUB")]
    public_keys: Vec<PathBuf>,
    /// Trust every *.pub in DIR (its trust.toml, windows and threshold).
    /// This or --public-key is required, unless the --config file's
    /// [worker] names trusted keys.
    #[arg(long, value_name = "DIR")]
    trusted_keys: Option<PathBuf>,
    /// Number of distinct trusted keys that must have signed.
    #[arg(long, default_value_t = 1, value_name = "N")]
    threshold: usize,
    /// The package name the signature must name (sign-package --name).
    /// Required unless [worker] name is set in the --config file.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// The worker's state directory (created 0700): the highest version
    /// applied per name. Required unless [worker] state_dir is set in the
    /// --config file.
    #[arg(long, value_name = "STATE")]
    state_dir: Option<PathBuf>,
    /// Write the verified bytes to FILE (temp file beside it, fsync, rename).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Run CMD with the verified copy's path as its last argument and
    /// PKGSIGN_VERIFIED_NAME, _VERSION, _DIGEST and _SIGNERS set; the copy
    /// is deleted after CMD exits. The release is recorded only if CMD
    /// exits 0. Give it last: everything after --exec is the command.
    #[arg(long, value_name = "CMD", num_args = 1.., allow_hyphen_values = true)]
    exec: Option<Vec<String>>,
    /// Extract the verified .tar, .tar.gz, .tar.zst or .tar.xz into DIR/releases/VERSION and
    /// switch the symlink DIR/current to it atomically. Paths out of the
    /// release, hard links, devices and FIFOs are refused (ARCHIVE_REFUSED)
    /// and nothing is switched. One of --output, --exec and --install-dir is
    /// required; with none, [worker] install_dir of the --config file.
    #[arg(long, value_name = "DIR")]
    install_dir: Option<PathBuf>,
    /// With --install-dir: how many releases to keep (the live one always).
    #[arg(long, value_name = "N", default_value_t = 3)]
    keep: usize,
    /// With --install-dir: most bytes of file content extracted.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16G")]
    max_extract_size: u64,
    /// With --install-dir: most archive entries.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    max_entries: u64,
    /// Apply this older version although a newer one was applied (an
    /// operator's deliberate downgrade; audited).
    #[arg(long, value_name = "VERSION")]
    allow_downgrade_to: Option<String>,
    /// Refuse a package larger than this: 512M, 8G, or bytes.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "16G")]
    max_size: u64,
    #[command(flatten)]
    guard: GuardArgs,
    /// Print nothing on success (errors still go to stderr).
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print the outcome as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut args: Args, config: Option<&Config>) -> Result<(), CliError> {
    // Flags first, then the configuration file's [worker].
    super::common::require_worker_trust(&mut args.public_keys, &mut args.trusted_keys, config)?;
    let name = required_or_config(
        &args.name,
        config,
        |c| &c.worker.name,
        "--name <NAME>",
        "worker.name",
    )?;
    let state_dir = required_or_config(
        &args.state_dir,
        config,
        |c| &c.worker.state_dir,
        "--state-dir <STATE>",
        "worker.state_dir",
    )?;
    if args.output.is_none() && args.exec.is_none() && args.install_dir.is_none() {
        args.install_dir = Some(required(
            config.and_then(|c| c.worker.install_dir.clone()),
            "<--output <FILE>|--exec <CMD>...|--install-dir <DIR>>",
            "worker.install_dir",
            config,
        )?);
    }
    let args = Resolved {
        args,
        name,
        state_dir,
    };
    let log = args.guard.open()?;
    pkgsign::sign::identity::check_name(&args.name)
        .map_err(|e| CliError::Usage(format!("--name: {e}")))?;
    let stdin = args.package.as_os_str() == "-";
    let signature = match (&args.signature, stdin) {
        (Some(s), _) => s.clone(),
        (None, false) => pkgsign::fsutil::sig_path_for(&args.package),
        (None, true) => {
            return Err(CliError::Usage(
                "--package - needs --signature SIG: standard input has no FILE.sig".into(),
            ));
        }
    };
    let allow_downgrade_to = args
        .allow_downgrade_to
        .as_deref()
        .map(|v| {
            Version::parse(v, VersionScheme::SemVer)
                .or_else(|_| Version::parse(v, VersionScheme::Integer))
        })
        .transpose()
        .map_err(|e| CliError::Usage(format!("--allow-downgrade-to: {e}")))?;
    let trust = load_trust(
        &args.public_keys,
        args.trusted_keys.as_deref(),
        Some(&signature),
    )?;
    // An install directory others could write is refused before anything
    // is read (install checks it again, with the one it creates).
    if let Some(dir) = &args.install_dir
        && dir.exists()
    {
        pkgsign::fsutil::check_private_dir(dir, "the install directory")?;
    }
    let state = StateDir::open(&args.state_dir)?;
    let staging_dir = match &args.output {
        Some(out) => pkgsign::fsutil::parent_dir(out),
        None => {
            let dir = args.state_dir.join("staging");
            use std::os::unix::fs::DirBuilderExt;
            if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir)
                && e.kind() != std::io::ErrorKind::AlreadyExists
            {
                return Err(pkgsign::Error::io(&dir, "creating", e).into());
            }
            dir
        }
    };
    let opts = VerifyOptions {
        threshold: args.threshold,
        ..VerifyOptions::default()
    };
    let req = Request {
        source: if stdin {
            Source::Stdin
        } else {
            Source::Path(&args.package)
        },
        label: &args.package,
        signature: &signature,
        name: &args.name,
        staging_dir: &staging_dir,
        max_size: args.max_size,
        allow_downgrade_to: allow_downgrade_to.as_ref(),
    };
    let ready = match apply::prepare(&state, &req, &trust, &opts) {
        Ok(r) => r,
        Err(e) => {
            refused(log.as_ref(), &args, &e)?;
            return Err(e.into());
        }
    };
    let signers: Vec<String> = ready
        .verified
        .signers()
        .filter_map(|s| s.key.as_ref().map(|k| k.to_string()))
        .collect();
    let signers_block = ready.verified.report().signers_block();
    let release = format!("{} {}", args.name, ready.version);
    if let Standing::AlreadyApplied(a) = &ready.standing {
        if args.json {
            print_json(&json!({
                "ok": true, "verified": true, "applied": false, "already_applied": true,
                "name": args.name, "version": ready.version.to_string(),
                "digest": ready.digest.to_string(),
                "applied_at": pkgsign::text::format_time(a.at),
            }));
        } else if !args.quiet {
            println!("already applied {release} ({})", ready.digest);
        }
        return Ok(());
    }
    let downgrade_from = match &ready.standing {
        Standing::AllowedDowngrade(a) => Some(a.version.to_string()),
        _ => None,
    };
    // Apply the staged copy; only then is the release recorded.
    let digest = ready.digest.clone();
    let version = ready.version.clone();
    let mut installed = None;
    if let Some(out) = &args.output {
        let apply::Ready { staged, .. } = ready;
        staged.persist(out, 0o644)?;
    } else if let Some(cmd) = &args.exec {
        run_exec(cmd, &ready, &args.name, &signers)?;
    } else if let Some(dir) = &args.install_dir {
        let limits = Limits {
            max_bytes: args.max_extract_size,
            max_entries: args.max_entries,
        };
        match install::install(&ready.staged, dir, &version, args.keep, limits) {
            Ok(done) => installed = Some(done),
            Err(e) => {
                let e = ApplyError::archive(&args.package, e);
                refused(log.as_ref(), &args, &e)?;
                return Err(e.into());
            }
        }
    }
    apply::commit(&state, &args.name, &version, &digest, now())?;
    audit(
        log.as_ref(),
        Event::new(AuditEvent::UpdateApplied)
            .with("package", shown(&args.package))
            .with("name", args.name.clone())
            .with("version", version.to_string())
            .with("package_hash", digest.to_string())
            .with("keys", signers.join(","))
            .with("downgrade_from", downgrade_from.clone()),
    )
    .map_err(|e| {
        e.audit_done(format!(
            "{release} was applied and recorded; add its update_applied event to the log by hand"
        ))
    })?;
    if args.json {
        print_json(&json!({
            "ok": true, "verified": true, "applied": true, "name": args.name,
            "version": version.to_string(), "digest": digest.to_string(),
            "signers": signers, "downgrade_from": downgrade_from,
            "output": args.output.as_deref().map(shown),
            "release_dir": installed.as_ref().map(|i| shown(&i.release)),
            "entries": installed.as_ref().map(|i| i.extracted.entries),
            "pruned": installed.as_ref().map(|i| i.pruned.clone()),
        }));
    } else if !args.quiet {
        println!("applied {release} ({digest}), signed by {}", signers_block);
    }
    Ok(())
}

/// The flags, with the required ones the configuration file may fill.
struct Resolved {
    args: Args,
    /// `--name`, else `[worker] name`.
    name: String,
    /// `--state-dir`, else `[worker] state_dir`.
    state_dir: PathBuf,
}

impl std::ops::Deref for Resolved {
    type Target = Args;
    fn deref(&self) -> &Args {
        &self.args
    }
}

/// Run the `--exec` command over the staged copy.
fn run_exec(
    cmd: &[String],
    ready: &apply::Ready,
    name: &str,
    signers: &[String],
) -> Result<(), CliError> {
    let Some((prog, rest)) = cmd.split_first() else {
        return Err(CliError::Usage("--exec needs a command".into()));
    };
    let status = std::process::Command::new(prog)
        .args(rest)
        .arg(ready.staged.path())
        .env("PKGSIGN_VERIFIED_NAME", name)
        .env("PKGSIGN_VERIFIED_VERSION", ready.version.to_string())
        .env("PKGSIGN_VERIFIED_DIGEST", ready.digest.to_string())
        .env("PKGSIGN_VERIFIED_SIGNERS", signers.join(","))
        .status()
        .map_err(|e| pkgsign::Error::io(std::path::Path::new(prog), "running", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--exec {prog} exited with {status}; {name} {} is not recorded as applied",
            ready.version
        )))
    }
}

/// Log a refused update: a signature that does not verify or names a key
/// not trusted is an unauthorized attempt, the rest a refusal.
fn refused(log: Option<&AuditLog>, args: &Resolved, e: &ApplyError) -> Result<(), pkgsign::Error> {
    let event = match e.code() {
        Code::SignatureInvalid | Code::KeyNotTrusted | Code::SignatureMalformed => {
            AuditEvent::UnauthorizedUpdateAttempt
        }
        _ => AuditEvent::UpdateRefused,
    };
    audit(
        log,
        Event::new(event)
            .with("package", shown(&args.package))
            .with("name", args.name.clone())
            .with("code", e.code())
            .with("reason", super::error::apply_message(e)),
    )
    .map_err(|a| {
        a.audit_done(format!(
            "the update {} was refused ({}) and the refusal was not logged",
            shown(&args.package),
            e.code()
        ))
    })
}
