#!/usr/bin/env bash
# scimctl import: counts, errors with line numbers, stdin, --help, exit status.
set -euo pipefail
: "${SCIMCTL_BIN:?}"
D=$(mktemp -d)
DB="$D/t.db"
PGDB=
cleanup() {
    if [ -n "$PGDB" ]; then
        psql -X -q -d "$SCIMD_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$D"
}
trap cleanup EXIT
# SCIMD_TEST_BACKEND=postgresql: a fresh database on the test cluster (admin URL SCIMD_TEST_PG_URL)
if [ "${SCIMD_TEST_BACKEND:-}" = postgresql ]; then
    : "${SCIMD_TEST_PG_URL:?}"
    PGDB=scimd_test_cli_import_$$_$RANDOM
    psql -X -q -v ON_ERROR_STOP=1 -d "$SCIMD_TEST_PG_URL" -c "CREATE DATABASE $PGDB" >/dev/null
    DB="${SCIMD_TEST_PG_URL%/*}/$PGDB"
fi
U=urn:ietf:params:scim:schemas:core:2.0:User
G=urn:ietf:params:scim:schemas:core:2.0:Group
cat >"$D/in.jsonl" <<EOF
{"schemas":["$U"],"id":"u1","userName":"ann"}
not json
{"userName":"bob","name":{"givenName":"Bob"}}

{"schemas":["$G"],"displayName":"g","members":[{"userName":"ANN"},{"value":"u1"},{"value":"zzz"}]}
{"userName":"ann"}
{"displayName":"g2","members":"x"}
{"schemas":["$U"],"id":"bad id!","userName":"eve"}
EOF
fail() { echo "FAIL: $*"; echo "--- stdout"; cat "$D/out"; echo "--- stderr"; cat "$D/err"; exit 1; }
rc=0
"$SCIMCTL_BIN" --db "$DB" import "$D/in.jsonl" >"$D/out" 2>"$D/err" || rc=$?
[ $rc = 1 ] || fail "exit status $rc, expected 1"
grep -q '^imported 2 users and 1 groups in .* s; 4 lines failed; 1 members skipped$' "$D/out" || fail summary
grep -q '^scimctl: line 2: ' "$D/err" || fail "line 2"
grep -q '^scimctl: line 6: userName "ann" is already in use$' "$D/err" || fail "line 6"
grep -q '^scimctl: line 7: members must be an array$' "$D/err" || fail "line 7"
grep -q '^scimctl: line 8: "id" must be' "$D/err" || fail "line 8"
[ "$(wc -l <"$D/err")" = 4 ] || fail "4 error lines"

rc=0
echo '{"userName":"cid"}' | "$SCIMCTL_BIN" --db "$DB" import - >"$D/out" 2>"$D/err" || rc=$?
[ $rc = 0 ] || fail "stdin: exit status $rc"
grep -q '^imported 1 users and 0 groups' "$D/out" || fail "stdin summary"
if [ -n "$PGDB" ]; then # the rows really are in PostgreSQL: ann, bob, cid, g and its member ann
    n=$(psql -X -qtA -d "$DB" -c "SELECT (SELECT count(*) FROM resources) || ' ' || (SELECT count(*) FROM members)")
    [ "$n" = "4 1" ] || fail "PostgreSQL: resources and members '$n', expected '4 1'"
fi

"$SCIMCTL_BIN" import --help >"$D/out" 2>"$D/err" || fail "--help"
grep -q 'JSON Lines' "$D/out" || fail "--help text"
rc=0
"$SCIMCTL_BIN" --db "$DB" import >"$D/out" 2>"$D/err" || rc=$?
[ $rc = 2 ] || fail "no file: exit status $rc, expected 2"
echo ok
