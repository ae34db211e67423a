/* cs-model-glue.c: the model calls of the U2AD pipeline (see cs-model-glue.h for why). */
#include "cs-config.h"
#include "engine/cs-model-glue.h"
#include "engine/cs-model.h"
#include "engine/cs-train.h"
#include "io/cs-safetensors.h"

#include <string.h>

void
cs_glue_model_geometry (const CsModel *model, CsModelGeometry *geometry)
{
  const CsModelConfig *c = cs_model_get_config (model);
  geometry->img_size = c->img_size;
  geometry->patch = c->patch;
  geometry->mask_ratio = c->mask_ratio;
  geometry->context_margin = c->context_margin;
}

gboolean
cs_glue_forward (CsModel *model, const float *images, const guint8 *states, int batch,
                 gboolean with_grad, float *pred_img, double *loss, double *loss_img,
                 double *loss_edge, GError **error)
{
  CsBatch b = { batch, images, states };
  CsForwardOut out = { 0 };
  out.pred_img = pred_img;
  if (!cs_model_forward_backward (model, &b, with_grad, &out, error))
    return FALSE;
  if (loss)
    *loss = out.loss;
  if (loss_img)
    *loss_img = out.loss_img;
  if (loss_edge)
    *loss_edge = out.loss_edge;
  return TRUE;
}

void
cs_glue_adam_step (CsModel *model, float lr)
{
  cs_model_adam_step (model, lr);
}

void
cs_glue_adam_reset (CsModel *model)
{
  size_t n = cs_model_n_params (model);
  memset (cs_model_adam_m (model), 0, n * sizeof (float));
  memset (cs_model_adam_v (model), 0, n * sizeof (float));
  cs_model_host_changed (model);
  cs_model_set_adam_step (model, 0);
}

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
cs_glue_model_load (const char *path, CsBackend *backend, GError **error)
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
cs_glue_model_save (CsModel *model, const char *path, const char *const *extra,
                    GError **error)
{
  int n = 0;
  g_autofree CsTensorSpec *specs = model_specs (model, &n);
  g_autofree float *packed = g_new (float, cs_model_n_params (model));
  const float *params = cs_model_params (model);
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

gsize
cs_glue_n_params (const CsModel *model)
{
  return cs_model_n_params (model);
}

void
cs_glue_params_get (CsModel *model, float *out)
{
  memcpy (out, cs_model_params (model), cs_model_n_params (model) * sizeof (float));
}

void
cs_glue_params_set (CsModel *model, const float *in)
{
  memcpy (cs_model_params (model), in, cs_model_n_params (model) * sizeof (float));
  cs_model_host_changed (model);
}

char *
cs_glue_config_json (const CsModel *model)
{
  return cs_model_config_to_json (cs_model_get_config (model));
}

void
cs_glue_model_free (CsModel *model)
{
  cs_model_free (model);
}

CsModel *
cs_glue_model_new_preset (const char *preset, CsBackend *backend, guint64 seed,
                          GError **error)
{
  CsModelConfig config;
  if (!cs_model_config_preset (preset, &config, error))
    return NULL;
  return cs_model_new (&config, backend, seed, error);
}

CsModel *
cs_glue_model_new_config_json (const char *json, CsBackend *backend, guint64 seed,
                               GError **error)
{
  CsModelConfig config;
  if (!cs_model_config_from_json (json, &config, error)
      || !cs_model_config_validate (&config, error))
    return NULL;
  return cs_model_new (&config, backend, seed, error);
}

void
cs_glue_augment (float *out, const float *in, int h, int w, GRand *rng)
{
  cs_train_augment (out, in, h, w, rng);
}
