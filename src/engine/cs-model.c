/* cs-model.c: the EdgeMAE network: tensor table, MAE init, forward, backward, Adam.
 *
 * Tokens of all batch items are packed one after the other (each item has its own
 * number of kept and non-dropped patches); linear layers, LayerNorm and GELU run on the
 * packed matrix, attention per item. Activations live in one arena sized for the
 * largest batch seen. */
#include "cs-model.h"

#include <math.h>
#include <string.h>

#include "cs-cpu-ops.h"
#include "cs-simd.h"

typedef struct
{
  size_t ln1_w, ln1_b, qkv_w, qkv_b, proj_w, proj_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
} BlockParams;

typedef struct
{
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *lse, *res_mid, *ln2, *ln2_mean, *ln2_rstd;
  float *fc1, *gelu;
} BlockActs;

typedef struct
{
  size_t norm_w, norm_b, fc_w, fc_b;
} HeadParams;

typedef struct
{
  float *ln, *mean, *rstd, *logit, *pred, *dlogit;
} HeadActs;

struct _CsModel
{
  CsModelConfig config;
  CsBackend *be;
  int E, Dd, PP, N, G, enc_hidden, dec_hidden;

  GPtrArray *tensors; /* CsTensorInfo* */
  size_t n_params;
  float *params, *grads, *m, *v;           /* backend buffers */
  float *host_params, *host_grads, *host_m, *host_v; /* host mirrors (device backends) */
  long step;

  size_t o_cls, o_mask, o_pe_w, o_pe_b, o_norm_w, o_norm_b, o_de_w, o_de_b;
  BlockParams *enc, *dec;
  HeadParams head[2]; /* image, edge */

  float *pos_enc, *pos_dec;                /* backend, [N, E] and [N, Dd] */

  /* activation arena, for batches up to cap_batch items and cap_tokens packed tokens (the
   * larger of encoder and decoder); without gradients the layers share one set of buffers
   * (arena_light), so inference needs a fraction of the memory */
  int cap_batch;
  size_t cap_tokens;
  gboolean arena_light;
  float *arena;
  float *patches, **res_enc, *enc_norm, *enc_norm_mean, *enc_norm_rstd, *dec_in;
  float **res_dec, *target[2], *coef;
  BlockActs *enc_acts, *dec_acts;
  HeadActs head_acts[2];
  float *d_res, *d_ln, *d_att, *d_qkv, *d_hid1, *d_hid2;
  int *idx; /* enc_patch, enc_off, enc_len, dec_src, dec_patch, dec_off, dec_len */
  /* host staging of a batch's inputs (the arena itself on the CPU backend: no copies) */
  int *h_idx;
  float *h_patches, *h_target, *h_coef, *h_edge, *h_weight;
};

/* ---------------------------------------------------------------- tensor table */

static size_t
add_tensor (CsModel *model, int ndim, const int *shape, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);

static size_t
add_tensor (CsModel *model, int ndim, const int *shape, const char *fmt, ...)
{
  CsTensorInfo *t = g_new0 (CsTensorInfo, 1);
  va_list ap;

  va_start (ap, fmt);
  t->name = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  t->ndim = ndim;
  t->numel = 1;
  for (int i = 0; i < ndim; i++)
    {
      t->shape[i] = shape[i];
      t->numel *= shape[i];
    }
  t->offset = model->n_params;
  model->n_params += t->numel;
  g_ptr_array_add (model->tensors, t);
  return t->offset;
}

static void
tensor_info_free (gpointer data)
{
  CsTensorInfo *t = data;
  g_free (t->name);
  g_free (t);
}

#define SHAPE(...) ((const int[]) { __VA_ARGS__ })

static void
add_block (CsModel *model, BlockParams *bp, const char *prefix, int i, int C, int H)
{
  bp->ln1_w = add_tensor (model, 1, SHAPE (C), "%s.%d.norm1.weight", prefix, i);
  bp->ln1_b = add_tensor (model, 1, SHAPE (C), "%s.%d.norm1.bias", prefix, i);
  bp->qkv_w = add_tensor (model, 2, SHAPE (3 * C, C), "%s.%d.attn.qkv.weight", prefix, i);
  bp->qkv_b = add_tensor (model, 1, SHAPE (3 * C), "%s.%d.attn.qkv.bias", prefix, i);
  bp->proj_w = add_tensor (model, 2, SHAPE (C, C), "%s.%d.attn.proj.weight", prefix, i);
  bp->proj_b = add_tensor (model, 1, SHAPE (C), "%s.%d.attn.proj.bias", prefix, i);
  bp->ln2_w = add_tensor (model, 1, SHAPE (C), "%s.%d.norm2.weight", prefix, i);
  bp->ln2_b = add_tensor (model, 1, SHAPE (C), "%s.%d.norm2.bias", prefix, i);
  bp->fc1_w = add_tensor (model, 2, SHAPE (H, C), "%s.%d.mlp.fc1.weight", prefix, i);
  bp->fc1_b = add_tensor (model, 1, SHAPE (H), "%s.%d.mlp.fc1.bias", prefix, i);
  bp->fc2_w = add_tensor (model, 2, SHAPE (C, H), "%s.%d.mlp.fc2.weight", prefix, i);
  bp->fc2_b = add_tensor (model, 1, SHAPE (C), "%s.%d.mlp.fc2.bias", prefix, i);
}

static void
build_table (CsModel *model)
{
  int E = model->E, D = model->Dd, PP = model->PP;
  const char *heads[2] = { "head_img", "head_edge" };

  model->o_cls = add_tensor (model, 3, SHAPE (1, 1, E), "cls_token");
  model->o_mask = add_tensor (model, 3, SHAPE (1, 1, D), "mask_token");
  model->o_pe_w = add_tensor (model, 2, SHAPE (E, PP), "patch_embed.weight");
  model->o_pe_b = add_tensor (model, 1, SHAPE (E), "patch_embed.bias");
  for (int i = 0; i < model->config.enc_depth; i++)
    add_block (model, &model->enc[i], "blocks", i, E, model->enc_hidden);
  model->o_norm_w = add_tensor (model, 1, SHAPE (E), "norm.weight");
  model->o_norm_b = add_tensor (model, 1, SHAPE (E), "norm.bias");
  model->o_de_w = add_tensor (model, 2, SHAPE (D, E), "decoder_embed.weight");
  model->o_de_b = add_tensor (model, 1, SHAPE (D), "decoder_embed.bias");
  for (int i = 0; i < model->config.dec_depth; i++)
    add_block (model, &model->dec[i], "decoder_blocks", i, D, model->dec_hidden);
  for (int h = 0; h < 2; h++)
    {
      model->head[h].norm_w = add_tensor (model, 1, SHAPE (D), "%s.norm.weight", heads[h]);
      model->head[h].norm_b = add_tensor (model, 1, SHAPE (D), "%s.norm.bias", heads[h]);
      model->head[h].fc_w = add_tensor (model, 2, SHAPE (PP, D), "%s.fc.weight", heads[h]);
      model->head[h].fc_b = add_tensor (model, 1, SHAPE (PP), "%s.fc.bias", heads[h]);
    }
}

/* ---------------------------------------------------------------- init */

static double
rng_normal (GRand *rng)
{
  /* Box-Muller, one value per pair of uniforms: simple and reproducible */
  double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
  return sqrt (-2.0 * log (1.0 - u1)) * cos (2.0 * G_PI * u2);
}

static void
mae_init (CsModel *model, float *p, guint64 seed)
{
  guint32 seed_words[2] = { (guint32) seed, (guint32) (seed >> 32) };
  g_autoptr (GRand) rng = g_rand_new_with_seed_array (seed_words, 2);

  for (guint i = 0; i < model->tensors->len; i++)
    {
      const CsTensorInfo *t = g_ptr_array_index (model->tensors, i);
      float *x = p + t->offset;
      gboolean is_token = g_str_has_suffix (t->name, "_token");
      gboolean is_norm = strstr (t->name, "norm") != NULL;

      if (is_token)
        for (size_t k = 0; k < t->numel; k++)
          x[k] = (float) (0.02 * rng_normal (rng));
      else if (t->ndim == 2)
        {
          /* xavier_uniform: fan_out = shape[0], fan_in = shape[1] */
          double a = sqrt (6.0 / (t->shape[0] + t->shape[1]));
          for (size_t k = 0; k < t->numel; k++)
            x[k] = (float) g_rand_double_range (rng, -a, a);
        }
      else if (is_norm && g_str_has_suffix (t->name, ".weight"))
        for (size_t k = 0; k < t->numel; k++)
          x[k] = 1.0f;
      else
        memset (x, 0, sizeof (float) * t->numel);
    }
}

/* ---------------------------------------------------------------- lifetime */

CsModel *
cs_model_new (const CsModelConfig *config, CsBackend *backend, guint64 seed, GError **error)
{
  CsModel *model;
  CsBackend *be = backend;
  size_t bytes;
  float *host_init;
  int G;

  if (!cs_model_config_validate (config, error))
    return NULL;
  model = g_new0 (CsModel, 1);
  model->config = *config;
  model->be = be;
  model->E = config->enc_dim;
  model->Dd = config->dec_dim;
  model->PP = config->patch * config->patch;
  G = model->G = cs_model_config_grid (config);
  model->N = G * G;
  model->enc_hidden = (int) (config->enc_dim * config->mlp_ratio);
  model->dec_hidden = (int) (config->dec_dim * config->mlp_ratio);
  model->enc = g_new0 (BlockParams, config->enc_depth);
  model->dec = g_new0 (BlockParams, config->dec_depth);
  model->tensors = g_ptr_array_new_with_free_func (tensor_info_free);
  build_table (model);
  g_assert (model->n_params == cs_model_config_n_params (config));

  bytes = sizeof (float) * model->n_params;
  model->params = be->ops->alloc (be, bytes);
  model->grads = be->ops->alloc (be, bytes);
  model->m = be->ops->alloc (be, bytes);
  model->v = be->ops->alloc (be, bytes);
  if (cs_backend_is_host (be))
    {
      model->host_params = model->params;
      model->host_grads = model->grads;
      model->host_m = model->m;
      model->host_v = model->v;
    }
  else
    {
      model->host_params = g_malloc0 (bytes);
      model->host_grads = g_malloc0 (bytes);
      model->host_m = g_malloc0 (bytes);
      model->host_v = g_malloc0 (bytes);
    }
  host_init = model->host_params;
  mae_init (model, host_init, seed);
  if (!cs_backend_is_host (be))
    be->ops->upload (be, model->params, host_init, bytes);

  {
    g_autofree float *pe = g_new (float, (size_t) model->N * model->E);
    g_autofree float *pd = g_new (float, (size_t) model->N * model->Dd);
    cs_pos_embed_sincos (pe, G, model->E);
    cs_pos_embed_sincos (pd, G, model->Dd);
    model->pos_enc = be->ops->alloc (be, sizeof (float) * model->N * model->E);
    model->pos_dec = be->ops->alloc (be, sizeof (float) * model->N * model->Dd);
    be->ops->upload (be, model->pos_enc, pe, sizeof (float) * model->N * model->E);
    be->ops->upload (be, model->pos_dec, pd, sizeof (float) * model->N * model->Dd);
  }
  return model;
}

static void
free_arena (CsModel *model)
{
  if (model->arena != NULL)
    model->be->ops->release (model->be, model->arena);
  model->arena = NULL;
  g_clear_pointer (&model->res_enc, g_free);
  g_clear_pointer (&model->res_dec, g_free);
  g_clear_pointer (&model->enc_acts, g_free);
  g_clear_pointer (&model->dec_acts, g_free);
  if (!cs_backend_is_host (model->be))
    {
      g_clear_pointer (&model->h_idx, g_free);
      g_clear_pointer (&model->h_patches, g_free);
      g_clear_pointer (&model->h_target, g_free);
      g_clear_pointer (&model->h_coef, g_free);
    }
  g_clear_pointer (&model->h_edge, g_free);
  g_clear_pointer (&model->h_weight, g_free);
  model->cap_batch = 0;
  model->cap_tokens = 0;
}

void
cs_model_free (CsModel *model)
{
  CsBackend *be;

  if (model == NULL)
    return;
  be = model->be;
  free_arena (model);
  be->ops->release (be, model->params);
  be->ops->release (be, model->grads);
  be->ops->release (be, model->m);
  be->ops->release (be, model->v);
  be->ops->release (be, model->pos_enc);
  be->ops->release (be, model->pos_dec);
  if (!cs_backend_is_host (be))
    {
      g_free (model->host_params);
      g_free (model->host_grads);
      g_free (model->host_m);
      g_free (model->host_v);
    }
  g_ptr_array_unref (model->tensors);
  g_free (model->enc);
  g_free (model->dec);
  g_free (model);
}

const CsModelConfig *
cs_model_get_config (const CsModel *model)
{
  return &model->config;
}

CsBackend *
cs_model_get_backend (const CsModel *model)
{
  return model->be;
}

int
cs_model_n_tensors (const CsModel *model)
{
  return (int) model->tensors->len;
}

const CsTensorInfo *
cs_model_tensor (const CsModel *model, int index)
{
  g_return_val_if_fail (index >= 0 && index < (int) model->tensors->len, NULL);
  return g_ptr_array_index (model->tensors, index);
}

const CsTensorInfo *
cs_model_find_tensor (const CsModel *model, const char *name)
{
  for (guint i = 0; i < model->tensors->len; i++)
    {
      const CsTensorInfo *t = g_ptr_array_index (model->tensors, i);
      if (g_str_equal (t->name, name))
        return t;
    }
  return NULL;
}

size_t
cs_model_n_params (const CsModel *model)
{
  return model->n_params;
}

static float *
host_view (CsModel *model, float *host, const float *device)
{
  if (host != device)
    model->be->ops->download (model->be, host, device, sizeof (float) * model->n_params);
  return host;
}

float *
cs_model_params (CsModel *model)
{
  return host_view (model, model->host_params, model->params);
}

float *
cs_model_grads (CsModel *model)
{
  return host_view (model, model->host_grads, model->grads);
}

float *
cs_model_adam_m (CsModel *model)
{
  return host_view (model, model->host_m, model->m);
}

float *
cs_model_adam_v (CsModel *model)
{
  return host_view (model, model->host_v, model->v);
}

void
cs_model_host_changed (CsModel *model)
{
  CsBackend *be = model->be;
  size_t bytes = sizeof (float) * model->n_params;

  if (cs_backend_is_host (be))
    return;
  be->ops->upload (be, model->params, model->host_params, bytes);
  be->ops->upload (be, model->m, model->host_m, bytes);
  be->ops->upload (be, model->v, model->host_v, bytes);
}

gboolean
cs_model_set_tensor (CsModel *model, const char *name, const float *data, size_t numel,
                     GError **error)
{
  const CsTensorInfo *t = cs_model_find_tensor (model, name);

  if (t == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "model has no tensor “%s”", name);
      return FALSE;
    }
  if (t->numel != numel)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "tensor “%s” has %zu values, not %zu", name, t->numel, numel);
      return FALSE;
    }
  model->be->ops->upload (model->be, model->params + t->offset, data, sizeof (float) * numel);
  if (!cs_backend_is_host (model->be))
    memcpy (model->host_params + t->offset, data, sizeof (float) * numel);
  return TRUE;
}

long
cs_model_get_adam_step (const CsModel *model)
{
  return model->step;
}

void
cs_model_set_adam_step (CsModel *model, long step)
{
  model->step = step;
}

void
cs_model_adam_reset (CsModel *model)
{
  size_t n = cs_model_n_params (model);
  memset (cs_model_adam_m (model), 0, n * sizeof (float));
  memset (cs_model_adam_v (model), 0, n * sizeof (float));
  cs_model_host_changed (model);
  model->step = 0;
}

void
cs_model_adam_step (CsModel *model, float lr)
{
  CsBackend *be = model->be;

  model->step++;
  be->ops->adam (be, model->params, model->grads, model->m, model->v, model->n_params, lr,
                 CS_ADAM_BETA1, CS_ADAM_BETA2, CS_ADAM_EPS, model->step);
}

/* ---------------------------------------------------------------- arena */

typedef struct
{
  float *base; /* NULL while measuring */
  size_t used; /* floats */
} Arena;

static float *
carve (Arena *arena, size_t n)
{
  float *p = arena->base != NULL ? arena->base + arena->used : NULL;
  arena->used += (n + 15) & ~(size_t) 15; /* 64-byte aligned pieces */
  return p;
}

static void
carve_block (Arena *ar, BlockActs *a, size_t T, size_t C, size_t H, size_t NH)
{
  a->ln1 = carve (ar, T * C);
  a->ln1_mean = carve (ar, T);
  a->ln1_rstd = carve (ar, T);
  a->qkv = carve (ar, T * 3 * C);
  a->att = carve (ar, T * C);
  a->lse = carve (ar, T * NH);
  a->res_mid = carve (ar, T * C);
  a->ln2 = carve (ar, T * C);
  a->ln2_mean = carve (ar, T);
  a->ln2_rstd = carve (ar, T);
  a->fc1 = carve (ar, T * H);
  a->gelu = carve (ar, T * H);
}

/* Lays out the arena for batch items (base NULL: only measures); returns its bytes. light:
 * no backward will run, so every layer reuses the same activations and two residual
 * buffers alternate. */
static size_t
layout_arena (CsModel *model, float *base, int batch, size_t T, gboolean light)
{
  const CsModelConfig *c = &model->config;
  size_t E = model->E, D = model->Dd, PP = model->PP;
  size_t Cmax = MAX (E, D), Hmax = MAX (model->enc_hidden, model->dec_hidden);
  Arena ar = { base, 0 };

  model->patches = carve (&ar, T * PP);
  for (int l = 0; l <= c->enc_depth; l++)
    model->res_enc[l] = light && l >= 2 ? model->res_enc[l % 2] : carve (&ar, T * E);
  for (int l = 0; l < c->enc_depth; l++)
    {
      if (light && l > 0)
        model->enc_acts[l] = model->enc_acts[0];
      else
        carve_block (&ar, &model->enc_acts[l], T, E, model->enc_hidden, c->enc_heads);
    }
  model->enc_norm = carve (&ar, T * E);
  model->enc_norm_mean = carve (&ar, T);
  model->enc_norm_rstd = carve (&ar, T);
  model->dec_in = carve (&ar, T * D);
  for (int l = 0; l <= c->dec_depth; l++)
    model->res_dec[l] = light && l >= 2 ? model->res_dec[l % 2] : carve (&ar, T * D);
  for (int l = 0; l < c->dec_depth; l++)
    {
      if (light && l > 0)
        model->dec_acts[l] = model->dec_acts[0];
      else
        carve_block (&ar, &model->dec_acts[l], T, D, model->dec_hidden, c->dec_heads);
    }
  for (int h = 0; h < 2; h++)
    {
      HeadActs *a = &model->head_acts[h];
      a->ln = carve (&ar, T * D);
      a->mean = carve (&ar, T);
      a->rstd = carve (&ar, T);
      a->logit = carve (&ar, T * PP);
      a->pred = carve (&ar, T * PP);
      a->dlogit = carve (&ar, T * PP);
    }
  model->target[0] = carve (&ar, 2 * T * PP); /* image then edge targets, one block */
  model->target[1] = model->target[0] != NULL ? model->target[0] + T * PP : NULL;
  model->coef = carve (&ar, T);
  model->d_res = carve (&ar, T * Cmax);
  model->d_ln = carve (&ar, T * Cmax);
  model->d_att = carve (&ar, T * Cmax);
  model->d_qkv = carve (&ar, T * 3 * Cmax);
  model->d_hid1 = carve (&ar, T * Hmax);
  model->d_hid2 = carve (&ar, T * Hmax);
  model->idx = (int *) carve (&ar, 4 * T + 4 * (size_t) batch);
  return ar.used * sizeof (float);
}

/* Makes the arena hold batch items of tokens packed tokens (with_grad: every layer's
 * activations). It grows with an eighth to spare, so masks that vary a little from batch to
 * batch do not reallocate it every time. */
static void
ensure_arena (CsModel *model, int batch, size_t tokens, gboolean with_grad)
{
  size_t bytes;
  gboolean light = !with_grad;

  /* a full arena serves inference too; a light one must grow into a full one to train */
  if (batch <= model->cap_batch && tokens <= model->cap_tokens
      && (!model->arena_light || light))
    return;
  batch = MAX (batch, model->cap_batch);
  tokens = MAX (tokens + tokens / 8, model->cap_tokens);
  tokens = MIN (tokens, (size_t) batch * (model->N + 1));
  free_arena (model);
  model->arena_light = light;
  model->res_enc = g_new0 (float *, model->config.enc_depth + 1);
  model->res_dec = g_new0 (float *, model->config.dec_depth + 1);
  model->enc_acts = g_new0 (BlockActs, model->config.enc_depth);
  model->dec_acts = g_new0 (BlockActs, model->config.dec_depth);
  bytes = layout_arena (model, NULL, batch, tokens, light);
  model->arena = model->be->ops->alloc (model->be, bytes);
  layout_arena (model, model->arena, batch, tokens, light);
  model->cap_batch = batch;
  model->cap_tokens = tokens;
  if (cs_backend_is_host (model->be))
    {
      model->h_idx = model->idx;
      model->h_patches = model->patches;
      model->h_target = model->target[0];
      model->h_coef = model->coef;
    }
  else
    {
      model->h_idx = g_new (int, 4 * tokens + 4 * (size_t) batch);
      model->h_patches = g_new (float, tokens * model->PP);
      model->h_target = g_new (float, 2 * tokens * model->PP);
      model->h_coef = g_new (float, tokens);
      /* CS_DEBUG_POISON=1 (tests): staging starts as NaN, so a row the packing does not
       * write shows up as a NaN loss instead of whatever malloc happened to return */
      if (g_getenv ("CS_DEBUG_POISON") != NULL)
        {
          for (size_t i = 0; i < tokens * model->PP; i++)
            model->h_patches[i] = model->h_target[i] = model->h_target[tokens * model->PP + i]
              = NAN;
          for (size_t i = 0; i < tokens; i++)
            model->h_coef[i] = NAN;
        }
    }
  model->h_edge = g_new (float, (size_t) model->config.img_size * model->config.img_size);
  model->h_weight = g_new (float, model->N);
}

/* ---------------------------------------------------------------- blocks */

typedef struct
{
  int T, C, H, NH, n_seq;
  const int *seq_off, *seq_len;
  const char *stack; /* "encoder" or "decoder", and the block's index: for debug_finite */
  int layer;
} BlockDims;

/* CS_DEBUG_FINITE=1, for debugging a backend: after each step checked below, its output
 * is downloaded and the first non-finite value is reported on stderr (once a process),
 * naming the step. Slow (a download per step); off by default. */
static gint debug_finite_state = -1; /* -1 not read yet, 0 off, 1 on, 2 reported */

static void
debug_finite (CsBackend *be, const char *step, const BlockDims *d, const float *dev, size_t n)
{
  gint state = g_atomic_int_get (&debug_finite_state);
  if (state < 0)
    {
      state = g_getenv ("CS_DEBUG_FINITE") != NULL;
      g_atomic_int_set (&debug_finite_state, state);
    }
  if (state != 1 || dev == NULL || n == 0)
    return;
  g_autofree float *h = g_new (float, n);
  double amax = 0.0;
  be->ops->synchronize (be);
  be->ops->download (be, h, dev, sizeof (float) * n);
  for (size_t i = 0; i < n; i++)
    {
      if (!isfinite (h[i]))
        {
          g_printerr ("CS_DEBUG_FINITE: first non-finite value after %s (%s block %d, T %d): "
                      "element %zu of %zu is %g; largest finite |value| before it %g\n", step,
                      d ? d->stack : "-", d ? d->layer : -1, d ? d->T : -1, i, n, h[i], amax);
          g_atomic_int_set (&debug_finite_state, 2);
          return;
        }
      amax = MAX (amax, fabs (h[i]));
    }
}

static void
block_forward (CsBackend *be, const float *p, const BlockParams *bp, BlockActs *a,
               const float *res_in, float *res_out, const BlockDims *d)
{
  const CsBackendOps *o = be->ops;
  int T = d->T, C = d->C, H = d->H;

  o->layernorm_forward (be, a->ln1, a->ln1_mean, a->ln1_rstd, res_in, p + bp->ln1_w,
                        p + bp->ln1_b, T, C);
  o->linear_forward (be, a->qkv, a->ln1, p + bp->qkv_w, p + bp->qkv_b, T, C, 3 * C);
  debug_finite (be, "qkv linear_forward", d, a->qkv, (size_t) T * 3 * C);
  o->attention_forward (be, a->att, a->lse, a->qkv, d->seq_off, d->seq_len, d->n_seq, T, C,
                        d->NH);
  debug_finite (be, "attention_forward", d, a->att, (size_t) T * C);
  debug_finite (be, "attention_forward lse", d, a->lse, (size_t) T * d->NH);
  o->linear_forward (be, a->res_mid, a->att, p + bp->proj_w, p + bp->proj_b, T, C, C);
  o->add_inplace (be, a->res_mid, res_in, (size_t) T * C);
  o->layernorm_forward (be, a->ln2, a->ln2_mean, a->ln2_rstd, a->res_mid, p + bp->ln2_w,
                        p + bp->ln2_b, T, C);
  o->linear_forward (be, a->fc1, a->ln2, p + bp->fc1_w, p + bp->fc1_b, T, C, H);
  o->gelu_forward (be, a->gelu, a->fc1, (size_t) T * H);
  o->linear_forward (be, res_out, a->gelu, p + bp->fc2_w, p + bp->fc2_b, T, H, C);
  o->add_inplace (be, res_out, a->res_mid, (size_t) T * C);
  debug_finite (be, "block output", d, res_out, (size_t) T * C);
}

/* dres: in, d loss / d block output; out, d loss / d block input (in place) */
static void
block_backward (CsModel *model, const float *p, float *g, const BlockParams *bp,
                const BlockActs *a, const float *res_in, float *dres, const BlockDims *d)
{
  CsBackend *be = model->be;
  const CsBackendOps *o = be->ops;
  int T = d->T, C = d->C, H = d->H;

  o->zero (be, model->d_hid1, sizeof (float) * T * H);
  o->linear_backward (be, model->d_hid1, g + bp->fc2_w, g + bp->fc2_b, dres, a->gelu,
                      p + bp->fc2_w, T, H, C);
  debug_finite (be, "fc2 linear_backward", d, model->d_hid1, (size_t) T * H);
  o->zero (be, model->d_hid2, sizeof (float) * T * H);
  o->gelu_backward (be, model->d_hid2, a->fc1, model->d_hid1, (size_t) T * H);
  debug_finite (be, "gelu_backward", d, model->d_hid2, (size_t) T * H);
  o->zero (be, model->d_ln, sizeof (float) * T * C);
  o->linear_backward (be, model->d_ln, g + bp->fc1_w, g + bp->fc1_b, model->d_hid2, a->ln2,
                      p + bp->fc1_w, T, C, H);
  /* residual: dres already holds the skip path; LayerNorm's path adds to it */
  o->layernorm_backward (be, dres, g + bp->ln2_w, g + bp->ln2_b, model->d_ln, a->res_mid,
                         p + bp->ln2_w, a->ln2_mean, a->ln2_rstd, T, C);
  debug_finite (be, "layernorm_backward (ln2)", d, dres, (size_t) T * C);
  o->zero (be, model->d_att, sizeof (float) * T * C);
  o->linear_backward (be, model->d_att, g + bp->proj_w, g + bp->proj_b, dres, a->att,
                      p + bp->proj_w, T, C, C);
  debug_finite (be, "proj linear_backward", d, model->d_att, (size_t) T * C);
  o->zero (be, model->d_qkv, sizeof (float) * T * 3 * C);
  o->attention_backward (be, model->d_qkv, model->d_att, a->qkv, a->att, a->lse, d->seq_off,
                         d->seq_len, d->n_seq, T, C, d->NH);
  debug_finite (be, "attention_backward", d, model->d_qkv, (size_t) T * 3 * C);
  o->zero (be, model->d_ln, sizeof (float) * T * C);
  o->linear_backward (be, model->d_ln, g + bp->qkv_w, g + bp->qkv_b, model->d_qkv, a->ln1,
                      p + bp->qkv_w, T, C, 3 * C);
  debug_finite (be, "qkv linear_backward", d, model->d_ln, (size_t) T * C);
  o->layernorm_backward (be, dres, g + bp->ln1_w, g + bp->ln1_b, model->d_ln, res_in,
                         p + bp->ln1_w, a->ln1_mean, a->ln1_rstd, T, C);
  debug_finite (be, "layernorm_backward (ln1)", d, dres, (size_t) T * C);
}

/* ---------------------------------------------------------------- masking helpers */

void
cs_patch_roi_from_mask (const CsModelConfig *config, const guint8 *roi, guint8 *is_roi)
{
  int P = config->patch, G = cs_model_config_grid (config), W = config->img_size;

  memset (is_roi, 0, (size_t) G * G);
  for (int y = 0; y < config->img_size; y++)
    for (int x = 0; x < W; x++)
      if (roi[(size_t) y * W + x])
        is_roi[(y / P) * G + x / P] = 1;
}

void
cs_patch_state_drop_context (const CsModelConfig *config, const guint8 *is_roi, guint8 *state)
{
  int G = cs_model_config_grid (config), M = config->context_margin;
  g_autofree guint8 *near = NULL;
  gboolean any = FALSE;

  if (M < 0)
    return;
  for (int p = 0; p < G * G; p++)
    any |= is_roi[p] != 0;
  if (!any)
    return; /* no ROI: nothing to measure the margin from, keep everything */
  /* Chebyshev distance <= M  <=>  inside the (2M+1)^2 square around some ROI patch */
  near = g_malloc0 ((size_t) G * G);
  for (int r = 0; r < G; r++)
    for (int c = 0; c < G; c++)
      if (is_roi[r * G + c])
        for (int rr = MAX (0, r - M); rr <= MIN (G - 1, r + M); rr++)
          memset (near + rr * G + MAX (0, c - M), 1, MIN (G - 1, c + M) - MAX (0, c - M) + 1);
  for (int p = 0; p < G * G; p++)
    if (!is_roi[p] && !near[p])
      state[p] = CS_PATCH_DROPPED;
}

void
cs_patch_state_random (const CsModelConfig *config, const guint8 *is_roi, GRand *rng,
                       guint8 *state)
{
  int N = cs_model_config_n_patches (config), R = 0, n_mask;
  g_autofree int *roi_list = g_new (int, N);

  for (int p = 0; p < N; p++)
    {
      state[p] = CS_PATCH_VISIBLE;
      if (is_roi[p])
        roi_list[R++] = p;
    }
  n_mask = R - (int) (R * (1.0 - config->mask_ratio));
  /* partial Fisher-Yates: the first n_mask entries are a uniform sample */
  for (int i = 0; i < n_mask; i++)
    {
      int k = g_rand_int_range (rng, i, R);
      int tmp = roi_list[i];
      roi_list[i] = roi_list[k];
      roi_list[k] = tmp;
      state[roi_list[i]] = CS_PATCH_MASKED;
    }
  cs_patch_state_drop_context (config, is_roi, state);
}

static inline float
sobel_at (const float *img, int H, int W, int y, int x)
{
  int ym = MAX (0, y - 1), yp = MIN (H - 1, y + 1);
  int xm = MAX (0, x - 1), xp = MIN (W - 1, x + 1);
#define PIX(r, c) img[(size_t) (r) * W + (c)]
  float gx = (PIX (ym, xp) - PIX (ym, xm)) + 2.0f * (PIX (y, xp) - PIX (y, xm))
             + (PIX (yp, xp) - PIX (yp, xm));
  float gy = (PIX (yp, xm) + 2.0f * PIX (yp, x) + PIX (yp, xp))
             - (PIX (ym, xm) + 2.0f * PIX (ym, x) + PIX (ym, xp));
#undef PIX
  return MIN (1.0f, sqrtf (gx * gx + gy * gy));
}

void
cs_sobel_edge (float *out, const float *img, int H, int W)
{
  for (int y = 0; y < H; y++)
    {
      int x = 1;
      out[(size_t) y * W] = sobel_at (img, H, W, y, 0);
#if CS_HAVE_AVX2
      {
        /* interior columns 8 at a time, same formula; rows clamp through the row pointers */
        const float *up = img + (size_t) MAX (0, y - 1) * W, *mid = img + (size_t) y * W;
        const float *dn = img + (size_t) MIN (H - 1, y + 1) * W;
        const __m256 two = _mm256_set1_ps (2.0f), one = _mm256_set1_ps (1.0f);
        for (; x + 8 <= W - 1; x += 8)
          {
            __m256 ul = _mm256_loadu_ps (up + x - 1), uc = _mm256_loadu_ps (up + x);
            __m256 ur = _mm256_loadu_ps (up + x + 1), ml = _mm256_loadu_ps (mid + x - 1);
            __m256 mr = _mm256_loadu_ps (mid + x + 1), dl = _mm256_loadu_ps (dn + x - 1);
            __m256 dc = _mm256_loadu_ps (dn + x), dr = _mm256_loadu_ps (dn + x + 1);
            __m256 gx = _mm256_add_ps (_mm256_add_ps (_mm256_sub_ps (ur, ul),
                                                      _mm256_mul_ps (two, _mm256_sub_ps (mr, ml))),
                                       _mm256_sub_ps (dr, dl));
            __m256 gy = _mm256_sub_ps (_mm256_add_ps (_mm256_add_ps (dl, _mm256_mul_ps (two, dc)), dr),
                                       _mm256_add_ps (_mm256_add_ps (ul, _mm256_mul_ps (two, uc)), ur));
            __m256 m = _mm256_sqrt_ps (_mm256_add_ps (_mm256_mul_ps (gx, gx),
                                                      _mm256_mul_ps (gy, gy)));
            _mm256_storeu_ps (out + (size_t) y * W + x, _mm256_min_ps (m, one));
          }
      }
#endif
      for (; x < W; x++)
        out[(size_t) y * W + x] = sobel_at (img, H, W, y, x);
    }
}

void
cs_patch_loss_weight (const guint8 *state, int G, float *weight)
{
  for (int r = 0; r < G; r++)
    for (int c = 0; c < G; c++)
      {
        int masked = 0;
        for (int rr = MAX (0, r - 1); rr <= MIN (G - 1, r + 1); rr++)
          for (int cc = MAX (0, c - 1); cc <= MIN (G - 1, c + 1); cc++)
            masked += state[rr * G + cc] == CS_PATCH_MASKED;
        weight[r * G + c] = 1.0f + masked / 9.0f;
      }
}

/* ---------------------------------------------------------------- forward / backward */

static void
patch_copy (float *dst, const float *img, int W, int P, int G, int p)
{
  int r0 = (p / G) * P, c0 = (p % G) * P;
  for (int y = 0; y < P; y++)
    memcpy (dst + y * P, img + (size_t) (r0 + y) * W + c0, sizeof (float) * P);
}

gboolean
cs_model_forward_backward (CsModel *model, const CsBatch *batch, gboolean with_grad,
                           CsForwardOut *out, GError **error)
{
  CsBackend *be = model->be;
  const CsBackendOps *o = be->ops;
  const CsModelConfig *c = &model->config;
  int B = batch->batch, N = model->N, G = model->G, P = c->patch, PP = model->PP;
  int HW = c->img_size * c->img_size, W = c->img_size, E = model->E, D = model->Dd;
  int T_enc = 0, T_dec = 0, n_valid = 0;
  size_t T_cap;
  float *p = model->params, *g = model->grads;
  int *h_idx;
  float *h_patches, *h_target, *h_coef, *edge, *weight;
  g_autofree float *h_pred = NULL;
  int *enc_patch, *enc_off, *enc_len, *dec_src, *dec_patch, *dec_off, *dec_len;
  int *d_enc_patch, *d_enc_off, *d_enc_len, *d_dec_src, *d_dec_patch, *d_dec_off, *d_dec_len;
  double loss[2];

  if (B < 1 || batch->images == NULL || batch->patch_state == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "model batch: %d items, images %s, patch states %s", B,
                   batch->images ? "given" : "missing", batch->patch_state ? "given" : "missing");
      return FALSE;
    }
  for (size_t i = 0; i < (size_t) B * N; i++)
    if (batch->patch_state[i] > CS_PATCH_DROPPED)
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                     "model batch: item %zu patch %zu has state %d (expected 0, 1 or 2)",
                     i / N, i % N, batch->patch_state[i]);
        return FALSE;
      }
  {
    /* tokens of this batch: class token + kept patches, class token + non-dropped ones */
    size_t n_enc = B, n_dec = B;
    for (size_t i = 0; i < (size_t) B * N; i++)
      {
        n_enc += batch->patch_state[i] == CS_PATCH_VISIBLE;
        n_dec += batch->patch_state[i] != CS_PATCH_DROPPED;
      }
    ensure_arena (model, B, MAX (n_enc, n_dec), with_grad);
  }
  T_cap = model->cap_tokens; /* the arena's layout, not this batch's */

  /* host: token lists, patches, targets and loss coefficients */
  h_idx = model->h_idx;
  enc_patch = h_idx;
  dec_src = enc_patch + T_cap;
  dec_patch = dec_src + T_cap;
  enc_off = dec_patch + T_cap;
  enc_len = enc_off + B;
  dec_off = enc_len + B;
  dec_len = dec_off + B;
  h_patches = model->h_patches;
  h_target = model->h_target;
  h_coef = model->h_coef;
  edge = model->h_edge;
  weight = model->h_weight;
  for (int b = 0; b < B; b++)
    {
      const guint8 *st = batch->patch_state + (size_t) b * N;
      int n_masked = 0;
      for (int q = 0; q < N; q++)
        n_masked += st[q] == CS_PATCH_MASKED;
      n_valid += n_masked > 0;
    }
  for (int b = 0; b < B; b++)
    {
      const guint8 *st = batch->patch_state + (size_t) b * N;
      const float *img = batch->images + (size_t) b * HW;
      int cls_row = T_enc, n_masked = 0;

      cs_sobel_edge (edge, img, c->img_size, c->img_size);
      cs_patch_loss_weight (st, G, weight);
      for (int q = 0; q < N; q++)
        n_masked += st[q] == CS_PATCH_MASKED;

      enc_off[b] = T_enc;
      memset (h_patches + (size_t) T_enc * PP, 0, sizeof (float) * PP);
      enc_patch[T_enc++] = -1;
      dec_off[b] = T_dec;
      dec_src[T_dec] = cls_row;
      h_coef[T_dec] = 0.0f;
      /* the class token has no target, but the loss kernels read its row (times coef 0):
       * zeros, never what the staging held (0 x NaN is NaN on the GPU) */
      memset (h_target + (size_t) T_dec * PP, 0, sizeof (float) * PP);
      memset (h_target + T_cap * PP + (size_t) T_dec * PP, 0, sizeof (float) * PP);
      dec_patch[T_dec++] = -1;
      for (int q = 0; q < N; q++)
        {
          if (st[q] == CS_PATCH_DROPPED)
            continue;
          if (st[q] == CS_PATCH_VISIBLE)
            {
              patch_copy (h_patches + (size_t) T_enc * PP, img, W, P, G, q);
              dec_src[T_dec] = T_enc;
              h_coef[T_dec] = 0.0f;
              enc_patch[T_enc++] = q;
            }
          else
            {
              dec_src[T_dec] = -1;
              /* per-pixel mean within the patch, over masked patches, over valid items */
              h_coef[T_dec] = weight[q] / ((float) PP * n_masked * n_valid);
            }
          patch_copy (h_target + (size_t) T_dec * PP, img, W, P, G, q);
          patch_copy (h_target + T_cap * PP + (size_t) T_dec * PP, edge, W, P, G, q);
          dec_patch[T_dec++] = q;
        }
      enc_len[b] = T_enc - enc_off[b];
      dec_len[b] = T_dec - dec_off[b];
    }

  d_enc_patch = model->idx;
  d_dec_src = d_enc_patch + T_cap;
  d_dec_patch = d_dec_src + T_cap;
  d_enc_off = d_dec_patch + T_cap;
  d_enc_len = d_enc_off + B;
  d_dec_off = d_enc_len + B;
  d_dec_len = d_dec_off + B;
  o->upload (be, model->idx, h_idx, sizeof (int) * (4 * T_cap + 4 * (size_t) B));
  o->upload (be, model->patches, h_patches, sizeof (float) * T_enc * PP);
  o->upload (be, model->target[0], h_target, sizeof (float) * T_dec * PP);
  o->upload (be, model->target[1], h_target + T_cap * PP, sizeof (float) * T_dec * PP);
  o->upload (be, model->coef, h_coef, sizeof (float) * T_dec);

  /* encoder */
  {
    BlockDims dims = { T_enc, E, model->enc_hidden, c->enc_heads, B, d_enc_off, d_enc_len,
                       "encoder", 0 };
    o->linear_forward (be, model->res_enc[0], model->patches, p + model->o_pe_w,
                       p + model->o_pe_b, T_enc, PP, E);
    o->embed_forward (be, model->res_enc[0], p + model->o_cls, model->pos_enc, d_enc_patch,
                      T_enc, E);
    for (int l = 0; l < c->enc_depth; l++)
      {
        dims.layer = l;
        block_forward (be, p, &model->enc[l], &model->enc_acts[l], model->res_enc[l],
                       model->res_enc[l + 1], &dims);
      }
    o->layernorm_forward (be, model->enc_norm, model->enc_norm_mean, model->enc_norm_rstd,
                          model->res_enc[c->enc_depth], p + model->o_norm_w,
                          p + model->o_norm_b, T_enc, E);
  }
  /* decoder */
  {
    BlockDims dims = { T_dec, D, model->dec_hidden, c->dec_heads, B, d_dec_off, d_dec_len,
                       "decoder", 0 };
    o->linear_forward (be, model->dec_in, model->enc_norm, p + model->o_de_w,
                       p + model->o_de_b, T_enc, E, D);
    o->scatter_forward (be, model->res_dec[0], model->dec_in, p + model->o_mask,
                        model->pos_dec, d_dec_src, d_dec_patch, T_dec, D);
    for (int l = 0; l < c->dec_depth; l++)
      {
        dims.layer = l;
        block_forward (be, p, &model->dec[l], &model->dec_acts[l], model->res_dec[l],
                       model->res_dec[l + 1], &dims);
      }
  }
  for (int h = 0; h < 2; h++)
    {
      HeadActs *a = &model->head_acts[h];
      const HeadParams *hp = &model->head[h];
      o->layernorm_forward (be, a->ln, a->mean, a->rstd, model->res_dec[c->dec_depth],
                            p + hp->norm_w, p + hp->norm_b, T_dec, D);
      o->linear_forward (be, a->logit, a->ln, p + hp->fc_w, p + hp->fc_b, T_dec, D, PP);
      debug_finite (be, h == 0 ? "image head logits" : "edge head logits", NULL, a->logit,
                    (size_t) T_dec * PP);
      loss[h] = o->sigmoid_loss (be, a->pred, with_grad ? a->dlogit : NULL, a->logit,
                                 model->target[h], model->coef,
                                 h == 0 ? 1.0f : CS_LOSS_EDGE_WEIGHT, T_dec, PP);
      if (with_grad)
        debug_finite (be, "sigmoid_loss dlogit", NULL, a->dlogit, (size_t) T_dec * PP);
    }
  if (out != NULL)
    {
      out->loss_img = loss[0];
      out->loss_edge = loss[1];
      out->loss = loss[0] + CS_LOSS_EDGE_WEIGHT * loss[1];
      for (int h = 0; h < 2; h++)
        {
          float *dst = h == 0 ? out->pred_img : out->pred_edge;
          if (dst == NULL)
            continue;
          if (h_pred == NULL)
            h_pred = g_new (float, (size_t) T_dec * PP);
          o->download (be, h_pred, model->head_acts[h].pred, sizeof (float) * T_dec * PP);
          memset (dst, 0, sizeof (float) * B * N * PP);
          for (int b = 0; b < B; b++)
            for (int t = dec_off[b] + 1; t < dec_off[b] + dec_len[b]; t++)
              memcpy (dst + ((size_t) b * N + dec_patch[t]) * PP, h_pred + (size_t) t * PP,
                      sizeof (float) * PP);
        }
    }
  if (!with_grad)
    return TRUE;

  /* backward */
  o->zero (be, g, sizeof (float) * model->n_params);
  o->zero (be, model->d_res, sizeof (float) * T_dec * D);
  for (int h = 0; h < 2; h++)
    {
      HeadActs *a = &model->head_acts[h];
      const HeadParams *hp = &model->head[h];
      o->zero (be, model->d_ln, sizeof (float) * T_dec * D);
      o->linear_backward (be, model->d_ln, g + hp->fc_w, g + hp->fc_b, a->dlogit, a->ln,
                          p + hp->fc_w, T_dec, D, PP);
      o->layernorm_backward (be, model->d_res, g + hp->norm_w, g + hp->norm_b, model->d_ln,
                             model->res_dec[c->dec_depth], p + hp->norm_w, a->mean, a->rstd,
                             T_dec, D);
    }
  {
    BlockDims dims = { T_dec, D, model->dec_hidden, c->dec_heads, B, d_dec_off, d_dec_len,
                       "decoder", 0 };
    for (int l = c->dec_depth - 1; l >= 0; l--)
      {
        dims.layer = l;
        block_backward (model, p, g, &model->dec[l], &model->dec_acts[l], model->res_dec[l],
                        model->d_res, &dims);
      }
  }
  /* d_att holds d dec_in, d_ln d enc_norm */
  o->zero (be, model->d_att, sizeof (float) * T_enc * D);
  o->scatter_backward (be, model->d_att, g + model->o_mask, model->d_res, d_dec_src, T_dec, D);
  o->zero (be, model->d_ln, sizeof (float) * T_enc * E);
  o->linear_backward (be, model->d_ln, g + model->o_de_w, g + model->o_de_b, model->d_att,
                      model->enc_norm, p + model->o_de_w, T_enc, E, D);
  o->zero (be, model->d_res, sizeof (float) * T_enc * E);
  o->layernorm_backward (be, model->d_res, g + model->o_norm_w, g + model->o_norm_b,
                         model->d_ln, model->res_enc[c->enc_depth], p + model->o_norm_w,
                         model->enc_norm_mean, model->enc_norm_rstd, T_enc, E);
  {
    BlockDims dims = { T_enc, E, model->enc_hidden, c->enc_heads, B, d_enc_off, d_enc_len,
                       "encoder", 0 };
    for (int l = c->enc_depth - 1; l >= 0; l--)
      {
        dims.layer = l;
        block_backward (model, p, g, &model->enc[l], &model->enc_acts[l], model->res_enc[l],
                        model->d_res, &dims);
      }
  }
  o->embed_backward (be, g + model->o_cls, model->d_res, d_enc_patch, T_enc, E);
  o->linear_backward (be, NULL, g + model->o_pe_w, g + model->o_pe_b, model->d_res,
                      model->patches, p + model->o_pe_w, T_enc, PP, E);
  debug_finite (be, "all gradients", NULL, g, model->n_params);
  return TRUE;
}
