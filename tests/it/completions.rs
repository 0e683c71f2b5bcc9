//! `pkgsign completions SHELL` and the manual pages in `man/`: both are
//! written from the clap definitions, so these tests check what a user
//! gets (bash loads the script and completes with it, `man -l` renders
//! every page) and that the committed pages are the generator's output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::{Env, bin, ps, run, tool, tool_cmd};

/// The shells `completions` knows.
const SHELLS: [&str; 5] = ["bash", "zsh", "fish", "elvish", "powershell"];

/// The committed pages.
fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("man")
}

/// The subcommands `pkgsign [PARENT] --help` lists under "Commands:",
/// `help` left out (the binary's own list, not a copy kept in the tests).
fn subcommands(parent: &[&str]) -> Vec<String> {
    let mut a: Vec<&str> = parent.to_vec();
    a.push("--help");
    let help = run(ps(a)).ok().out();
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect();
    assert!(!names.is_empty(), "no commands in `--help`: {help}");
    names
}

/// Every command path: `[]` (pkgsign itself), `["trust"]`,
/// `["trust", "add"]`, ... (two levels, as deep as pkgsign goes).
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = vec![vec![]];
    for top in subcommands(&[]) {
        let help = run(ps([top.as_str(), "--help"])).ok().out();
        if help.lines().any(|l| l.starts_with("Commands:")) {
            for sub in subcommands(&[top.as_str()]) {
                paths.push(vec![top.clone(), sub]);
            }
        }
        paths.push(vec![top]);
    }
    paths
}

/// `bash --norc -c SCRIPT` with `$0` = the pkgsign binary.
fn bash(script: &str) -> crate::common::Run {
    let cwd = std::env::temp_dir();
    let mut a = vec!["--norc".into(), "--noprofile".into(), "-c".into()];
    a.push(script.to_owned());
    a.push(bin().display().to_string());
    tool(&cwd, "bash", a)
}

#[test]
fn bash_completion_script_loads_and_registers_pkgsign() {
    let r = bash(r#"source <("$0" completions bash) && complete -p pkgsign"#);
    assert_eq!(r.code, 0, "{r:#?}");
    let line = r.out();
    assert!(
        line.starts_with("complete ") && line.trim_end().ends_with(" pkgsign"),
        "`complete -p pkgsign` prints the registration: {r:#?}"
    );
    assert!(r.stderr.is_empty(), "sourcing the script warns: {r:#?}");
}

/// The function the script registers completes subcommands and their
/// flags: what a user gets on TAB, not just a script that loads.
#[test]
fn bash_completion_completes_subcommands_and_their_flags() {
    let complete = |words: &str| {
        let script = format!(
            r#"source <("$0" completions bash) || exit 9
f=$(complete -p pkgsign | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}
"$f" pkgsign "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
        );
        let r = bash(&script);
        assert_eq!(r.code, 0, "{r:#?}");
        r.out().lines().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(complete("pkgsign verify-p"), ["verify-package"]);
    assert_eq!(complete("pkgsign trust cos"), ["cosign"]);
    let flags = complete("pkgsign verify-package --pub");
    assert_eq!(flags, ["--public-key"], "flags of verify-package");
}

#[test]
fn every_shell_script_names_every_subcommand() {
    let paths = command_paths();
    for shell in SHELLS {
        let r = run(ps(["completions", shell])).ok();
        let script = r.out();
        assert!(
            script.len() > 200,
            "{shell}: the script is (nearly) empty: {r:#?}"
        );
        assert!(r.stderr.is_empty(), "{shell}: {r:#?}");
        for path in &paths {
            if let Some(name) = path.last() {
                assert!(
                    script.contains(name.as_str()),
                    "the {shell} script does not name `{}`",
                    path.join(" ")
                );
            }
        }
        // The flags come from the same definitions.
        assert!(script.contains("public-key"), "{shell}: no --public-key");
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    for shell in ["tcsh", "", "BASH ", "bash;rm"] {
        let r = run(ps(["completions", shell])).fails(2);
        assert!(
            r.stderr.contains("possible values"),
            "the error names the shells: {r:#?}"
        );
        assert!(r.stdout.is_empty(), "no script on a usage error: {r:#?}");
    }
    run(ps(["completions"])).fails(2);
    // The contract's JSON form of a usage error.
    let r = run(ps(["completions", "tcsh", "--json"])).code(2);
    assert_eq!(r.json()["code"], "USAGE", "{r:#?}");
}

/// A shell's start-up files run `source <(pkgsign completions bash)`: a
/// broken configuration file must not make every new shell print an
/// error. Completions and man pages use no configuration, so a broken one
/// (which stops every command that does) must not stop them.
#[test]
fn completions_and_man_ignore_a_broken_config() {
    let env = Env::new();
    let cfg = env.write("broken.toml", "[signing\nnot toml");
    let mut c = env.cmd();
    c.args(["completions", "bash", "--config"]).arg(&cfg);
    let r = run(c).ok();
    assert!(r.out().contains("pkgsign"), "{r:#?}");
    let mut c = env.cmd();
    c.env("PKGSIGN_CONFIG", &cfg).args(["completions", "zsh"]);
    run(c).ok();
    let mut c = env.cmd();
    c.env("PKGSIGN_CONFIG", &cfg)
        .args(["man", "--output-dir"])
        .arg(env.path("pages"));
    run(c).ok();
    assert!(env.path("pages/pkgsign.1").is_file());
}

/// The committed pages (sorted file names).
fn committed_pages() -> BTreeSet<String> {
    std::fs::read_dir(man_dir())
        .expect("man/ is committed (run `pkgsign man --output-dir man`)")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn there_is_a_man_page_for_every_command_and_nested_command() {
    let pages = committed_pages();
    for path in command_paths() {
        let mut name = vec!["pkgsign".to_owned()];
        name.extend(path.iter().cloned());
        let page = format!("{}.1", name.join("-"));
        assert!(pages.contains(&page), "man/{page} is missing: {pages:?}");
    }
    assert!(!pages.contains("pkgsign-help.1"), "`help` is no command");
    assert!(!pages.contains("pkgsign-man.1"), "`man` is hidden");
}

#[test]
fn every_committed_man_page_renders_with_man_l() {
    let pages = committed_pages();
    assert!(pages.len() > 10, "too few pages: {pages:?}");
    for page in pages {
        let path = man_dir().join(&page);
        let mut c = tool_cmd(&man_dir(), "man", ["-l".as_ref(), path.as_os_str()]);
        c.env("MANWIDTH", "80")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat");
        c.env_remove("MANOPT").env_remove("MANROFFOPT");
        let r = crate::common::capture(c, None, crate::common::DEFAULT_TIMEOUT);
        assert_eq!(r.code, 0, "`man -l man/{page}` failed: {r:#?}");
        assert!(r.stderr.is_empty(), "`man -l man/{page}` warns: {r:#?}");
        let text = r.out();
        let command = page.trim_end_matches(".1");
        assert!(
            text.lines().next().is_some_and(|l| l.contains(command)),
            "man/{page}: the header does not name `{command}`:\n{text}"
        );
        for section in ["NAME", "SYNOPSIS", "OPTIONS"] {
            assert!(
                text.lines().any(|l| l == section),
                "man/{page}: no {section} section:\n{text}"
            );
        }
        assert!(
            text.lines().all(|l| l.chars().count() <= 80),
            "man/{page}: a line wider than MANWIDTH=80:\n{text}"
        );
    }
}

/// The committed pages are exactly what the binary generates now: a flag
/// added, renamed or re-documented without refreshing man/ fails here.
#[test]
fn committed_man_pages_are_not_stale() {
    let env = Env::new();
    let out = env.path("man");
    let mut c = env.cmd();
    c.args(["man", "--output-dir"]).arg(&out);
    let r = run(c).ok();
    assert_eq!(
        r.out().lines().count(),
        std::fs::read_dir(&out).unwrap().count(),
        "one line per page written: {r:#?}"
    );
    let fresh: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let committed = committed_pages();
    const REFRESH: &str = "run `pkgsign man --output-dir man` to refresh";
    let missing: Vec<_> = fresh.difference(&committed).collect();
    assert!(missing.is_empty(), "man/ lacks {missing:?}: {REFRESH}");
    let extra: Vec<_> = committed.difference(&fresh).collect();
    assert!(
        extra.is_empty(),
        "man/ has pages of no command, {extra:?}: remove them and {REFRESH}"
    );
    for page in &fresh {
        let want = std::fs::read(out.join(page)).unwrap();
        let have = std::fs::read(man_dir().join(page)).unwrap();
        assert!(want == have, "man/{page} is stale: {REFRESH}");
    }
}
