#!/bin/sh
# Checks that po/LANG.po translates every string the sources have now (not only the
# strings it happened to have when last merged): extract a fresh template, merge, count.
# Usage: check-complete.sh SOURCE_ROOT LANG
set -eu
root=$1
lang=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
grep -v '^#' po/POTFILES.in | grep -v '^$' > "$tmp/files"
# The keywords of meson's i18n 'glib' preset.
xgettext --from-code=UTF-8 --add-comments --files-from="$tmp/files" -o "$tmp/template.pot" \
  --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 --keyword=g_dcgettext:2 \
  --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 --flag=N_:1:pass-c-format \
  --flag=C_:2:pass-c-format --flag=NC_:2:pass-c-format --flag=g_dngettext:2:pass-c-format \
  --flag=g_strdup_printf:1:c-format --flag=g_string_printf:2:c-format \
  --flag=g_string_append_printf:2:c-format --flag=g_error_new:3:c-format \
  --flag=g_set_error:4:c-format --flag=g_markup_printf_escaped:1:c-format
msgmerge --quiet --no-fuzzy-matching "po/$lang.po" "$tmp/template.pot" -o "$tmp/merged.po"
msgfmt --check --statistics -o /dev/null "$tmp/merged.po" 2> "$tmp/stats"
cat "$tmp/stats"
if grep -Eq 'untranslated|fuzzy' "$tmp/stats"; then
  echo "po/$lang.po is incomplete: run 'meson compile cordscope-update-po' and translate" >&2
  exit 1
fi
