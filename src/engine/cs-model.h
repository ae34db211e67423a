/* cs-model.h: the U2AD EdgeMAE network (configuration, parameters, forward, backward, Adam).
 *
 * Follows src/engine/CONTRACT.md exactly: parameter names, shapes and order are
 * PyTorch's state_dict of the reference twin. Parameters, gradients and Adam's m and v are
 * each ONE contiguous float buffer in the backend; the tensor table carves them up.
 *
 * Presets (head dim 8 in all; numbers: bench/engine-bench, 2 threads, batch 10, on the shared
 * 2-core EPYC; the efficiency is over an sgemm 1024^3 measured in the same process):
 *   reference  enc 128 x 12 (16 heads), dec 64 x 8 (8 heads), all context. ~986 encoder
 *              tokens per image. Quiet moment: 2.4 img/s training (99 GFLOP/s), 7.6 img/s
 *              inference (104 GFLOP/s) against a 192 GFLOP/s sgemm: train_eff ~0.51,
 *              infer_eff ~0.54 (0.55 / 0.49 in a loaded run).
 *   large      enc 256 x 12 (32 heads), dec 128 x 8 (16 heads), all context: for GPUs.
 *   small      enc 80 x 4 (10 heads), dec 48 x 2 (6 heads), context margin 2 patches (16 px)
 *              around the cord. THE CPU DEFAULT: pretraining 300 phantom slices for 100
 *              epochs took 8.3 min (load average 4-6), 205 MB peak.
 *   tiny       enc 64 x 4 (8 heads), dec 32 x 2 (4 heads), margin 1: quick runs, ~300 img/s.
 * All: img 256, patch 8, MLP ratio 4, mask ratio 0.75.
 */
#pragma once

#include <gio/gio.h> /* errors are G_IO_ERROR */
#include <stdint.h>

#include "cs-backend.h"
#include "cs-patch.h"

G_BEGIN_DECLS

#define CS_ADAM_BETA1 0.9f
#define CS_ADAM_BETA2 0.95f
#define CS_ADAM_EPS   1e-8f
#define CS_LOSS_EDGE_WEIGHT 0.1f
#define CS_LAYERNORM_EPS 1e-5f

typedef struct
{
  int   img_size;       /* H = W */
  int   patch;          /* P */
  int   in_chans;       /* 1 */
  int   enc_dim, enc_depth, enc_heads;
  int   dec_dim, dec_depth, dec_heads;
  float mlp_ratio;      /* hidden = (int) (dim * mlp_ratio) */
  float mask_ratio;     /* fraction of ROI patches masked in training */
  int   context_margin; /* -1 keeps all context; M >= 0 drops context further than M patches */
} CsModelConfig;

/* Fills *config with a named preset ("reference", "large", "small", "tiny"). */
gboolean cs_model_config_preset      (const char *name, CsModelConfig *config, GError **error);
const char *const *cs_model_config_preset_names (void);
/* The CPU default preset's name ("small"). */
const char *cs_model_config_default_cpu (void);
/* Checks divisibility (img % patch, dim % heads) and ranges; error names the field. */
gboolean cs_model_config_validate    (const CsModelConfig *config, GError **error);
/* JSON object with exactly the contract's keys (img_size ... context_margin). */
char    *cs_model_config_to_json     (const CsModelConfig *config);
gboolean cs_model_config_from_json   (const char *json, CsModelConfig *config, GError **error);
gboolean cs_model_config_equal       (const CsModelConfig *a, const CsModelConfig *b);
int      cs_model_config_grid        (const CsModelConfig *config); /* G = img / patch */
int      cs_model_config_n_patches   (const CsModelConfig *config); /* G * G */
size_t   cs_model_config_n_params    (const CsModelConfig *config);
/* Matmul FLOPs (2 x multiply-adds, attention's QK^T and AV included) of one forward pass
 * over sequences of enc_tokens / dec_tokens tokens (class token included). */
double   cs_model_config_forward_flops (const CsModelConfig *config, int enc_tokens,
                                        int dec_tokens);

typedef struct
{
  char   *name;     /* state_dict name, e.g. "blocks.3.attn.qkv.weight" */
  int     ndim;
  int     shape[4];
  size_t  offset;   /* in floats, into the params / grads / m / v buffers */
  size_t  numel;
} CsTensorInfo;

typedef struct _CsModel CsModel;

/* A new model with MAE initialisation drawn from seed (deterministic). The model keeps a
 * reference to backend only; the caller keeps the backend open while the model lives. */
CsModel *cs_model_new    (const CsModelConfig *config, CsBackend *backend, guint64 seed,
                          GError **error);
void     cs_model_free   (CsModel *model);
const CsModelConfig *cs_model_get_config (const CsModel *model);
CsBackend *cs_model_get_backend (const CsModel *model);

/* The tensor table, in contract order. */
int                 cs_model_n_tensors   (const CsModel *model);
const CsTensorInfo *cs_model_tensor      (const CsModel *model, int index);
const CsTensorInfo *cs_model_find_tensor (const CsModel *model, const char *name);
size_t              cs_model_n_params    (const CsModel *model);

/* Host views of the flat buffers (n_params floats each). For a device backend the
 * getter downloads first; after writing into params / m / v call
 * cs_model_host_changed() so the device copy is refreshed. */
float *cs_model_params  (CsModel *model);
float *cs_model_grads   (CsModel *model);
float *cs_model_adam_m  (CsModel *model);
float *cs_model_adam_v  (CsModel *model);
void   cs_model_host_changed (CsModel *model);
/* Copies data (numel floats) into the named parameter. */
gboolean cs_model_set_tensor (CsModel *model, const char *name, const float *data,
                              size_t numel, GError **error);

/* Adam's step count (number of steps taken; the next step is count + 1). */
long   cs_model_get_adam_step (const CsModel *model);
void   cs_model_set_adam_step (CsModel *model, long step);
/* A fresh optimiser: m = v = 0, step count 0 (adaptation starts this way). */
void   cs_model_adam_reset    (CsModel *model);

/* One batch. patch_state [B, N_patches]: 0 visible, 1 masked, 2 dropped. The ROI masks
 * enter only through it (cs_patch_roi_from_mask + cs_patch_state_random below make one
 * from a [H, W] ROI mask; any explicit state may be given, e.g. for parity tests). */
typedef struct
{
  int            batch;        /* B */
  const float   *images;       /* [B, 1, H, W], values in [0, 1] */
  const guint8  *patch_state;  /* [B, N_patches] */
} CsBatch;

typedef struct
{
  double loss_img;   /* L_img: mean over items of the mean over masked patches */
  double loss_edge;  /* L_edge */
  double loss;       /* L_img + 0.1 * L_edge */
  /* Optional outputs (caller-owned, may be NULL): [B, N_patches, P*P] sigmoid predictions
   * for every non-dropped patch (visible ones too); dropped patches are written as 0. */
  float *pred_img;
  float *pred_edge;
} CsForwardOut;

/* Forward pass, loss, and (when with_grad) backward: grads are ZEROED, then filled with
 * d loss / d params. Items with no masked patch contribute no loss and are left out of
 * the batch mean. Returns FALSE with an error on bad input (shape or state). */
gboolean cs_model_forward_backward (CsModel *model, const CsBatch *batch, gboolean with_grad,
                                    CsForwardOut *out, GError **error);
/* One Adam step with the current grads: increments the step count, then updates. */
void     cs_model_adam_step        (CsModel *model, float lr);

/* Masking helpers (host). roi [H, W] uint8 (non-zero = ROI); is_roi [N_patches]. */
void cs_patch_roi_from_mask (const CsModelConfig *config, const guint8 *roi, guint8 *is_roi);
/* state [N_patches]: masks n = R - (int) (R * (1 - mask_ratio)) of the R ROI patches (MAE's
 * len_keep rule), chosen uniformly by rng; drops context beyond context_margin. */
void cs_patch_state_random  (const CsModelConfig *config, const guint8 *is_roi, GRand *rng,
                             guint8 *state);
/* Marks dropped patches (context_margin) in state, leaving ROI patches untouched. */
void cs_patch_state_drop_context (const CsModelConfig *config, const guint8 *is_roi,
                                  guint8 *state);

/* Sobel edge target: out[H, W] = min(1, sqrt(gx^2 + gy^2)), replicate padding. */
void cs_sobel_edge (float *out, const float *img, int H, int W);
/* Loss weight of each patch: 1 + avgpool3x3(mask grid) (zero padding, divide by 9). */
void cs_patch_loss_weight (const guint8 *state, int G, float *weight);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsModel, cs_model_free)

G_END_DECLS
