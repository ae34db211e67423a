/* u2ad-metrics-tool: exposes cs-metrics / cs-detect numerics on raw float32 files so that
 * test-metrics-numpy.py can compare them with an independent numpy implementation.
 *   u2ad-metrics-tool image A.f32 B.f32 HEIGHT WIDTH [MASK.u8]  -> "mse psnr ssim"
 *   u2ad-metrics-tool percentile VALUES.f32 Q                   -> percentile of positives */
#include <stdio.h>
#include <stdlib.h>

#include "engine/cs-detect.h"
#include "engine/cs-metrics.h"

static gpointer
read_raw (const char *path, gsize expected, gsize *length)
{
  g_autoptr (GError) error = NULL;
  gchar *contents = NULL;
  if (!g_file_get_contents (path, &contents, length, &error))
    {
      g_printerr ("%s\n", error->message);
      exit (2);
    }
  if (expected && *length != expected)
    {
      g_printerr ("%s: %" G_GSIZE_FORMAT " bytes, expected %" G_GSIZE_FORMAT "\n", path,
                  *length, expected);
      exit (2);
    }
  return contents;
}

int
main (int argc, char **argv)
{
  gsize length;
  if (argc >= 6 && g_str_equal (argv[1], "image"))
    {
      int height = atoi (argv[4]), width = atoi (argv[5]);
      gsize n = (gsize) height * width;
      g_autofree float *a = read_raw (argv[2], n * sizeof (float), &length);
      g_autofree float *b = read_raw (argv[3], n * sizeof (float), &length);
      g_autofree guint8 *mask = argc >= 7 ? read_raw (argv[6], n, &length) : NULL;
      printf ("%.17g %.17g %.17g\n", cs_mse (a, b, mask, n), cs_psnr (a, b, mask, n),
              cs_ssim (a, b, height, width, mask));
      return 0;
    }
  if (argc == 4 && g_str_equal (argv[1], "percentile"))
    {
      g_autofree float *values = read_raw (argv[2], 0, &length);
      printf ("%.17g\n", cs_percentile_positive (values, length / sizeof (float),
                                                 g_ascii_strtod (argv[3], NULL)));
      return 0;
    }
  g_printerr ("usage: %s image A B H W [MASK] | percentile VALUES Q\n", argv[0]);
  return 2;
}
