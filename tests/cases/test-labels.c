/* test-labels: disc centroids, vertebral labels and level maps, segment spans. Expected
 * values are worked out by hand in the comments. */
#include "io/cs-labels.h"

#include <math.h>
#include <string.h>

static CsVolume *
identity_volume (int nx, int ny, int nz, const char *path)
{
  const int dim[3] = { nx, ny, nz };
  const double m[4][4] = { { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } };
  CsVolume *v = cs_volume_new (dim, m);
  v->path = g_strdup (path);
  return v;
}

static void
set_voxel (CsVolume *v, int i, int j, int k, float value)
{
  v->data[((gsize) k * v->dim[1] + j) * v->dim[0] + i] = value;
}

static const CsDisc *
find_disc (const GArray *discs, int value)
{
  for (guint i = 0; i < discs->len; i++)
    if (g_array_index (discs, CsDisc, i).value == value)
      return &g_array_index (discs, CsDisc, i);
  return NULL;
}

static void
assert_disc_at (const GArray *discs, int value, double i, double j, double k,
                CsDiscSource source)
{
  const CsDisc *d = find_disc (discs, value);
  g_assert_nonnull (d);
  g_assert_cmpfloat_with_epsilon (d->voxel[0], i, 1e-9);
  g_assert_cmpfloat_with_epsilon (d->voxel[1], j, 1e-9);
  g_assert_cmpfloat_with_epsilon (d->voxel[2], k, 1e-9);
  g_assert_cmpint (d->source, ==, source);
}

static void
test_names (void)
{
  const char *expected[] = { "C2-3", "C3-4", "C4-5", "C5-6", "C6-7", "C7-T1" };
  for (int v = 3; v <= 8; v++)
    g_assert_cmpstr (cs_segment_name (v), ==, expected[v - 3]);
  g_assert_null (cs_segment_name (2));
  g_assert_null (cs_segment_name (9));
  g_assert_cmpstr (cs_disc_name (2), ==, "C1-2");
  g_assert_cmpstr (cs_disc_name (9), ==, "T1-2");
  g_assert_cmpstr (cs_disc_name (20), ==, "T12-L1");
  g_assert_cmpstr (cs_disc_name (25), ==, "L5-S1");
  g_assert_null (cs_disc_name (1));
  g_assert_null (cs_disc_name (50));

  CsLabelFileKind kind;
  g_assert_true (cs_label_file_kind_from_name ("a/x_labels-disc.nii.gz", &kind));
  g_assert_cmpint (kind, ==, CS_LABEL_FILE_DISCS);
  g_assert_true (cs_label_file_kind_from_name ("x_label-discs_dlabel.nii", &kind));
  g_assert_cmpint (kind, ==, CS_LABEL_FILE_DISCS);
  g_assert_true (cs_label_file_kind_from_name ("x_labels-vert.nii.gz", &kind));
  g_assert_cmpint (kind, ==, CS_LABEL_FILE_VERTEBRAE);
  g_assert_true (cs_label_file_kind_from_name ("x_levels.nii.gz", &kind));
  g_assert_cmpint (kind, ==, CS_LABEL_FILE_LEVELS);
  g_assert_false (cs_label_file_kind_from_name ("x_seg.nii.gz", &kind));
  g_assert_false (cs_label_file_kind_from_name ("x_labels-disc.json", &kind));
}

static void
test_disc_centroids (void)
{
  g_autoptr (CsVolume) v = identity_volume (10, 10, 30, "blobs_labels-disc.nii.gz");
  set_voxel (v, 4, 5, 20, 3);   /* a 2-voxel blob: centroid (4.5, 5, 20) */
  set_voxel (v, 5, 5, 20, 3);
  set_voxel (v, 2, 2, 12, 4);   /* one voxel */
  for (int a = 0; a < 2; a++)   /* a 2x2x2 cube: centroid (7.5, 1.5, 3.5) */
    for (int b = 0; b < 2; b++)
      for (int c = 0; c < 2; c++)
        set_voxel (v, 7 + a, 1 + b, 3 + c, 50);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) discs = cs_discs_from_volume (v, CS_LABEL_FILE_DISCS, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (discs->len, ==, 3);
  assert_disc_at (discs, 3, 4.5, 5, 20, CS_DISC_SOURCE_FILE);
  assert_disc_at (discs, 4, 2, 2, 12, CS_DISC_SOURCE_FILE);
  assert_disc_at (discs, 50, 7.5, 1.5, 3.5, CS_DISC_SOURCE_FILE);   /* kept */
  g_assert_cmpint (g_array_index (discs, CsDisc, 0).value, ==, 3);    /* sorted */

  set_voxel (v, 0, 0, 0, 3.5f);
  g_assert_null (cs_discs_from_volume (v, CS_LABEL_FILE_DISCS, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_assert_nonnull (strstr (error->message, "blobs_labels-disc.nii.gz"));
  g_assert_nonnull (strstr (error->message, "(0, 0, 0)"));
  g_clear_error (&error);
  set_voxel (v, 0, 0, 0, NAN);
  g_assert_null (cs_discs_from_volume (v, CS_LABEL_FILE_DISCS, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_clear_error (&error);
  set_voxel (v, 0, 0, 0, -2);
  g_assert_null (cs_discs_from_volume (v, CS_LABEL_FILE_DISCS, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_clear_error (&error);

  g_autoptr (CsVolume) empty = identity_volume (4, 4, 4, "empty.nii.gz");
  g_autoptr (GArray) none = cs_discs_from_volume (empty, CS_LABEL_FILE_DISCS, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);
}

static void
test_vertebrae (void)
{
  g_autoptr (GError) error = NULL;
  /* errsm30-full's layout: C3 and T4 bodies only: no consecutive pair, so no disc, and
   * in particular never "C2-3" (3) or "T3-4" (11) read as discs. */
  g_autoptr (CsVolume) far = identity_volume (10, 10, 30, "far_labels-vert.nii.gz");
  set_voxel (far, 5, 5, 25, 3);
  set_voxel (far, 5, 6, 2, 11);
  g_autoptr (GArray) none = cs_discs_from_volume (far, CS_LABEL_FILE_VERTEBRAE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (none->len, ==, 0);

  /* errsm30-crop's layout: C3, C4, C5 centres (31,44,25), (31,26,25), (32,9,25): disc 4
   * (C3-4) = midpoint of C3 and C4 = (31, 35, 25); disc 5 (C4-5) = (31.5, 17.5, 25). */
  g_autoptr (CsVolume) crop = identity_volume (60, 55, 52, "crop_labels-vert.nii.gz");
  set_voxel (crop, 31, 44, 25, 3);
  set_voxel (crop, 31, 26, 25, 4);
  set_voxel (crop, 32, 9, 25, 5);
  g_autoptr (GArray) derived = cs_discs_from_volume (crop, CS_LABEL_FILE_VERTEBRAE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (derived->len, ==, 2);
  assert_disc_at (derived, 4, 31, 35, 25, CS_DISC_SOURCE_DERIVED);
  assert_disc_at (derived, 5, 31.5, 17.5, 25, CS_DISC_SOURCE_DERIVED);
  g_assert_null (find_disc (derived, 3));

  /* The same voxels read as disc labels would give discs 3, 4, 5: the kinds differ. */
  g_autoptr (GArray) as_discs = cs_discs_from_volume (crop, CS_LABEL_FILE_DISCS, &error);
  g_assert_cmpuint (as_discs->len, ==, 3);
  assert_disc_at (as_discs, 3, 31, 44, 25, CS_DISC_SOURCE_FILE);

  set_voxel (crop, 0, 0, 0, 40);   /* not a vertebra number */
  g_assert_null (cs_discs_from_volume (crop, CS_LABEL_FILE_VERTEBRAE, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_assert_nonnull (strstr (error->message, "crop_labels-vert.nii.gz"));
}

static void
test_levels (void)
{
  /* A 2x1 column of cord along k: level 2 for k 20..25, 3 for 14..19, 4 for 8..13.
   * Disc 3 (C2-3) lies on the 2|3 interface, k = 19.5; disc 4 on 3|4, k = 13.5; the
   * column's centre is i = 1.5 (voxels 1 and 2), j = 4. */
  g_autoptr (CsVolume) v = identity_volume (5, 8, 30, "col_levels.nii.gz");
  for (int k = 8; k <= 25; k++)
    for (int i = 1; i <= 2; i++)
      set_voxel (v, i, 4, k, k >= 20 ? 2 : k >= 14 ? 3 : 4);
  g_autoptr (GError) error = NULL;
  g_autoptr (GArray) discs = cs_discs_from_volume (v, CS_LABEL_FILE_LEVELS, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (discs->len, ==, 2);
  assert_disc_at (discs, 3, 1.5, 4, 19.5, CS_DISC_SOURCE_DERIVED);
  assert_disc_at (discs, 4, 1.5, 4, 13.5, CS_DISC_SOURCE_DERIVED);
}

/* errsm30-like storage, P-S-R, 60 x 55 x 52: display column = i (A->P), display row =
 * 54 - j (S->I), slice k. */
static void
psr_view (CsSagittal *view, int slice)
{
  memset (view, 0, sizeof *view);
  view->width = 60;
  view->height = 55;
  view->slice = slice;
  view->sagittal_axis = 2;
  double m[4][4] = { { 1, 0, 0, 0 }, { 0, -1, 0, 54 }, { 0, 0, 1, slice }, { 0, 0, 0, 1 } };
  memcpy (view->px2vox, m, sizeof m);
}

static GArray *
discs_at_j (const int *values, const double *js, guint n)
{
  GArray *discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (guint i = 0; i < n; i++)
    {
      CsDisc d = { values[i], { 30, js[i], 26 + (int) i % 2 }, CS_DISC_SOURCE_FILE };
      g_array_append_val (discs, d);
    }
  return discs;
}

static void
assert_span (const CsSegment *s, double start, double end)
{
  g_assert_true (s->present);
  g_assert_cmpfloat_with_epsilon (s->row_start, start, 1e-9);
  g_assert_cmpfloat_with_epsilon (s->row_end, end, 1e-9);
}

static void
test_spans (void)
{
  CsSagittal view;
  psr_view (&view, 25);
  CsSegment seg[CS_N_SEGMENTS];
  g_autoptr (GError) error = NULL;

  /* Discs 3..8 at j 50, 42, 34, 27, 20, 12 -> rows 4, 12, 20, 27, 34, 42. Boundaries at
   * the midpoints 8, 16, 23.5, 30.5, 38; the ends extend by half the neighbouring gap:
   * 4 - 4 = 0 and 42 + 4 = 46. */
  const int all[] = { 3, 4, 5, 6, 7, 8 };
  const double js[] = { 50, 42, 34, 27, 20, 12 };
  g_autoptr (GArray) discs = discs_at_j (all, js, 6);
  g_assert_true (cs_segments_compute (discs, &view, "t_labels-disc.nii.gz", seg, &error));
  g_assert_no_error (error);
  const double bounds[] = { 0, 8, 16, 23.5, 30.5, 38, 46 };
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    {
      assert_span (&seg[s], bounds[s], bounds[s + 1]);
      g_assert_cmpint (seg[s].disc_value, ==, s + 3);
      g_assert_cmpfloat_with_epsilon (seg[s].disc_row, 54 - js[s], 1e-9);
      g_assert_cmpfloat_with_epsilon (seg[s].disc_col, 30, 1e-9);
    }
  g_assert_cmpstr (seg[5].name, ==, "C7-T1");
  g_assert_cmpint (cs_segment_at_row (seg, 0), ==, 0);
  g_assert_cmpint (cs_segment_at_row (seg, 23.4), ==, 2);
  g_assert_cmpint (cs_segment_at_row (seg, 23.5), ==, 3);
  g_assert_cmpint (cs_segment_at_row (seg, 46), ==, -1);
  g_assert_cmpint (cs_segment_at_row (seg, -0.1), ==, -1);

  /* Disc 2 (C1-2) and 50 (not a disc) are kept but change no span. */
  const int extra[] = { 2, 3, 4, 5, 6, 7, 8, 50 };
  const double extra_js[] = { 53.5, 50, 42, 34, 27, 20, 12, 5 };
  g_autoptr (GArray) with_extra = discs_at_j (extra, extra_js, 8);
  g_assert_true (cs_segments_compute (with_extra, &view, NULL, seg, &error));
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    assert_span (&seg[s], bounds[s], bounds[s + 1]);

  /* C4-5 (5) missing: C3-4 (row 12) and C5-6 (row 27) are two values apart, so the gap
   * per value is 7.5 and each reaches half of that: C3-4 [8, 15.75), C5-6 [23.25, 30.5). */
  const int missing[] = { 3, 4, 6, 7, 8 };
  const double missing_js[] = { 50, 42, 27, 20, 12 };
  g_autoptr (GArray) gap = discs_at_j (missing, missing_js, 5);
  g_assert_true (cs_segments_compute (gap, &view, NULL, seg, &error));
  assert_span (&seg[0], 0, 8);
  assert_span (&seg[1], 8, 15.75);
  g_assert_false (seg[2].present);
  g_assert_cmpstr (seg[2].name, ==, "C4-5");
  assert_span (&seg[3], 23.25, 30.5);
  assert_span (&seg[5], 38, 46);
  g_assert_cmpint (cs_segment_at_row (seg, 20), ==, -1);

  /* Only the last two (C6-7 at 34, C7-T1 at 42): both extend by 4. */
  const int two[] = { 7, 8 };
  const double two_js[] = { 20, 12 };
  g_autoptr (GArray) pair = discs_at_j (two, two_js, 2);
  g_assert_true (cs_segments_compute (pair, &view, NULL, seg, &error));
  assert_span (&seg[4], 30, 38);
  assert_span (&seg[5], 38, 46);
  for (int s = 0; s < 4; s++)
    g_assert_false (seg[s].present);
}

static void
test_span_errors (void)
{
  CsSagittal view;
  psr_view (&view, 25);
  CsSegment seg[CS_N_SEGMENTS];
  g_autoptr (GError) error = NULL;

  /* C4-5 (5) placed above C3-4 (4). */
  const int values[] = { 3, 4, 5, 6 };
  const double swapped[] = { 50, 34, 42, 27 };
  g_autoptr (GArray) bad = discs_at_j (values, swapped, 4);
  g_assert_false (cs_segments_compute (bad, &view, "bad_labels-disc.nii.gz", seg, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_assert_nonnull (strstr (error->message, "bad_labels-disc.nii.gz"));
  g_assert_nonnull (strstr (error->message, "out of order"));
  g_assert_nonnull (strstr (error->message, "C4-5"));
  g_clear_error (&error);

  /* Two discs on one row are not superior to inferior either. */
  const double flat[] = { 50, 42, 42, 27 };
  g_autoptr (GArray) same = discs_at_j (values, flat, 4);
  g_assert_false (cs_segments_compute (same, &view, "x", seg, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_clear_error (&error);

  /* C1-2 (2) below C2-3: out of order, even though 2 is no segment. */
  const int with2[] = { 2, 3, 4 };
  const double with2_js[] = { 45, 50, 42 };
  g_autoptr (GArray) low2 = discs_at_j (with2, with2_js, 3);
  g_assert_false (cs_segments_compute (low2, &view, "x", seg, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
  g_clear_error (&error);

  /* One segment disc only, or none: no span can be known. */
  const int one[] = { 2, 5, 9 };
  const double one_js[] = { 53, 34, 5 };
  g_autoptr (GArray) lone = discs_at_j (one, one_js, 3);
  g_assert_false (cs_segments_compute (lone, &view, "lone_labels-disc.nii.gz", seg, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, "lone_labels-disc.nii.gz"));
  g_clear_error (&error);
  g_autoptr (GArray) empty = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  g_assert_false (cs_segments_compute (empty, &view, "empty", seg, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, "no disc"));
  g_clear_error (&error);

  /* The same value twice (possible in a sidecar-edited list). */
  const int twice[] = { 3, 3, 4 };
  const double twice_js[] = { 50, 49, 42 };
  g_autoptr (GArray) dup = discs_at_j (twice, twice_js, 3);
  g_assert_false (cs_segments_compute (dup, &view, "x", seg, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_VALUES);
}

/* PAM50-like storage, L-A-S, 70 x 70 x 275 at 1 x 1 x 2 mm, shown at 1 mm per row:
 * display column c -> j = 69 - c, row r -> k = 274 - r / 2, slice i. The discs at
 * k = 227, 218, 209, 201, 193, 184 land on rows 94, 112, 130, 146, 162, 180. */
static void
test_spans_scaled_view (void)
{
  CsSagittal view = { 0 };
  view.width = 70;
  view.height = 550;
  view.sagittal_axis = 0;
  view.slice = 35;
  double m[4][4] = { { 0, 0, 1, 35 }, { -1, 0, 0, 69 }, { 0, -0.5, 0, 274 }, { 0, 0, 0, 1 } };
  memcpy (view.px2vox, m, sizeof m);
  const double ks[] = { 227, 218, 209, 201, 193, 184 };
  g_autoptr (GArray) discs = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  for (int v = 3; v <= 8; v++)
    {
      CsDisc d = { v, { 35, 35, ks[v - 3] }, CS_DISC_SOURCE_FILE };
      g_array_append_val (discs, d);
    }
  CsSegment seg[CS_N_SEGMENTS];
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_segments_compute (discs, &view, NULL, seg, &error));
  g_assert_no_error (error);
  const double bounds[] = { 85, 103, 121, 138, 154, 171, 189 };
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    {
      assert_span (&seg[s], bounds[s], bounds[s + 1]);
      g_assert_cmpfloat_with_epsilon (seg[s].disc_col, 34, 1e-9);
    }
}

static void
test_merge (void)
{
  g_autoptr (GArray) file = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  g_autoptr (GArray) manual = g_array_new (FALSE, TRUE, sizeof (CsDisc));
  CsDisc f3 = { 3, { 1, 2, 3 }, CS_DISC_SOURCE_FILE };
  CsDisc f4 = { 4, { 1, 2, 4 }, CS_DISC_SOURCE_FILE };
  CsDisc m4 = { 4, { 9, 9, 9 }, CS_DISC_SOURCE_MANUAL };
  CsDisc m6 = { 6, { 5, 5, 5 }, CS_DISC_SOURCE_MANUAL };
  g_array_append_val (file, f4);
  g_array_append_val (file, f3);
  g_array_append_val (manual, m6);
  g_array_append_val (manual, m4);
  g_autoptr (GArray) merged = cs_discs_merge (file, manual);
  g_assert_cmpuint (merged->len, ==, 3);
  assert_disc_at (merged, 3, 1, 2, 3, CS_DISC_SOURCE_FILE);
  assert_disc_at (merged, 4, 9, 9, 9, CS_DISC_SOURCE_MANUAL);
  assert_disc_at (merged, 6, 5, 5, 5, CS_DISC_SOURCE_MANUAL);
  for (guint i = 0; i + 1 < merged->len; i++)
    g_assert_cmpint (g_array_index (merged, CsDisc, i).value, <,
                     g_array_index (merged, CsDisc, i + 1).value);
  g_autoptr (GArray) only = cs_discs_merge (NULL, manual);
  g_assert_cmpuint (only->len, ==, 2);
  g_autoptr (GArray) none = cs_discs_merge (NULL, NULL);
  g_assert_cmpuint (none->len, ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/labels/names", test_names);
  g_test_add_func ("/labels/disc-centroids", test_disc_centroids);
  g_test_add_func ("/labels/vertebrae", test_vertebrae);
  g_test_add_func ("/labels/levels", test_levels);
  g_test_add_func ("/labels/spans", test_spans);
  g_test_add_func ("/labels/span-errors", test_span_errors);
  g_test_add_func ("/labels/spans-scaled-view", test_spans_scaled_view);
  g_test_add_func ("/labels/merge", test_merge);
  return g_test_run ();
}
