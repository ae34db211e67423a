/* cs-model-file.c: model weights in and out of safetensors files. */
#include "cs-config.h"
#include "engine/cs-model-file.h"
#include "io/cs-safetensors.h"
#include "io/cs-volume.h" /* CS_IO_ERROR */

#include <string.h>

/* The model's tensor table as safetensors specs (names borrowed from the model). */
static CsTensorSpec *
model_specs (const CsModel *model, int *n_out)
{
  int n = cs_model_n_tensors (model);
  CsTensorSpec *specs = g_new0 (CsTensorSpec, n);
  for (int t = 0; t < n; t++)
    {
      const CsTensorInfo *info = cs_model_tensor (model, t);
      specs[t].name = info->name;
      specs[t].n_dims = info->ndim;
      for (int d = 0; d < info->ndim; d++)
        specs[t].shape[d] = info->shape[d];
    }
  *n_out = n;
  return specs;
}

CsModel *
cs_model_load (const char *path, CsBackend *backend, GError **error)
{
  g_autoptr (CsSafetensors) probe = cs_safetensors_read (path, CS_SAFETENSORS_FORMAT_MODEL,
                                                         NULL, 0, error);
  if (probe == NULL)
    return NULL;
  const char *config_json = cs_safetensors_metadata (probe, "config");
  CsModelConfig config;
  g_autoptr (GError) local = NULL;
  if (config_json == NULL)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT,
                   "%s: no model configuration (\"config\") in the metadata", path);
      return NULL;
    }
  if (!cs_model_config_from_json (config_json, &config, &local)
      || !cs_model_config_validate (&config, &local))
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_FORMAT, "%s: bad model configuration: %s",
                   path, local->message);
      return NULL;
    }
  CsModel *model = cs_model_new (&config, backend, 0, error);
  if (model == NULL)
    return NULL;
  int n = 0;
  g_autofree CsTensorSpec *specs = model_specs (model, &n);
  g_autoptr (CsSafetensors) file = cs_safetensors_read (path, CS_SAFETENSORS_FORMAT_MODEL,
                                                        specs, n, error);
  if (file == NULL)
    {
      cs_model_free (model);
      return NULL;
    }
  float *params = cs_model_params (model);
  for (int t = 0; t < n; t++)
    {
      const CsTensorInfo *info = cs_model_tensor (model, t);
      const float *data = cs_safetensors_lookup (file, info->name, NULL);
      memcpy (params + info->offset, data, info->numel * sizeof (float));
    }
  cs_model_host_changed (model);
  return model;
}

gboolean
cs_model_save (CsModel *model, const float *params, const char *path,
               const char *const *extra, GError **error)
{
  int n = 0;
  g_autofree CsTensorSpec *specs = model_specs (model, &n);
  g_autofree float *packed = g_new (float, cs_model_n_params (model));
  if (params == NULL)
    params = cs_model_params (model);
  size_t at = 0;
  for (int t = 0; t < n; t++)
    {
      const CsTensorInfo *info = cs_model_tensor (model, t);
      memcpy (packed + at, params + info->offset, info->numel * sizeof (float));
      at += info->numel;
    }
  g_autofree char *config = cs_model_config_to_json (cs_model_get_config (model));
  GPtrArray *meta = g_ptr_array_new ();
  g_ptr_array_add (meta, (gpointer) "format");
  g_ptr_array_add (meta, (gpointer) CS_SAFETENSORS_FORMAT_MODEL);
  g_ptr_array_add (meta, (gpointer) "version");
  g_ptr_array_add (meta, (gpointer) CS_SAFETENSORS_VERSION);
  g_ptr_array_add (meta, (gpointer) "config");
  g_ptr_array_add (meta, config);
  for (int i = 0; extra && extra[i] && extra[i + 1]; i += 2)
    {
      g_ptr_array_add (meta, (gpointer) extra[i]);
      g_ptr_array_add (meta, (gpointer) extra[i + 1]);
    }
  g_ptr_array_add (meta, NULL);
  gboolean ok = cs_safetensors_write (path, specs, n, packed,
                                      (const char *const *) meta->pdata, error);
  g_ptr_array_free (meta, TRUE);
  return ok;
}

