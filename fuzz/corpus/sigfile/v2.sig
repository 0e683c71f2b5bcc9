pkgsign-signature v2
algorithm: ed25519
key: SHA256:LKqJAnI0DHJMoNM9jADzzqf5iKM9RvNq4+BbsFqKj44
digest: sha256:44f6cccecd1d9fd94cf9ec04173bc937fadd533434714e5d3273fc9401c9c507
size: 370
signed-at: 2026-12-01T20:52:38Z
name: example-package
version: 1.0.0
version-scheme: semver
expires: 2036-01-01T00:00:00Z
comment: example-package 1.0.0 signed with PUBLIC TEST KEYS
signature: 6J3es7zkpka894nWm6dZFh2Za3nuvw+AT+f7F2bDWvu6KB4nn1qtHVo8h5CQ072pWHUNcmNTPIKQWTIsuNHPDQ==
