#!/bin/bash
# kill-test-core.sh KILL_CHILD [--short] [--background]: the headless kill test. Starts KILL_CHILD (it labels and
# saves after every change, printing PENDING/SAVED lines), SIGKILLs it at random moments,
# restarts it on the same sidecar, and after every kill checks that the sidecar (and its
# .bak) is a whole, valid annotation file holding the last state reported SAVED, or the
# one PENDING after it (killed between the write and the report).
# --short or CS_KILL_TEST_SHORT=1: 50 kills (CI); else 300. --background: the child
# saves through the worker thread, as the window does. CS_KILL_TEST_SEED: the random seed.
# The UI kill test (tests/kill-test.sh) reuses check_sidecar with the app's own lines.
set -u
child=${1:?usage: kill-test-core.sh KILL_CHILD}
python=${CS_PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=python3
kills=300
mode=
for arg in "${@:2}"; do
  case $arg in
    --short) kills=50 ;;
    --background) mode=--background ;;
    *) echo "kill-test-core.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
[ "${CS_KILL_TEST_SHORT:-0}" = 1 ] && kills=50
RANDOM=${CS_KILL_TEST_SEED:-$$}
work=$(mktemp -d "${TMPDIR:-/tmp}/cs-kill-test-XXXXXX")
# CS_KILL_TEST_KEEP=1 keeps the folder (every run's output) for a look after a failure.
[ "${CS_KILL_TEST_KEEP:-0}" = 1 ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT
export XDG_DATA_HOME="$work/data"   # recovery files stay in the sandbox
sidecar="$work/kill.cordscope.json"

# check_sidecar SIDECAR CHILD_OUTPUT LAST_STATE_FILE: LAST_STATE_FILE carries the state
# found on disk after the previous kill (for a run killed before it printed anything, and
# to check that a restart reads exactly what was on disk).
check_sidecar() {
  "$python" - "$1" "$2" "$3" <<'PY'
import json, os, sys
path, log, last_file = sys.argv[1], sys.argv[2], sys.argv[3]
last = open(last_file, encoding='utf-8').read() if os.path.exists(last_file) else None
def state(doc):
    codes = {'unset': '-', 'normal': 'N', 'hyperintense': 'H', 'uncertain': 'U'}
    names = ['C2-3', 'C3-4', 'C4-5', 'C5-6', 'C6-7', 'C7-T1']
    seg = doc.get('segments', {})
    labels = ''.join(codes[seg.get(n, {}).get('label', 'unset')] for n in names)
    flags = doc.get('flags', {})
    review = {'unset': '-', 'pass': 'P', 'fail': 'F'}[flags.get('review', 'unset')]
    discs = ','.join('%d@%d/%d/%d' % (d['value'], *(int(x) for x in d['voxel']))
                     for d in sorted(doc.get('discs', []), key=lambda d: d['value']))
    return 'labels=%s review=%s artifact=%d note=%s discs=%s' % (
        labels, review, 1 if flags.get('artifact') else 0, doc.get('note', ''), discs)
def load(p):
    with open(p, 'rb') as f:
        data = f.read()
    if not data:
        sys.exit('%s is empty' % p)
    try:
        doc = json.loads(data.decode('utf-8'))
    except ValueError as e:
        sys.exit('%s is corrupt: %s' % (p, e))
    if doc.get('schema_version') != 1:
        sys.exit('%s: schema_version %r' % (p, doc.get('schema_version')))
    return doc
with open(log, encoding='utf-8') as f:
    text = f.read()
lines = text.split('\n')[:-1]          # a line cut by the kill has no newline: dropped
saved = pending_after = None
for line in lines:
    kind, _, rest = line.partition(' ')
    if kind == 'SAVED':
        saved, pending_after = rest.split(' ', 1)[1], None
    elif kind == 'PENDING':
        pending_after = rest.split(' ', 1)[1]
    elif kind == 'START' and saved is None:
        if last is not None and rest != last:
            bak = state(load(path + '.bak')) if os.path.exists(path + '.bak') else None
            sys.exit('the restart read\n  %s\nbut the file held\n  %s\n(now on disk: %s;'
                     ' .bak: %s; first lines: %r)'
                     % (rest, last, state(load(path)), bak, lines[:3]))
        saved = rest
if saved is None:
    saved = last                       # killed before it printed anything
if not os.path.exists(path):
    if saved is not None and saved != state({}):
        sys.exit('%s is missing although a save was reported' % path)
    sys.exit(0)
on_disk = state(load(path))
if os.path.exists(path + '.bak'):
    load(path + '.bak')
if on_disk != saved and on_disk != pending_after:
    sys.exit('%s holds\n  %s\nbut the last save reported\n  %s\n(pending after it: %s)'
             % (path, on_disk, saved, pending_after))
with open(last_file, 'w', encoding='utf-8') as f:
    f.write(on_disk)
PY
}

failures=0
saves=0
for ((run = 1; run <= kills; run++)); do
  out="$work/run.out"
  [ "${CS_KILL_TEST_KEEP:-0}" = 1 ] && out="$work/run-$run.out"
  "$child" "$sidecar" "$RANDOM" $mode >"$out" 2>"$work/run.err" &
  pid=$!
  # Random moments: from right at start-up (opening) to well into the save loop.
  sleep "0.$(printf '%03d' $((RANDOM % 250)))"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if kill -0 "$pid" 2>/dev/null; then
    echo "run $run: the child $pid survived SIGKILL"
    failures=$((failures + 1))
  fi
  n=$(grep -c '^SAVED ' "$out")
  saves=$((saves + n))
  if grep -q '^FAILED ' "$out"; then
    echo "run $run: a save failed: $(grep -m1 '^FAILED ' "$out")"
    failures=$((failures + 1))
  fi
  if ! msg=$(check_sidecar "$sidecar" "$out" "$work/last-state" 2>&1); then
    echo "run $run (after $n saves): $msg"
    failures=$((failures + 1))
  fi
  if [ -s "$work/run.err" ]; then
    echo "run $run: stderr: $(head -c 500 "$work/run.err")"
    failures=$((failures + 1))
  fi
done
leftovers=$(find "$work" -maxdepth 1 -name '.kill.cordscope.json.*' | wc -l)
echo "kills: $kills, saves reported: $saves, failures: $failures," \
     "temp files left by kills mid-write: $leftovers"
[ "$saves" -gt "$kills" ] || { echo "too few saves ($saves) for a meaningful test"; exit 1; }
[ "$failures" -eq 0 ]
