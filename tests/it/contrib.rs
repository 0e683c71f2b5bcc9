//! What `contrib/` ships works as shipped: the worker's fetch-and-apply
//! script against a real `pkgsign serve`, and the systemd units, which
//! `systemd-analyze verify` accepts.

use std::path::{Path, PathBuf};

use crate::common::serve::{Setup, UPLOAD_TOKEN, VERIFY_TOKEN};
use crate::common::{self, args};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Run contrib/pkgsign-fetch-apply as pkgsign-apply.service does, with
/// `trusted` as the worker's trusted keys.
fn fetch_apply(s: &common::serve::Server, trusted: &Path, install: &Path) -> common::Run {
    let env = &s.setup.env;
    let token = env.write("worker-token", VERIFY_TOKEN);
    common::chmod(&token, 0o600);
    let config = env.write(
        "worker.toml",
        format!("[worker]\ntrusted_keys = {:?}\n", trusted.to_str().unwrap()),
    );
    let bin_dir = common::bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = common::tool_cmd(
        env.dir.path(),
        "bash",
        args([repo("contrib/pkgsign-fetch-apply")]),
    );
    cmd.env("PATH", path)
        .env("NAME", "app")
        .env("COORDINATOR", &s.url)
        .env("INSTALL_DIR", install)
        .env("TOKEN_FILE", &token)
        .env("CONFIG", &config)
        .env("STATE_DIR", env.path("worker-state"));
    common::run(cmd)
}

#[test]
fn the_worker_script_applies_the_newest_release_the_coordinator_accepted_and_nothing_else() {
    let s = Setup::new().start();
    let install = s.setup.env.path("install");
    // A tar release, as the worker extracts it.
    let tree = s.setup.env.path("tree");
    std::fs::create_dir(&tree).unwrap();
    for version in ["1.0.0", "1.1.0"] {
        std::fs::write(tree.join("VERSION"), version).unwrap();
        let tar = s.setup.env.path(format!("app-{version}.tar"));
        common::tool_ok(
            s.setup.env.dir.path(),
            "tar",
            args([
                "-cf".as_ref(),
                tar.as_os_str(),
                "-C".as_ref(),
                tree.as_os_str(),
                "VERSION".as_ref(),
            ]),
        );
        let (pkg, sig) = s
            .setup
            .release("app", version, &std::fs::read(&tar).unwrap());
        s.upload(Some(UPLOAD_TOKEN), &pkg, &sig).status(201);
    }
    let run = fetch_apply(&s, &s.setup.trusted(), &install).ok();
    assert!(run.out().contains("applied app 1.1.0"), "{run:?}");
    assert_eq!(
        std::fs::read_to_string(install.join("current/VERSION")).unwrap(),
        "1.1.0"
    );
    // Again: nothing new, exit 0.
    let run = fetch_apply(&s, &s.setup.trusted(), &install).ok();
    assert!(run.out().contains("already applied"), "{run:?}");
    // A worker that does not trust the coordinator's signer applies
    // nothing: it verifies what it fetched itself.
    let other = s.setup.env.path("other-trusted");
    std::fs::create_dir(&other).unwrap();
    let stranger = s.setup.env.keygen("stranger", common::Alg::Ed25519);
    s.setup
        .env
        .run(args([
            "trust".as_ref(),
            "add".as_ref(),
            other.as_os_str(),
            stranger.public.as_os_str(),
        ]))
        .ok();
    let fresh = s.setup.env.path("install-2");
    let run = fetch_apply(&s, &other, &fresh);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(!fresh.join("current").exists(), "{run:?}");
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    // systemd-analyze checks that ExecStart= exists and is executable:
    // point it at this build instead of /usr/local/bin.
    let dir = tempfile::tempdir().unwrap();
    let script = repo("contrib/pkgsign-fetch-apply");
    for entry in std::fs::read_dir(repo("contrib")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !(name.ends_with(".service") || name.ends_with(".timer")) {
            continue;
        }
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("/usr/local/bin/pkgsign", common::bin().to_str().unwrap())
            .replace(
                "/usr/local/lib/pkgsign/fetch-apply",
                script.to_str().unwrap(),
            );
        std::fs::write(dir.path().join(&name), text).unwrap();
    }
    let mut units: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    units.sort();
    assert_eq!(units.len(), 5, "{units:?}");
    for unit in units {
        let run = common::tool(
            dir.path(),
            "systemd-analyze",
            args(["verify".as_ref(), unit.as_os_str()]),
        );
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.trim().is_empty(),
            "{}: {}",
            unit.display(),
            run.stderr
        );
    }
}

/// The example configuration runs as it is: `pkgsign serve --config
/// keys-example/pkgsign.toml --listen 127.0.0.1:0` (from a copy of the
/// repository's keys-example/, so that the test writes nothing into the
/// source tree) serves the example trusted keys, and the public test
/// tokens of test-tokens.env get in with their roles.
#[test]
fn the_example_configuration_serves_the_example_keys_with_the_test_tokens() {
    let setup = Setup::new();
    let copy = setup.env.path("keys-example");
    common::rotation::copy_dir(&repo("keys-example"), &copy);
    let _ = std::fs::remove_dir_all(copy.join("release-store"));
    let s = common::serve::Server::spawn(
        setup,
        args([
            "serve",
            "--config",
            "keys-example/pkgsign.toml",
            "--listen",
            "127.0.0.1:0",
        ]),
    );
    let tokens = std::fs::read_to_string(copy.join("test-tokens.env")).unwrap();
    let token = |role: &str| {
        tokens
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{role}=")))
            .unwrap_or_else(|| panic!("no {role}= line in test-tokens.env"))
            .trim()
            .to_string()
    };
    let pkg = copy.join("example-package.tar.gz");
    let r = s.verify_paths(Some(&token("verify")), &pkg, None);
    r.status(200);
    assert_eq!(r.json()["verified"], true);
    // The example's v2 signature names the package and its version: the
    // upload token stores it, the verify token cannot.
    let v2 = copy.join("example-package.tar.gz.v2.sig");
    s.upload(Some(&token("verify")), &pkg, &v2)
        .refused(403, "FORBIDDEN");
    s.upload(Some(&token("upload")), &pkg, &v2).status(201);
    s.get(
        "/api/v1/update/example-package/latest",
        Some(&token("admin")),
    )
    .status(200);
}
