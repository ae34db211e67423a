/* cli-lesion.c: `cordscope-cli lesion IMAGE --out DIR`: a copy of a real case with one
 * lesion of the phantom generator's model in its cord (cs_lesion_insert), so that a
 * detector can be checked on real anatomy with a known lesion. */
#include "cs-cli.h"
#include "io/cs-case.h"
#include "io/cs-phantom.h"
#include "io/cs-volume.h"

#include <errno.h>
#include <math.h>
#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char help[] =
  "Usage: cordscope-cli lesion IMAGE --out DIR [OPTIONS...]\n"
  "\n"
  "Copies the case of IMAGE (the image, its cord mask NAME_seg and its disc or vertebral\n"
  "labels) into DIR with one lesion inserted by the phantom generator's lesion model: an\n"
  "ellipsoid in world axes whose cord voxels move CONTRAST of the way towards the CSF level\n"
  "(the 95th percentile of a 4 mm shell around the cord), full in the core and fading a\n"
  "little towards the rim. Writes NAME_lesion.nii.gz (the truth) beside it and prints the\n"
  "lesion as one JSON object. The source files are never written.\n"
  "\n"
  "Options:\n"
  "  --out DIR           where the new case goes (created if missing; not IMAGE's folder)\n"
  "  --contrast C        0 < C <= 1 (default 0.3)\n"
  "  --length MM         superior-inferior length (default 12)\n"
  "  --ap MM             anterior-posterior width (default 5)\n"
  "  --lr MM             left-right width (default 5)\n"
  "  --centre I,J,K      centre voxel (default: the cord mask's centroid)\n";

static gboolean
parse_positive (const char *text, double *out)
{
  char *end = NULL;
  double v = g_ascii_strtod (text, &end);
  if (end == text || *end != '\0' || !(v > 0.0) || !isfinite (v))
    return FALSE;
  *out = v;
  return TRUE;
}

static gboolean
copy_beside (const char *src, const char *dir, GError **error)
{
  if (src == NULL)
    return TRUE;
  g_autofree char *base = g_path_get_basename (src);
  g_autofree char *dest_path = g_build_filename (dir, base, NULL);
  g_autoptr (GFile) from = g_file_new_for_path (src);
  g_autoptr (GFile) to = g_file_new_for_path (dest_path);
  if (!g_file_copy (from, to, G_FILE_COPY_OVERWRITE, NULL, NULL, NULL, error))
    {
      g_prefix_error (error, "%s: ", dest_path);
      return FALSE;
    }
  return TRUE;
}

int
cs_cli_lesion (int argc, char **argv)
{
  const char *image_path = NULL, *out_dir = NULL;
  CsLesionInsert insert;
  cs_lesion_insert_init (&insert);
  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          fputs (help, stdout);
          return 0;
        }
      if (arg[0] != '-')
        {
          if (image_path != NULL)
            return cs_cli_fail ("lesion", "one IMAGE only (see --help)");
          image_path = arg;
          continue;
        }
      if (value == NULL)
        return cs_cli_fail ("lesion", "%s needs a value (see --help)", arg);
      i++;
      if (strcmp (arg, "--out") == 0)
        out_dir = value;
      else if (strcmp (arg, "--contrast") == 0)
        {
          if (!parse_positive (value, &insert.contrast) || insert.contrast > 1.0)
            return cs_cli_fail ("lesion", "--contrast: '%s' is not in (0, 1]", value);
        }
      else if (strcmp (arg, "--length") == 0 || strcmp (arg, "--ap") == 0
               || strcmp (arg, "--lr") == 0)
        {
          double *target = arg[2] == 'l' && arg[3] == 'e' ? &insert.length_mm
                           : arg[2] == 'a' ? &insert.ap_mm : &insert.lr_mm;
          if (!parse_positive (value, target) || *target > 100.0)
            return cs_cli_fail ("lesion", "%s: '%s' is not a size in mm (0..100]", arg, value);
        }
      else if (strcmp (arg, "--centre") == 0)
        {
          if (sscanf (value, "%lf,%lf,%lf", &insert.centre_vox[0], &insert.centre_vox[1],
                      &insert.centre_vox[2]) != 3)
            return cs_cli_fail ("lesion", "--centre: '%s' is not I,J,K", value);
          insert.have_centre = TRUE;
        }
      else
        return cs_cli_fail ("lesion", "unknown option %s (see --help)", arg);
    }
  if (image_path == NULL || out_dir == NULL)
    return cs_cli_fail ("lesion", "give IMAGE and --out DIR (see --help)");

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover (image_path, &error);
  if (cases == NULL)
    return cs_cli_fail ("lesion", "%s", error->message);
  if (cases->len != 1 || g_file_test (image_path, G_FILE_TEST_IS_DIR))
    return cs_cli_fail ("lesion", "%s: give one image file", image_path);
  const CsCase *c = g_ptr_array_index (cases, 0);
  if (c->seg_path == NULL)
    return cs_cli_fail ("lesion", "%s: no cord mask (NAME_seg) beside it: the lesion goes "
                        "into the cord", c->image_path);

  g_autofree char *src_dir = g_path_get_dirname (c->image_path);
  g_autoptr (GFile) src_folder = g_file_new_for_path (src_dir);
  g_autoptr (GFile) out_folder = g_file_new_for_path (out_dir);
  g_autofree char *src_real = realpath (src_dir, NULL);
  g_autofree char *out_real = realpath (out_dir, NULL);
  if (g_file_equal (src_folder, out_folder)
      || (src_real != NULL && out_real != NULL && strcmp (src_real, out_real) == 0))
    return cs_cli_fail ("lesion", "%s: --out is the case's own folder; the source is never "
                        "overwritten", out_dir);
  if (g_mkdir_with_parents (out_dir, 0755) != 0)
    return cs_cli_fail ("lesion", "%s: cannot create folder: %s", out_dir, g_strerror (errno));

  g_autoptr (CsVolume) image = cs_volume_load (c->image_path, &error);
  g_autoptr (CsVolume) seg = image ? cs_volume_load (c->seg_path, &error) : NULL;
  if (seg == NULL)
    return cs_cli_fail ("lesion", "%s", error->message);
  CsLesionInserted done;
  g_autoptr (CsVolume) lesion = cs_lesion_insert (image, seg, &insert, &done, &error);
  if (lesion == NULL)
    return cs_cli_fail ("lesion", "%s: %s", c->image_path, error->message);

  g_autofree char *base = g_path_get_basename (c->image_path);
  g_autofree char *new_image = g_build_filename (out_dir, base, NULL);
  g_autofree char *lesion_name = g_strconcat (c->name, "_lesion.nii.gz", NULL);
  g_autofree char *lesion_path = g_build_filename (out_dir, lesion_name, NULL);
  /* Integer images keep their type: the new values are rounded, as a scanner's are. */
  if (!cs_volume_save (image, new_image, image->datatype, &error)
      || !cs_volume_save (lesion, lesion_path, DT_UINT8, &error)
      || !copy_beside (c->seg_path, out_dir, &error)
      || !copy_beside (c->discs_path, out_dir, &error)
      || !copy_beside (c->vert_labels_path, out_dir, &error)
      || !copy_beside (c->levels_path, out_dir, &error))
    return cs_cli_fail ("lesion", "%s", error->message);

  printf ("{\"case\": \"%s\", \"image\": \"%s\", \"lesion\": \"%s\", \"voxels\": %" G_GSIZE_FORMAT
          ", \"contrast\": %g, \"length_mm\": %g, \"ap_mm\": %g, \"lr_mm\": %g, "
          "\"centre_vox\": [%.2f, %.2f, %.2f], \"centre_mm\": [%.2f, %.2f, %.2f], "
          "\"csf_level\": %.6g}\n",
          c->name, new_image, lesion_path, done.voxels, insert.contrast, insert.length_mm,
          insert.ap_mm, insert.lr_mm, done.centre_vox[0], done.centre_vox[1],
          done.centre_vox[2], done.centre_mm[0], done.centre_mm[1], done.centre_mm[2],
          done.csf_level);
  return 0;
}
