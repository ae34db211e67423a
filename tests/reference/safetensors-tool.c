/* safetensors-tool: lets the Python test cross-check our safetensors files with its own
 * reader and writer. "write PATH" writes a known file; "dump PATH" prints every tensor
 * and the metadata of a file as JSON (values with 9 significant digits: exact floats). */
#include "io/cs-safetensors.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const CsTensorSpec known_specs[] = {
  { "cls_token", 3, { 1, 1, 5 } },
  { "blocks.0.attn.qkv.weight", 2, { 6, 7 } },
  { "norm.bias", 1, { 3 } },
};

int
main (int argc, char **argv)
{
  if (argc != 3 || (strcmp (argv[1], "write") != 0 && strcmp (argv[1], "dump") != 0))
    {
      fprintf (stderr, "usage: safetensors-tool write|dump PATH\n");
      return 2;
    }
  g_autoptr (GError) error = NULL;
  if (strcmp (argv[1], "write") == 0)
    {
      /* Values the Python side recomputes: sin(i) * 10^(i % 7 - 3) in float32. */
      float values[5 + 42 + 3];
      for (guint i = 0; i < G_N_ELEMENTS (values); i++)
        values[i] = (float) (sin ((double) i) * pow (10.0, (double) (i % 7) - 3.0));
      const char *meta[] = { "format", "cordscope-u2ad", "version", "1",
                             "config", "{\"img_size\": 16}", "note", "caf\xc3\xa9 \"q\"", NULL };
      if (!cs_safetensors_write (argv[2], known_specs, G_N_ELEMENTS (known_specs), values, meta,
                                 &error))
        {
          fprintf (stderr, "%s\n", error->message);
          return 1;
        }
      return 0;
    }
  g_autoptr (CsSafetensors) file = cs_safetensors_read (argv[2], NULL, NULL, 0, &error);
  if (file == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  printf ("{\"tensors\": [");
  for (guint t = 0; t < cs_safetensors_n_tensors (file); t++)
    {
      CsTensorSpec spec;
      const char *name = cs_safetensors_name (file, t);
      const float *data = cs_safetensors_lookup (file, name, &spec);
      printf ("%s{\"name\": \"%s\", \"shape\": [", t ? ", " : "", name);
      for (guint d = 0; d < spec.n_dims; d++)
        printf ("%s%" G_GINT64_FORMAT, d ? ", " : "", spec.shape[d]);
      printf ("], \"values\": [");
      for (gsize i = 0; i < cs_tensor_spec_n_elements (&spec); i++)
        printf ("%s%.9g", i ? ", " : "", (double) data[i]);
      printf ("]}");
    }
  printf ("], \"format\": \"%s\"}\n", cs_safetensors_metadata (file, "format"));
  return 0;
}
