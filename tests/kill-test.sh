#!/bin/bash
# kill-test.sh [CORDSCOPE [SAMPLES]] [--short]: the UI kill test (issue 7). Starts the real
# app under Xvfb on a private D-Bus session, on a copy of the phantom sample cases, labels
# through the window's actions over D-Bus (org.gtk.Actions.Activate on
# /io/github/cordscope/Cordscope/window/1: select-segment, label-*, clear-label, undo),
# SIGKILLs it at a random moment, restarts it, and after every kill checks that
#  - the sidecar and its .bak are never empty or corrupt (whole JSON, schema_version 1);
#  - the sidecar holds the last state the app reported SAVED, or a change after it;
#  - a restart reads exactly what was on disk.
# The app reports through CS_ANNOTATION_TRACE=1 (src/ui/cs-window-annotation.c): "START
# state", "PENDING n state" after each change, "SAVED n state" when the window shows the
# change as saved, in tests/annotation/kill-test-core.sh's state format.
# CS_KILL_TEST_SHORT=1 or --short: 10 kills (CI); else 50. CS_KILL_TEST_SEED: the seed.
# CS_KILL_TEST_KEEP=1 keeps the work folder. Defaults: build/src/ui/cordscope and
# build/data/samples.
set -u
args=()
short=${CS_KILL_TEST_SHORT:-0}
for arg in "$@"; do
  case $arg in
    --short) short=1 ;;
    *) args+=("$arg") ;;
  esac
done
app=$(realpath "${args[0]:-build/src/ui/cordscope}")
samples=$(realpath "${args[1]:-build/data/samples}")
[ -x "$app" ] || { echo "kill-test.sh: $app is not built"; exit 1; }
[ -f "$samples/phantom-0000.nii.gz" ] || { echo "SKIP: no sample cases in $samples"; exit 77; }
for tool in xvfb-run dbus-run-session gdbus; do
  command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

# Once: the rest runs inside a private bus and display of its own.
if [ -z "${CS_KILL_TEST_INSIDE:-}" ]; then
  export CS_KILL_TEST_INSIDE=1 CS_KILL_TEST_SHORT=$short
  exec dbus-run-session -- xvfb-run -a -s '-screen 0 1280x800x24' "$0" "$app" "$samples"
fi

python=${CS_PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=python3
kills=50
[ "$short" = 1 ] && kills=10
RANDOM=${CS_KILL_TEST_SEED:-$$}
work=$(mktemp -d "${TMPDIR:-/tmp}/cs-ui-kill-test-XXXXXX")
[ "${CS_KILL_TEST_KEEP:-0}" = 1 ] && echo "keeping $work" || trap 'rm -rf "$work"' EXIT
mkdir -p "$work/cases"
cp "$samples"/phantom-000[0-2]* "$work/cases/"
export XDG_DATA_HOME="$work/data" XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache"
export GSETTINGS_BACKEND=memory CS_ANNOTATION_TRACE=1 NO_AT_BRIDGE=1
image="$work/cases/phantom-0000.nii.gz"
sidecar="$work/cases/phantom-0000.cordscope.json"
bus=io.github.cordscope.Cordscope
path=/io/github/cordscope/Cordscope/window/1

act() {  # act NAME [PARAMETER as a GVariant text]
  gdbus call --session --dest $bus --object-path $path --method org.gtk.Actions.Activate \
    "$1" "[${2:+<$2>}]" '{}' >/dev/null 2>&1
}

# Labels at random until killed: a segment, then a label, now and then a clear or an undo.
drive() {
  local labels=(label-normal label-hyperintense label-uncertain label-normal clear-label undo)
  while :; do
    act select-segment $((RANDOM % 6))
    act "${labels[$((RANDOM % ${#labels[@]}))]}"
  done
}

# check LOG LAST_STATE_FILE: the sidecar against what the app reported (see the top).
check() {
  "$python" - "$sidecar" "$1" "$2" <<'PY'
import json, os, sys
path, log, last_file = sys.argv[1:4]
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
    data = open(p, 'rb').read()
    if not data:
        sys.exit('%s is empty' % p)
    try:
        doc = json.loads(data.decode('utf-8'))
    except ValueError as e:
        sys.exit('%s is corrupt: %s' % (p, e))
    if doc.get('schema_version') != 1:
        sys.exit('%s: schema_version %r' % (p, doc.get('schema_version')))
    return doc
lines = open(log, encoding='utf-8').read().split('\n')[:-1]   # a cut last line: dropped
saved, after = last, []
for line in lines:
    kind, _, rest = line.partition(' ')
    if kind == 'START':
        if last is not None and rest != last:
            sys.exit('the restart read\n  %s\nbut the file held\n  %s' % (rest, last))
        saved, after = rest, []
    elif kind == 'SAVED':
        saved, after = rest.split(' ', 1)[1], []
    elif kind == 'PENDING':
        after.append(rest.split(' ', 1)[1])
    elif kind == 'FAILED':
        sys.exit('a save failed: ' + rest)
empty = state({})
on_disk = state(load(path)) if os.path.exists(path) else empty
if os.path.exists(path + '.bak'):
    load(path + '.bak')
# Saves run in order on a worker thread: the file may be ahead of the last SAVED report,
# by any of the changes after it, never behind it.
if on_disk != (saved or empty) and on_disk not in after:
    sys.exit('%s holds\n  %s\nbut the last save reported\n  %s\n(%d changes after it)'
             % (path, on_disk, saved, len(after)))
open(last_file, 'w', encoding='utf-8').write(on_disk)
print(len([l for l in lines if l.startswith('SAVED ')]))
PY
}

failures=0
saves=0
for ((run = 1; run <= kills; run++)); do
  out="$work/run-$run.out"
  "$app" "$image" >"$out" 2>"$work/run-$run.err" &
  pid=$!
  # Until the window has opened the case (its START line), at most 30 s.
  for ((i = 0; i < 300; i++)); do
    grep -q '^START ' "$out" && break
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^START ' "$out"; then
    echo "run $run: the app did not open the case: $(head -c 500 "$work/run-$run.err")"
    failures=$((failures + 1))
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    continue
  fi
  drive &
  driver=$!
  sleep "$((RANDOM % 2)).$(printf '%03d' $((RANDOM % 1000)))"
  kill -KILL $pid 2>/dev/null
  wait $pid 2>/dev/null
  kill $driver 2>/dev/null
  wait $driver 2>/dev/null
  if ! n=$(check "$out" "$work/last-state" 2>&1); then
    echo "run $run: $n"
    failures=$((failures + 1))
    continue
  fi
  saves=$((saves + n))
done
echo "kills: $kills, saves reported: $saves, failures: $failures"
[ "$saves" -ge "$kills" ] || { echo "too few saves ($saves) for a meaningful test"; exit 1; }
[ "$failures" -eq 0 ]
