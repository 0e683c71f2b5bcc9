#!/usr/bin/env bash
# Recreate everything in keys-example/ with the real pkgsign binary:
#   test-ed25519.pem/.pub, test-rsa.pem/.pub   PUBLIC TEST KEYS (never use them for anything real)
#   example-package.tar.gz                      a small, reproducible package
#   example-package.tar.gz.sig                  pkgsign format, signed by both keys, with a comment
#   example-package.tar.gz.raw.sig              raw format (RSA PKCS#1 v1.5 SHA-256, as openssl makes it)
#   example-package.tar.gz.v2.sig               format v2: a release identity (name, version, expiry)
#   trusted/                                    a trusted-keys directory holding the two .pub files
#   release/                                    a release: files, a sha256sum list, its signature
#
# Usage: keys-example/regenerate.sh [--keep-keys]
#   --keep-keys   reuse the committed test keys instead of generating new ones.
#                 Git does not keep file modes, so on a fresh clone the .pem files
#                 are group/other-readable and pkgsign refuses them; this script runs
#                 `chmod 600 keys-example/*.pem` first. Do the same before signing
#                 with these keys by hand.
#
# The package is byte-for-byte reproducible (fixed contents, mtimes, owners and
# order; gzip without a name or time stamp). The signatures are not: they carry
# the signing time, and RSA-PSS is randomized. After regenerating, update the
# worked example in docs/signature-format.md and the outputs quoted in README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

keep_keys=no
case "${1:-}" in
  "") ;;
  --keep-keys) keep_keys=yes ;;
  *) echo "usage: $0 [--keep-keys]" >&2; exit 2 ;;
esac

# Test keys must never be encrypted, whatever the caller's environment says.
unset PKGSIGN_PASSPHRASE
export LC_ALL=C TZ=UTC

cargo build --release --quiet
pkgsign=target/release/pkgsign
d=keys-example

# 1. Keys.
if [[ $keep_keys == yes ]]; then
  chmod 600 "$d"/test-ed25519.pem "$d"/test-rsa.pem
else
  "$pkgsign" keygen --output-dir "$d" --name test-ed25519 --algorithm ed25519 --force
  "$pkgsign" keygen --output-dir "$d" --name test-rsa --algorithm rsa --bits 3072 --force
fi

# 2. The example package: a few text files with fixed contents and mtimes.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src=$work/example-package
mkdir -p "$src/doc"
cat > "$src/README.txt" <<'TXT'
example-package 1.0.0

A tiny package used to demonstrate pkgsign. It is signed with PUBLIC TEST
KEYS (keys-example/test-*.pem): a signature by them proves nothing.
TXT
printf '1.0.0\n' > "$src/VERSION"
cat > "$src/doc/CHANGES.txt" <<'TXT'
1.0.0  first release of the example package
TXT
epoch=1767225600 # 2026-01-01T00:00:00Z
find "$src" -type d -exec chmod 755 {} +
find "$src" -type f -exec chmod 644 {} +
find "$src" -exec touch -h -d "@$epoch" {} +
tar --create --format=ustar --sort=name --owner=0 --group=0 --numeric-owner \
    --mtime="@$epoch" --directory="$work" example-package \
  | gzip -9 -n > "$d/example-package.tar.gz"

# 3. Signatures.
pkg=$d/example-package.tar.gz
"$pkgsign" sign-package --package "$pkg" \
  --private-key "$d/test-ed25519.pem" --private-key "$d/test-rsa.pem" \
  --comment "example-package 1.0.0 signed with PUBLIC TEST KEYS"
"$pkgsign" sign-package --package "$pkg" --private-key "$d/test-rsa.pem" \
  --format raw --output "$d/example-package.tar.gz.raw.sig"
"$pkgsign" sign-package --package "$pkg" --private-key "$d/test-ed25519.pem" \
  --name example-package --release-version 1.0.0 --expires 2036-01-01T00:00:00Z \
  --comment "example-package 1.0.0 signed with PUBLIC TEST KEYS" \
  --output "$d/example-package.tar.gz.v2.sig"

# 3b. A release as a release engineer publishes one: sha256sum's list of the
#     files, signed by both keys.
rm -rf "$d/release"
mkdir "$d/release"
cp "$pkg" "$d/release/"
printf '1.0.0\n' > "$d/release/VERSION"
cat > "$d/release/NOTES.txt" <<'TXT'
example-package 1.0.0: release notes. Signed with PUBLIC TEST KEYS.
TXT
(cd "$d/release" && sha256sum example-package.tar.gz NOTES.txt VERSION > SHA256SUMS)
"$pkgsign" sign-package --package "$d/release/SHA256SUMS" \
  --private-key "$d/test-ed25519.pem" --private-key "$d/test-rsa.pem" \
  --comment "example-package 1.0.0 release list, PUBLIC TEST KEYS"
chmod 644 "$d"/release/*

# 4. The trusted-keys directory: public keys only.
rm -rf "$d/trusted"
mkdir "$d/trusted"
cp "$d/test-ed25519.pub" "$d/test-rsa.pub" "$d/trusted/"
chmod 644 "$d"/*.pub "$d"/trusted/*.pub

# 5. Check the results with pkgsign and, independently, with openssl.
"$pkgsign" verify-package --package "$pkg" --trusted-keys "$d/trusted" --threshold 2
"$pkgsign" verify-package --package "$pkg" --signature "$d/example-package.tar.gz.raw.sig" \
  --trusted-keys "$d/trusted"
base64 -d "$d/example-package.tar.gz.raw.sig" > "$work/raw.bin"
openssl dgst -sha256 -verify "$d/test-rsa.pub" -signature "$work/raw.bin" "$pkg"
"$pkgsign" verify-manifest "$d/release/SHA256SUMS" --trusted-keys "$d/trusted" --threshold 2
(cd "$d/release" && sha256sum --check SHA256SUMS)
sha256sum "$pkg"
