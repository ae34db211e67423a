/* test-sidecar: NAME.cordscope.json round trip, validation and atomic writing. */
#include "cs-test-util.h"
#include "io/cs-sidecar.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static gint
compare_strings (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The names in DIR, sorted, joined by spaces. */
static char *
dir_listing (const char *dir)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_strings);
  g_ptr_array_add (names, NULL);
  return g_strjoinv (" ", (char **) names->pdata);
}

static char *
read_text (const char *path)
{
  char *text = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (g_file_get_contents (path, &text, NULL, &error));
  g_assert_no_error (error);
  return text;
}

static CsSidecar *
example_sidecar (void)
{
  CsSidecar *s = cs_sidecar_new ("case-007", "case-007.nii.gz", "anna");
  CsDisc discs[] = {
    { 4, { 31.0, 35.0, 25.0 }, CS_DISC_SOURCE_DERIVED },
    { 3, { 35.0, 35.0, 227.0 }, CS_DISC_SOURCE_FILE },
    { 8, { 12.5, 40.25, 3.0 }, CS_DISC_SOURCE_MANUAL },
  };
  for (guint i = 0; i < G_N_ELEMENTS (discs); i++)
    cs_sidecar_set_disc (s, &discs[i]);
  cs_sidecar_set_segment (s, 2, CS_SEGMENT_LABEL_HYPERINTENSE, "anna");
  cs_sidecar_set_segment (s, 5, CS_SEGMENT_LABEL_UNCERTAIN, "ben");
  cs_sidecar_set_segment (s, 0, CS_SEGMENT_LABEL_NORMAL, "anna");
  s->review = CS_REVIEW_FAIL;
  s->artifact = TRUE;
  g_free (s->flag_reason);
  s->flag_reason = g_strdup ("motion at C6 \"ghost\"");
  g_free (s->note);
  s->note = g_strdup ("Ünïcode note\nsecond line");
  CsCenterlinePoint p1 = { { 30.0, 50.5, 25.0 } }, p2 = { { 31.25, 10.0, 26.0 } };
  g_array_append_val (s->centerline, p1);
  g_array_append_val (s->centerline, p2);
  return s;
}

static void
assert_same_sidecar (const CsSidecar *a, const CsSidecar *b)
{
  g_assert_cmpstr (a->case_name, ==, b->case_name);
  g_assert_cmpstr (a->image_file, ==, b->image_file);
  g_assert_cmpstr (a->annotator, ==, b->annotator);
  g_assert_cmpstr (a->created, ==, b->created);
  g_assert_cmpstr (a->modified, ==, b->modified);
  g_assert_cmpuint (a->discs->len, ==, b->discs->len);
  for (guint i = 0; i < a->discs->len; i++)
    {
      const CsDisc *x = &g_array_index (a->discs, CsDisc, i);
      const CsDisc *y = &g_array_index (b->discs, CsDisc, i);
      g_assert_cmpint (x->value, ==, y->value);
      g_assert_cmpint (x->source, ==, y->source);
      for (int k = 0; k < 3; k++)
        g_assert_cmpfloat (x->voxel[k], ==, y->voxel[k]);
    }
  for (int i = 0; i < CS_N_SEGMENTS; i++)
    {
      g_assert_cmpint (a->segments[i].label, ==, b->segments[i].label);
      g_assert_cmpstr (a->segments[i].annotator, ==, b->segments[i].annotator);
      g_assert_cmpstr (a->segments[i].time, ==, b->segments[i].time);
    }
  g_assert_cmpint (a->review, ==, b->review);
  g_assert_cmpint (a->artifact, ==, b->artifact);
  g_assert_cmpstr (a->flag_reason, ==, b->flag_reason);
  g_assert_cmpstr (a->note, ==, b->note);
  g_assert_cmpuint (a->centerline->len, ==, b->centerline->len);
  for (guint i = 0; i < a->centerline->len; i++)
    for (int k = 0; k < 3; k++)
      g_assert_cmpfloat (g_array_index (a->centerline, CsCenterlinePoint, i).voxel[k], ==,
                         g_array_index (b->centerline, CsCenterlinePoint, i).voxel[k]);
}

static void
test_round_trip (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-sidecar-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "case-007.cordscope.json", NULL);
  g_autofree char *bak = g_strconcat (path, ".bak", NULL);
  g_autoptr (CsSidecar) s = example_sidecar ();
  g_autoptr (GError) error = NULL;

  /* Discs are kept sorted by value and one per value. */
  g_assert_cmpuint (s->discs->len, ==, 3);
  g_assert_cmpint (g_array_index (s->discs, CsDisc, 0).value, ==, 3);
  g_assert_cmpint (g_array_index (s->discs, CsDisc, 2).value, ==, 8);

  g_assert_true (cs_sidecar_save (s, path, &error));
  g_assert_no_error (error);
  g_autofree char *listing = dir_listing (dir);
  g_assert_cmpstr (listing, ==, "case-007.cordscope.json");   /* no .bak yet, no temp */

  g_autoptr (CsSidecar) back = cs_sidecar_load (path, &error);
  g_assert_no_error (error);
  assert_same_sidecar (s, back);
  g_assert_cmpint (back->segments[2].label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_assert_cmpint (back->segments[1].label, ==, CS_SEGMENT_LABEL_UNSET);
  g_assert_null (back->segments[1].annotator);

  /* The text names segments, never numbers: "C4-5": { "label": "hyperintense" ... */
  g_autofree char *first = read_text (path);
  g_assert_nonnull (strstr (first, "\"C4-5\" : {\n      \"label\" : \"hyperintense\""));
  g_assert_nonnull (strstr (first, "\"schema_version\" : 1"));

  /* A second save keeps the first file as .bak, byte for byte. */
  cs_sidecar_set_segment (s, 3, CS_SEGMENT_LABEL_NORMAL, "ben");
  g_assert_true (cs_sidecar_save (s, path, &error));
  g_assert_no_error (error);
  g_autofree char *kept = read_text (bak);
  g_assert_cmpstr (kept, ==, first);
  g_autofree char *listing2 = dir_listing (dir);
  g_assert_cmpstr (listing2, ==, "case-007.cordscope.json case-007.cordscope.json.bak");
  g_autoptr (CsSidecar) again = cs_sidecar_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpint (again->segments[3].label, ==, CS_SEGMENT_LABEL_NORMAL);
  g_assert_cmpstr (again->segments[3].annotator, ==, "ben");
  cs_test_remove_tree (dir);
}

/* Parses TEXT and expects error CODE whose message holds the source name and NEEDLE. */
static void
expect_error (const char *text, int code, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSidecar) s = cs_sidecar_from_json (text, -1, "/cases/x.cordscope.json", &error);
  g_assert_null (s);
  g_assert_error (error, CS_IO_ERROR, code);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "/cases/x.cordscope.json"));
  if (strstr (error->message, needle) == NULL)
    g_error ("message \"%s\" does not name \"%s\"", error->message, needle);
}

static void
test_invalid (void)
{
  expect_error ("{\"schema_version\": 1, \"case\": \"x\"", CS_IO_ERROR_FORMAT, "JSON");
  expect_error ("", CS_IO_ERROR_FORMAT, "");
  expect_error ("[1, 2]", CS_IO_ERROR_FORMAT, "object");
  expect_error ("{\"case\": \"x\"}", CS_IO_ERROR_FORMAT, "schema_version");
  expect_error ("{\"schema_version\": \"1\"}", CS_IO_ERROR_FORMAT, "schema_version");
  expect_error ("{\"schema_version\": 2}", CS_IO_ERROR_VERSION, "version 2");
  expect_error ("{\"schema_version\": 0}", CS_IO_ERROR_VERSION, "version 0");
  expect_error ("{\"schema_version\": 1, \"case\": 7}", CS_IO_ERROR_FORMAT, "\"case\"");
  expect_error ("{\"schema_version\": 1, \"discs\": 3}", CS_IO_ERROR_FORMAT, "\"discs\"");
  expect_error ("{\"schema_version\": 1, \"discs\": [{\"value\": 3.5, \"voxel\": [1,2,3]}]}",
                CS_IO_ERROR_FORMAT, "discs[0].value");
  expect_error ("{\"schema_version\": 1, \"discs\": [{\"value\": 3, \"voxel\": [1,2]}]}",
                CS_IO_ERROR_FORMAT, "discs[0].voxel");
  expect_error ("{\"schema_version\": 1, \"discs\": [{\"value\": 3, \"voxel\": [1,2,3], "
                "\"source\": \"guess\"}]}", CS_IO_ERROR_FORMAT, "discs[0].source");
  expect_error ("{\"schema_version\": 1, \"discs\": [{\"value\": 3, \"voxel\": [1,2,3]}, "
                "{\"value\": 3, \"voxel\": [1,2,4]}]}", CS_IO_ERROR_FORMAT, "discs[1].value");
  expect_error ("{\"schema_version\": 1, \"segments\": {\"C4-5\": {\"label\": \"bright\"}}}",
                CS_IO_ERROR_FORMAT, "segments.C4-5.label");
  expect_error ("{\"schema_version\": 1, \"segments\": {\"C1-2\": {\"label\": \"normal\"}}}",
                CS_IO_ERROR_FORMAT, "segments.C1-2");
  expect_error ("{\"schema_version\": 1, \"segments\": {\"C4-5\": {\"label\": \"normal\", "
                "\"time\": \"yesterday\"}}}", CS_IO_ERROR_FORMAT, "segments.C4-5.time");
  expect_error ("{\"schema_version\": 1, \"flags\": {\"review\": \"maybe\"}}",
                CS_IO_ERROR_FORMAT, "flags.review");
  expect_error ("{\"schema_version\": 1, \"flags\": {\"artifact\": \"yes\"}}",
                CS_IO_ERROR_FORMAT, "flags.artifact");
  expect_error ("{\"schema_version\": 1, \"centerline\": [[1, 2, 3], [1, null, 3]]}",
                CS_IO_ERROR_FORMAT, "centerline[1]");
  expect_error ("{\"schema_version\": 1, \"modified\": \"2026-13-45T99:00:00Z\"}",
                CS_IO_ERROR_FORMAT, "modified");

  /* A minimal file is valid; absent keys take their empty values. */
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSidecar) s = cs_sidecar_from_json ("{\"schema_version\": 1}", -1, "min", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (s->case_name, ==, "");
  g_assert_cmpuint (s->discs->len, ==, 0);
  g_assert_cmpint (s->segments[0].label, ==, CS_SEGMENT_LABEL_UNSET);
  g_assert_null (s->created);
}

static void
test_corrupt_file (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-sidecar-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "cut.cordscope.json", NULL);
  g_autoptr (CsSidecar) s = example_sidecar ();
  g_autofree char *text = cs_sidecar_to_json (s);
  /* A file cut in the middle, as a crash of another writer would leave it. */
  g_assert_true (g_file_set_contents (path, text, strlen (text) / 2, NULL));
  g_autoptr (GError) error = NULL;
  g_assert_null (cs_sidecar_load (path, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT);
  g_assert_nonnull (strstr (error->message, path));
  g_clear_error (&error);

  g_autofree char *missing = g_build_filename (dir, "none.cordscope.json", NULL);
  g_assert_null (cs_sidecar_load (missing, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
  g_assert_nonnull (strstr (error->message, missing));
  cs_test_remove_tree (dir);
}

static void
test_read_only_folder (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-sidecar-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "ro.cordscope.json", NULL);
  g_autoptr (CsSidecar) s = example_sidecar ();
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_sidecar_save (s, path, &error));
  g_autofree char *before = read_text (path);

  const char *how = NULL;
  if (cs_test_make_read_only (dir, TRUE, &how))
    {
      g_test_message ("read-only folder made with %s", how);
      s->artifact = FALSE;
      gboolean saved = cs_sidecar_save (s, path, &error);
      cs_test_make_read_only (dir, FALSE, &how);
      g_assert_false (saved);
      g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, path));
      g_clear_error (&error);
      g_autofree char *after = read_text (path);
      g_assert_cmpstr (after, ==, before);
      g_autofree char *listing = dir_listing (dir);
      g_assert_cmpstr (listing, ==, "ro.cordscope.json");
    }
  else
    g_test_message ("cannot make a read-only folder here (%s failed): only the "
                    "not-a-folder case is tested", how);

  /* A folder that cannot exist: its parent is a regular file. */
  g_autofree char *under_file = g_build_filename (path, "x.cordscope.json", NULL);
  g_assert_false (cs_sidecar_save (s, under_file, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
  g_assert_nonnull (strstr (error->message, under_file));
  g_autofree char *after = read_text (path);
  g_assert_cmpstr (after, ==, before);
  cs_test_remove_tree (dir);
}

/* A full disk, simulated with a file-size limit (works as root too): the write fails
 * part way; the old file must stay as it was and the partial temp file must go. */
static void
test_full_disk (void)
{
  g_autoptr (GError) error = NULL;
  if (g_test_subprocess ())
    {
      const char *target = g_getenv ("CS_TEST_SIDECAR_PATH");
      g_autoptr (CsSidecar) big = example_sidecar ();
      g_free (big->note);
      big->note = g_strnfill (64 * 1024, 'x');
      struct rlimit limit = { 1024, 1024 };
      signal (SIGXFSZ, SIG_IGN);
      g_assert_cmpint (setrlimit (RLIMIT_FSIZE, &limit), ==, 0);
      g_assert_false (cs_sidecar_save (big, target, &error));
      g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
      g_assert_nonnull (strstr (error->message, target));
      g_printerr ("%s\n", error->message);
      return;
    }
  g_autofree char *dir = cs_test_make_tmp ("cs-sidecar-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "full.cordscope.json", NULL);
  g_autoptr (CsSidecar) s = example_sidecar ();
  g_assert_true (cs_sidecar_save (s, path, &error));
  g_autofree char *before = read_text (path);

  g_setenv ("CS_TEST_SIDECAR_PATH", path, TRUE);
  g_test_trap_subprocess (NULL, 0, 0);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*full.cordscope.json*too large*");
  g_autofree char *after = read_text (path);
  g_assert_cmpstr (after, ==, before);
  g_autofree char *listing = dir_listing (dir);
  g_assert_cmpstr (listing, ==, "full.cordscope.json");
  cs_test_remove_tree (dir);
}

static void
test_enums (void)
{
  CsSegmentLabel label;
  CsDiscSource source;
  g_assert_true (cs_segment_label_from_string ("hyperintense", &label));
  g_assert_cmpint (label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_assert_false (cs_segment_label_from_string ("Hyperintense", &label));
  g_assert_false (cs_segment_label_from_string (NULL, &label));
  g_assert_cmpstr (cs_segment_label_to_string (CS_SEGMENT_LABEL_UNCERTAIN), ==, "uncertain");
  g_assert_true (cs_disc_source_from_string ("derived", &source));
  g_assert_cmpint (source, ==, CS_DISC_SOURCE_DERIVED);
  g_assert_cmpstr (cs_disc_source_to_string (CS_DISC_SOURCE_MANUAL), ==, "manual");
  g_autofree char *now = cs_sidecar_now ();
  g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (now, NULL);
  g_assert_nonnull (t);
  g_assert_true (g_str_has_suffix (now, "Z"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/sidecar/round-trip", test_round_trip);
  g_test_add_func ("/sidecar/invalid", test_invalid);
  g_test_add_func ("/sidecar/corrupt-file", test_corrupt_file);
  g_test_add_func ("/sidecar/read-only-folder", test_read_only_folder);
  g_test_add_func ("/sidecar/full-disk", test_full_disk);
  g_test_add_func ("/sidecar/enums", test_enums);
  return g_test_run ();
}
