/* test-export: dataset CSV export and import (same labels back, clear errors), SCT disc
 * labels read back by our own reader, the JSON dataset. (nibabel reads the disc labels in
 * test_disc_export.py.) */
#include "cs-test-util.h"
#include "io/cs-export.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static const char *const awkward[] = {
  "", "plain", "comma, inside", "\"quoted\"", "line\nbreak", "crlf\r\nbreak", " leading",
  "trailing ", "ünïcødé ✓", "a,\"b\"\n,c", "=SUM(A1)", "\"", ",",
};

static GPtrArray *
random_cases (GRand *rand, guint n)
{
  GPtrArray *cases = g_ptr_array_new_with_free_func ((GDestroyNotify) cs_export_case_free);
  for (guint c = 0; c < n; c++)
    {
      g_autofree char *name = g_strdup_printf ("sub-%02u%s", c,
                                               c % 3 == 0 ? ", \"odd\" name" : "");
      CsExportCase *ec = cs_export_case_new (name);
      CsSidecar *s = ec->sidecar;
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        {
          CsSegmentLabel label = (CsSegmentLabel) g_rand_int_range (rand, 0, 4);
          if (label != CS_SEGMENT_LABEL_UNSET)
            {
              const char *who = awkward[g_rand_int_range (rand, 1, G_N_ELEMENTS (awkward))];
              cs_sidecar_set_segment (s, i, label, who);
            }
          ec->model_score[i] = g_rand_boolean (rand) ? NAN : g_rand_double (rand) * 3 - 1;
        }
      s->review = (CsReview) g_rand_int_range (rand, 0, 3);
      s->artifact = g_rand_boolean (rand);
      g_free (s->flag_reason);
      s->flag_reason = g_strdup (awkward[g_rand_int_range (rand, 0, G_N_ELEMENTS (awkward))]);
      g_free (s->note);
      s->note = g_strdup (awkward[g_rand_int_range (rand, 0, G_N_ELEMENTS (awkward))]);
      g_ptr_array_add (cases, ec);
    }
  return cases;
}

static void
assert_same_labels (GPtrArray *a, GPtrArray *b)
{
  g_assert_cmpuint (a->len, ==, b->len);
  for (guint c = 0; c < a->len; c++)
    {
      const CsExportCase *x = a->pdata[c], *y = b->pdata[c];
      g_assert_cmpstr (x->sidecar->case_name, ==, y->sidecar->case_name);
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        {
          g_assert_cmpint (x->sidecar->segments[i].label, ==, y->sidecar->segments[i].label);
          g_assert_cmpstr (x->sidecar->segments[i].annotator, ==,
                           y->sidecar->segments[i].annotator);
          g_assert_cmpstr (x->sidecar->segments[i].time, ==, y->sidecar->segments[i].time);
          g_assert_cmpint (isnan (x->model_score[i]), ==, isnan (y->model_score[i]));
          if (!isnan (x->model_score[i]))
            g_assert_cmpfloat (x->model_score[i], ==, y->model_score[i]);   /* exact */
        }
      g_assert_cmpint (x->sidecar->review, ==, y->sidecar->review);
      g_assert_cmpint (x->sidecar->artifact, ==, y->sidecar->artifact);
      g_assert_cmpstr (x->sidecar->flag_reason, ==, y->sidecar->flag_reason);
      g_assert_cmpstr (x->sidecar->note, ==, y->sidecar->note);
    }
}

static void
test_csv_round_trip (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-export-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "dataset.csv", NULL);
  GRand *rand = g_rand_new_with_seed (7);
  g_autoptr (GPtrArray) cases = random_cases (rand, 40);
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_export_csv (cases, path, &error));
  g_assert_no_error (error);
  g_autoptr (GPtrArray) back = cs_import_csv (path, &error);
  g_assert_no_error (error);
  assert_same_labels (cases, back);
  /* And the same text again. */
  g_autofree char *first = cs_export_csv_text (cases);
  g_autofree char *second = cs_export_csv_text (back);
  g_assert_cmpstr (first, ==, second);
  g_assert_true (g_str_has_prefix (first, CS_EXPORT_CSV_HEADER "\n"));
  /* Rows in any order, CRLF line ends and a byte-order mark read the same. */
  g_auto (GStrv) lines = g_strsplit (first, "\nsub-", -1);
  g_assert_cmpuint (g_strv_length (lines), >, 10);
  GString *shuffled = g_string_new ("\xEF\xBB\xBF");
  g_string_append (shuffled, lines[0]);
  for (guint i = g_strv_length (lines) - 1; i >= 1; i--)
    {
      g_string_append (shuffled, "\nsub-");
      g_string_append (shuffled, lines[i]);
    }
  g_autofree char *text = g_string_free (shuffled, FALSE);
  g_autoptr (GPtrArray) again = cs_import_csv_text (text, -1, "shuffled.csv", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (again->len, ==, cases->len);
  g_autoptr (GPtrArray) sorted = g_ptr_array_new ();
  for (guint c = 0; c < cases->len; c++)
    for (guint d = 0; d < again->len; d++)
      if (strcmp (((CsExportCase *) again->pdata[d])->sidecar->case_name,
                  ((CsExportCase *) cases->pdata[c])->sidecar->case_name) == 0)
        g_ptr_array_add (sorted, again->pdata[d]);
  assert_same_labels (cases, sorted);

  /* CRLF line ends (a file without quoted line breaks, where CR would be data). */
  g_autoptr (GPtrArray) simple = g_ptr_array_new_with_free_func ((GDestroyNotify)
                                                                  cs_export_case_free);
  g_ptr_array_add (simple, cs_export_case_new ("plain"));
  cs_sidecar_set_segment (((CsExportCase *) simple->pdata[0])->sidecar, 2,
                          CS_SEGMENT_LABEL_HYPERINTENSE, "jd");
  g_autofree char *simple_text = cs_export_csv_text (simple);
  g_auto (GStrv) parts = g_strsplit (simple_text, "\n", -1);
  g_autofree char *simple_crlf = g_strjoinv ("\r\n", parts);
  g_autoptr (GPtrArray) simple_back = cs_import_csv_text (simple_crlf, -1, "crlf.csv", &error);
  g_assert_no_error (error);
  assert_same_labels (simple, simple_back);
  g_rand_free (rand);
  cs_test_remove_tree (dir);
}

static void
test_csv_hand_written (void)
{
  /* A spreadsheet's own file: only some segments listed, quoted note over two lines. */
  const char *text =
    CS_EXPORT_CSV_HEADER "\n"
    "p1,C4-5,hyperintense,jd,2026-11-27T14:05:09Z,0.75,fail,true,,\"seen on T2,\n"
    "and STIR\"\n"
    "p1,C2-3,normal,,,,fail,true,,\"seen on T2,\n"
    "and STIR\"\n"
    "\n";
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_import_csv_text (text, -1, "hand.csv", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cases->len, ==, 1);
  const CsExportCase *ec = cases->pdata[0];
  g_assert_cmpint (ec->sidecar->segments[2].label, ==, CS_SEGMENT_LABEL_HYPERINTENSE);
  g_assert_cmpstr (ec->sidecar->segments[2].annotator, ==, "jd");
  g_assert_cmpfloat (ec->model_score[2], ==, 0.75);
  g_assert_cmpint (ec->sidecar->segments[0].label, ==, CS_SEGMENT_LABEL_NORMAL);
  g_assert_null (ec->sidecar->segments[0].annotator);
  g_assert_true (isnan (ec->model_score[0]));
  g_assert_cmpint (ec->sidecar->segments[1].label, ==, CS_SEGMENT_LABEL_UNSET);
  g_assert_cmpint (ec->sidecar->review, ==, CS_REVIEW_FAIL);
  g_assert_true (ec->sidecar->artifact);
  g_assert_cmpstr (ec->sidecar->note, ==, "seen on T2,\nand STIR");
}

static void
test_csv_errors (void)
{
  static const struct
  {
    const char *text;
    const char *expect;
  } cases[] = {
    { "", "bad.csv: empty" },
    { "case,segment,label\n", "bad.csv:1: not a Cordscope dataset CSV" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,unset,false,\n", "bad.csv:2: 9 fields" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,unset,false,,\np,C1-2,normal,,,,unset,false,,\n",
      "bad.csv:3: \"C1-2\" is not a segment" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,abnormal,,,,unset,false,,\n",
      "bad.csv:2: label \"abnormal\"" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,yesterday,,unset,false,,\n",
      "bad.csv:2: time \"yesterday\"" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,high,unset,false,,\n",
      "bad.csv:2: model_score \"high\"" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,nan,unset,false,,\n",
      "bad.csv:2: model_score \"nan\"" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,ok,false,,\n", "bad.csv:2: review \"ok\"" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,pass,yes,,\n", "bad.csv:2: artifact \"yes\"" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,pass,false,,\"note\n\nmore\n",
      "bad.csv:2: a quoted field is not closed" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,pass,false,,\"a\"b\n",
      "bad.csv:2: text after a closing quote" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,pass,false,,a\"b\n",
      "bad.csv:2: a quote inside a field" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,pass,false,,\"x\ny\"\np,C2-3,normal,,,,pass,"
      "false,,\"x\ny\"\n", "bad.csv:4: case \"p\" lists segment C2-3 twice" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,,,,pass,false,,n1\nq,C2-3,normal,,,,pass,false,,\n"
      "p,C3-4,normal,,,,pass,false,,n2\n", "bad.csv:4: case \"p\": review, artifact, reason "
      "or note differ from line 2" },
    { CS_EXPORT_CSV_HEADER "\n,C2-3,normal,,,,pass,false,,\n", "bad.csv:2: the case name" },
    { CS_EXPORT_CSV_HEADER "\np,C2-3,normal,\xff,,,pass,false,,\n", "bad.csv: not UTF-8" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (GPtrArray) out = cs_import_csv_text (cases[i].text, -1, "bad.csv", &error);
      g_assert_null (out);
      g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT);
      g_test_message ("%s", error->message);
      if (!g_str_has_prefix (error->message, cases[i].expect))
        g_error ("case %u: \"%s\" does not start with \"%s\"", i, error->message,
                 cases[i].expect);
    }
  g_autoptr (GError) error = NULL;
  g_assert_null (cs_import_csv ("/nonexistent/dataset.csv", &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
  g_assert_nonnull (strstr (error->message, "/nonexistent/dataset.csv"));
}

static CsVolume *
oblique_image (void)
{
  /* LPI-ish storage with anisotropic voxels, so the grid is not the identity. */
  int dim[3] = { 9, 60, 40 };
  double aff[4][4] = { { -3, 0, 0, 12 }, { 0, 0, -0.5, 20 }, { 0, -0.6, 0, 30 },
                       { 0, 0, 0, 1 } };
  CsVolume *v = cs_volume_new (dim, aff);
  v->datatype = 4;
  for (gsize i = 0; i < cs_volume_n_voxels (v); i++)
    v->data[i] = (float) (i % 97);
  return v;
}

static void
test_disc_labels (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-export-XXXXXX");
  g_autoptr (CsVolume) image = oblique_image ();
  g_autoptr (GArray) discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (int v = 3; v <= 8; v++)
    {
      /* Fractional points round to the nearest voxel (x.4 down, x.6 up). */
      CsDisc d = { .value = v, .voxel = { 4.4, 10 + 7 * (v - 3) + 0.6, 20 - v * 0.5 },
                   .source = CS_DISC_SOURCE_MANUAL };
      g_array_append_val (discs, d);
    }
  g_autofree char *path = cs_export_disc_labels_path (dir, "case-1");
  g_assert_true (g_str_has_suffix (path, "/case-1_labels-disc.nii.gz"));
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_export_disc_labels (image, discs, path, &error));
  g_assert_no_error (error);

  g_autoptr (CsVolume) back = cs_volume_load (path, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (back->dim, sizeof back->dim, image->dim, sizeof image->dim);
  for (int r = 0; r < 4; r++)
    for (int c = 0; c < 4; c++)
      g_assert_cmpfloat_with_epsilon (back->vox2mm[r][c], image->vox2mm[r][c], 1e-5);
  guint nonzero = 0;
  for (gsize i = 0; i < cs_volume_n_voxels (back); i++)
    nonzero += back->data[i] != 0;
  g_assert_cmpuint (nonzero, ==, 6);
  for (int v = 3; v <= 8; v++)
    {
      int j = 10 + 7 * (v - 3) + 1, k = (int) lround (20 - v * 0.5);
      g_assert_cmpfloat (cs_volume_at (back, 4, j, k), ==, v);
    }
  /* Our disc reader finds the same discs at the rounded voxels. */
  g_autoptr (GArray) read = cs_discs_read (path, CS_LABEL_FILE_DISCS, image, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (read->len, ==, 6);
  for (guint i = 0; i < 6; i++)
    {
      const CsDisc *d = &g_array_index (read, CsDisc, i);
      g_assert_cmpint (d->value, ==, 3 + (int) i);
      g_assert_cmpfloat (d->voxel[1], ==, 10 + 7 * i + 1);
    }

  /* Off the grid, or two discs on one voxel: an error naming the file, nothing written. */
  g_autofree char *bad = cs_export_disc_labels_path (dir, "bad");
  g_array_index (discs, CsDisc, 5).voxel[1] = 59.6;
  g_assert_false (cs_export_disc_labels (image, discs, bad, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, bad));
  g_assert_nonnull (strstr (error->message, "C7-T1"));
  g_clear_error (&error);
  g_array_index (discs, CsDisc, 5) = g_array_index (discs, CsDisc, 4);
  g_array_index (discs, CsDisc, 5).value = 8;
  g_assert_false (cs_export_disc_labels (image, discs, bad, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, "same voxel"));
  g_assert_false (g_file_test (bad, G_FILE_TEST_EXISTS));
  cs_test_remove_tree (dir);
}

static void
test_json (void)
{
  g_autofree char *dir = cs_test_make_tmp ("cs-export-XXXXXX");
  g_autofree char *path = g_build_filename (dir, "dataset.json", NULL);
  GRand *rand = g_rand_new_with_seed (3);
  g_autoptr (GPtrArray) cases = random_cases (rand, 5);
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_export_json (cases, path, &error));
  g_assert_no_error (error);
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_assert_true (json_parser_load_from_file (parser, path, &error));
  JsonObject *root = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpstr (json_object_get_string_member (root, "format"), ==, "cordscope-dataset");
  g_assert_cmpint (json_object_get_int_member (root, "version"), ==, 1);
  JsonArray *list = json_object_get_array_member (root, "cases");
  g_assert_cmpuint (json_array_get_length (list), ==, 5);
  for (guint c = 0; c < 5; c++)
    {
      const CsExportCase *ec = cases->pdata[c];
      JsonObject *o = json_array_get_object_element (list, c);
      /* Each entry is the case's sidecar, readable by the sidecar reader. */
      g_autoptr (JsonGenerator) gen = json_generator_new ();
      JsonNode *node = json_array_get_element (list, c);
      json_generator_set_root (gen, node);
      g_autofree char *text = json_generator_to_data (gen, NULL);
      g_autoptr (CsSidecar) s = cs_sidecar_from_json (text, -1, "entry", &error);
      g_assert_no_error (error);
      g_assert_cmpstr (s->case_name, ==, ec->sidecar->case_name);
      g_assert_cmpstr (s->note, ==, ec->sidecar->note);
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        g_assert_cmpint (s->segments[i].label, ==, ec->sidecar->segments[i].label);
      JsonObject *scores = json_object_get_object_member (o, "model_scores");
      for (int i = 0; i < CS_N_SEGMENTS; i++)
        {
          JsonNode *n = json_object_get_member (scores, cs_segment_name (3 + i));
          g_assert_nonnull (n);
          if (isnan (ec->model_score[i]))
            g_assert_true (JSON_NODE_HOLDS_NULL (n));
          else
            g_assert_cmpfloat (json_node_get_double (n), ==, ec->model_score[i]);
        }
    }
  g_rand_free (rand);
  cs_test_remove_tree (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add_func ("/export/csv-round-trip", test_csv_round_trip);
  g_test_add_func ("/export/csv-hand-written", test_csv_hand_written);
  g_test_add_func ("/export/csv-errors", test_csv_errors);
  g_test_add_func ("/export/disc-labels", test_disc_labels);
  g_test_add_func ("/export/json", test_json);
  return g_test_run ();
}
