/* cs-case.c: case discovery in a file, a flat folder or a BIDS tree. */
#include "io/cs-case.h"

#include <stdlib.h>
#include <string.h>

#define CS_SIDECAR_SUFFIX ".cordscope.json"
#define CS_DISCOVER_MAX_DEPTH 2

static const char *const nifti_exts[] = { ".nii.gz", ".nii" };

/* Preferred first. A "*" entry means: any _seg-OTHER variant, in name order. */
static const char *const seg_suffixes[] = { "_seg-manual", "_label-SC_seg", "_seg", "*" };
static const char *const disc_suffixes[] = {
  "_labels-disc-manual", "_label-discs_dlabel", "_labels-disc",
};
static const char *const lesion_suffixes[] = { "_lesion-manual", "_lesion" };
static const char *const vert_suffixes[] = { "_labels-vert" };
static const char *const levels_suffixes[] = { "_levels" };

void
cs_case_free (CsCase *c)
{
  if (c == NULL)
    return;
  g_free (c->name);
  g_free (c->image_path);
  g_free (c->seg_path);
  g_free (c->discs_path);
  g_free (c->lesion_path);
  g_free (c->truth_path);
  g_free (c->vert_labels_path);
  g_free (c->levels_path);
  g_free (c->sidecar_path);
  g_free (c->sidecar_target);
  g_free (c->subject);
  g_free (c->session);
  g_free (c);
}

/* NAME of NAME.nii.gz / NAME.nii, or NULL for other files. */
static char *
nifti_stem (const char *basename)
{
  for (guint e = 0; e < G_N_ELEMENTS (nifti_exts); e++)
    if (g_str_has_suffix (basename, nifti_exts[e])
        && strlen (basename) > strlen (nifti_exts[e]))
      return g_strndup (basename, strlen (basename) - strlen (nifti_exts[e]));
  return NULL;
}

static gboolean
stem_is_label (const char *stem)
{
  static const char *const whole[] = { "seg", "lesion", "levels", "dlabel", "truth" };
  static const char *const prefixes[] = { "seg-", "lesion-", "levels-", "labels-", "label-" };
  const char *last = strrchr (stem, '_');
  if (last == NULL)
    return FALSE;
  last++;
  for (guint i = 0; i < G_N_ELEMENTS (whole); i++)
    if (strcmp (last, whole[i]) == 0)
      return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++)
    if (g_str_has_prefix (last, prefixes[i]))
      return TRUE;
  return FALSE;
}

gboolean
cs_case_is_label_file (const char *path)
{
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *stem = nifti_stem (base);
  return stem != NULL && stem_is_label (stem);
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* Sorted file names of DIR, or NULL (no error) when DIR cannot be listed. */
static GPtrArray *
list_dir (const char *dir, GError **error)
{
  g_autoptr (GDir) d = g_dir_open (dir, 0, error);
  if (d == NULL)
    return NULL;
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *name;
  while ((name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  return names;
}

static char *
find_nifti (const char *dir, const char *stem, const char *suffix)
{
  for (guint e = 0; e < G_N_ELEMENTS (nifti_exts); e++)
    {
      g_autofree char *base = g_strconcat (stem, suffix, nifti_exts[e], NULL);
      char *path = g_build_filename (dir, base, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return path;
      g_free (path);
    }
  return NULL;
}

/* Any STEM_seg-OTHER image in DIR, first in name order. */
static char *
find_seg_variant (const char *dir, const char *stem)
{
  g_autoptr (GPtrArray) names = list_dir (dir, NULL);
  if (names == NULL)
    return NULL;
  g_autofree char *prefix = g_strconcat (stem, "_seg-", NULL);
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *name_stem = nifti_stem (name);
      if (name_stem != NULL && g_str_has_prefix (name, prefix)
          && strchr (name_stem + strlen (prefix), '_') == NULL)
        {
          char *path = g_build_filename (dir, name, NULL);
          if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
            return path;
          g_free (path);
        }
    }
  return NULL;
}

/* The first of SUFFIXES found for STEM in the DIRS (NULL-terminated), in that order. */
static char *
find_label (const char *const *dirs, const char *stem, const char *const *suffixes,
            guint n_suffixes)
{
  for (guint s = 0; s < n_suffixes; s++)
    for (guint d = 0; dirs[d] != NULL; d++)
      {
        char *path = strcmp (suffixes[s], "*") == 0
                       ? find_seg_variant (dirs[d], stem)
                       : find_nifti (dirs[d], stem, suffixes[s]);
        if (path != NULL)
          return path;
      }
  return NULL;
}

static CsCase *
case_new (const char *image_path, const char *const *label_dirs, const char *annotation_dir)
{
  g_autofree char *base = g_path_get_basename (image_path);
  CsCase *c = g_new0 (CsCase, 1);
  c->name = nifti_stem (base);
  if (c->name == NULL)
    c->name = g_strdup (base);
  c->image_path = g_strdup (image_path);
  c->seg_path = find_label (label_dirs, c->name, seg_suffixes, G_N_ELEMENTS (seg_suffixes));
  c->discs_path = find_label (label_dirs, c->name, disc_suffixes,
                              G_N_ELEMENTS (disc_suffixes));
  c->lesion_path = find_label (label_dirs, c->name, lesion_suffixes,
                               G_N_ELEMENTS (lesion_suffixes));
  c->vert_labels_path = find_label (label_dirs, c->name, vert_suffixes,
                                    G_N_ELEMENTS (vert_suffixes));
  c->levels_path = find_label (label_dirs, c->name, levels_suffixes,
                               G_N_ELEMENTS (levels_suffixes));
  g_autofree char *truth = g_strconcat (c->name, "_truth.json", NULL);
  for (guint d = 0; label_dirs[d] != NULL && c->truth_path == NULL; d++)
    {
      char *path = g_build_filename (label_dirs[d], truth, NULL);
      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        c->truth_path = path;
      else
        g_free (path);
    }

  g_autofree char *image_dir = g_path_get_dirname (image_path);
  g_autofree char *sidecar = g_strconcat (c->name, CS_SIDECAR_SUFFIX, NULL);
  c->sidecar_target = g_build_filename (annotation_dir ? annotation_dir : image_dir,
                                        sidecar, NULL);
  if (g_file_test (c->sidecar_target, G_FILE_TEST_IS_REGULAR))
    c->sidecar_path = g_strdup (c->sidecar_target);
  return c;
}

static gboolean
is_dir (const char *path)
{
  return g_file_test (path, G_FILE_TEST_IS_DIR);
}

/* NAME.nii next to NAME.nii.gz is the same case: the .nii.gz is kept. */
static gboolean
has_gz_twin (const char *path)
{
  if (!g_str_has_suffix (path, ".nii"))
    return FALSE;
  g_autofree char *gz = g_strconcat (path, ".gz", NULL);
  return g_file_test (gz, G_FILE_TEST_IS_REGULAR);
}

static gboolean
is_bids_root (const char *dir)
{
  g_autoptr (GPtrArray) names = list_dir (dir, NULL);
  if (names == NULL)
    return FALSE;
  for (guint i = 0; i < names->len; i++)
    if (g_str_has_prefix (names->pdata[i], "sub-"))
      {
        g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);
        if (is_dir (path))
          return TRUE;
      }
  return FALSE;
}

static gboolean
is_bids_t2w (const char *name)
{
  g_autofree char *stem = nifti_stem (name);
  return stem != NULL && g_str_has_prefix (stem, "sub-") && g_str_has_suffix (stem, "_T2w");
}

/* One BIDS anat folder: ROOT/SUB[/SES]/anat, labels in ROOT/derivatives/labels/... */
static void
discover_bids_anat (const char *root, const char *subject, const char *session,
                    const char *annotation_dir, GPtrArray *cases)
{
  g_autofree char *anat = g_build_filename (root, subject, session ? session : "", "anat",
                                            NULL);
  g_autofree char *derived = g_build_filename (root, "derivatives", "labels", subject,
                                               session ? session : "", "anat", NULL);
  g_autoptr (GPtrArray) names = list_dir (anat, NULL);
  if (names == NULL)
    return;
  const char *label_dirs[] = { derived, anat, NULL };
  for (guint i = 0; i < names->len; i++)
    {
      if (!is_bids_t2w (names->pdata[i]))
        continue;
      g_autofree char *image = g_build_filename (anat, names->pdata[i], NULL);
      if (!g_file_test (image, G_FILE_TEST_IS_REGULAR) || has_gz_twin (image))
        continue;
      CsCase *c = case_new (image, label_dirs, annotation_dir);
      c->subject = g_strdup (subject);
      c->session = g_strdup (session);
      g_ptr_array_add (cases, c);
    }
}

static void
discover_bids (const char *root, const char *annotation_dir, GPtrArray *cases)
{
  g_autoptr (GPtrArray) subjects = list_dir (root, NULL);
  for (guint s = 0; subjects != NULL && s < subjects->len; s++)
    {
      const char *subject = subjects->pdata[s];
      g_autofree char *subject_dir = g_build_filename (root, subject, NULL);
      if (!g_str_has_prefix (subject, "sub-") || !is_dir (subject_dir))
        continue;
      discover_bids_anat (root, subject, NULL, annotation_dir, cases);
      g_autoptr (GPtrArray) sessions = list_dir (subject_dir, NULL);
      for (guint e = 0; sessions != NULL && e < sessions->len; e++)
        {
          g_autofree char *session_dir = g_build_filename (subject_dir, sessions->pdata[e],
                                                           NULL);
          if (g_str_has_prefix (sessions->pdata[e], "ses-") && is_dir (session_dir))
            discover_bids_anat (root, subject, sessions->pdata[e], annotation_dir, cases);
        }
    }
}

static void
discover_flat (const char *dir, const char *annotation_dir, int depth, GPtrArray *cases)
{
  if (is_bids_root (dir))
    {
      discover_bids (dir, annotation_dir, cases);
      return;
    }
  g_autoptr (GPtrArray) names = list_dir (dir, NULL);
  if (names == NULL)
    return;
  const char *label_dirs[] = { dir, NULL };
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *path = g_build_filename (dir, name, NULL);
      g_autofree char *stem = nifti_stem (name);
      if (stem != NULL)
        {
          if (has_gz_twin (path))
            continue;
          if (!stem_is_label (stem) && g_file_test (path, G_FILE_TEST_IS_REGULAR))
            g_ptr_array_add (cases, case_new (path, label_dirs, annotation_dir));
        }
      else if (depth < CS_DISCOVER_MAX_DEPTH && name[0] != '.'
               && strcmp (name, "derivatives") != 0 && is_dir (path)
               && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
        discover_flat (path, annotation_dir, depth + 1, cases);
    }
}

/* For an image inside a BIDS tree (ROOT/sub-X[/ses-Y]/anat/FILE): ROOT, subject, session. */
static char *
bids_root_of_image (const char *image_path, char **subject, char **session)
{
  g_autofree char *anat = g_path_get_dirname (image_path);
  g_autofree char *anat_name = g_path_get_basename (anat);
  if (strcmp (anat_name, "anat") != 0)
    return NULL;
  g_autofree char *up = g_path_get_dirname (anat);
  g_autofree char *up_name = g_path_get_basename (up);
  g_autofree char *ses = NULL;
  if (g_str_has_prefix (up_name, "ses-"))
    {
      ses = g_steal_pointer (&up_name);
      char *above = g_path_get_dirname (up);
      g_free (up);
      up = above;
      up_name = g_path_get_basename (up);
    }
  if (!g_str_has_prefix (up_name, "sub-"))
    return NULL;
  *subject = g_steal_pointer (&up_name);
  *session = g_steal_pointer (&ses);
  return g_path_get_dirname (up);
}

static gint
compare_cases (gconstpointer a, gconstpointer b)
{
  const CsCase *x = *(const CsCase *const *) a, *y = *(const CsCase *const *) b;
  int by_name = strcmp (x->name, y->name);
  return by_name != 0 ? by_name : strcmp (x->image_path, y->image_path);
}

GPtrArray *
cs_case_discover_full (const char *path, const char *annotation_dir, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  GPtrArray *cases = g_ptr_array_new_with_free_func ((GDestroyNotify) cs_case_free);

  if (is_dir (path))
    {
      g_autoptr (GError) local = NULL;
      g_autoptr (GPtrArray) probe = list_dir (path, &local);
      if (probe == NULL)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: cannot list the folder: %s",
                       path, local->message);
          g_ptr_array_unref (cases);
          return NULL;
        }
      discover_flat (path, annotation_dir, 0, cases);
      if (cases->len == 0)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN,
                       "%s: no case found (expected NAME.nii.gz or NAME.nii images, or a "
                       "BIDS tree sub-*/anat/*_T2w.nii.gz)", path);
          g_ptr_array_unref (cases);
          return NULL;
        }
    }
  else if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      g_autofree char *base = g_path_get_basename (path);
      g_autofree char *stem = nifti_stem (base);
      if (stem == NULL)
        {
          g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN,
                       "%s: not a NIfTI image (expected a .nii or .nii.gz file)", path);
          g_ptr_array_unref (cases);
          return NULL;
        }
      g_autofree char *dir = g_path_get_dirname (path);
      g_autofree char *subject = NULL, *session = NULL;
      g_autofree char *root = bids_root_of_image (path, &subject, &session);
      g_autofree char *derived = root ? g_build_filename (root, "derivatives", "labels",
                                                          subject, session ? session : "",
                                                          "anat", NULL)
                                      : NULL;
      const char *label_dirs[] = { derived ? derived : dir, derived ? dir : NULL, NULL };
      CsCase *c = case_new (path, label_dirs, annotation_dir);
      c->subject = g_steal_pointer (&subject);
      c->session = g_steal_pointer (&session);
      g_ptr_array_add (cases, c);
    }
  else
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_OPEN, "%s: no such file or folder", path);
      g_ptr_array_unref (cases);
      return NULL;
    }
  g_ptr_array_sort (cases, compare_cases);
  return cases;
}

GPtrArray *
cs_case_discover (const char *path, GError **error)
{
  return cs_case_discover_full (path, NULL, error);
}

int
cs_case_default_slice (const CsVolume *image, const CsVolume *seg)
{
  g_return_val_if_fail (image != NULL, 0);
  int axis = cs_volume_sagittal_axis (image);
  int n = image->dim[axis];
  int middle = n / 2;
  if (seg == NULL || memcmp (seg->dim, image->dim, sizeof seg->dim) != 0)
    return middle;

  g_autofree gint64 *area = g_new0 (gint64, n);
  gsize index = 0;
  for (int k = 0; k < seg->dim[2]; k++)
    for (int j = 0; j < seg->dim[1]; j++)
      for (int i = 0; i < seg->dim[0]; i++, index++)
        if (seg->data[index] > 0.5f)
          {
            const int pos[3] = { i, j, k };
            area[pos[axis]]++;
          }
  int best = middle;
  for (int s = 0; s < n; s++)
    if (area[s] > area[best] || (area[s] == area[best] && abs (s - middle) < abs (best - middle)))
      best = s;
  return best;
}
