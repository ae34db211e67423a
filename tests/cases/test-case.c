/* test-case: case discovery in flat folders and BIDS trees built in a temp folder. */
#include "cs-test-util.h"
#include "io/cs-case.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

static void
touch (const char *root, const char *relpath)
{
  g_autofree char *path = g_build_filename (root, relpath, NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  g_assert_cmpint (g_mkdir_with_parents (dir, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, "", 0, NULL));
}

/* Asserts PATH is ROOT/RELPATH, or NULL when RELPATH is NULL. */
static void
assert_path (const char *path, const char *root, const char *relpath)
{
  if (relpath == NULL)
    {
      g_assert_null (path);
      return;
    }
  g_autofree char *expected = g_build_filename (root, relpath, NULL);
  g_assert_cmpstr (path, ==, expected);
}

static void
test_flat_folder (void)
{
  g_autofree char *root = cs_test_make_tmp ("cs-case-XXXXXX");
  const char *files[] = {
    "a.nii.gz", "a_seg.nii.gz", "a_labels-disc.nii.gz", "a_lesion.nii.gz", "a_truth.json",
    "a_labels-vert.nii.gz", "a_levels.nii.gz", "a.cordscope.json",
    "b.nii", "b_seg.nii", "b_seg-manual.nii",
    "c.nii.gz", "c_seg-partial-C3toC5.nii.gz",
    "d.nii.gz", "d.nii",                         /* one case, the .nii.gz */
    "x_label-SC_seg.nii.gz", "y_label-discs_dlabel.nii.gz", "z_seg-auto.nii", "readme.txt",
    ".hidden/h.nii.gz", "sub/e.nii.gz", "sub/e_seg.nii.gz",
  };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    touch (root, files[i]);

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover (root, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cases->len, ==, 5);
  const char *names[] = { "a", "b", "c", "d", "e" };
  for (guint i = 0; i < cases->len; i++)
    g_assert_cmpstr (((CsCase *) cases->pdata[i])->name, ==, names[i]);

  CsCase *a = cases->pdata[0];
  assert_path (a->image_path, root, "a.nii.gz");
  assert_path (a->seg_path, root, "a_seg.nii.gz");
  assert_path (a->discs_path, root, "a_labels-disc.nii.gz");
  assert_path (a->lesion_path, root, "a_lesion.nii.gz");
  assert_path (a->truth_path, root, "a_truth.json");
  assert_path (a->vert_labels_path, root, "a_labels-vert.nii.gz");
  assert_path (a->levels_path, root, "a_levels.nii.gz");
  assert_path (a->sidecar_path, root, "a.cordscope.json");
  assert_path (a->sidecar_target, root, "a.cordscope.json");
  g_assert_null (a->subject);

  CsCase *b = cases->pdata[1];
  assert_path (b->image_path, root, "b.nii");
  assert_path (b->seg_path, root, "b_seg-manual.nii");    /* manual preferred */
  g_assert_null (b->discs_path);
  g_assert_null (b->sidecar_path);
  assert_path (b->sidecar_target, root, "b.cordscope.json");

  CsCase *c = cases->pdata[2];
  assert_path (c->seg_path, root, "c_seg-partial-C3toC5.nii.gz");   /* a _seg-* variant */
  g_assert_null (c->vert_labels_path);

  assert_path (((CsCase *) cases->pdata[3])->image_path, root, "d.nii.gz");
  CsCase *e = cases->pdata[4];
  assert_path (e->image_path, root, "sub/e.nii.gz");
  assert_path (e->seg_path, root, "sub/e_seg.nii.gz");
  cs_test_remove_tree (root);
}

static void
test_bids_tree (void)
{
  g_autofree char *root = cs_test_make_tmp ("cs-case-XXXXXX");
  const char *files[] = {
    "dataset_description.json",
    "sub-01/anat/sub-01_T2w.nii.gz",
    "sub-01/anat/sub-01_T1w.nii.gz",                     /* not T2w: not a case */
    "sub-01/anat/sub-01_T2w.nii",                        /* the .nii.gz is kept */
    "sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz",
    "sub-02/ses-2/anat/sub-02_ses-2_T2w.nii",
    "sub-02/ses-2/anat/sub-02_ses-2_T2w_lesion.nii",     /* next to the image */
    "derivatives/labels/sub-01/anat/sub-01_T2w_seg.nii.gz",
    "derivatives/labels/sub-01/anat/sub-01_T2w_seg-manual.nii.gz",
    "derivatives/labels/sub-01/anat/sub-01_T2w_labels-disc.nii.gz",
    "derivatives/labels/sub-01/anat/sub-01_T2w_labels-disc-manual.nii.gz",
    "derivatives/labels/sub-02/ses-1/anat/sub-02_ses-1_T2w_label-SC_seg.nii.gz",
    "derivatives/labels/sub-02/ses-1/anat/sub-02_ses-1_T2w_seg.nii.gz",
    "derivatives/labels/sub-02/ses-1/anat/sub-02_ses-1_T2w_labels-disc.nii.gz",
    "derivatives/labels/sub-02/ses-1/anat/sub-02_ses-1_T2w_label-discs_dlabel.nii.gz",
    "derivatives/labels/sub-02/ses-2/anat/sub-02_ses-2_T2w_labels-disc.nii.gz",
  };
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    touch (root, files[i]);
  g_autofree char *annotations = g_build_filename (root, "annotations", NULL);
  touch (root, "annotations/sub-01_T2w.cordscope.json");

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover_full (root, annotations, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cases->len, ==, 3);

  CsCase *s1 = cases->pdata[0];
  g_assert_cmpstr (s1->name, ==, "sub-01_T2w");
  g_assert_cmpstr (s1->subject, ==, "sub-01");
  g_assert_null (s1->session);
  assert_path (s1->image_path, root, "sub-01/anat/sub-01_T2w.nii.gz");
  assert_path (s1->seg_path, root, "derivatives/labels/sub-01/anat/sub-01_T2w_seg-manual.nii.gz");
  assert_path (s1->discs_path, root,
               "derivatives/labels/sub-01/anat/sub-01_T2w_labels-disc-manual.nii.gz");
  assert_path (s1->sidecar_path, root, "annotations/sub-01_T2w.cordscope.json");
  g_assert_null (s1->lesion_path);

  CsCase *s21 = cases->pdata[1];
  g_assert_cmpstr (s21->name, ==, "sub-02_ses-1_T2w");
  g_assert_cmpstr (s21->session, ==, "ses-1");
  assert_path (s21->seg_path, root,
               "derivatives/labels/sub-02/ses-1/anat/sub-02_ses-1_T2w_label-SC_seg.nii.gz");
  assert_path (s21->discs_path, root,
               "derivatives/labels/sub-02/ses-1/anat/sub-02_ses-1_T2w_label-discs_dlabel.nii.gz");
  g_assert_null (s21->sidecar_path);
  assert_path (s21->sidecar_target, root, "annotations/sub-02_ses-1_T2w.cordscope.json");

  CsCase *s22 = cases->pdata[2];
  assert_path (s22->image_path, root, "sub-02/ses-2/anat/sub-02_ses-2_T2w.nii");
  assert_path (s22->discs_path, root,
               "derivatives/labels/sub-02/ses-2/anat/sub-02_ses-2_T2w_labels-disc.nii.gz");
  assert_path (s22->lesion_path, root, "sub-02/ses-2/anat/sub-02_ses-2_T2w_lesion.nii");
  g_assert_null (s22->seg_path);

  /* One image of the tree, opened alone, still finds its derivatives. */
  g_autofree char *one = g_build_filename (root, "sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz",
                                           NULL);
  g_autoptr (GPtrArray) single = cs_case_discover (one, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (single->len, ==, 1);
  CsCase *alone = single->pdata[0];
  g_assert_cmpstr (alone->subject, ==, "sub-02");
  g_assert_cmpstr (alone->session, ==, "ses-1");
  assert_path (alone->seg_path, root,
               "derivatives/labels/sub-02/ses-1/anat/sub-02_ses-1_T2w_label-SC_seg.nii.gz");
  assert_path (alone->sidecar_target, root,
               "sub-02/ses-1/anat/sub-02_ses-1_T2w.cordscope.json");
  cs_test_remove_tree (root);
}

static void
test_single_file (void)
{
  g_autofree char *root = cs_test_make_tmp ("cs-case-XXXXXX");
  touch (root, "scan_T2w.nii.gz");
  touch (root, "scan_T2w_seg.nii.gz");
  touch (root, "scan_T2w_labels-vert.nii.gz");
  touch (root, "other.nii.gz");
  g_autofree char *image = g_build_filename (root, "scan_T2w.nii.gz", NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover (image, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (cases->len, ==, 1);
  CsCase *c = cases->pdata[0];
  g_assert_cmpstr (c->name, ==, "scan_T2w");
  assert_path (c->seg_path, root, "scan_T2w_seg.nii.gz");
  assert_path (c->vert_labels_path, root, "scan_T2w_labels-vert.nii.gz");
  g_assert_null (c->discs_path);   /* vertebral labels are never disc labels */
  cs_test_remove_tree (root);
}

static void
test_errors (void)
{
  g_autofree char *root = cs_test_make_tmp ("cs-case-XXXXXX");
  g_autoptr (GError) error = NULL;

  g_autofree char *missing = g_build_filename (root, "nothing-here", NULL);
  g_assert_null (cs_case_discover (missing, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);

  g_assert_null (cs_case_discover (root, &error));     /* empty folder */
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
  g_assert_nonnull (strstr (error->message, "no case"));
  g_clear_error (&error);

  touch (root, "notes.txt");
  touch (root, "only_seg.nii.gz");                      /* a label alone is no case */
  g_assert_null (cs_case_discover (root, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
  g_clear_error (&error);

  g_autofree char *text = g_build_filename (root, "notes.txt", NULL);
  g_assert_null (cs_case_discover (text, &error));
  g_assert_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN);
  g_assert_nonnull (strstr (error->message, "notes.txt"));
  g_assert_nonnull (strstr (error->message, "NIfTI"));
  cs_test_remove_tree (root);
}

static void
test_label_names (void)
{
  const char *labels[] = {
    "x_seg.nii.gz", "x_seg-manual.nii", "x_label-SC_seg.nii.gz", "x_labels-disc.nii.gz",
    "x_labels-disc-manual.nii.gz", "x_label-discs_dlabel.nii.gz", "x_labels-vert.nii.gz",
    "x_levels.nii.gz", "x_lesion.nii.gz", "dir/x_seg-partial-C3toC5.nii.gz",
  };
  const char *cases[] = {
    "x.nii.gz", "sub-01_T2w.nii.gz", "seg.nii.gz", "x_T2w.nii", "x_seg.json", "errsm30_T2w.nii.gz",
  };
  for (guint i = 0; i < G_N_ELEMENTS (labels); i++)
    g_assert_true (cs_case_is_label_file (labels[i]));
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_false (cs_case_is_label_file (cases[i]));
}

/* A volume of DIM with the sagittal (left-right) axis along AXIS. */
static CsVolume *
volume_with_sagittal_axis (const int dim[3], int axis)
{
  double m[4][4] = { { 0 } };
  /* Voxel AXIS -> x (R), the next -> y (A), the other -> z (S). */
  m[0][axis] = 1.0;
  m[1][(axis + 1) % 3] = 1.0;
  m[2][(axis + 2) % 3] = 1.0;
  m[3][3] = 1.0;
  return cs_volume_new (dim, m);
}

static void
test_default_slice (void)
{
  const int dim[3] = { 8, 10, 12 };
  for (int axis = 0; axis < 3; axis++)
    {
      g_autoptr (CsVolume) image = volume_with_sagittal_axis (dim, axis);
      g_assert_cmpint (cs_volume_sagittal_axis (image), ==, axis);
      g_assert_cmpint (cs_case_default_slice (image, NULL), ==, dim[axis] / 2);

      g_autoptr (CsVolume) seg = cs_volume_new_like (image);
      g_assert_cmpint (cs_case_default_slice (image, seg), ==, dim[axis] / 2);   /* empty */
      /* Cord areas: 3 voxels on slice 1, 5 on middle-1 and 5 on middle+2: the tie goes
       * to the slice nearer the middle; then 7 more on slice 1 make it the largest. */
      int mid = dim[axis] / 2;
      int areas[][2] = { { 1, 3 }, { mid - 1, 5 }, { mid + 2, 5 }, { -1, 0 }, { 1, 4 } };
      for (guint a = 0; a < G_N_ELEMENTS (areas); a++)
        {
          if (areas[a][0] < 0)
            {
              g_assert_cmpint (cs_case_default_slice (image, seg), ==, mid - 1);
              continue;
            }
          for (int n = 0; n < areas[a][1]; n++)
            {
              int pos[3];
              pos[axis] = areas[a][0];
              pos[(axis + 1) % 3] = n;
              pos[(axis + 2) % 3] = a;   /* a different row per group: no overlap */
              seg->data[((gsize) pos[2] * dim[1] + pos[1]) * dim[0] + pos[0]] = 1.0f;
            }
        }
      g_assert_cmpint (cs_case_default_slice (image, seg), ==, 1);

      const int other[3] = { dim[0] + 1, dim[1], dim[2] };
      g_autoptr (CsVolume) mismatched = volume_with_sagittal_axis (other, axis);
      g_assert_cmpint (cs_case_default_slice (image, mismatched), ==, dim[axis] / 2);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/case/flat-folder", test_flat_folder);
  g_test_add_func ("/case/bids-tree", test_bids_tree);
  g_test_add_func ("/case/single-file", test_single_file);
  g_test_add_func ("/case/errors", test_errors);
  g_test_add_func ("/case/label-names", test_label_names);
  g_test_add_func ("/case/default-slice", test_default_slice);
  return g_test_run ();
}
