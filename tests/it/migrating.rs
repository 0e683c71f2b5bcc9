//! `docs/migrating.md` maps seed 004's runbook commands to pkgsign's: every
//! runbook command is on the page, and every pkgsign command of its
//! step-by-step section runs, as written, in order, in a fresh directory.

use crate::common;

use std::path::Path;

use common::*;

fn page() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/migrating.md"))
        .unwrap()
}

/// Split a command line as sh does for the page's simple quoting (words,
/// and double-quoted words with no escapes).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {line:?}");
    if any {
        out.push(cur);
    }
    out
}

/// The `pkgsign ...` lines of the page's `sh` blocks, in order.
fn commands(page: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in page.lines() {
        match line.trim_end() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            l if in_sh => {
                let w = words(l);
                assert_eq!(w.first().map(String::as_str), Some("pkgsign"), "{l:?}");
                out.push(w.into_iter().skip(1).collect());
            }
            _ => {}
        }
    }
    out
}

/// A runbook command missing from the page leaves its users guessing; one
/// whose pkgsign command fails as written misleads them.
#[test]
fn every_runbook_command_is_mapped_and_every_mapped_command_runs() {
    let page = page();
    for runbook in [
        "translator keygen --dir /etc/translator/keys --size 2048",
        "translator deploy-public-key --key",
        "translator switch-key --private-key",
        "translator keygen --emergency --dir",
        "translator key-rotate --grace-period 30d",
        "translator sign-package --package",
        "translator verify-package --package",
    ] {
        assert!(
            page.contains(runbook),
            "docs/migrating.md lacks `{runbook}`"
        );
    }
    let cmds = commands(&page);
    assert!(cmds.len() >= 14, "{cmds:?}");
    let env = Env::new();
    env.package("update.tar.gz");
    for argv in &cmds {
        let run = env.run(argv);
        assert_eq!(
            run.code,
            0,
            "docs/migrating.md: `pkgsign {}` failed: {run:#?}",
            argv.join(" ")
        );
    }
    // The page's keygen made the runbook's RSA-2048 key.
    let key = std::fs::read(env.path("keys/translator-signing-key.pub")).unwrap();
    let text = tool_ok(
        env.dir.path(),
        "openssl",
        [
            "pkey",
            "-pubin",
            "-noout",
            "-text",
            "-in",
            "keys/translator-signing-key.pub",
        ],
    );
    assert!(!key.is_empty());
    assert!(
        String::from_utf8_lossy(&text).contains("2048 bit"),
        "{}",
        String::from_utf8_lossy(&text)
    );
}
