/* safetensors-tool: lets the Python tests cross-check our safetensors files with their
 * own reader and writer. "write PATH" writes a known file; "dump PATH" prints every tensor
 * and the metadata of a file as JSON (values with 9 significant digits: exact floats);
 * "model PATH" loads a model file into the engine as an application would: the config
 * from the metadata, then exactly the model's tensor table, into its parameter buffer. */
#include "engine/cs-model.h"
#include "io/cs-safetensors.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const CsTensorSpec known_specs[] = {
  { "cls_token", 3, { 1, 1, 5 } },
  { "blocks.0.attn.qkv.weight", 2, { 6, 7 } },
  { "norm.bias", 1, { 3 } },
};

static int
load_model (const char *path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSafetensors) probe = cs_safetensors_read (path, CS_SAFETENSORS_FORMAT_MODEL,
                                                         NULL, 0, &error);
  CsModelConfig config;
  if (probe == NULL
      || !cs_model_config_from_json (cs_safetensors_metadata (probe, "config"), &config, &error))
    {
      fprintf (stderr, "%s\n", error ? error->message : "no config in the metadata");
      return 1;
    }
  g_autofree char *reason = NULL;
  CsBackend *backend = cs_backend_open ("cpu", 1, &reason);
  CsModel *model = cs_model_new (&config, backend, 0, &error);
  if (model == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  int n = cs_model_n_tensors (model);
  g_autofree CsTensorSpec *specs = g_new0 (CsTensorSpec, n);
  for (int t = 0; t < n; t++)
    {
      const CsTensorInfo *info = cs_model_tensor (model, t);
      specs[t].name = info->name;
      specs[t].n_dims = info->ndim;
      for (int d = 0; d < info->ndim; d++)
        specs[t].shape[d] = info->shape[d];
    }
  g_autoptr (CsSafetensors) file = cs_safetensors_read (path, CS_SAFETENSORS_FORMAT_MODEL,
                                                        specs, n, &error);
  /* The table is in contract order, so the flat buffer is the engine's own layout. */
  int status = 0;
  if (file == NULL || !cs_safetensors_copy_flat (file, specs, n, cs_model_params (model),
                                                 &error))
    {
      fprintf (stderr, "%s\n", error->message);
      status = 1;
    }
  else
    {
      cs_model_host_changed (model);
      double sum = 0;
      const float *params = cs_model_params (model);
      for (size_t i = 0; i < cs_model_n_params (model); i++)
        sum += params[i];
      printf ("{\"tensors\": %d, \"params\": %zu, \"sum\": %.9g}\n", n,
              cs_model_n_params (model), sum);
    }
  cs_model_free (model);
  cs_backend_close (backend);
  return status;
}

int
main (int argc, char **argv)
{
  if (argc != 3 || (strcmp (argv[1], "write") != 0 && strcmp (argv[1], "dump") != 0
                    && strcmp (argv[1], "model") != 0))
    {
      fprintf (stderr, "usage: safetensors-tool write|dump|model PATH\n");
      return 2;
    }
  g_autoptr (GError) error = NULL;
  if (strcmp (argv[1], "model") == 0)
    return load_model (argv[2]);
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
