/* test-cases-real: discovery, default slice, disc and vertebral labels and segment spans
 * on the real scans in $CS_SHARED_DATA/real (skipped, exit 77, when absent).
 *
 * Truth from nibabel (Debian's /usr/bin/python3):
 *   python3 -c "import nibabel as nib, numpy as np; d=np.asarray(nib.load(
 *     'pam50/PAM50small_T2w_labels-disc.nii.gz').dataobj); [print(v, np.argwhere(d==v)
 *     .mean(0)) for v in np.unique(d[d>0])]"
 * PAM50 (70x70x275, L-A-S, 1x1x2 mm): discs 3..8 at voxel (35, 35, k), k = 227, 218, 209,
 * 201, 193, 184 (2 at 235, 9 at 173). Segment boundaries by hand, in voxel k: C2-3 starts
 * at 227 + 9/2 = 231.5; midpoints 222.5, 213.5, 205, 197, 188.5; C7-T1 ends at
 * 184 - 9/2 = 179.5.
 * Largest cord area per sagittal slice (np.sum over the other axes of seg > 0.5, argmax):
 * PAM50 axis 0 -> slice 35 (1272 voxels); errsm30-crop and -full axis 2 -> slice 26 (426).
 * errsm30-crop _labels-vert: C3 (31,44,25), C4 (31,26,25), C5 (32,9,25): derived discs
 * C3-4 at (31, 35, 25), C4-5 at (31.5, 17.5, 25); half gap 8.75 in j: C3-4 spans j 43.75
 * down to 26.25, C4-5 26.25 down to 8.75. errsm30-full _labels-vert: 3 (C3) and 11 (T4). */
#include "io/cs-case.h"
#include "io/cs-labels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *real_dir;

static char *
real_path (const char *relpath)
{
  return g_build_filename (real_dir, relpath, NULL);
}

/* Voxel coordinate AXIS of display point (col, row) on VIEW. */
static double
display_to_voxel (const CsSagittal *view, double col, double row, int axis)
{
  return view->px2vox[axis][0] * col + view->px2vox[axis][1] * row + view->px2vox[axis][3];
}

static const CsCase *
case_named (const GPtrArray *cases, const char *name)
{
  for (guint i = 0; i < cases->len; i++)
    if (strcmp (((const CsCase *) cases->pdata[i])->name, name) == 0)
      return cases->pdata[i];
  return NULL;
}

static void
assert_file (const char *path, const char *relpath)
{
  if (relpath == NULL)
    {
      g_assert_null (path);
      return;
    }
  g_autofree char *expected = real_path (relpath);
  g_assert_cmpstr (path, ==, expected);
}

static void
test_discover_real (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover (real_dir, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cases->len, ==, 3);
  /* Sorted by name (byte order: upper case first). */
  g_assert_cmpstr (((CsCase *) cases->pdata[0])->name, ==, "PAM50small_T2w");
  g_assert_cmpstr (((CsCase *) cases->pdata[1])->name, ==, "errsm30_T2w");
  g_assert_cmpstr (((CsCase *) cases->pdata[2])->name, ==, "errsm30crop_T2w");

  const CsCase *pam = case_named (cases, "PAM50small_T2w");
  assert_file (pam->image_path, "pam50/PAM50small_T2w.nii.gz");
  assert_file (pam->seg_path, "pam50/PAM50small_T2w_seg.nii.gz");
  assert_file (pam->discs_path, "pam50/PAM50small_T2w_labels-disc.nii.gz");
  assert_file (pam->levels_path, "pam50/PAM50small_T2w_levels.nii.gz");
  assert_file (pam->vert_labels_path, NULL);
  assert_file (pam->lesion_path, NULL);

  const CsCase *full = case_named (cases, "errsm30_T2w");
  assert_file (full->image_path, "errsm30-full/errsm30_T2w.nii.gz");
  assert_file (full->seg_path, "errsm30-full/errsm30_T2w_seg-partial-C3toC5.nii.gz");
  assert_file (full->vert_labels_path, "errsm30-full/errsm30_T2w_labels-vert.nii.gz");
  assert_file (full->discs_path, NULL);     /* vertebral labels are not disc labels */

  const CsCase *crop = case_named (cases, "errsm30crop_T2w");
  assert_file (crop->seg_path, "errsm30-crop/errsm30crop_T2w_seg.nii.gz");
  assert_file (crop->vert_labels_path, "errsm30-crop/errsm30crop_T2w_labels-vert.nii.gz");
  assert_file (crop->discs_path, NULL);
}

static void
test_default_slices (void)
{
  const struct { const char *image, *seg; int expected; } cases[] = {
    { "pam50/PAM50small_T2w.nii.gz", "pam50/PAM50small_T2w_seg.nii.gz", 35 },
    { "errsm30-crop/errsm30crop_T2w.nii.gz", "errsm30-crop/errsm30crop_T2w_seg.nii.gz", 26 },
    { "errsm30-full/errsm30_T2w.nii.gz",
      "errsm30-full/errsm30_T2w_seg-partial-C3toC5.nii.gz", 26 },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *ip = real_path (cases[i].image), *sp = real_path (cases[i].seg);
      g_autoptr (CsVolume) image = cs_volume_load (ip, &error);
      g_assert_no_error (error);
      g_autoptr (CsVolume) seg = cs_volume_load (sp, &error);
      g_assert_no_error (error);
      g_assert_cmpint (cs_case_default_slice (image, seg), ==, cases[i].expected);
    }
}

static void
test_pam50_segments (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ip = real_path ("pam50/PAM50small_T2w.nii.gz");
  g_autofree char *dp = real_path ("pam50/PAM50small_T2w_labels-disc.nii.gz");
  g_autoptr (CsVolume) image = cs_volume_load (ip, &error);
  g_assert_no_error (error);
  g_autoptr (GArray) discs = cs_discs_read (dp, CS_LABEL_FILE_DISCS, image, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (discs->len, ==, 18);   /* values 2..19, all kept */

  g_autoptr (CsSagittal) view = cs_volume_extract_sagittal (image, 35);
  g_assert_nonnull (view);
  CsSegment seg[CS_N_SEGMENTS];
  g_assert_true (cs_segments_compute (discs, view, dp, seg, &error));
  g_assert_no_error (error);

  const double disc_k[] = { 227, 218, 209, 201, 193, 184 };
  const double bound_k[] = { 231.5, 222.5, 213.5, 205, 197, 188.5, 179.5 };
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    {
      g_assert_true (seg[s].present);
      g_assert_cmpfloat (seg[s].row_start, <, seg[s].row_end);
      double k_disc = display_to_voxel (view, seg[s].disc_col, seg[s].disc_row, 2);
      double k_start = display_to_voxel (view, seg[s].disc_col, seg[s].row_start, 2);
      double k_end = display_to_voxel (view, seg[s].disc_col, seg[s].row_end, 2);
      g_test_message ("%s rows [%.2f, %.2f) disc row %.2f -> k %.2f .. %.2f", seg[s].name,
                      seg[s].row_start, seg[s].row_end, seg[s].disc_row, k_start, k_end);
      g_assert_cmpfloat_with_epsilon (k_disc, disc_k[s], 1e-6);
      g_assert_cmpfloat_with_epsilon (k_start, bound_k[s], 1e-6);
      g_assert_cmpfloat_with_epsilon (k_end, bound_k[s + 1], 1e-6);
      /* The disc's (i, j) = (35, 35) come back too. */
      g_assert_cmpfloat_with_epsilon (display_to_voxel (view, seg[s].disc_col,
                                                        seg[s].disc_row, 1), 35, 1e-6);
    }
  /* On the native grid (one row per axial slice) the rows are 274 - k. */
  if (view->height == 275)
    for (int s = 0; s < CS_N_SEGMENTS; s++)
      {
        g_assert_cmpfloat_with_epsilon (seg[s].row_start, 274 - bound_k[s], 1e-6);
        g_assert_cmpfloat_with_epsilon (seg[s].row_end, 274 - bound_k[s + 1], 1e-6);
      }

  /* The level map agrees with the disc labels within one voxel along k. */
  g_autofree char *lp = real_path ("pam50/PAM50small_T2w_levels.nii.gz");
  g_autoptr (GArray) from_levels = cs_discs_read (lp, CS_LABEL_FILE_LEVELS, image, &error);
  g_assert_no_error (error);
  for (int v = 3; v <= 8; v++)
    {
      const CsDisc *d = NULL;
      for (guint i = 0; i < from_levels->len; i++)
        if (g_array_index (from_levels, CsDisc, i).value == v)
          d = &g_array_index (from_levels, CsDisc, i);
      g_assert_nonnull (d);
      g_assert_cmpint (d->source, ==, CS_DISC_SOURCE_DERIVED);
      g_test_message ("levels: disc %d at k %.2f (labels: %.0f)", v, d->voxel[2],
                      disc_k[v - 3]);
      g_assert_cmpfloat (fabs (d->voxel[2] - disc_k[v - 3]), <=, 1.0);
    }
}

static void
test_errsm30_vertebrae (void)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *ip = real_path ("errsm30-full/errsm30_T2w.nii.gz");
  g_autofree char *vp = real_path ("errsm30-full/errsm30_T2w_labels-vert.nii.gz");
  g_autoptr (CsVolume) image = cs_volume_load (ip, &error);
  g_assert_no_error (error);
  g_autoptr (GArray) discs = cs_discs_read (vp, CS_LABEL_FILE_VERTEBRAE, image, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (discs->len, ==, 0);      /* C3 and T4 bodies: no disc between them */
  g_autoptr (CsSagittal) view = cs_volume_extract_sagittal (image, 26);
  CsSegment seg[CS_N_SEGMENTS];
  g_assert_false (cs_segments_compute (discs, view, vp, seg, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, "errsm30_T2w_labels-vert"));
  g_clear_error (&error);

  /* The crop's C3, C4, C5 bodies give the two discs between them, and only those. */
  g_autofree char *cp = real_path ("errsm30-crop/errsm30crop_T2w.nii.gz");
  g_autofree char *cvp = real_path ("errsm30-crop/errsm30crop_T2w_labels-vert.nii.gz");
  g_autoptr (CsVolume) crop = cs_volume_load (cp, &error);
  g_assert_no_error (error);
  g_autoptr (GArray) derived = cs_discs_read (cvp, CS_LABEL_FILE_VERTEBRAE, crop, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (derived->len, ==, 2);
  const CsDisc *c34 = &g_array_index (derived, CsDisc, 0);
  const CsDisc *c45 = &g_array_index (derived, CsDisc, 1);
  g_assert_cmpint (c34->value, ==, 4);
  g_assert_cmpint (c45->value, ==, 5);
  const double c34_at[] = { 31, 35, 25 }, c45_at[] = { 31.5, 17.5, 25 };
  for (int a = 0; a < 3; a++)
    {
      g_assert_cmpfloat_with_epsilon (c34->voxel[a], c34_at[a], 1e-9);
      g_assert_cmpfloat_with_epsilon (c45->voxel[a], c45_at[a], 1e-9);
    }
  g_autoptr (CsSagittal) crop_view = cs_volume_extract_sagittal (crop, 26);
  g_assert_true (cs_segments_compute (derived, crop_view, cvp, seg, &error));
  g_assert_no_error (error);
  const double bound_j[] = { 43.75, 26.25, 8.75 };
  for (int s = 0; s < CS_N_SEGMENTS; s++)
    {
      gboolean expected = seg[s].disc_value == 4 || seg[s].disc_value == 5;
      g_assert_cmpint (seg[s].present, ==, expected);
      if (!expected)
        continue;
      int b = seg[s].disc_value - 4;
      g_assert_cmpfloat_with_epsilon (display_to_voxel (crop_view, seg[s].disc_col,
                                                        seg[s].row_start, 1), bound_j[b], 1e-6);
      g_assert_cmpfloat_with_epsilon (display_to_voxel (crop_view, seg[s].disc_col,
                                                        seg[s].row_end, 1), bound_j[b + 1],
                                      1e-6);
    }

  /* A label file on another grid is refused, naming the file. */
  g_autoptr (GArray) wrong = cs_discs_read (vp, CS_LABEL_FILE_VERTEBRAE, crop, &error);
  g_assert_null (wrong);
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, vp));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  const char *shared = g_getenv ("CS_SHARED_DATA");
  real_dir = shared ? g_build_filename (shared, "real", NULL) : NULL;
  g_autofree char *probe = real_dir ? real_path ("pam50/PAM50small_T2w.nii.gz") : NULL;
  if (probe == NULL || !g_file_test (probe, G_FILE_TEST_IS_REGULAR))
    {
      printf ("SKIP: real data not found (CS_SHARED_DATA=%s)\n", shared ? shared : "unset");
      return 77;
    }
  g_test_add_func ("/cases-real/discover", test_discover_real);
  g_test_add_func ("/cases-real/default-slices", test_default_slices);
  g_test_add_func ("/cases-real/pam50-segments", test_pam50_segments);
  g_test_add_func ("/cases-real/errsm30-vertebrae", test_errsm30_vertebrae);
  int status = g_test_run ();
  g_free (real_dir);
  return status;
}
