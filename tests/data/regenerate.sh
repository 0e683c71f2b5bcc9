#!/bin/sh
# Regenerate the signature fixtures of tests/bad_input.rs from the committed
# test key (fixture-ed25519.pem, a key used for nothing but these tests):
#
#     cargo build --release && sh tests/data/regenerate.sh
#
# Needs faketime (for a fixed signed-at) and perl. Ed25519 signatures are
# deterministic, so a run reproduces the committed files byte for byte.
# Each sig-*/raw-* file is sig-valid (or raw-valid) with one defect, named
# after it; tests/bad_input.rs lists the outcome each must get.
set -eu
cd "$(dirname "$0")"
PKGSIGN=${PKGSIGN:-../../target/release/pkgsign}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -f fixture-ed25519.pem ]; then
    "$PKGSIGN" keygen --output-dir "$tmp" --name fixture >/dev/null
    cp "$tmp/fixture.pem" fixture-ed25519.pem
    cp "$tmp/fixture.pub" fixture-ed25519.pub
fi
# git does not keep the 0600 pkgsign requires of a private key.
cp fixture-ed25519.pem "$tmp/key.pem"
chmod 600 "$tmp/key.pem"

sign() {
    TZ=UTC faketime '2026-01-01 00:00:00' \
        "$PKGSIGN" sign-package --private-key "$tmp/key.pem" "$@" >/dev/null
}
printf 'test package for pkgsign\nversion 1.0\n' >package.txt
printf 'test package for pkgsign\nversion 1.1\n' >other-package.txt
sign --package package.txt --output sig-valid --comment "release 1.0"
sign --package other-package.txt --output sig-other-package --comment "release 1.0"
sign --package package.txt --output raw-valid --format raw

# Changes one line of sig-valid with a perl expression; fails if nothing changed.
derive() {
    out=$1
    shift
    perl "$@" sig-valid >"$out"
    if cmp -s sig-valid "$out"; then
        echo "regenerate.sh: $out is identical to sig-valid" >&2
        exit 1
    fi
}

# Malformed files: exit 1, SIGNATURE_MALFORMED (or VERSION_UNSUPPORTED).
: >sig-empty
size=$(wc -c <sig-valid)
head -c $((size - 20)) sig-valid >sig-truncated
derive sig-truncated-block -ne 'print unless /^signature: /'
derive sig-no-final-newline -0777 -pe 's/\n\z//'
derive sig-garbled -pe 'tr/A-Za-z/N-ZA-Mn-za-m/'
printf '\377\376\000\001garbage\n' >sig-binary
# Version 2 is read, but a v2 header over v1 blocks (no release identity)
# is not canonical; version 3 is unknown.
derive sig-version-2 -pe 's/^pkgsign-signature v1$/pkgsign-signature v2/'
derive sig-version-3 -pe 's/^pkgsign-signature v1$/pkgsign-signature v3/'
derive sig-bad-header -pe 's/^pkgsign-signature v1$/pkgsign-signature version 1/'
derive sig-duplicate-field -pe 'print if /^key: /'
derive sig-duplicate-comment -pe 'print if /^comment: /'
derive sig-unknown-field -pe 'print "note: hello\n" if /^signed-at: /'
derive sig-field-order -0777 -pe 's/^(key: [^\n]*\n)(digest: [^\n]*\n)/$2$1/m'
derive sig-noncanonical-base64 -pe 's/^(signature: .*)([AQgw])==$/$1.chr(ord($2)+1)."=="/e'
derive sig-base64-wrapped -pe 's/^(signature: .{40})/$1\n/'
derive sig-signature-wrong-length -pe 's/^(signature: .{84}).*$/$1/'
derive sig-unknown-algorithm -pe 's/^algorithm: ed25519$/algorithm: ed448/'
derive sig-algorithm-mismatch -pe 's/^algorithm: ed25519$/algorithm: rsa-pss-sha256/'
derive sig-md5-digest -pe 's/^digest: sha256:([0-9a-f]{32}).*$/digest: md5:$1/'
derive sig-uppercase-digest -pe 's/^(digest: sha256:)(.*)$/$1\U$2/'
derive sig-size-leading-zero -pe 's/^size: /size: 0/'
derive sig-bad-time -pe 's/^signed-at: (.*)Z$/signed-at: $1.000Z/'
derive sig-empty-comment -pe 's/^comment: .*$/comment: /'
derive sig-comment-control-char -pe 's/^comment: release/comment: \x1b[2Jrelease/'
derive sig-crlf -pe 's/\n/\r\n/'
derive sig-trailing-data -pe '$_ .= "trailing garbage\n" if eof'
derive sig-trailing-blank-line -pe '$_ .= "\n" if eof'
derive sig-too-many-blocks -0777 -pe 's/^([^\n]*\n)(.*)\z/$1 . ($2 x 33)/se'

# Well-formed but refused: exit 1, SIGNATURE_INVALID.
derive sig-altered-comment -pe 's/^comment: release 1.0$/comment: release 2.0/'
derive sig-altered-size -pe 's/^size: (\d+)$/"size: " . ($1 + 1)/e'
derive sig-altered-signed-at -pe 's/^signed-at: 2026-01-01/signed-at: 2026-01-02/'
derive sig-altered-digest -pe 's/^(digest: sha256:)(.)/$1 . ($2 eq "0" ? "1" : "0")/e'
derive sig-altered-signature -pe 's/^(signature: )(.)/$1 . ($2 eq "A" ? "B" : "A")/e'

# The same key's block twice: valid for --threshold 1, not for 2.
derive sig-same-key-twice -0777 -pe 's/^([^\n]*\n)(.*)\z/$1$2$2/s'

# Raw format.
perl -pe 's/^(.{64})/$1\n/' raw-valid >raw-wrapped
perl -pe 's/([AQgw])==$/chr(ord($1)+1)."=="/e' raw-valid >raw-noncanonical-base64
perl -pe 's/^(.{84}).*$/$1/' raw-valid >raw-wrong-length
perl -pe 's/^(.)/$1 eq "A" ? "B" : "A"/e' raw-valid >raw-altered
perl -pe 's/^/ /' raw-valid >raw-leading-space
for f in raw-noncanonical-base64 raw-wrong-length raw-altered raw-leading-space; do
    if cmp -s raw-valid "$f"; then
        echo "regenerate.sh: $f is identical to raw-valid" >&2
        exit 1
    fi
done
