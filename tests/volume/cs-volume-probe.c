/* cs-volume-probe: prints what the io layer makes of a file, as JSON, so that Python
 * tests can compare it with nibabel (an independent reader).
 *
 *   cs-volume-probe info FILE [i,j,k ...]    grid, affine, axcodes, voxel values
 *   cs-volume-probe sagittal FILE SLICE      the display slice with its mappings
 *   cs-volume-probe write-map REF OUT        writes a float32 map f(i,j,k) on REF's grid
 */
#include "io/cs-volume.h"

#include <nifti2_io.h>
#include <stdio.h>
#include <stdlib.h>

static void
print_matrix (const char *name, const double m[4][4])
{
  printf ("\"%s\": [", name);
  for (int i = 0; i < 4; i++)
    printf ("[%.17g, %.17g, %.17g, %.17g]%s", m[i][0], m[i][1], m[i][2], m[i][3],
            i < 3 ? ", " : "");
  printf ("]");
}

/* The map written by write-map: distinct, non-integer and sign-changing per voxel. */
static float
map_value (int i, int j, int k)
{
  return (float) (i + 1000.0 * j - 0.25 * k - 7.5);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CsVolume) vol = NULL;

  if (argc < 3)
    {
      fprintf (stderr, "usage: %s info|sagittal|write-map FILE ...\n", argv[0]);
      return 2;
    }
  vol = cs_volume_load (argv[2], &error);
  if (vol == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }

  if (g_str_equal (argv[1], "info"))
    {
      char codes[4];
      cs_volume_axcodes (vol, codes);
      printf ("{\"shape\": [%d, %d, %d], \"axcodes\": \"%s\", \"sagittal_axis\": %d, "
              "\"pixdim\": [%.17g, %.17g, %.17g], \"datatype\": %d, \"version\": %d, ",
              vol->dim[0], vol->dim[1], vol->dim[2], codes, cs_volume_sagittal_axis (vol),
              vol->pixdim[0], vol->pixdim[1], vol->pixdim[2], vol->datatype,
              vol->nifti_version);
      print_matrix ("affine", (const double (*)[4]) vol->vox2mm);
      printf (", \"values\": [");
      for (int a = 3; a < argc; a++)
        {
          int i, j, k;
          if (sscanf (argv[a], "%d,%d,%d", &i, &j, &k) != 3)
            return 2;
          printf ("%.9g%s", cs_volume_at (vol, i, j, k), a + 1 < argc ? ", " : "");
        }
      printf ("]}\n");
      return 0;
    }
  if (g_str_equal (argv[1], "sagittal") && argc == 4)
    {
      g_autoptr (CsSagittal) s = cs_volume_extract_sagittal (vol, atoi (argv[3]));
      if (s == NULL)
        return 1;
      printf ("{\"width\": %d, \"height\": %d, \"spacing\": [%.17g, %.17g], \"slice\": %d, "
              "\"sagittal_axis\": %d, ", s->width, s->height, s->spacing[0], s->spacing[1],
              s->slice, s->sagittal_axis);
      print_matrix ("px2vox", (const double (*)[4]) s->px2vox);
      printf (", ");
      print_matrix ("px2mm", (const double (*)[4]) s->px2mm);
      printf (", \"data\": [");
      for (gsize p = 0; p < (gsize) s->width * s->height; p++)
        printf ("%.9g%s", s->data[p], p + 1 < (gsize) s->width * s->height ? ", " : "");
      printf ("]}\n");
      return 0;
    }
  if (g_str_equal (argv[1], "write-map") && argc == 4)
    {
      g_autoptr (CsVolume) map = cs_volume_new_like (vol);
      for (int k = 0; k < map->dim[2]; k++)
        for (int j = 0; j < map->dim[1]; j++)
          for (int i = 0; i < map->dim[0]; i++)
            map->data[((gsize) k * map->dim[1] + j) * map->dim[0] + i] = map_value (i, j, k);
      if (!cs_volume_save (map, argv[3], DT_FLOAT32, &error))
        {
          fprintf (stderr, "%s\n", error->message);
          return 1;
        }
      return 0;
    }
  fprintf (stderr, "unknown command %s\n", argv[1]);
  return 2;
}
