/* cs-train.c: the pretraining loop (random ROI masking, augmentation, Adam, lr steps). */
#include "cs-train.h"

#include "cs-pool.h"

#include <math.h>
#include <string.h>

void
cs_train_options_init (CsTrainOptions *options)
{
  *options = (CsTrainOptions) {
    .epochs = 100,
    .batch_size = 10,
    .lr = 3e-3f,
    .lr_step_epochs = 50,
    .lr_step_gamma = 0.1f,
    .augment = TRUE,
    .seed = 0,
  };
}

/* splitmix64: a fast stream for the per-pixel noise, seeded from rng per image */
static inline guint64
splitmix64 (guint64 *state)
{
  guint64 z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* The random draws of one image's augmentation, taken from rng in a fixed order. */
typedef struct
{
  float brightness, contrast;
  guint64 noise_seed;
} AugmentDraw;

static AugmentDraw
augment_draw (GRand *rng)
{
  AugmentDraw d;
  d.brightness = (float) g_rand_double_range (rng, 0.8, 1.2);
  d.contrast = (float) g_rand_double_range (rng, 0.8, 1.2);
  d.noise_seed = ((guint64) g_rand_int (rng) << 32) | g_rand_int (rng);
  return d;
}

static void
augment_apply (float *out, const float *in, int H, int W, const AugmentDraw *d)
{
  size_t n = (size_t) H * W;
  double mean = 0.0;
  float b = d->brightness, c = d->contrast, lo = INFINITY, hi = -INFINITY;
  guint64 state = d->noise_seed;

  for (size_t i = 0; i < n; i++)
    mean += in[i];
  mean /= (double) n;
  for (size_t i = 0; i < n; i += 2)
    {
      /* Box-Muller, both outputs used; uniforms of 24 bits in (0, 1] and [0, 1) */
      guint64 bits = splitmix64 (&state);
      float u1 = ((float) (bits >> 40) + 1.0f) * (1.0f / 16777216.0f);
      float u2 = (float) ((bits >> 8) & 0xffffff) * (1.0f / 16777216.0f);
      float radius = 0.02f * sqrtf (-2.0f * logf (u1));
      float noise[2] = { radius * cosf (2.0f * (float) G_PI * u2),
                         radius * sinf (2.0f * (float) G_PI * u2) };
      for (size_t k = i; k < MIN (n, i + 2); k++)
        {
          float x = (float) ((in[k] - mean) * c + mean * b) + noise[k - i];
          x = CLAMP (x, 0.0f, 1.0f);
          out[k] = x;
          lo = MIN (lo, x);
          hi = MAX (hi, x);
        }
    }
  if (hi > lo)
    {
      float scale = 1.0f / (hi - lo);
      for (size_t i = 0; i < n; i++)
        out[i] = (out[i] - lo) * scale;
    }
}

void
cs_train_augment (float *out, const float *in, int H, int W, GRand *rng)
{
  AugmentDraw d = augment_draw (rng);
  augment_apply (out, in, H, W, &d);
}

typedef struct
{
  float *images;
  const float **sources;
  const AugmentDraw *draws;
  int S;
} AugmentJob;

static void
augment_task (int begin, int end, int thread, void *ctx)
{
  const AugmentJob *j = ctx;
  for (int k = begin; k < end; k++)
    augment_apply (j->images + (size_t) k * j->S * j->S, j->sources[k], j->S, j->S,
                   &j->draws[k]);
}

gboolean
cs_train_pretrain (CsModel *model, const CsTrainSlice *slices, int n_slices,
                   const CsTrainOptions *options, CsTrainProgressFunc progress,
                   gpointer user_data, GCancellable *cancellable, GError **error)
{
  const CsModelConfig *c = cs_model_get_config (model);
  int S = c->img_size, N = cs_model_config_n_patches (c), B = options->batch_size;
  size_t HW = (size_t) S * S;
  guint32 seed_words[3] = { (guint32) options->seed, (guint32) (options->seed >> 32), 0x7a41 };
  g_autoptr (GRand) rng = NULL;
  g_autofree int *order = NULL;
  g_autofree float *images = NULL;
  g_autofree guint8 *states = NULL, *is_roi = NULL;
  g_autofree AugmentDraw *draws = NULL;
  g_autofree const float **sources = NULL;
  double total_time = 0.0;
  CsPool *pool;
  gboolean ok = TRUE;

  if (n_slices < 1 || slices == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "pretraining needs at least one slice");
      return FALSE;
    }
  if (B < 1 || options->epochs < 0 || !(options->lr > 0.0f) || options->lr_step_epochs < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "pretraining options: batch %d, epochs %d, lr %g, lr step %d epochs", B,
                   options->epochs, options->lr, options->lr_step_epochs);
      return FALSE;
    }
  /* a stream of its own, apart from the model init's */
  rng = g_rand_new_with_seed_array (seed_words, 3);
  order = g_new (int, n_slices);
  images = g_new (float, (size_t) B * HW);
  states = g_new (guint8, (size_t) B * N);
  is_roi = g_new (guint8, N);
  draws = g_new (AugmentDraw, B);
  sources = g_new (const float *, B);
  for (int i = 0; i < n_slices; i++)
    order[i] = i;
  /* augmentation runs between model steps on threads of its own: draws are taken in
   * order first, so the result does not depend on the threads */
  pool = cs_pool_new (cs_model_get_backend (model)->n_threads);

  for (int epoch = 0; epoch < options->epochs; epoch++)
    {
      gint64 t0 = g_get_monotonic_time ();
      float lr = options->lr;
      double sum[3] = { 0, 0, 0 };
      int n_batches = 0;
      CsTrainProgress pr;

      if (options->lr_step_epochs > 0)
        lr *= powf (options->lr_step_gamma, (float) (epoch / options->lr_step_epochs));
      for (int i = n_slices - 1; i > 0; i--)
        {
          int k = g_rand_int_range (rng, 0, i + 1), tmp = order[i];
          order[i] = order[k];
          order[k] = tmp;
        }
      for (int first = 0; first < n_slices; first += B)
        {
          int nb = MIN (B, n_slices - first);
          CsBatch batch = { nb, images, states };
          CsForwardOut out = { 0 };

          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            {
              ok = FALSE;
              goto out;
            }
          for (int k = 0; k < nb; k++)
            {
              const CsTrainSlice *sl = &slices[order[first + k]];
              sources[k] = sl->image;
              if (options->augment)
                draws[k] = augment_draw (rng);
              else
                memcpy (images + k * HW, sl->image, sizeof (float) * HW);
              cs_patch_roi_from_mask (c, sl->roi, is_roi);
              cs_patch_state_random (c, is_roi, rng, states + (size_t) k * N);
            }
          if (options->augment)
            {
              AugmentJob job = { images, sources, draws, S };
              cs_pool_run (pool, nb, augment_task, &job);
            }
          if (!cs_model_forward_backward (model, &batch, TRUE, &out, error))
            {
              ok = FALSE;
              goto out;
            }
          cs_model_adam_step (model, lr);
          sum[0] += out.loss;
          sum[1] += out.loss_img;
          sum[2] += out.loss_edge;
          n_batches++;
        }
      {
        double dt = (g_get_monotonic_time () - t0) / 1e6;
        total_time += dt;
        pr = (CsTrainProgress) {
          .epoch = epoch + 1,
          .epochs = options->epochs,
          .loss = sum[0] / n_batches,
          .loss_img = sum[1] / n_batches,
          .loss_edge = sum[2] / n_batches,
          .images_per_s = dt > 0 ? n_slices / dt : 0.0,
          .eta_s = total_time / (epoch + 1) * (options->epochs - epoch - 1),
          .lr = lr,
        };
      }
      if (progress != NULL && !progress (&pr, user_data))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                       "pretraining stopped after epoch %d", epoch + 1);
          ok = FALSE;
          goto out;
        }
    }
out:
  cs_pool_free (pool);
  return ok;
}
