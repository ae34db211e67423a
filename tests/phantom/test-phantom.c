/* test-phantom: the phantom generator's promises, checked on the volumes it returns.
 * Determinism (and independence from the count), lesions inside the cord and inside the
 * segments the truth lists (worked out here from the disc labels, in mm), disc labels in
 * SCT's order, storage orientations that vary while the anatomy stays right in RAS mm,
 * confounders that change only themselves, and clean failures. */
#include "io/cs-phantom.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

static CsPhantomOptions
small_options (guint64 seed, double rate)
{
  CsPhantomOptions o;
  cs_phantom_options_init (&o);
  o.seed = seed;
  o.lesion_rate = rate;
  o.size = CS_PHANTOM_SIZE_SMALL;
  return o;
}

static gsize
n_voxels (const CsVolume *v)
{
  return (gsize) v->dim[0] * v->dim[1] * v->dim[2];
}

static void
voxel_mm (const CsVolume *v, gsize index, double mm[3])
{
  int i = (int) (index % v->dim[0]);
  int j = (int) ((index / v->dim[0]) % v->dim[1]);
  int k = (int) (index / ((gsize) v->dim[0] * v->dim[1]));
  for (int r = 0; r < 3; r++)
    mm[r] = v->vox2mm[r][0] * i + v->vox2mm[r][1] * j + v->vox2mm[r][2] * k + v->vox2mm[r][3];
}

static int
voxel_axis_index (const CsVolume *v, gsize index, int axis)
{
  gsize strides[3] = { 1, (gsize) v->dim[0], (gsize) v->dim[0] * v->dim[1] };
  return (int) ((index / strides[axis]) % v->dim[axis]);
}

static gboolean
same_volume (const CsVolume *a, const CsVolume *b)
{
  return memcmp (a->dim, b->dim, sizeof a->dim) == 0
         && memcmp (a->vox2mm, b->vox2mm, sizeof a->vox2mm) == 0
         && memcmp (a->data, b->data, n_voxels (a) * sizeof (float)) == 0;
}

/* ---- determinism */

static void
test_determinism (void)
{
  CsPhantomOptions o = small_options (11, 0.5);
  g_autoptr (CsPhantomCase) a = cs_phantom_case_generate (&o, 3);
  g_autoptr (CsPhantomCase) b = cs_phantom_case_generate (&o, 3);
  g_assert_true (same_volume (a->image, b->image));
  g_assert_true (same_volume (a->seg, b->seg));
  g_assert_true (same_volume (a->discs, b->discs));
  g_assert_true (same_volume (a->lesion, b->lesion));
  g_autofree char *ja = cs_phantom_case_truth_json (a);
  g_autofree char *jb = cs_phantom_case_truth_json (b);
  g_assert_cmpstr (ja, ==, jb);
  g_assert_cmpstr (a->name, ==, "phantom-0003");

  CsPhantomOptions o2 = small_options (12, 0.5);
  g_autoptr (CsPhantomCase) c = cs_phantom_case_generate (&o2, 3);
  g_assert_false (n_voxels (a->image) == n_voxels (c->image)
                  && memcmp (a->image->data, c->image->data,
                             n_voxels (a->image) * sizeof (float)) == 0);
  /* neighbouring cases of one series differ too */
  g_autoptr (CsPhantomCase) d = cs_phantom_case_generate (&o, 4);
  g_assert_false (same_volume (a->image, d->image));
}

static char *
read_file (const char *dir, const char *name, gsize *len)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  char *bytes = NULL;
  g_assert_true (g_file_get_contents (path, &bytes, len, NULL));
  return bytes;
}

/* A case's files do not depend on how many cases were made, nor on the threads. */
static void
test_files_independent_of_count (void)
{
  CsPhantomOptions o = small_options (5, 0.5);
  g_autofree char *root = g_dir_make_tmp ("cs-phantom-XXXXXX", NULL);
  g_autofree char *all = g_build_filename (root, "all", NULL);
  g_autofree char *one = g_build_filename (root, "one", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_phantom_generate (&o, all, 0, 3, 2, &error));
  g_assert_no_error (error);
  g_assert_true (cs_phantom_generate (&o, one, 2, 1, 1, &error));
  g_assert_no_error (error);

  const char *suffixes[] = { ".nii.gz", "_seg.nii.gz", "_labels-disc.nii.gz",
                             "_lesion.nii.gz", "_truth.json" };
  for (guint i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *name = g_strconcat ("phantom-0002", suffixes[i], NULL);
      gsize la, lb;
      g_autofree char *fa = read_file (all, name, &la);
      g_autofree char *fb = read_file (one, name, &lb);
      g_assert_cmpuint (la, ==, lb);
      g_assert_true (memcmp (fa, fb, la) == 0);
    }
  g_autofree char *missing = g_build_filename (one, "phantom-0000.nii.gz", NULL);
  g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));

  /* clean up: two folders of five files each */
  const char *dirs[] = { all, one };
  for (guint d = 0; d < 2; d++)
    {
      GDir *gd = g_dir_open (dirs[d], 0, NULL);
      const char *entry;
      while ((entry = g_dir_read_name (gd)) != NULL)
        {
          g_autofree char *p = g_build_filename (dirs[d], entry, NULL);
          g_unlink (p);
        }
      g_dir_close (gd);
      g_rmdir (dirs[d]);
    }
  g_rmdir (root);
}

/* ---- disc labels and segments, worked out from the label volume in mm */

typedef struct
{
  double z[10];        /* S coordinate (mm) of disc value v, NaN if absent */
  double y[10];        /* A coordinate */
  int count[10];
  int slice[10];       /* index along the sagittal axis */
} DiscFound;

static void
find_discs (const CsVolume *discs, DiscFound *f)
{
  int sag = cs_volume_sagittal_axis (discs);
  for (int v = 0; v < 10; v++)
    {
      f->z[v] = f->y[v] = NAN;
      f->count[v] = 0;
      f->slice[v] = -1;
    }
  for (gsize i = 0; i < n_voxels (discs); i++)
    {
      float val = discs->data[i];
      if (val == 0)
        continue;
      int v = (int) val;
      g_assert_cmpfloat (val, ==, (float) v);
      g_assert_cmpint (v, >=, 2);
      g_assert_cmpint (v, <=, 9);
      double mm[3];
      voxel_mm (discs, i, mm);
      f->count[v]++;
      f->z[v] = mm[2];
      f->y[v] = mm[1];
      f->slice[v] = voxel_axis_index (discs, i, sag);
    }
}

static void
check_discs (const CsPhantomCase *pc, DiscFound *f)
{
  find_discs (pc->discs, f);
  for (int v = 3; v <= 8; v++)
    {
      g_assert_cmpint (f->count[v], ==, 1);
      if (v > 3)
        g_assert_cmpfloat (f->z[v], <, f->z[v - 1]);  /* C2-3 most superior */
      g_assert_cmpint (f->slice[v], ==, f->slice[3]);  /* one sagittal slice */
    }
  if (f->count[2])
    g_assert_cmpfloat (f->z[2], >, f->z[3]);
  if (f->count[9])
    g_assert_cmpfloat (f->z[9], <, f->z[8]);
  g_assert_cmpint (f->count[2], <=, 1);
  g_assert_cmpint (f->count[9], <=, 1);
}

/* Segment of a point at height z (mm) from the six disc heights (DESIGN.md: boundaries at
 * the midpoints, the ends extended by half the neighbouring gap); -1 outside them all. */
static int
segment_at (const DiscFound *f, double z)
{
  for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
    {
      int v = k + 3;
      double top = k > 0 ? 0.5 * (f->z[v - 1] + f->z[v]) : f->z[3] + 0.5 * (f->z[3] - f->z[4]);
      double bottom = k < 5 ? 0.5 * (f->z[v] + f->z[v + 1]) : f->z[8] - 0.5 * (f->z[7] - f->z[8]);
      if (z < top && z > bottom)
        return k;
    }
  return -1;
}

static void
test_lesions_and_segments (void)
{
  CsPhantomOptions o = small_options (21, 1.0);
  int abnormal = 0, total_lesions = 0;
  gboolean seen_segment[CS_PHANTOM_N_SEGMENTS] = { FALSE };
  for (guint idx = 0; idx < 10; idx++)
    {
      g_autoptr (CsPhantomCase) pc = cs_phantom_case_generate (&o, idx);
      DiscFound f;
      check_discs (pc, &f);

      gboolean hyper[CS_PHANTOM_N_SEGMENTS] = { FALSE };
      int lesion_voxels = 0;
      for (gsize i = 0; i < n_voxels (pc->lesion); i++)
        {
          if (pc->lesion->data[i] == 0)
            continue;
          g_assert_cmpfloat (pc->lesion->data[i], ==, 1.0f);
          /* inside the cord as the case's own mask has it */
          g_assert_cmpfloat (pc->seg->data[i], ==, 1.0f);
          double mm[3];
          voxel_mm (pc->lesion, i, mm);
          int k = segment_at (&f, mm[2]);
          if (k >= 0)
            hyper[k] = TRUE;
          lesion_voxels++;
        }
      int listed = 0;
      for (guint l = 0; l < pc->n_lesions; l++)
        {
          const CsPhantomLesion *pl = &pc->lesions[l];
          listed += pl->voxels;
          g_assert_cmpint (pl->voxels, >, 0);
          g_assert_true (pc->hyperintense[pl->segment]);
          g_assert_cmpfloat (pl->contrast, >=, 0.1);
          g_assert_cmpfloat (pl->contrast, <=, 0.9);
          g_assert_cmpfloat (pl->length_mm, >=, pl->width_mm * 0.999);
          g_assert_cmpfloat (pl->length_mm, <=, pl->width_mm * 4.001);
          /* the centre lies in the segment it was placed in (the cord's tilt may move
           * an off-centre lesion's centre a little across a boundary) */
          int at = segment_at (&f, pl->centre_mm[2]);
          g_assert_cmpint (ABS (at - pl->segment), <=, 1);
          seen_segment[pl->segment] = TRUE;
        }
      g_assert_cmpint (listed, ==, lesion_voxels);
      g_assert_cmpuint (pc->n_lesions, <=, CS_PHANTOM_MAX_LESIONS);
      for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
        g_assert_cmpint (hyper[k], ==, pc->hyperintense[k]);
      abnormal += pc->n_lesions > 0;
      total_lesions += pc->n_lesions;
    }
  g_assert_cmpint (abnormal, >=, 9);           /* rate 1: every case (one may lose all) */
  g_assert_cmpint (total_lesions, >, abnormal); /* 1-3 per case: some have several */
  int segments_used = 0;
  for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
    segments_used += seen_segment[k];
  g_assert_cmpint (segments_used, >=, 4);

  /* rate 0: no lesions at all */
  CsPhantomOptions none = small_options (21, 0.0);
  for (guint idx = 0; idx < 3; idx++)
    {
      g_autoptr (CsPhantomCase) pc = cs_phantom_case_generate (&none, idx);
      g_assert_cmpuint (pc->n_lesions, ==, 0);
      for (gsize i = 0; i < n_voxels (pc->lesion); i++)
        g_assert_cmpfloat (pc->lesion->data[i], ==, 0.0f);
      for (int k = 0; k < CS_PHANTOM_N_SEGMENTS; k++)
        g_assert_false (pc->hyperintense[k]);
    }
}

/* ---- orientation: stored differently, the anatomy stays right in RAS mm */

static void
test_orientations (void)
{
  CsPhantomOptions o = small_options (8, 0.4);
  GHashTable *codes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint idx = 0; idx < 24; idx++)
    {
      g_autoptr (CsPhantomCase) pc = cs_phantom_case_generate (&o, idx);
      char ax[4];
      cs_volume_axcodes (pc->image, ax);
      g_assert_cmpstr (ax, ==, pc->axcodes);
      g_hash_table_add (codes, g_strdup (ax));
      int sag = cs_volume_sagittal_axis (pc->image);
      g_assert_true (ax[sag] == 'L' || ax[sag] == 'R');
      g_assert_cmpint (pc->image->dim[sag], ==, 9);  /* small phantoms have 9 slices */
      for (int t = 0; t < 3; t++)
        if (t != sag)
          g_assert_cmpfloat (pc->image->pixdim[t], <=, 1.0 + 1e-6);
      g_assert_cmpfloat (pc->image->pixdim[sag], >=, 2.0);

      /* discs are anterior of the cord at their own height: the cord voxels of the disc's
       * slice and row have a smaller A coordinate */
      DiscFound f;
      check_discs (pc, &f);
      double ysum = 0;
      int yn = 0;
      for (gsize i = 0; i < n_voxels (pc->seg); i++)
        {
          if (pc->seg->data[i] == 0 || voxel_axis_index (pc->seg, i, sag) != f.slice[5])
            continue;
          double mm[3];
          voxel_mm (pc->seg, i, mm);
          if (fabs (mm[2] - f.z[5]) < 1.0)
            {
              ysum += mm[1];
              yn++;
            }
        }
      g_assert_cmpint (yn, >, 0);
      g_assert_cmpfloat (ysum / yn, <, f.y[5]);
      g_assert_cmpfloat (f.y[5] - ysum / yn, <, 12);

      /* T2: CSF brighter than cord brighter than air; the truth's levels say so */
      g_assert_cmpfloat (pc->csf_level, >, 2.5 * pc->cord_level);
      g_assert_cmpfloat (pc->cord_level, >, 100);
    }
  g_assert_cmpuint (g_hash_table_size (codes), >=, 5);
  g_hash_table_unref (codes);
}

/* ---- confounders change only themselves */

static void
test_seg_error_only_changes_seg (void)
{
  CsPhantomOptions on = small_options (31, 0.5);
  CsPhantomOptions off = on;
  off.confounders &= ~(guint) CS_PHANTOM_SEG_ERROR;
  gsize extra = 0;
  for (guint idx = 0; idx < 3; idx++)
    {
      g_autoptr (CsPhantomCase) a = cs_phantom_case_generate (&on, idx);
      g_autoptr (CsPhantomCase) b = cs_phantom_case_generate (&off, idx);
      g_assert_true (same_volume (a->image, b->image));
      g_assert_true (same_volume (a->lesion, b->lesion));
      g_assert_true (same_volume (a->discs, b->discs));
      for (gsize i = 0; i < n_voxels (a->seg); i++)
        {
          g_assert_true (b->seg->data[i] == 0 || a->seg->data[i] == 1);  /* off within on */
          extra += a->seg->data[i] != b->seg->data[i];
        }
    }
  g_assert_cmpuint (extra, >, 50);  /* the segmenter spills, in stretches of 1-2 px */

  /* all confounders off: a different image, same disc labels */
  CsPhantomOptions clean = on;
  clean.confounders = 0;
  g_autoptr (CsPhantomCase) a = cs_phantom_case_generate (&on, 0);
  g_autoptr (CsPhantomCase) c = cs_phantom_case_generate (&clean, 0);
  g_assert_true (same_volume (a->discs, c->discs));
  g_assert_false (same_volume (a->image, c->image));
  g_autofree char *json = cs_phantom_case_truth_json (c);
  g_assert_nonnull (strstr (json, "\"gibbs\": false"));
}

static void
test_confounder_names (void)
{
  for (guint bit = 1; bit < CS_PHANTOM_ALL_CONFOUNDERS; bit <<= 1)
    {
      const char *name = cs_phantom_confounder_name (bit);
      g_assert_nonnull (name);
      g_assert_cmpuint (cs_phantom_confounder_from_name (name), ==, bit);
    }
  g_assert_cmpuint (cs_phantom_confounder_from_name ("sparkle"), ==, 0);
  g_assert_cmpstr (cs_phantom_segment_name (0), ==, "C2-3");
  g_assert_cmpstr (cs_phantom_segment_name (5), ==, "C7-T1");
  g_assert_null (cs_phantom_segment_name (6));
}

/* ---- failures: a folder that cannot be made */

static void
test_unwritable_folder (void)
{
  CsPhantomOptions o = small_options (1, 0.5);
  g_autofree char *root = g_dir_make_tmp ("cs-phantom-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (root, "a-file", NULL);
  g_assert_true (g_file_set_contents (file, "x", 1, NULL));
  g_autofree char *under = g_build_filename (file, "out", NULL);
  g_autoptr (GError) error = NULL;
  g_assert_false (cs_phantom_generate (&o, under, 0, 2, 1, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, under));
  g_unlink (file);
  g_rmdir (root);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/phantom/determinism", test_determinism);
  g_test_add_func ("/phantom/files-independent-of-count", test_files_independent_of_count);
  g_test_add_func ("/phantom/lesions-and-segments", test_lesions_and_segments);
  g_test_add_func ("/phantom/orientations", test_orientations);
  g_test_add_func ("/phantom/seg-error-only-changes-seg", test_seg_error_only_changes_seg);
  g_test_add_func ("/phantom/confounder-names", test_confounder_names);
  g_test_add_func ("/phantom/unwritable-folder", test_unwritable_folder);
  return g_test_run ();
}
