use super::*;
use crate::error::ParseError;
use crate::keys::{KeySpec, LocalKey, generate};
use crate::sign::domain::tests as domain_tests;
use crate::trust::dir::TrustDir;

const T: u64 = 1_800_000_000;
const DAY: u64 = 86_400;

fn key() -> LocalKey {
    LocalKey::new(generate(KeySpec::Ed25519).unwrap(), PathBuf::new())
}

fn fp(k: &LocalKey) -> Fingerprint {
    k.public_key().fingerprint()
}

/// A worker's trusted-keys directory that trusts `first` only.
fn worker(first: &LocalKey) -> (tempfile::TempDir, TrustDir) {
    let d = tempfile::tempdir().unwrap();
    let mut t = TrustDir::open(&d.path().join("trusted")).unwrap();
    t.add(first.public_key(), "first", None, None).unwrap();
    (d, t)
}

fn publish(dir: &Path, sts: &[&Statement]) {
    for st in sts {
        st.publish(dir).unwrap();
    }
}

fn outcome<'a>(r: &'a [Applied], st: &Statement) -> &'a Applied {
    r.iter()
        .find(|a| a.file.file_name().unwrap().to_string_lossy() == st.file_name())
        .unwrap()
}

/// Publish `sts` into a fresh directory and apply them at `now`.
fn apply_at(
    tmp: &tempfile::TempDir,
    t: &mut TrustDir,
    sts: &[&Statement],
    now: u64,
) -> Vec<Applied> {
    let from = tempfile::tempdir_in(tmp.path()).unwrap();
    publish(from.path(), sts);
    update(t, from.path(), now).unwrap()
}

fn endorse(old: &LocalKey, new: &LocalKey, at: u64, seq: u64) -> Statement {
    Statement::endorse(old, new, "k", (at, Some(at + 30 * DAY)), at, seq).unwrap()
}

#[test]
fn a_chain_is_followed_from_the_first_key_in_any_file_order() {
    let (a, b, c, d) = (key(), key(), key(), key());
    // All issued in the same second: the file names sort by the new key's
    // fingerprint, so the loop must retry until nothing changes.
    let ab = endorse(&a, &b, T, 1);
    let bc = endorse(&b, &c, T, 2);
    let cd = endorse(&c, &d, T, 3);
    let (tmp, mut t) = worker(&a);
    let from = tmp.path().join("lineage");
    publish(&from, &[&cd, &ab, &bc]);
    let r = update(&mut t, &from, T + DAY).unwrap();
    assert!(r.iter().all(|x| x.outcome == "applied"), "{r:?}");
    let store = t.store().unwrap();
    let dk = store.get(&fp(&d)).unwrap();
    assert_eq!(dk.state.not_before, Some(T));
    assert_eq!(dk.principal(), &fp(&a), "d belongs to a's lineage");
    assert_eq!(dk.state.sequence, Some(3));
    let ak = store.get(&fp(&a)).unwrap();
    assert_eq!(
        ak.state.not_after,
        Some(T + 30 * DAY),
        "the endorser retires"
    );
    assert_eq!(ak.state.successor, Some(fp(&b)));
    // Idempotent, also once the old keys have expired.
    let r = update(&mut t, &from, T + 100 * DAY).unwrap();
    assert!(r.iter().all(|x| x.outcome == "already"), "{r:?}");
}

#[test]
fn lineage_expired_signer_cannot_endorse_even_backdated() {
    let (w, x) = (key(), key());
    let d = tempfile::tempdir().unwrap();
    let mut t = TrustDir::open(&d.path().join("trusted")).unwrap();
    // W's window ended long ago; the statement claims a time inside it.
    t.add(
        w.public_key(),
        "w",
        Some(T - 400 * DAY),
        Some(T - 300 * DAY),
    )
    .unwrap();
    let backdated = endorse(&w, &x, T - 350 * DAY, 1);
    let r = apply_at(&d, &mut t, &[&backdated], T);
    assert_eq!(r[0].outcome, "refused", "{r:?}");
    assert!(r[0].detail.contains("expired here"), "{r:?}");
    assert!(t.store().unwrap().get(&fp(&x)).is_none());
    // A backdated revocation of the worker's current key: the same.
    let cur = key();
    t.add(cur.public_key(), "cur", None, None).unwrap();
    let rv = Statement::revoke(&w, &fp(&cur), T - 350 * DAY, "x", T - 350 * DAY, 1).unwrap();
    let r = apply_at(&d, &mut t, &[&rv], T);
    assert_eq!(r[0].outcome, "refused", "{r:?}");
    assert!(t.meta().get(&fp(&cur)).unwrap().revoked.is_none());
    // A key whose window has not begun cannot speak either.
    let (later, y) = (key(), key());
    t.add(later.public_key(), "later", Some(T + DAY), None)
        .unwrap();
    let r = apply_at(&d, &mut t, &[&endorse(&later, &y, T, 1)], T);
    assert!(r[0].detail.contains("not valid here before"), "{r:?}");
}

#[test]
fn lineage_retired_key_has_no_more_say() {
    let (a, b, x, other) = (key(), key(), key(), key());
    let (tmp, mut t) = worker(&a);
    t.add(other.public_key(), "other", None, None).unwrap();
    let r = apply_at(&tmp, &mut t, &[&endorse(&a, &b, T, 1)], T + 1);
    assert_eq!(r[0].outcome, "applied", "{r:?}");
    // A is inside its grace window, but no longer the head of its lineage.
    let fork = endorse(&a, &x, T + 2, 2);
    let rv = Statement::revoke(&a, &fp(&b), T + 2, "coup", T + 2, 2).unwrap();
    let r = apply_at(&tmp, &mut t, &[&fork, &rv], T + 3);
    for st in [&fork, &rv] {
        let o = outcome(&r, st);
        assert_eq!(o.outcome, "refused", "{r:?}");
        assert!(o.detail.contains("no more say"), "{r:?}");
    }
    assert!(t.store().unwrap().get(&fp(&x)).is_none());
    assert!(t.meta().get(&fp(&b)).unwrap().revoked.is_none());
    // It may still revoke itself.
    let me = Statement::revoke(&a, &fp(&a), T + 4, "done", T + 4, 2).unwrap();
    let r = apply_at(&tmp, &mut t, &[&me], T + 5);
    assert_eq!(r[0].outcome, "applied", "{r:?}");
    assert!(t.meta().get(&fp(&a)).unwrap().revoked.is_some());
}

#[test]
fn lineage_statement_must_extend_the_chain() {
    let (a, b, c) = (key(), key(), key());
    let (tmp, mut t) = worker(&a);
    t.add(c.public_key(), "c", None, None).unwrap();
    // A hand-added key starts its chain at its first statement.
    let r = apply_at(&tmp, &mut t, &[&endorse(&a, &b, T, 5)], T + 1);
    assert_eq!(r[0].outcome, "applied", "{r:?}");
    // B's next statement is 6: 8 leaves a gap, 5 replays a number.
    let gap = Statement::revoke(&b, &fp(&c), T + 2, "x", T + 2, 8).unwrap();
    let replay = Statement::revoke(&b, &fp(&c), T + 2, "x", T + 2, 5).unwrap();
    for (st, words) in [(&gap, "the next is 6"), (&replay, "applied already")] {
        let r = apply_at(&tmp, &mut t, &[st], T + 3);
        assert_eq!(r[0].outcome, "refused", "{r:?}");
        assert!(r[0].detail.contains(words), "{r:?}");
    }
    assert!(t.meta().get(&fp(&c)).unwrap().revoked.is_none());
    let next = Statement::revoke(&b, &fp(&c), T + 2, "x", T + 2, 6).unwrap();
    let r = apply_at(&tmp, &mut t, &[&next], T + 3);
    assert_eq!(r[0].outcome, "applied", "{r:?}");
    assert_eq!(t.meta().get(&fp(&b)).unwrap().sequence, Some(6));
}

#[test]
fn lineage_threshold_needs_distinct_principals() {
    let (alice, bob, thief, a2) = (key(), key(), key(), key());
    let (tmp, mut t) = worker(&alice);
    t.add(bob.public_key(), "bob", None, None).unwrap();
    t.set_threshold(2).unwrap();
    // Alice alone (stolen) cannot add a key.
    let r = apply_at(&tmp, &mut t, &[&endorse(&alice, &thief, T, 1)], T + 1);
    assert_eq!(r[0].outcome, "refused", "{r:?}");
    assert!(r[0].detail.contains("2 independent principals"), "{r:?}");
    assert!(t.store().unwrap().get(&fp(&thief)).is_none());
    // Cosigned by the subject itself or twice by alice's lineage: still one.
    let mut st = endorse(&alice, &a2, T, 1);
    assert!(st.cosign(&alice).is_err());
    assert!(st.cosign(&a2).is_err());
    // Cosigned by bob, the head of another lineage: applied.
    st.cosign(&bob).unwrap();
    let r = apply_at(&tmp, &mut t, &[&st], T + 1);
    assert_eq!(r[0].outcome, "applied", "{r:?}");
    let store = t.store().unwrap();
    assert_eq!(store.get(&fp(&a2)).unwrap().principal(), &fp(&alice));
    // A forged cosignature does not count.
    let (a3, b2) = (key(), key());
    let mut st = endorse(&a2, &a3, T + 2, 2);
    st.cosign(&bob).unwrap();
    st.cosignatures[0].1[0] ^= 1;
    let r = apply_at(&tmp, &mut t, &[&st], T + 3);
    assert!(r[0].detail.contains("does not verify"), "{r:?}");
    // Bob revoking a key of alice's lineage needs two principals; alice's
    // head revoking a retired key of her own lineage needs only her.
    let rv = Statement::revoke(&bob, &fp(&alice), T + 4, "x", T + 4, 1).unwrap();
    let own = Statement::revoke(&a2, &fp(&alice), T + 4, "leaked", T + 4, 2).unwrap();
    let r = apply_at(&tmp, &mut t, &[&rv], T + 5);
    assert_eq!(r[0].outcome, "refused", "{r:?}");
    let r = apply_at(&tmp, &mut t, &[&own], T + 5);
    assert_eq!(r[0].outcome, "applied", "{r:?}");
    let _ = b2;
}

#[test]
fn lineage_key_joins_one_lineage_once() {
    let (alice, bob) = (key(), key());
    let (tmp, mut t) = worker(&alice);
    t.add(bob.public_key(), "bob", None, None).unwrap();
    // Alice "endorses" bob's key, which would fold two principals into one.
    let st = Statement::endorse(&alice, &bob, "k", (T, None), T, 1).unwrap();
    let r = apply_at(&tmp, &mut t, &[&st], T + 1);
    assert_eq!(r[0].outcome, "refused", "{r:?}");
    assert!(r[0].detail.contains("one lineage"), "{r:?}");
    assert_eq!(t.principal_of(&fp(&bob)), fp(&bob));
}

#[test]
fn forged_statements_are_refused() {
    let (a, b, x, y) = (key(), key(), key(), key());
    let (tmp, mut t) = worker(&a);
    // An untrusted key endorsing its successor.
    let xy = endorse(&x, &y, T, 1);
    // X's signature presented as A's.
    let mut xa = endorse(&x, &b, T + 1, 1);
    xa.signer = fp(&a);
    // A's endorsement of B with a countersignature by another key.
    let mut bad_counter = endorse(&a, &b, T + 2, 1);
    bad_counter.countersignature = endorse(&a, &y, T + 2, 1).countersignature;
    let r = apply_at(&tmp, &mut t, &[&xy, &xa, &bad_counter], T + DAY);
    assert!(r.iter().all(|x| x.outcome == "refused"), "{r:?}");
    assert!(outcome(&r, &xy).detail.contains("not a trusted key"));
    assert!(outcome(&r, &xa).detail.contains("does not verify"));
    assert!(
        outcome(&r, &bad_counter)
            .detail
            .contains("countersignature")
    );
    let store = t.store().unwrap();
    for k in [&b, &x, &y] {
        assert!(store.get(&fp(k)).is_none());
    }
    assert!(store.get(&fp(&a)).unwrap().state.not_after.is_none());
}

#[test]
fn revocations_apply_and_win_over_endorsements() {
    let (a, b, c) = (key(), key(), key());
    let (tmp, mut t) = worker(&a);
    let (afp, bfp) = (fp(&a), fp(&b));
    // A revokes B before endorsing anyone; a later endorsement of B is ignored.
    let rb = Statement::revoke(&a, &bfp, T + 10, "leaked", T + 10, 1).unwrap();
    apply_at(&tmp, &mut t, &[&rb], T + DAY);
    assert_eq!(
        t.meta().get(&bfp).unwrap().revoked,
        Some((T + 10, "leaked".into()))
    );
    let ab = endorse(&a, &b, T + 20, 2);
    let r = apply_at(&tmp, &mut t, &[&ab], T + DAY);
    assert_eq!(r[0].outcome, "already", "{r:?}");
    assert!(t.store().unwrap().get(&bfp).is_none());
    // A revoked key's endorsements are refused; its revocation of itself
    // changes nothing more.
    t.revoke(&afp, T + 30, "gone").unwrap();
    let ac = endorse(&a, &c, T + 40, 2);
    let ra = Statement::revoke(&a, &afp, T + 40, "self", T + 40, 2).unwrap();
    let r = apply_at(&tmp, &mut t, &[&ac, &ra], T + DAY);
    assert_eq!(outcome(&r, &ac).outcome, "refused", "{r:?}");
    assert!(outcome(&r, &ac).detail.contains("revoked"), "{r:?}");
    assert_eq!(outcome(&r, &ra).outcome, "already", "{r:?}");
}

#[test]
fn statements_about_one_key_in_one_second_keep_their_own_files() {
    let (a, b) = (key(), key());
    let first = Statement::revoke(&a, &fp(&b), T, "one", T, 1).unwrap();
    let second = Statement::revoke(&a, &fp(&b), T, "two", T, 2).unwrap();
    assert_ne!(first.file_name(), second.file_name());
}

#[test]
fn too_many_statements_are_refused_before_reading_them() {
    let (tmp, mut t) = worker(&key());
    let from = tmp.path().join("many");
    std::fs::create_dir(&from).unwrap();
    for i in 0..=MAX_STATEMENTS {
        std::fs::write(from.join(format!("{i}.stmt")), b"").unwrap();
    }
    assert!(matches!(
        update(&mut t, &from, T),
        Err(Error::Parse(ParseError::TooManyStatements { .. }))
    ));
}

#[test]
fn version_1_statements_are_refused_with_what_to_do() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("old.stmt");
    std::fs::write(&p, format!("{HEADER_V1}\nkind: endorse\n")).unwrap();
    let e = Statement::read(&p).unwrap_err();
    // The statement's outcome reaches `trust update`'s list as this text,
    // so it says what to do itself.
    assert!(
        matches!(e, Error::Parse(ParseError::StatementOutdated { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("pkgsign key-rotate"), "{e}");
}

#[test]
fn only_the_canonical_form_parses() {
    let (a, b, c, e) = (key(), key(), key(), key());
    let mut st = endorse(&a, &b, T, 7);
    st.cosign(&c).unwrap();
    st.cosign(&e).unwrap();
    let text = st.to_text();
    assert_eq!(parse(text.as_bytes()).unwrap(), st);
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("s.stmt");
    st.publish(d.path()).unwrap();
    assert_eq!(Statement::read(&d.path().join(st.file_name())).unwrap(), st);
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();
    let bad = [
        format!("{text}\n"),
        text.replace('\n', "\r\n"),
        text.trim_end().to_string(),
        text.replace("kind: endorse", "kind: endorse "),
        text.replace("pkgsign-key-statement v2", "pkgsign-key-statement v3"),
        text.replace("subject-name: k\n", "subject-name: k\nextra: 1\n"),
        text.replace("signature: ", "signature:  "),
        text.replace("sequence: 7", "sequence: 07"),
        text.replace("sequence: 7", "sequence: 0"),
        text.replace("sequence: 7", "sequence: -7"),
        // Fields swapped, cosignatures out of order or repeated.
        {
            let mut l = lines.clone();
            l.swap(5, 6);
            l.join("\n") + "\n"
        },
        {
            let mut l = lines.clone();
            l.swap(n - 1, n - 2);
            l.join("\n") + "\n"
        },
        {
            let mut l = lines.clone();
            l[n - 1] = l[n - 2];
            l.join("\n") + "\n"
        },
    ];
    for b in bad {
        std::fs::write(&p, &b).unwrap();
        assert!(
            matches!(
                Statement::read(&p),
                Err(Error::Parse(ParseError::SignatureMalformed { .. }))
            ),
            "{b:?}"
        );
    }
    // Changing one byte of a signed field keeps it parseable but breaks
    // the signature and the cosignatures.
    let tampered = parse(
        text.replace("subject-name: k", "subject-name: j")
            .as_bytes(),
    )
    .unwrap();
    assert!(tampered.verify_with(a.public_key()).is_err());
    assert!(!tampered.cosignature_verifies(c.public_key()));
    st.verify_with(a.public_key()).unwrap();
    assert!(st.cosignature_verifies(c.public_key()));
}

#[test]
fn update_decision_json_keeps_the_trust_update_spelling() {
    for (d, s) in [
        (Decision::Applied, "applied"),
        (Decision::Already, "already"),
        (Decision::Refused, "refused"),
    ] {
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{s}\""));
        assert_eq!(d.to_string(), s);
    }
}

/// Every signature of a key statement goes through the one `Signer`: a
/// key source that returns a wrong signature is refused (issue 9).
#[test]
fn key_statements_refuse_a_faulty_key_source_for_every_signature() {
    for spec in [KeySpec::Ed25519, KeySpec::Rsa { bits: 2048 }] {
        for fault in domain_tests::FAULTS {
            let bad = domain_tests::faulty(spec, fault);
            let good = domain_tests::key(spec);
            let crypto = |r: crate::Result<Statement>| match r {
                Err(Error::Crypto { .. }) => {}
                other => panic!("{spec:?} {fault:?}: {other:?}"),
            };
            // The old key's signature, and the new key's countersignature.
            crypto(Statement::endorse(&bad, &good, "next", (1, None), 1, 1));
            crypto(Statement::endorse(&good, &bad, "next", (1, None), 1, 1));
            let subject = good.public_key().fingerprint();
            crypto(Statement::revoke(&bad, &subject, 1, "lost", 1, 1));
            let mut st = Statement::revoke(&good, &subject, 1, "lost", 1, 1).unwrap();
            match st.cosign(&bad) {
                Err(Error::Crypto { .. }) => assert!(st.cosignatures.is_empty()),
                other => panic!("{spec:?} {fault:?}: {other:?}"),
            }
        }
    }
}
