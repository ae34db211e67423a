/* export-discs-tool: for test_disc_export.py. Writes OUTDIR/case.nii.gz (an obliquely
 * stored image), places the discs given as VALUE:I:J:K through the annotation document's
 * place-disc action, and exports its discs as OUTDIR/case_labels-disc.nii.gz. */
#include <stdio.h>
#include <stdlib.h>

#include "io/cs-annotation.h"
#include "io/cs-export.h"

int
main (int argc, char **argv)
{
  if (argc < 2)
    {
      fprintf (stderr, "usage: %s OUTDIR VALUE:I:J:K...\n", argv[0]);
      return 2;
    }
  const char *dir = argv[1];
  /* Axis 0 points left, 1 inferior, 2 posterior; anisotropic voxels; an offset. */
  int dim[3] = { 11, 70, 50 };
  double aff[4][4] = { { -2.5, 0, 0, 14 }, { 0, 0, -0.6, 25 }, { 0, -0.5, 0, 40 },
                       { 0, 0, 0, 1 } };
  g_autoptr (CsVolume) image = cs_volume_new (dim, aff);
  for (gsize i = 0; i < cs_volume_n_voxels (image); i++)
    image->data[i] = (float) (i % 101);
  g_autoptr (GError) error = NULL;
  g_autofree char *image_path = g_build_filename (dir, "case.nii.gz", NULL);
  if (!cs_volume_save (image, image_path, 4, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  g_autofree char *sidecar = g_build_filename (dir, "case.cordscope.json", NULL);
  g_autoptr (CsAnnotation) doc = cs_annotation_open (sidecar, "case", "case.nii.gz", &error);
  if (doc == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  GActionGroup *actions = cs_annotation_get_action_group (doc);
  for (int a = 2; a < argc; a++)
    {
      int value;
      double i, j, k;
      if (sscanf (argv[a], "%d:%lf:%lf:%lf", &value, &i, &j, &k) != 4)
        {
          fprintf (stderr, "bad disc %s\n", argv[a]);
          return 2;
        }
      g_action_group_activate_action (actions, "place-disc",
                                      g_variant_new ("(iddd)", value, i, j, k));
    }
  g_autoptr (GArray) discs = cs_annotation_dup_discs (doc);
  g_autofree char *out = cs_export_disc_labels_path (dir, "case");
  if (!cs_export_disc_labels (image, discs, out, &error))
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  printf ("%s\n", out);
  return 0;
}
