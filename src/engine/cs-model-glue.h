/* cs-model-glue.h: the few model calls the U2AD pipeline needs, behind plain types.
 *
 * Why: cs-model.h and cs-masking.h both define CsPatchState, so no file can include both;
 * the pipeline's files include cs-masking.h / cs-detect.h and reach the network only
 * through these functions (implemented in cs-model-glue.c, which includes cs-model.h). */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _CsModel CsModel;
typedef struct _CsBackend CsBackend;

typedef struct
{
  int img_size;
  int patch;
  double mask_ratio;
  int context_margin;
} CsModelGeometry;

void     cs_glue_model_geometry (const CsModel *model, CsModelGeometry *geometry);

/* Forward of BATCH images [B, H, W] with patch states [B, N] (0 visible, 1 masked,
 * 2 dropped); pred_img [B, N, P*P] (may be NULL); *loss (may be NULL) the batch loss.
 * With grad: backward too (grads zeroed first). */
gboolean cs_glue_forward (CsModel *model, const float *images, const guint8 *states,
                          int batch, gboolean with_grad, float *pred_img, double *loss,
                          double *loss_img, double *loss_edge, GError **error);

/* Adam with the current grads. */
void     cs_glue_adam_step (CsModel *model, float lr);
/* Fresh optimiser: m = v = 0, step 0. */
void     cs_glue_adam_reset (CsModel *model);

/* Loads weights (config from the metadata) onto backend. */
CsModel *cs_glue_model_load (const char *path, CsBackend *backend, GError **error);
/* Writes the model's current weights atomically with its config and the given extra
 * metadata (NULL-terminated key, value list, may be NULL). */
gboolean cs_glue_model_save (CsModel *model, const char *path, const char *const *extra,
                             GError **error);
/* A copy of the parameters, and putting one back (n_params floats). */
gsize    cs_glue_n_params (const CsModel *model);
void     cs_glue_params_get (CsModel *model, float *out);
void     cs_glue_params_set (CsModel *model, const float *in);
char    *cs_glue_config_json (const CsModel *model);
void     cs_glue_model_free (CsModel *model);
/* A fresh model with MAE init from a preset name (tests: "tiny"). */
CsModel *cs_glue_model_new_preset (const char *preset, CsBackend *backend, guint64 seed,
                                   GError **error);
/* A fresh model from a configuration in JSON (engine contract keys). */
CsModel *cs_glue_model_new_config_json (const char *json, CsBackend *backend, guint64 seed,
                                        GError **error);
/* The augmentation of cs-train.h. */
void     cs_glue_augment (float *out, const float *in, int h, int w, GRand *rng);

G_END_DECLS
