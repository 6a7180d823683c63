#!/usr/bin/env bash
# bench/callgrind.sh BIN LABEL: instructions per request (valgrind callgrind) of scimd BIN on a
# bench database (DB=..., e.g. WORK/bench-1000000.db of bench/run.sh; a token is added to it):
# 100 lookups by userName (fixed random users), 100 group-gets of bench-empty and of bench-all,
# 2 cursor pages of 1000 users, and 100 creates (CG_CREATE=0: none; they add users to DB, so
# use a copy of it). scimd runs with --threads 1; counters are zeroed before each
# scenario. "on_request" counts only the request handler (the background webhook poller, which
# runs on a timer, is excluded); it is the figure quoted in BENCHMARKS.md "Read path".
# Results: $CG_OUT/LABEL/summary (default CG_OUT=/tmp/scimd-callgrind).
set -u
BIN=$1; LABEL=$2; DB=${DB:?DB=path of a bench database}
CTL=${SCIMCTL_BIN:-$(dirname "$BIN")/scimctl}
TOKEN=$($CTL --db $DB token create --name cg-$RANDOM$RANDOM)
OUT=${CG_OUT:-/tmp/scimd-callgrind}/$LABEL
mkdir -p $OUT; rm -f $OUT/*
valgrind --tool=callgrind --callgrind-out-file=$OUT/cg.%p.out $BIN --listen 127.0.0.1:0 --db $DB --threads 1 --log-level info >$OUT/scimd.out 2>$OUT/vg.log &
VPID=$!
for i in $(seq 1 300); do PORT=$(sed -n 's|^listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' $OUT/scimd.out); [ -n "$PORT" ] && break; sleep 0.2; done
B=http://127.0.0.1:$PORT/scim/v2
H=(-H "Authorization: Bearer $TOKEN")
urls_lookup() { for i in "$@"; do echo "url = \"$B/Users?filter=userName%20eq%20%22user$i%40bench.example%22\""; echo "output = /dev/null"; done; }
run() { # name, curl config on stdin, count
  curl -s "${H[@]}" -K - >/dev/null
}
# warm-up
urls_lookup 1 2 3 | run
curl -s "${H[@]}" -o /dev/null "$B/Groups/00000001-0000-4000-9000-000000000001?excludedAttributes=members"
measure() { # name count
  callgrind_control -z $VPID >/dev/null
  cat | run
  callgrind_control -d $1 $VPID >/dev/null
  sleep 0.5
  f=$(ls -t $OUT/cg.*.out.* | head -1)
  ir=$(callgrind_annotate $f 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  h=$(callgrind_annotate --inclusive=yes $f 2>/dev/null | awk '/http\/server.c:on_request / {gsub(",","",$1); print $1}')
  echo "$LABEL $1: total Ir $ir, per request $((ir / $2)), on_request per request $((${h:-0} / $2))" | tee -a $OUT/summary
}
urls_lookup $(awk 'BEGIN{srand(42); for(i=0;i<100;i++) printf "%d ", 1+int(rand()*1000000)}') | measure lookup 100
for i in $(seq 1 100); do echo "url = \"$B/Groups/00000001-0000-4000-9000-000000000001?excludedAttributes=members\""; echo "output = /dev/null"; done | measure group-get-empty 100
for i in $(seq 1 100); do echo "url = \"$B/Groups/00000004-0000-4000-9000-000000000004?excludedAttributes=members\""; echo "output = /dev/null"; done | measure group-get-all 100
# cursor pages: first page then 4 more
C=$(curl -s "${H[@]}" "$B/Users?cursor=&count=1000" | grep -o '"nextCursor":"[^"]*"' | cut -d'"' -f4)
( echo "url = \"$B/Users?cursor=&count=1000\""; echo "output = /dev/null"; echo "url = \"$B/Users?cursor=$C&count=1000\""; echo "output = /dev/null" ) | measure export-page 2
# creates: 100 POST /Users with unique names (the database gains 100 users; use a copy)
if [ "${CG_CREATE:-1}" = 1 ]; then
  run_id=$RANDOM$RANDOM
  for i in $(seq 1 100); do
    body='{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"cg'$run_id-$i'@bench.example","name":{"givenName":"C","familyName":"G"},"emails":[{"value":"cg'$run_id-$i'@bench.example","type":"work","primary":true}],"active":true}'
    echo "url = \"$B/Users\""; echo "request = \"POST\""; echo "header = \"Content-Type: application/scim+json\""; echo "header = \"Authorization: Bearer $TOKEN\""
    echo "data = \"${body//\"/\\\"}\""; echo "output = /dev/null"; echo "next"
  done | measure create 100
fi
kill $VPID; wait $VPID 2>/dev/null
