/* test-centerline: the cord ROI from centerline points, against masks worked out by hand
 * on synthetic slices. */
#include "io/cs-centerline.h"

#include <math.h>
#include <string.h>

#define W 64
#define H 64

/* A display slice: a vertical cord at column 30 (columns 27..33, intensity 100) between
 * CSF (22..26 and 34..38, 300) in tissue (50), pixel spacing SX x SY mm. */
static CsSagittal *
synthetic_slice (double sx, double sy)
{
  CsSagittal *s = g_new0 (CsSagittal, 1);
  s->width = W;
  s->height = H;
  s->spacing[0] = sx;
  s->spacing[1] = sy;
  s->data = g_new (float, W * H);
  for (int r = 0; r < H; r++)
    for (int c = 0; c < W; c++)
      {
        int d = abs (c - 30);
        s->data[r * W + c] = d <= 3 ? 100 : d <= 8 ? 300 : 50;
      }
  /* Display (col, row) = voxel (2, row, col) of a 5 x 64 x 64 volume: any affine will do. */
  s->px2vox[0][3] = 2;
  s->px2vox[1][1] = 1;
  s->px2vox[2][0] = 1;
  s->px2vox[3][3] = 1;
  return s;
}

static void
test_interpolate (void)
{
  /* Through every point; collinear, evenly spaced points give the straight line. */
  CsDisplayPoint line[3] = { { 10, 0 }, { 12, 10 }, { 14, 20 } };
  g_autoptr (GArray) a = cs_centerline_interpolate (line, 3, 0.5);
  g_assert_cmpuint (a->len, >=, 41);
  for (guint i = 0; i < a->len; i++)
    {
      CsDisplayPoint p = g_array_index (a, CsDisplayPoint, i);
      g_assert_cmpfloat_with_epsilon (p.col, 10 + p.row / 5, 1e-9);
      if (i > 0)
        {
          CsDisplayPoint q = g_array_index (a, CsDisplayPoint, i - 1);
          g_assert_cmpfloat (hypot (p.col - q.col, p.row - q.row), <=, 0.5 + 1e-9);
          g_assert_cmpfloat (p.row, >, q.row);
        }
    }
  /* A bent line passes through its middle point, and is smooth there: points just before
   * and after lie on both sides of it along the chord direction (0, 1). */
  CsDisplayPoint bent[3] = { { 10, 0 }, { 20, 10 }, { 10, 20 } };
  g_autoptr (GArray) b = cs_centerline_interpolate (bent, 3, 0.25);
  gboolean through = FALSE;
  double max_col = 0;
  for (guint i = 0; i < b->len; i++)
    {
      CsDisplayPoint p = g_array_index (b, CsDisplayPoint, i);
      through |= p.col == 20 && p.row == 10;
      max_col = MAX (max_col, p.col);
    }
  g_assert_true (through);
  /* Catmull-Rom's tangent at the middle point is (p2 - p0) / 2 = (0, 10): vertical, so the
   * curve peaks there. */
  g_assert_cmpfloat_with_epsilon (max_col, 20, 1e-9);
}

static void
test_tube_known_answer (void)
{
  /* Width 10 mm on 1 mm pixels from (30, 5) to (30, 58): inside iff the pixel centre is
   * within 5 mm of the segment (a capsule). */
  g_autoptr (CsSagittal) s = synthetic_slice (1, 1);
  CsDisplayPoint pts[2] = { { 30, 5 }, { 30, 58 } };
  g_autoptr (GError) error = NULL;
  g_autofree float *mask = cs_centerline_mask_sagittal (s, pts, 2, 10, FALSE, &error);
  g_assert_no_error (error);
  guint n = 0, expected_n = 0;
  for (int r = 0; r < H; r++)
    for (int c = 0; c < W; c++)
      {
        int dr = r < 5 ? 5 - r : r > 58 ? r - 58 : 0;
        int dc = c - 30;
        gboolean inside = dr * dr + dc * dc <= 25;
        g_assert_cmpfloat (mask[r * W + c], ==, inside ? 1 : 0);
        n += mask[r * W + c] > 0;
        expected_n += inside;
      }
  /* 54 rows of 11, plus two caps: rows 1..5 away hold 9, 9, 9, 7, 1 pixels. */
  g_assert_cmpuint (expected_n, ==, 54 * 11 + 2 * (9 + 9 + 9 + 7 + 1));
  g_assert_cmpuint (n, ==, expected_n);

  /* Anisotropic pixels (0.5 mm columns, 2 mm rows): width in mm, so 11 mm wide means
   * |c - 30| * 0.5 <= 5.5, i.e. 23 columns. */
  g_autoptr (CsSagittal) a = synthetic_slice (0.5, 2);
  g_autofree float *m2 = cs_centerline_mask_sagittal (a, pts, 2, 11, FALSE, &error);
  g_assert_no_error (error);
  for (int c = 0; c < W; c++)
    g_assert_cmpfloat (m2[30 * W + c], ==, abs (c - 30) <= 11 ? 1 : 0);
  /* Caps: 5.5 mm around (30, 5) reach rows 3..7 at column 30 (2 mm rows), row 2 is 6 mm. */
  g_assert_cmpfloat (m2[3 * W + 30], ==, 1);
  g_assert_cmpfloat (m2[2 * W + 30], ==, 0);
}

static void
test_refined_excludes_csf (void)
{
  g_autoptr (CsSagittal) s = synthetic_slice (1, 1);
  /* A bright intramedullary lesion near the line (220: brighter than the cord, darker
   * than CSF but above the threshold): kept, since it lies in the core. */
  for (int r = 30; r < 34; r++)
    for (int c = 31; c <= 32; c++)
      s->data[r * W + c] = 220;
  CsDisplayPoint pts[3] = { { 30, 5 }, { 30, 30 }, { 30, 58 } };
  g_autoptr (GError) error = NULL;
  /* Width 14: core within 3.5 mm (the cord), tube within 7 mm (into the CSF). */
  g_autofree float *mask = cs_centerline_mask_sagittal (s, pts, 3, 14, TRUE, &error);
  g_assert_no_error (error);
  for (int r = 5; r <= 58; r++)
    for (int c = 0; c < W; c++)
      g_assert_cmpfloat (mask[r * W + c], ==, abs (c - 30) <= 3 ? 1 : 0);
  g_autofree float *plain = cs_centerline_mask_sagittal (s, pts, 3, 14, FALSE, &error);
  for (int c = 0; c < W; c++)
    g_assert_cmpfloat (plain[20 * W + c], ==, abs (c - 30) <= 7 ? 1 : 0);

  /* A cord off the line by 2 px: the core (3.5 mm) still holds cord; CSF beyond it goes.
   * Line at column 28: the core is 25..31 (25, 26 are CSF but in the core), the rest of
   * the tube (21..24 and 32..35) is kept up to the first CSF pixel: 32, 33 (cord) stay,
   * 34, 35 (CSF) go, and 21..24 (CSF) go. */
  CsDisplayPoint off[2] = { { 28, 5 }, { 28, 58 } };
  g_autofree float *m3 = cs_centerline_mask_sagittal (s, off, 2, 14, TRUE, &error);
  g_assert_no_error (error);
  for (int c = 0; c < W; c++)
    g_assert_cmpfloat (m3[20 * W + c], ==, c >= 25 && c <= 33 ? 1 : 0);
}

static void
test_errors (void)
{
  g_autoptr (CsSagittal) s = synthetic_slice (1, 1);
  CsDisplayPoint pts[2] = { { 30, 5 }, { NAN, 58 } };
  g_autoptr (GError) error = NULL;
  g_assert_null (cs_centerline_mask_sagittal (s, pts, 1, 10, FALSE, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, "at least 2 points"));
  g_clear_error (&error);
  g_assert_null (cs_centerline_mask_sagittal (s, pts, 2, 10, FALSE, &error));
  g_assert_nonnull (strstr (error->message, "point 2"));
  g_clear_error (&error);
  pts[1].col = 30;
  g_assert_null (cs_centerline_mask_sagittal (s, pts, 2, 0, FALSE, &error));
  g_assert_nonnull (strstr (error->message, "width"));
}

static void
test_volume (void)
{
  /* RAS-ish storage: axis 0 is left-right (sagittal), 1 is A-P, 2 is S-I. */
  int dim[3] = { 7, 48, 64 };
  double aff[4][4] = { { 2, 0, 0, -6 }, { 0, 0.8, 0, -20 }, { 0, 0, 0.8, -30 },
                       { 0, 0, 0, 1 } };
  g_autoptr (CsVolume) image = cs_volume_new (dim, aff);
  image->path = g_strdup ("synthetic.nii.gz");
  for (gsize i = 0; i < cs_volume_n_voxels (image); i++)
    image->data[i] = 100;
  CsCenterlinePoint pts[3] = { { { 3, 20, 60 } }, { { 3.2, 22, 30 } }, { { 2.9, 20, 4 } } };
  g_autoptr (GError) error = NULL;
  int slice = -1;
  g_autoptr (CsVolume) mask = cs_centerline_mask_volume (image, pts, 3, 4, FALSE, &slice,
                                                         &error);
  g_assert_no_error (error);
  g_assert_cmpint (slice, ==, 3);
  g_assert_cmpmem (mask->dim, sizeof mask->dim, image->dim, sizeof image->dim);
  /* Only slice 3 holds the ROI, and it matches the display mask of that slice. */
  g_autoptr (CsSagittal) view = cs_volume_extract_sagittal (image, 3);
  CsDisplayPoint display[3];
  for (int i = 0; i < 3; i++)
    cs_sagittal_voxel_to_display (view, pts[i].voxel, &display[i].col, &display[i].row);
  g_autofree float *expect = cs_centerline_mask_sagittal (view, display, 3, 4, FALSE, &error);
  g_autoptr (CsSagittal) got = cs_volume_extract_sagittal (mask, 3);
  g_assert_cmpmem (got->data, sizeof (float) * got->width * got->height, expect,
                   sizeof (float) * view->width * view->height);
  guint on_slice = 0, total = 0;
  for (int k = 0; k < dim[2]; k++)
    for (int j = 0; j < dim[1]; j++)
      for (int i = 0; i < dim[0]; i++)
        {
          float v = cs_volume_at (mask, i, j, k);
          total += v > 0;
          on_slice += v > 0 && i == 3;
        }
  g_assert_cmpuint (total, ==, on_slice);
  /* Near the middle point (j = 22, k = 30), 4 mm wide on 0.8 mm voxels: j 20..24. */
  g_assert_cmpfloat (cs_volume_at (mask, 3, 22, 30), ==, 1);
  g_assert_cmpfloat (cs_volume_at (mask, 3, 24, 30), ==, 1);
  g_assert_cmpfloat (cs_volume_at (mask, 3, 25, 30), ==, 0);
  g_assert_cmpuint (total, >, 60 * 4);

  CsCenterlinePoint far[2] = { { { 3, 400, 60 } }, { { 3, 400, 4 } } };
  g_assert_null (cs_centerline_mask_volume (image, far, 2, 4, FALSE, NULL, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, "empty"));
  g_clear_error (&error);
  CsCenterlinePoint outside[2] = { { { 9, 20, 60 } }, { { 9, 20, 4 } } };
  g_assert_null (cs_centerline_mask_volume (image, outside, 2, 4, FALSE, NULL, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY);
  g_assert_nonnull (strstr (error->message, "synthetic.nii.gz"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/centerline/interpolate", test_interpolate);
  g_test_add_func ("/centerline/tube-known-answer", test_tube_known_answer);
  g_test_add_func ("/centerline/refined-excludes-csf", test_refined_excludes_csf);
  g_test_add_func ("/centerline/errors", test_errors);
  g_test_add_func ("/centerline/volume", test_volume);
  return g_test_run ();
}
