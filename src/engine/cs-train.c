/* cs-train.c: the pretraining loop (random ROI masking, augmentation, Adam, lr steps). */
#include "cs-train.h"

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

static double
rng_gauss (GRand *rng)
{
  double u1 = g_rand_double (rng), u2 = g_rand_double (rng);
  return sqrt (-2.0 * log (1.0 - u1)) * cos (2.0 * G_PI * u2);
}

void
cs_train_augment (float *out, const float *in, int H, int W, GRand *rng)
{
  size_t n = (size_t) H * W;
  double mean = 0.0;
  float b, c, lo = INFINITY, hi = -INFINITY;

  for (size_t i = 0; i < n; i++)
    mean += in[i];
  mean /= (double) n;
  b = (float) g_rand_double_range (rng, 0.8, 1.2);
  c = (float) g_rand_double_range (rng, 0.8, 1.2);
  for (size_t i = 0; i < n; i++)
    {
      float x = (float) ((in[i] - mean) * c + mean * b + 0.02 * rng_gauss (rng));
      x = CLAMP (x, 0.0f, 1.0f);
      out[i] = x;
      lo = MIN (lo, x);
      hi = MAX (hi, x);
    }
  if (hi > lo)
    for (size_t i = 0; i < n; i++)
      out[i] = (out[i] - lo) / (hi - lo);
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
  double total_time = 0.0;

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
  for (int i = 0; i < n_slices; i++)
    order[i] = i;

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
            return FALSE;
          for (int k = 0; k < nb; k++)
            {
              const CsTrainSlice *sl = &slices[order[first + k]];
              if (options->augment)
                cs_train_augment (images + k * HW, sl->image, S, S, rng);
              else
                memcpy (images + k * HW, sl->image, sizeof (float) * HW);
              cs_patch_roi_from_mask (c, sl->roi, is_roi);
              cs_patch_state_random (c, is_roi, rng, states + (size_t) k * N);
            }
          if (!cs_model_forward_backward (model, &batch, TRUE, &out, error))
            return FALSE;
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
          return FALSE;
        }
    }
  return TRUE;
}
