/* The whole network: configuration, tensor table, MAE init, masking helpers, Sobel and
 * loss known answers, a finite-difference check of every parameter gradient in a tiny
 * configuration, bitwise determinism across a save / reload, and the training loop. */
#include <math.h>
#include <string.h>

#include "engine/cs-model.h"
#include "engine/cs-train.h"

static CsBackend *backend;

/* A tiny configuration: 4 x 4 patches, head dim 8 (the vector attention path). */
static CsModelConfig
tiny_config (int img)
{
  CsModelConfig c = { img, 8, 1, 16, 2, 2, 16, 2, 2, 2.0f, 0.75f, -1 };
  return c;
}

static void
test_config (void)
{
  CsModelConfig c, back;
  g_autoptr (GError) error = NULL;
  g_autofree char *json = NULL;

  for (const char *const *n = cs_model_config_preset_names (); *n != NULL; n++)
    {
      g_autofree char *j = NULL;
      g_assert_true (cs_model_config_preset (*n, &c, &error));
      g_assert_no_error (error);
      g_assert_true (cs_model_config_validate (&c, &error));
      g_assert_cmpint (c.enc_dim / c.enc_heads, ==, 8);
      j = cs_model_config_to_json (&c);
      g_assert_true (cs_model_config_from_json (j, &back, &error));
      g_assert_true (cs_model_config_equal (&c, &back));
    }
  g_assert_true (cs_model_config_preset ("reference", &c, NULL));
  g_assert_cmpint (c.enc_dim, ==, 128);
  g_assert_cmpint (c.enc_depth, ==, 12);
  g_assert_cmpint (c.enc_heads, ==, 16);
  g_assert_cmpint (c.dec_dim, ==, 64);
  g_assert_cmpint (c.dec_depth, ==, 8);
  g_assert_cmpint (c.context_margin, ==, -1);
  g_assert_true (cs_model_config_preset (cs_model_config_default_cpu (), &c, NULL));
  g_assert_false (cs_model_config_preset ("huge", &c, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (cs_model_config_preset ("reference", &c, NULL));
  json = cs_model_config_to_json (&c);
  g_assert_nonnull (strstr (json, "\"enc_dim\":128"));
  g_assert_nonnull (strstr (json, "\"context_margin\":-1"));
  /* refusals name the key */
  g_assert_false (cs_model_config_from_json ("{\"img_size\":256}", &back, &error));
  g_assert_nonnull (strstr (error->message, "patch"));
  g_clear_error (&error);
  g_assert_false (cs_model_config_from_json ("[1,2]", &back, &error));
  g_clear_error (&error);
  g_assert_false (cs_model_config_from_json ("{not json", &back, &error));
  g_clear_error (&error);
  {
    g_autofree char *extra = g_strdup_printf ("{\"depth\":3,%s", json + 1);
    g_assert_false (cs_model_config_from_json (extra, &back, &error));
    g_assert_nonnull (strstr (error->message, "depth"));
    g_clear_error (&error);
  }
  c.enc_heads = 7;
  g_assert_false (cs_model_config_validate (&c, &error));
  g_assert_nonnull (strstr (error->message, "enc_heads"));
}

static void
test_table_and_init (void)
{
  CsModelConfig c;
  g_autoptr (GError) error = NULL;
  g_autoptr (CsModel) model = NULL;
  size_t expect_offset = 0;
  float *p;
  const CsTensorInfo *t;

  g_assert_true (cs_model_config_preset ("reference", &c, NULL));
  model = cs_model_new (&c, backend, 42, &error);
  g_assert_no_error (error);
  /* 4 + 12 per block + 4 + 12 per decoder block + 8 head tensors */
  g_assert_cmpint (cs_model_n_tensors (model), ==, 4 + 12 * 12 + 4 + 12 * 8 + 8);
  g_assert_cmpstr (cs_model_tensor (model, 0)->name, ==, "cls_token");
  g_assert_cmpstr (cs_model_tensor (model, 1)->name, ==, "mask_token");
  g_assert_cmpstr (cs_model_tensor (model, 2)->name, ==, "patch_embed.weight");
  g_assert_cmpstr (cs_model_tensor (model, 6)->name, ==, "blocks.0.attn.qkv.weight");
  g_assert_cmpstr (cs_model_tensor (model, 4 + 12 * 12)->name, ==, "norm.weight");
  g_assert_cmpstr (cs_model_tensor (model, cs_model_n_tensors (model) - 1)->name, ==,
                   "head_edge.fc.bias");
  for (int i = 0; i < cs_model_n_tensors (model); i++)
    {
      t = cs_model_tensor (model, i);
      g_assert_cmpuint (t->offset, ==, expect_offset);
      expect_offset += t->numel;
    }
  g_assert_cmpuint (expect_offset, ==, cs_model_n_params (model));
  g_assert_cmpuint (cs_model_n_params (model), ==, cs_model_config_n_params (&c));
  t = cs_model_find_tensor (model, "blocks.3.mlp.fc1.weight");
  g_assert_cmpint (t->ndim, ==, 2);
  g_assert_cmpint (t->shape[0], ==, 512);
  g_assert_cmpint (t->shape[1], ==, 128);
  t = cs_model_find_tensor (model, "decoder_embed.weight");
  g_assert_cmpint (t->shape[0], ==, 64);
  g_assert_cmpint (t->shape[1], ==, 128);

  /* MAE init statistics */
  p = cs_model_params (model);
  for (int i = 0; i < cs_model_n_tensors (model); i++)
    {
      double sum = 0.0, sq = 0.0, mx = 0.0;
      t = cs_model_tensor (model, i);
      for (size_t k = 0; k < t->numel; k++)
        {
          double x = p[t->offset + k];
          sum += x;
          sq += x * x;
          mx = MAX (mx, fabs (x));
        }
      if (g_str_has_suffix (t->name, "_token"))
        {
          double sd = sqrt (sq / t->numel);
          g_assert_cmpfloat (sd, >, 0.014);
          g_assert_cmpfloat (sd, <, 0.026);
        }
      else if (t->ndim == 2)
        {
          /* xavier_uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), variance a^2 / 3 */
          double a = sqrt (6.0 / (t->shape[0] + t->shape[1])), var = sq / t->numel;
          g_assert_cmpfloat (mx, <=, a);
          g_assert_cmpfloat (mx, >, 0.98 * a);
          g_assert_cmpfloat (fabs (var / (a * a / 3.0) - 1.0), <, 0.05);
          g_assert_cmpfloat (fabs (sum / t->numel), <, 0.05 * a);
        }
      else if (strstr (t->name, "norm") && g_str_has_suffix (t->name, ".weight"))
        g_assert_cmpfloat (sum, ==, (double) t->numel);
      else
        g_assert_cmpfloat (mx, ==, 0.0);
    }
  /* same seed, same weights; another seed, other weights */
  {
    g_autoptr (CsModel) again = cs_model_new (&c, backend, 42, NULL);
    g_autoptr (CsModel) other = cs_model_new (&c, backend, 43, NULL);
    size_t bytes = sizeof (float) * cs_model_n_params (model);
    g_assert_cmpint (memcmp (cs_model_params (again), p, bytes), ==, 0);
    g_assert_cmpint (memcmp (cs_model_params (other), p, bytes), !=, 0);
  }
  /* set by name */
  {
    float v[64];
    for (int i = 0; i < 64; i++)
      v[i] = i;
    g_assert_true (cs_model_set_tensor (model, "head_img.fc.bias", v, 64, &error));
    t = cs_model_find_tensor (model, "head_img.fc.bias");
    g_assert_cmpfloat (cs_model_params (model)[t->offset + 63], ==, 63.0f);
    g_assert_false (cs_model_set_tensor (model, "head_img.fc.bias", v, 63, &error));
    g_clear_error (&error);
    g_assert_false (cs_model_set_tensor (model, "no.such", v, 1, &error));
    g_clear_error (&error);
  }
}

static void
test_masking (void)
{
  CsModelConfig c = tiny_config (64); /* G = 8 */
  guint8 roi[64 * 64] = { 0 }, is_roi[64], state[64];
  g_autoptr (GRand) rng = g_rand_new_with_seed (7);
  int n_roi = 0, n_masked = 0, n_dropped = 0;

  /* ROI: one pixel in patch (row 2, col 3) and a 2-pixel blob in patches (5, 3), (5, 4) */
  roi[(2 * 8 + 7) * 64 + 3 * 8] = 1;
  roi[(5 * 8 + 1) * 64 + 4 * 8 - 1] = 1;
  roi[(5 * 8 + 1) * 64 + 4 * 8] = 1;
  cs_patch_roi_from_mask (&c, roi, is_roi);
  for (int q = 0; q < 64; q++)
    n_roi += is_roi[q];
  g_assert_cmpint (n_roi, ==, 3);
  g_assert_true (is_roi[2 * 8 + 3] && is_roi[5 * 8 + 3] && is_roi[5 * 8 + 4]);

  /* 3 ROI patches, mask ratio 0.75: keep int(3 * 0.25) = 0, mask 3 */
  cs_patch_state_random (&c, is_roi, rng, state);
  for (int q = 0; q < 64; q++)
    {
      n_masked += state[q] == CS_PATCH_MASKED;
      if (state[q] == CS_PATCH_MASKED)
        g_assert_true (is_roi[q]);
    }
  g_assert_cmpint (n_masked, ==, 3);

  /* margin 1: keep context within Chebyshev distance 1 of a ROI patch */
  c.context_margin = 1;
  memset (state, 0, sizeof state);
  cs_patch_state_drop_context (&c, is_roi, state);
  for (int q = 0; q < 64; q++)
    n_dropped += state[q] == CS_PATCH_DROPPED;
  /* kept: 3x3 around (2,3) = 9, 3x4 around (5,3)-(5,4) = 12, disjoint (rows 1-3, 4-6) */
  g_assert_cmpint (64 - n_dropped, ==, 21);
  g_assert_cmpint (state[0], ==, CS_PATCH_DROPPED);
  g_assert_cmpint (state[1 * 8 + 2], ==, CS_PATCH_VISIBLE);
  g_assert_cmpint (state[6 * 8 + 5], ==, CS_PATCH_VISIBLE);
  g_assert_cmpint (state[6 * 8 + 6], ==, CS_PATCH_DROPPED);
  g_assert_cmpint (state[3 * 8 + 5], ==, CS_PATCH_DROPPED);

  /* 40 ROI patches: mask 40 - int(40 * 0.25) = 30 */
  memset (is_roi, 0, sizeof is_roi);
  for (int q = 0; q < 40; q++)
    is_roi[q] = 1;
  c.context_margin = -1;
  cs_patch_state_random (&c, is_roi, rng, state);
  n_masked = 0;
  for (int q = 0; q < 64; q++)
    n_masked += state[q] == CS_PATCH_MASKED;
  g_assert_cmpint (n_masked, ==, 30);
}

static void
test_sobel_and_weights (void)
{
  /* vertical step of height a between columns 1 and 2 */
  float img[4 * 4], out[4 * 4], pt[3 * 3] = { 0 }, po[9];
  guint8 st[9] = { 0 };
  float w[9];

  for (int y = 0; y < 4; y++)
    for (int x = 0; x < 4; x++)
      img[y * 4 + x] = x < 2 ? 0.0f : 0.1f;
  cs_sobel_edge (out, img, 4, 4);
  for (int y = 0; y < 4; y++)
    {
      g_assert_cmpfloat_with_epsilon (out[y * 4 + 0], 0.0, 1e-7);
      g_assert_cmpfloat_with_epsilon (out[y * 4 + 1], 0.4, 1e-6); /* 1a + 2a + 1a */
      g_assert_cmpfloat_with_epsilon (out[y * 4 + 2], 0.4, 1e-6);
      g_assert_cmpfloat_with_epsilon (out[y * 4 + 3], 0.0, 1e-7); /* replicate padding */
    }
  for (int i = 0; i < 16; i++)
    img[i] *= 10.0f; /* step of 1: magnitude 4, clamped */
  cs_sobel_edge (out, img, 4, 4);
  g_assert_cmpfloat (out[1], ==, 1.0f);

  /* a point v at the corner (0, 0): gx = gy = -3v there; (1, 1): gx = gy = -v */
  pt[0] = 0.1f;
  cs_sobel_edge (po, pt, 3, 3);
  g_assert_cmpfloat_with_epsilon (po[0], 0.3 * sqrt (2.0), 1e-6);
  g_assert_cmpfloat_with_epsilon (po[4], 0.1 * sqrt (2.0), 1e-6);
  g_assert_cmpfloat_with_epsilon (po[8], 0.0, 1e-7);

  /* a random 37 x 45 image (vector interior and scalar borders) against the definition */
  {
    enum { H = 37, W = 45 };
    g_autoptr (GRand) rng = g_rand_new_with_seed (3);
    float big[H * W], e[H * W];
    for (int i = 0; i < H * W; i++)
      big[i] = (float) g_rand_double_range (rng, 0, 0.3);
    cs_sobel_edge (e, big, H, W);
    for (int y = 0; y < H; y++)
      for (int x = 0; x < W; x++)
        {
          static const int kx[3][3] = { { -1, 0, 1 }, { -2, 0, 2 }, { -1, 0, 1 } };
          double gx = 0, gy = 0;
          for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
              {
                double v = big[CLAMP (y + i - 1, 0, H - 1) * W + CLAMP (x + j - 1, 0, W - 1)];
                gx += kx[i][j] * v;
                gy += kx[j][i] * v; /* the transpose */
              }
          g_assert_cmpfloat_with_epsilon (e[y * W + x], MIN (1.0, sqrt (gx * gx + gy * gy)), 1e-6);
        }
  }

  /* loss weights, 3 x 3 grid, corner masked: its 2 x 2 neighbourhood gets 1 + 1/9 */
  st[0] = CS_PATCH_MASKED;
  cs_patch_loss_weight (st, 3, w);
  g_assert_cmpfloat_with_epsilon (w[0], 1.0 + 1.0 / 9.0, 1e-7);
  g_assert_cmpfloat_with_epsilon (w[4], 1.0 + 1.0 / 9.0, 1e-7);
  g_assert_cmpfloat (w[2], ==, 1.0f);
  g_assert_cmpfloat (w[8], ==, 1.0f);
  st[4] = CS_PATCH_MASKED;
  cs_patch_loss_weight (st, 3, w);
  g_assert_cmpfloat_with_epsilon (w[4], 1.0 + 2.0 / 9.0, 1e-7);
  g_assert_cmpfloat_with_epsilon (w[8], 1.0 + 1.0 / 9.0, 1e-7);
}

/* Heads with zero weights and zero bias predict 0.5 everywhere: the loss is then a
 * hand-computable function of the images and masks. */
static void
test_loss_known_answer (void)
{
  CsModelConfig c = tiny_config (16); /* G = 2, 4 patches */
  g_autoptr (CsModel) model = cs_model_new (&c, backend, 1, NULL);
  float zeros[64 * 16] = { 0 }, images[3 * 256], pred[3 * 4 * 64];
  guint8 states[3 * 4] = { 1, 0, 0, 1,   0, 1, 0, 0,   0, 2, 0, 0 };
  CsBatch batch = { 3, images, states };
  CsForwardOut out = { 0 };
  g_autoptr (GError) error = NULL;
  double l1_img = 11.0 / 9.0 * 0.2 * 0.2, l2_img = 10.0 / 9.0 * 0.4 * 0.4;
  double l1_edge = 11.0 / 9.0 * 0.25, l2_edge = 10.0 / 9.0 * 0.25;

  for (const char *const *n = (const char *const[]) { "head_img.fc.weight", "head_img.fc.bias",
                                                      "head_edge.fc.weight", "head_edge.fc.bias",
                                                      NULL }; *n; n++)
    g_assert_true (cs_model_set_tensor (model, *n, zeros,
                                        cs_model_find_tensor (model, *n)->numel, NULL));
  /* constant images (edge target 0); item 3 has no masked patch: left out of the mean */
  for (int i = 0; i < 256; i++)
    {
      images[i] = 0.3f;
      images[256 + i] = 0.9f;
      images[512 + i] = 0.1f;
    }
  out.pred_img = pred;
  g_assert_true (cs_model_forward_backward (model, &batch, TRUE, &out, &error));
  g_assert_no_error (error);
  /* item 1: 2 masked of 4, each 3x3 pool sees both: w = 1 + 2/9; item 2: w = 1 + 1/9 */
  g_assert_cmpfloat_with_epsilon (out.loss_img, (l1_img + l2_img) / 2, 1e-6);
  g_assert_cmpfloat_with_epsilon (out.loss_edge, (l1_edge + l2_edge) / 2, 1e-6);
  g_assert_cmpfloat_with_epsilon (out.loss, out.loss_img + 0.1 * out.loss_edge, 1e-7);
  g_assert_cmpfloat (pred[0], ==, 0.5f);
  g_assert_cmpfloat (pred[(2 * 4 + 1) * 64], ==, 0.0f); /* dropped patch */
  g_assert_cmpfloat (pred[(2 * 4 + 2) * 64 + 5], ==, 0.5f);

  /* a smaller batch on the same (larger) arena: item 2 alone */
  {
    CsBatch one = { 1, images + 256, states + 4 };
    CsForwardOut o1 = { 0 };
    g_assert_true (cs_model_forward_backward (model, &one, TRUE, &o1, NULL));
    g_assert_cmpfloat_with_epsilon (o1.loss_img, l2_img, 1e-6);
    g_assert_cmpfloat_with_epsilon (o1.loss_edge, l2_edge, 1e-6);
  }

  /* bad states are refused */
  states[0] = 3;
  g_assert_false (cs_model_forward_backward (model, &batch, TRUE, &out, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
make_batch (const CsModelConfig *c, int B, guint32 seed, float *images, guint8 *states)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  int S = c->img_size, N = cs_model_config_n_patches (c);

  for (int i = 0; i < B * S * S; i++)
    images[i] = (float) g_rand_double (rng);
  for (int i = 0; i < B * N; i++)
    states[i] = (guint8) g_rand_int_range (rng, 0, 3);
  for (int b = 0; b < B; b++)
    states[b * N + 5] = CS_PATCH_MASKED; /* at least one masked patch per item */
}

typedef struct
{
  CsModel *model;
  CsBatch *batch;
} ModelLossCtx;

static double
model_loss (ModelLossCtx *ctx)
{
  CsForwardOut out = { 0 };
  cs_model_forward_backward (ctx->model, ctx->batch, FALSE, &out, NULL);
  return out.loss;
}

/* Every parameter tensor: central differences (float, h = 5e-3, loss in double) against
 * the backward pass; tolerance |a - n| <= 1e-5 + 1e-2 max(|a|, |n|). */
static void
test_model_gradients (void)
{
  CsModelConfig c = tiny_config (32);
  g_autoptr (CsModel) model = cs_model_new (&c, backend, 5, NULL);
  g_autoptr (GRand) rng = g_rand_new_with_seed (11);
  int B = 2, N = cs_model_config_n_patches (&c);
  g_autofree float *images = g_new (float, B * 32 * 32);
  g_autofree guint8 *states = g_new (guint8, B * N);
  g_autofree float *grads = NULL;
  CsBatch batch = { B, images, states };
  ModelLossCtx ctx = { model, &batch };
  size_t n = cs_model_n_params (model);
  float *p = cs_model_params (model);
  const float h = 5e-3f;
  double worst = 0.0;
  int n_checked = 0;

  make_batch (&c, B, 3, images, states);
  /* move off the init, where LayerNorm weights are 1 and biases 0 */
  for (size_t i = 0; i < n; i++)
    p[i] += (float) g_rand_double_range (rng, -0.1, 0.1);
  cs_model_host_changed (model);
  g_assert_true (cs_model_forward_backward (model, &batch, TRUE, NULL, NULL));
  grads = g_memdup2 (cs_model_grads (model), sizeof (float) * n);

  for (int ti = 0; ti < cs_model_n_tensors (model); ti++)
    {
      const CsTensorInfo *t = cs_model_tensor (model, ti);
      double gmax = 0.0;
      for (size_t k = 0; k < t->numel; k++)
        gmax = MAX (gmax, fabs (grads[t->offset + k]));
      g_assert_cmpfloat (gmax, >, 0.0); /* every tensor gets gradient */
      for (int rep = 0; rep < 4; rep++)
        {
          size_t i = t->offset + (size_t) g_rand_int_range (rng, 0, (gint32) t->numel);
          float keep = p[i];
          double lp, lm, num, err;
          p[i] = keep + h;
          lp = model_loss (&ctx);
          p[i] = keep - h;
          lm = model_loss (&ctx);
          p[i] = keep;
          num = (lp - lm) / (2.0 * h);
          err = fabs (num - grads[i]) / (1e-5 + 1e-2 * MAX (fabs (num), fabs (grads[i])));
          worst = MAX (worst, err);
          n_checked++;
          if (err > 1.0)
            g_error ("%s[%zu]: analytic %.7g numeric %.7g", t->name, i - t->offset, grads[i],
                     num);
        }
    }
  g_test_message ("model: %d parameter gradients within tolerance (worst %.3f of it)",
                  n_checked, worst);
}

typedef struct
{
  float *params, *m, *v;
  long step;
} Snapshot;

static void
snapshot_take (CsModel *model, Snapshot *s)
{
  size_t bytes = sizeof (float) * cs_model_n_params (model);
  s->params = g_memdup2 (cs_model_params (model), bytes);
  s->m = g_memdup2 (cs_model_adam_m (model), bytes);
  s->v = g_memdup2 (cs_model_adam_v (model), bytes);
  s->step = cs_model_get_adam_step (model);
}

static void
snapshot_restore (CsModel *model, const Snapshot *s)
{
  size_t bytes = sizeof (float) * cs_model_n_params (model);
  memcpy (cs_model_params (model), s->params, bytes);
  memcpy (cs_model_adam_m (model), s->m, bytes);
  memcpy (cs_model_adam_v (model), s->v, bytes);
  cs_model_host_changed (model);
  cs_model_set_adam_step (model, s->step);
}

static void
train_steps (CsModel *model, int first, int last)
{
  const CsModelConfig *c = cs_model_get_config (model);
  int B = 3, N = cs_model_config_n_patches (c);
  g_autofree float *images = g_new (float, B * c->img_size * c->img_size);
  g_autofree guint8 *states = g_new (guint8, B * N);
  CsBatch batch = { B, images, states };

  for (int s = first; s < last; s++)
    {
      make_batch (c, B, 100 + s, images, states);
      g_assert_true (cs_model_forward_backward (model, &batch, TRUE, NULL, NULL));
      cs_model_adam_step (model, 3e-3f);
    }
}

static void
test_determinism (void)
{
  CsModelConfig c = tiny_config (32);
  g_autoptr (CsModel) straight = cs_model_new (&c, backend, 9, NULL);
  g_autoptr (CsModel) resumed = cs_model_new (&c, backend, 9, NULL);
  g_autoptr (CsModel) fresh = cs_model_new (&c, backend, 1234, NULL);
  size_t bytes = sizeof (float) * cs_model_n_params (straight);
  Snapshot snap;

  train_steps (straight, 0, 10);
  train_steps (resumed, 0, 5);
  snapshot_take (resumed, &snap);
  /* reload into a model that started elsewhere, then go on */
  snapshot_restore (fresh, &snap);
  train_steps (fresh, 5, 10);
  g_assert_cmpint (cs_model_get_adam_step (fresh), ==, 10);
  g_assert_cmpint (memcmp (cs_model_params (fresh), cs_model_params (straight), bytes), ==, 0);
  g_assert_cmpint (memcmp (cs_model_adam_m (fresh), cs_model_adam_m (straight), bytes), ==, 0);
  g_assert_cmpint (memcmp (cs_model_adam_v (fresh), cs_model_adam_v (straight), bytes), ==, 0);
  g_free (snap.params);
  g_free (snap.m);
  g_free (snap.v);
}

/* Inference alone uses a light arena (layers share buffers): it must give the same
 * numbers as the full training arena, and training must still work after it. */
static void
test_light_inference (void)
{
  CsModelConfig c = tiny_config (32);
  g_autoptr (CsModel) model = cs_model_new (&c, backend, 8, NULL);
  int B = 3, N = cs_model_config_n_patches (&c);
  g_autofree float *images = g_new (float, B * 32 * 32);
  g_autofree guint8 *states = g_new (guint8, B * N);
  g_autofree float *p1 = g_new (float, B * N * 64), *p2 = g_new (float, B * N * 64);
  CsBatch batch = { B, images, states };
  CsForwardOut o1 = { .pred_img = p1 }, o2 = { .pred_img = p2 }, o3 = { 0 };

  make_batch (&c, B, 17, images, states);
  g_assert_true (cs_model_forward_backward (model, &batch, FALSE, &o1, NULL));
  g_assert_true (cs_model_forward_backward (model, &batch, TRUE, &o2, NULL));
  g_assert_cmpfloat (o1.loss, ==, o2.loss);
  g_assert_cmpint (memcmp (p1, p2, sizeof (float) * B * N * 64), ==, 0);
  /* a bigger inference batch after training, then training on the first again */
  {
    g_autofree float *img6 = g_new (float, 6 * 32 * 32);
    g_autofree guint8 *st6 = g_new (guint8, 6 * N);
    CsBatch b6 = { 6, img6, st6 };
    memcpy (img6, images, sizeof (float) * B * 32 * 32);
    memcpy (img6 + B * 32 * 32, images, sizeof (float) * B * 32 * 32);
    memcpy (st6, states, B * N);
    memcpy (st6 + B * N, states, B * N);
    g_assert_true (cs_model_forward_backward (model, &b6, FALSE, &o3, NULL));
    g_assert_cmpfloat_with_epsilon (o3.loss, o1.loss, 1e-6);
  }
  memset (&o3, 0, sizeof o3);
  g_assert_true (cs_model_forward_backward (model, &batch, TRUE, &o3, NULL));
  g_assert_cmpfloat (o3.loss, ==, o2.loss);

  /* same batch size, many more tokens (nothing dropped): the arena grows; the numbers are
   * those of a fresh model */
  {
    g_autoptr (CsModel) fresh = cs_model_new (&c, backend, 8, NULL);
    CsForwardOut a = { 0 }, b = { 0 };
    for (int i = 0; i < B * N; i++)
      states[i] = states[i] == CS_PATCH_DROPPED ? CS_PATCH_VISIBLE : states[i];
    cs_model_set_adam_step (fresh, 0);
    g_assert_true (cs_model_forward_backward (fresh, &batch, TRUE, &a, NULL));
    memcpy (cs_model_params (model), cs_model_params (fresh),
            sizeof (float) * cs_model_n_params (model));
    cs_model_host_changed (model);
    g_assert_true (cs_model_forward_backward (model, &batch, TRUE, &b, NULL));
    g_assert_cmpfloat (a.loss, ==, b.loss);
    g_assert_cmpint (memcmp (cs_model_grads (fresh), cs_model_grads (model),
                             sizeof (float) * cs_model_n_params (model)), ==, 0);
  }
}

/* A toy set: a bright vertical "cord" on a smooth background, ROI = the cord. */
typedef struct
{
  int n_epochs_seen;
  double first, last;
  int cancel_after;
  GCancellable *cancellable;
} ToyProgress;

static gboolean
toy_progress (const CsTrainProgress *p, gpointer user_data)
{
  ToyProgress *tp = user_data;

  if (p->epoch == 1)
    tp->first = p->loss;
  tp->last = p->loss;
  tp->n_epochs_seen++;
  g_assert_true (isfinite (p->loss) && p->images_per_s > 0 && p->eta_s >= 0);
  if (tp->cancel_after > 0 && p->epoch == tp->cancel_after)
    g_cancellable_cancel (tp->cancellable);
  return TRUE;
}

static void
make_toy_set (int n, int S, float *images, guint8 *rois, CsTrainSlice *slices)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (77);

  for (int k = 0; k < n; k++)
    {
      float *img = images + (size_t) k * S * S;
      guint8 *roi = rois + (size_t) k * S * S;
      int x0 = S / 2 - 3 + g_rand_int_range (rng, -2, 3);
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
          {
            gboolean cord = x >= x0 && x < x0 + 6;
            img[y * S + x] = cord ? 0.8f : 0.2f + 0.3f * y / S;
            roi[y * S + x] = cord;
          }
      slices[k] = (CsTrainSlice) { img, roi };
    }
}

static void
test_training_loop (void)
{
  CsModelConfig c = tiny_config (32);
  int n = 12, S = 32;
  g_autofree float *images = g_new (float, n * S * S);
  g_autofree guint8 *rois = g_new (guint8, n * S * S);
  g_autofree CsTrainSlice *slices = g_new (CsTrainSlice, n);
  g_autoptr (CsModel) model = cs_model_new (&c, backend, 3, NULL);
  g_autoptr (CsModel) twin = cs_model_new (&c, backend, 3, NULL);
  g_autoptr (GCancellable) cancellable = g_cancellable_new ();
  g_autoptr (GError) error = NULL;
  CsTrainOptions opt;
  ToyProgress tp = { 0 };

  make_toy_set (n, S, images, rois, slices);
  cs_train_options_init (&opt);
  opt.epochs = 40;
  opt.batch_size = 4;
  opt.seed = 5;
  g_assert_true (cs_train_pretrain (model, slices, n, &opt, toy_progress, &tp, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (tp.n_epochs_seen, ==, 40);
  g_test_message ("toy loss: epoch 1 %.5f, epoch 40 %.5f", tp.first, tp.last);
  g_assert_cmpfloat (tp.last, <, 0.5 * tp.first);
  g_assert_cmpint (cs_model_get_adam_step (model), ==, 40 * 3);

  /* the same seed gives the same weights, bit for bit */
  memset (&tp, 0, sizeof tp);
  g_assert_true (cs_train_pretrain (twin, slices, n, &opt, toy_progress, &tp, NULL, &error));
  g_assert_cmpint (memcmp (cs_model_params (model), cs_model_params (twin),
                           sizeof (float) * cs_model_n_params (model)), ==, 0);

  /* cancelling stops between batches */
  memset (&tp, 0, sizeof tp);
  tp.cancel_after = 2;
  tp.cancellable = cancellable;
  g_assert_false (cs_train_pretrain (twin, slices, n, &opt, toy_progress, &tp, cancellable,
                                     &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (tp.n_epochs_seen, ==, 2);
  g_clear_error (&error);

  /* no slices is an error, not a crash */
  g_assert_false (cs_train_pretrain (twin, slices, 0, &opt, NULL, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
test_augment (void)
{
  float in[64], out[64];
  g_autoptr (GRand) rng = g_rand_new_with_seed (1);
  float lo = 1, hi = 0;

  for (int i = 0; i < 64; i++)
    in[i] = i / 63.0f;
  cs_train_augment (out, in, 8, 8, rng);
  for (int i = 0; i < 64; i++)
    {
      lo = MIN (lo, out[i]);
      hi = MAX (hi, out[i]);
    }
  /* min-max normalised, still roughly the ramp */
  g_assert_cmpfloat (lo, ==, 0.0f);
  g_assert_cmpfloat (hi, ==, 1.0f);
  g_assert_cmpfloat (fabs (out[32] - in[32]), <, 0.15);
}

static void
test_backend_open (void)
{
  g_autofree char *reason = NULL;
  CsBackend *be;

  be = cs_backend_open ("cuda", 1, &reason);
  if (be == NULL)
    {
      g_assert_nonnull (reason);
      g_assert_nonnull (strstr (reason, "CUDA"));
      g_test_message ("cuda: %s", reason);
    }
  else
    cs_backend_close (be);
  g_clear_pointer (&reason, g_free);
  be = cs_backend_open ("auto", 1, &reason);
  g_assert_nonnull (be);
  cs_backend_close (be);
  g_clear_pointer (&reason, g_free);
  g_assert_null (cs_backend_open ("opencl", 1, &reason));
  g_assert_nonnull (strstr (reason, "opencl"));
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  backend = cs_backend_cpu_new (2);
  g_test_add_func ("/engine/model/config", test_config);
  g_test_add_func ("/engine/model/table-and-init", test_table_and_init);
  g_test_add_func ("/engine/model/masking", test_masking);
  g_test_add_func ("/engine/model/sobel-and-weights", test_sobel_and_weights);
  g_test_add_func ("/engine/model/loss-known-answer", test_loss_known_answer);
  g_test_add_func ("/engine/model/gradients", test_model_gradients);
  g_test_add_func ("/engine/model/determinism", test_determinism);
  g_test_add_func ("/engine/model/light-inference", test_light_inference);
  g_test_add_func ("/engine/model/augment", test_augment);
  g_test_add_func ("/engine/model/training-loop", test_training_loop);
  g_test_add_func ("/engine/model/backend-open", test_backend_open);
  rc = g_test_run ();
  cs_backend_close (backend);
  return rc;
}
