/* engine-bench: the C engine alone, per preset: training and inference images/s, model
 * FLOP/s, and the fraction of an OpenBLAS sgemm 1024^3 measured in the same process.
 *
 *   engine-bench [--threads 2] [--batch 10] [--presets reference,small,tiny]
 *                [--iters 3] [--warmup 1] [--pretrain-epochs E [--pretrain-preset P]]
 *
 * --pretrain-epochs: instead, pretrains the CPU default preset on 300 phantom slices
 * (100 phantom cases, the cord's mid-sagittal slice and its two neighbours, ROI = cord
 * dilated by 2 px) for E epochs with the real training loop (augmentation included) and
 * projects the time of 100 epochs.
 *
 * Input: 256 x 256 cord-like images (a bright vertical band, ROI = the band, 2 patch
 * columns x 26 patch rows, like a dilated cord), 75 % of ROI patches masked, context
 * dropped as the preset says. Training = forward + backward + Adam; inference =
 * forward + loss. Model FLOPs = 2 x multiply-adds of every matmul (attention's QK^T and
 * AV included); a training step counts 3x the forward. Warm-up excluded. Other jobs share
 * the cores and their load drifts, so every timed step is PAIRED with split-wrapper sgemms
 * (OpenBLAS single-threaded per pool thread, as the engine runs them) back to back over the
 * next window of the step's length (up to 10 s). train_eff / infer_eff = the best step's
 * FLOP rate over the best sgemm window of the whole run (conservative: the peak is what the
 * machine gave in its quietest moment); *_eff_paired = the best step / its own window.
 * Native multi-threaded OpenBLAS windows at the start and the end count for the peak too.
 * The last line is one JSON object. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cs-cpu-ops.h"
#include "engine/cs-model.h"
#include "engine/cs-train.h"
#include "io/cs-phantom.h"
#include "io/cs-slice2d.h"

static double
now_s (void)
{
  return g_get_monotonic_time () / 1e6;
}

static float *sgemm_operands[3];

typedef struct
{
  const char *name;
  double t[2];        /* best step time: train, infer */
  double gflops[2];   /* at that step */
  double paired[2];   /* best step / following sgemm window ratio */
  int enc_tokens, dec_tokens;
} PresetResult;

/* best GFLOP/s of reps runs (after one untimed) of C = A B, 1024^3; native: OpenBLAS's own
 * threads, else our split wrapper (OpenBLAS single-threaded per pool thread, as the engine) */
static double
sgemm_gflops (CsPool *pool, int threads, gboolean native, int reps)
{
  const int n = 1024;
  float *a = sgemm_operands[0], *b = sgemm_operands[1], *c = sgemm_operands[2];
  double best = 0.0;

  if (a == NULL)
    {
      /* once: fresh pages per call would time page faults, not the sgemm */
      a = g_aligned_alloc (n * n, sizeof (float), 64);
      b = g_aligned_alloc (n * n, sizeof (float), 64);
      c = g_aligned_alloc (n * n, sizeof (float), 64);
      for (int i = 0; i < n * n; i++)
        {
          a[i] = (float) ((i % 97) / 97.0 - 0.5);
          b[i] = (float) ((i % 89) / 89.0 - 0.5);
        }
      sgemm_operands[0] = a;
      sgemm_operands[1] = b;
      sgemm_operands[2] = c;
    }
  openblas_set_num_threads (native ? threads : 1);
  for (int rep = 0; rep < reps + 1; rep++)
    {
      double t0 = now_s (), dt;
      if (native)
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                     0.0f, c, n);
      else
        cs_cpu_gemm (pool, FALSE, FALSE, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      dt = now_s () - t0;
      if (rep > 0)
        best = MAX (best, 2.0 * n * n * (double) n / dt / 1e9);
    }
  openblas_set_num_threads (1);
  if (native)
    g_usleep (300000); /* let OpenBLAS's spinning workers park before the model runs */
  return best;
}

/* GFLOP/s of back-to-back sgemms over a window as long as a model step: a rate averaged over
 * the same stretch of time as the step it is compared with. native: OpenBLAS's threads. */
static double
sgemm_window_gflops (CsPool *pool, int threads, gboolean native, double seconds)
{
  const int n = 1024;
  double t0, dt, flops = 0.0;
  float *a, *b, *c;

  sgemm_gflops (pool, threads, FALSE, 0); /* allocates the operands once */
  a = sgemm_operands[0];
  b = sgemm_operands[1];
  c = sgemm_operands[2];
  openblas_set_num_threads (native ? threads : 1);
  t0 = now_s ();
  do
    {
      if (native)
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                     0.0f, c, n);
      else
        cs_cpu_gemm (pool, FALSE, FALSE, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      flops += 2.0 * n * n * (double) n;
      dt = now_s () - t0;
    }
  while (dt < seconds);
  openblas_set_num_threads (1);
  if (native)
    g_usleep (300000);
  return flops / dt / 1e9;
}

static void
make_inputs (const CsModelConfig *c, int B, float *images, guint8 *states, guint64 seed)
{
  int S = c->img_size, N = cs_model_config_n_patches (c);
  g_autofree guint8 *roi = g_new0 (guint8, (size_t) S * S);
  g_autofree guint8 *is_roi = g_new (guint8, N);
  g_autoptr (GRand) rng = g_rand_new_with_seed ((guint32) seed);
  int x0 = S / 2 - 6, x1 = S / 2 + 6, y0 = S * 3 / 32, y1 = S * 29 / 32;

  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      roi[y * S + x] = 1;
  cs_patch_roi_from_mask (c, roi, is_roi);
  for (int b = 0; b < B; b++)
    {
      float *img = images + (size_t) b * S * S;
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
          img[y * S + x] = roi[y * S + x] ? 0.7f : (float) (0.1 + 0.3 * g_rand_double (rng));
      cs_patch_state_random (c, is_roi, rng, states + (size_t) b * N);
    }
}

/* the sagittal index with the most cord voxels */
static int
cord_mid_slice (const CsVolume *seg)
{
  int axis = cs_volume_sagittal_axis (seg), best = 0;
  g_autofree gsize *count = g_new0 (gsize, seg->dim[axis]);

  for (int k = 0; k < seg->dim[2]; k++)
    for (int j = 0; j < seg->dim[1]; j++)
      for (int i = 0; i < seg->dim[0]; i++)
        if (cs_volume_at (seg, i, j, k) > 0.5f)
          count[axis == 0 ? i : axis == 1 ? j : k]++;
  for (int s = 1; s < seg->dim[axis]; s++)
    if (count[s] > count[best])
      best = s;
  return best;
}

static gboolean
pretrain_progress (const CsTrainProgress *p, gpointer user_data)
{
  double *best = user_data;
  *best = MAX (*best, p->images_per_s);
  printf ("epoch %d/%d loss %.5f (img %.5f edge %.5f) %.1f img/s\n", p->epoch, p->epochs,
          p->loss, p->loss_img, p->loss_edge, p->images_per_s);
  fflush (stdout);
  return TRUE;
}

static int
pretrain_check (int threads, int B, int epochs, const char *preset)
{
  const int n_cases = 100, S = 256;
  CsPhantomOptions popt;
  CsModelConfig c;
  CsTrainOptions topt;
  g_autoptr (GError) error = NULL;
  g_autofree CsTrainSlice *slices = g_new0 (CsTrainSlice, 3 * n_cases);
  g_autoptr (GPtrArray) owned = g_ptr_array_new_with_free_func (g_free);
  CsBackend *be;
  g_autoptr (CsModel) model = NULL;
  double t0 = now_s (), best = 0.0, t_train;
  int n = 0;

  cs_phantom_options_init (&popt);
  popt.seed = 1;
  for (int ci = 0; ci < n_cases; ci++)
    {
      g_autoptr (CsPhantomCase) pc = cs_phantom_case_generate (&popt, ci);
      int mid = cord_mid_slice (pc->seg), axis = cs_volume_sagittal_axis (pc->image);
      for (int ds = -1; ds <= 1; ds++)
        {
          int sl = CLAMP (mid + ds, 0, pc->image->dim[axis] - 1);
          g_autoptr (CsSlice2d) s2 = cs_slice2d_new (pc->image, pc->seg, sl, S, &error);
          float *img;
          guint8 *roi;
          if (s2 == NULL)
            {
              fprintf (stderr, "engine-bench: phantom %d slice %d: %s\n", ci, sl, error->message);
              return 1;
            }
          img = g_memdup2 (s2->image, sizeof (float) * S * S);
          roi = g_malloc0 ((size_t) S * S);
          /* ROI = cord dilated by 2 px (Chebyshev) */
          for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
              if (s2->roi != NULL && s2->roi[y * S + x] > 0.5f)
                for (int yy = MAX (0, y - 2); yy <= MIN (S - 1, y + 2); yy++)
                  memset (roi + yy * S + MAX (0, x - 2), 1, MIN (S - 1, x + 2) - MAX (0, x - 2) + 1);
          g_ptr_array_add (owned, img);
          g_ptr_array_add (owned, roi);
          slices[n++] = (CsTrainSlice) { img, roi };
        }
    }
  if (!cs_model_config_preset (preset, &c, &error))
    {
      fprintf (stderr, "engine-bench: %s\n", error->message);
      return 2;
    }
  {
    int N = cs_model_config_n_patches (&c), n_roi = 0, n_kept = 0;
    g_autofree guint8 *is_roi = g_new (guint8, N), *state = g_new0 (guint8, N);
    for (int i = 0; i < n; i++)
      {
        cs_patch_roi_from_mask (&c, slices[i].roi, is_roi);
        memset (state, 0, N);
        cs_patch_state_drop_context (&c, is_roi, state);
        for (int q = 0; q < N; q++)
          {
            n_roi += is_roi[q];
            n_kept += state[q] != CS_PATCH_DROPPED;
          }
      }
    printf ("%d phantom slices made in %.1f s; per slice %.0f ROI patches, %.0f not dropped\n",
            n, now_s () - t0, (double) n_roi / n, (double) n_kept / n);
  }
  be = cs_backend_cpu_new (threads);
  model = cs_model_new (&c, be, 0, &error);
  cs_train_options_init (&topt);
  topt.epochs = epochs;
  topt.batch_size = B;
  topt.seed = 1;
  t0 = now_s ();
  if (!cs_train_pretrain (model, slices, n, &topt, pretrain_progress, &best, NULL, &error))
    {
      fprintf (stderr, "engine-bench: %s\n", error->message);
      return 1;
    }
  t_train = now_s () - t0;
  printf ("{\"preset\": \"%s\", \"slices\": %d, \"epochs\": %d, \"seconds\": %.1f, "
          "\"projected_100_epochs_min\": %.1f, \"projected_100_epochs_best_epoch_min\": %.1f}\n",
          preset, n, epochs, t_train, t_train / epochs * 100 / 60.0, n * 100 / best / 60.0);
  g_clear_pointer (&model, cs_model_free);
  cs_backend_close (be);
  return 0;
}

int
main (int argc, char **argv)
{
  int threads = 2, B = 10, iters = 3, warmup = 1, pretrain_epochs = 0;
  g_autofree char *presets_arg = g_strdup ("reference,small,tiny");
  g_autofree char *pretrain_preset = g_strdup (cs_model_config_default_cpu ());
  GOptionEntry entries[] = {
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "threads (2)", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &B, "batch size (10)", "B" },
    { "presets", 0, 0, G_OPTION_ARG_STRING, &presets_arg, "comma-separated presets", "LIST" },
    { "iters", 0, 0, G_OPTION_ARG_INT, &iters, "timed steps per mode (3)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "untimed steps per mode (1)", "N" },
    { "pretrain-epochs", 0, 0, G_OPTION_ARG_INT, &pretrain_epochs,
      "pretrain on 300 phantom slices for E epochs instead", "E" },
    { "pretrain-preset", 0, 0, G_OPTION_ARG_STRING, &pretrain_preset,
      "preset of --pretrain-epochs (the CPU default)", "P" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- time the C engine");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) presets = NULL;
  g_autoptr (GString) json = g_string_new ("{");
  CsBackend *be;
  CsPool *pool;
  double native, split, peak;
  PresetResult *res;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "engine-bench: %s\n", error->message);
      return 2;
    }
  if (pretrain_epochs > 0)
    return pretrain_check (threads, B, pretrain_epochs, pretrain_preset);
  presets = g_strsplit (presets_arg, ",", -1);
  res = g_new0 (PresetResult, g_strv_length (presets));
  be = cs_backend_cpu_new (threads);
  pool = cs_pool_new (threads);

  native = sgemm_window_gflops (pool, threads, TRUE, 2.0);
  split = sgemm_window_gflops (pool, threads, FALSE, 2.0);
  printf ("sgemm 1024^3, %d threads, 2 s windows: OpenBLAS %.1f GFLOP/s, split wrapper %.1f "
          "GFLOP/s (best single run: %.1f)\n", threads, native, split,
          sgemm_gflops (pool, threads, TRUE, 5));
  peak = MAX (native, split);
  g_string_append_printf (json, "\"threads\": %d, \"batch\": %d", threads, B);

  for (int pi = 0; presets[pi] != NULL; pi++)
    {
      CsModelConfig c;
      g_autoptr (CsModel) model = NULL;
      int S, N;
      g_autofree float *images = NULL;
      g_autofree guint8 *states = NULL;
      CsBatch batch;
      double flops_fwd = 0.0, t_best[2] = { G_MAXDOUBLE, G_MAXDOUBLE }, eff_best[2] = { 0, 0 };
      int enc_tokens = 0, dec_tokens = 0;

      if (!cs_model_config_preset (presets[pi], &c, &error))
        {
          fprintf (stderr, "engine-bench: %s\n", error->message);
          return 2;
        }
      S = c.img_size;
      N = cs_model_config_n_patches (&c);
      images = g_new (float, (size_t) B * S * S);
      states = g_new (guint8, (size_t) B * N);
      make_inputs (&c, B, images, states, 1);
      for (int b = 0; b < B; b++)
        {
          int ne = 1, nd = 1;
          for (int q = 0; q < N; q++)
            {
              ne += states[b * N + q] == CS_PATCH_VISIBLE;
              nd += states[b * N + q] != CS_PATCH_DROPPED;
            }
          enc_tokens += ne;
          dec_tokens += nd;
          flops_fwd += cs_model_config_forward_flops (&c, ne, nd);
        }
      batch = (CsBatch) { B, images, states };
      model = cs_model_new (&c, be, 0, &error);

      /* mode 0 trains (forward + backward + Adam, 3x the forward FLOPs), mode 1 infers. Each
       * step is paired with sgemms over the next window of the same length: the efficiency
       * of a step is its FLOP rate over that window's, and the best pair is reported. */
      for (int mode = 0; mode < 2; mode++)
        for (int i = 0; i < warmup + iters; i++)
          {
            double t0 = now_s (), dt, rate, window;
            cs_model_forward_backward (model, &batch, mode == 0, NULL, NULL);
            if (mode == 0)
              cs_model_adam_step (model, 1e-4f);
            dt = now_s () - t0;
            if (i < warmup)
              continue;
            rate = (mode == 0 ? 3 : 1) * flops_fwd / dt / 1e9;
            window = sgemm_window_gflops (pool, threads, FALSE, MIN (dt, 10.0));
            peak = MAX (peak, window);
            t_best[mode] = MIN (t_best[mode], dt);
            eff_best[mode] = MAX (eff_best[mode], rate / window);
            printf ("  %s %s step %d: %.3f s, %.1f GFLOP/s, sgemm window %.1f GFLOP/s, "
                    "ratio %.3f\n", presets[pi], mode == 0 ? "train" : "infer", i - warmup,
                    dt, rate, window, rate / window);
            fflush (stdout);
          }
      res[pi] = (PresetResult) { presets[pi], { t_best[0], t_best[1] },
                                 { 3 * flops_fwd / t_best[0] / 1e9, flops_fwd / t_best[1] / 1e9 },
                                 { eff_best[0], eff_best[1] }, enc_tokens / B,
                                 dec_tokens / B };
    }

  native = sgemm_window_gflops (pool, threads, TRUE, 2.0);
  split = sgemm_window_gflops (pool, threads, FALSE, 2.0);
  peak = MAX (peak, MAX (native, split));
  printf ("sgemm at the end, 2 s windows: OpenBLAS %.1f, split %.1f GFLOP/s; best window of "
          "the run (the peak) %.1f GFLOP/s\n", native, split, peak);
  g_string_append_printf (json, ", \"sgemm_gflops\": %.2f", peak);
  /* train_eff / infer_eff: best step rate over the best sgemm window of the whole run (the
   * conservative figure); *_paired: best ratio of a step to the window right after it */
  for (int pi = 0; presets[pi] != NULL; pi++)
    {
      const PresetResult *r = &res[pi];
      printf ("%-9s tokens/item enc %d dec %d | train %.3f s/step %.1f img/s %.1f GFLOP/s "
              "train_eff %.3f (paired %.3f) | infer %.3f s/pass %.1f img/s %.1f GFLOP/s "
              "infer_eff %.3f (paired %.3f)\n", r->name, r->enc_tokens, r->dec_tokens,
              r->t[0], B / r->t[0], r->gflops[0], r->gflops[0] / peak, r->paired[0], r->t[1],
              B / r->t[1], r->gflops[1], r->gflops[1] / peak, r->paired[1]);
      g_string_append_printf (json,
                              ", \"%s\": {\"train_s\": %.4f, \"train_img_s\": %.2f, "
                              "\"train_gflops\": %.2f, \"train_eff\": %.4f, "
                              "\"train_eff_paired\": %.4f, \"infer_s\": %.4f, "
                              "\"infer_img_s\": %.2f, \"infer_gflops\": %.2f, \"infer_eff\": %.4f, "
                              "\"infer_eff_paired\": %.4f, \"enc_tokens\": %d, \"dec_tokens\": %d}",
                              r->name, r->t[0], B / r->t[0], r->gflops[0], r->gflops[0] / peak,
                              r->paired[0], r->t[1], B / r->t[1], r->gflops[1],
                              r->gflops[1] / peak, r->paired[1], r->enc_tokens, r->dec_tokens);
    }
  g_string_append (json, "}");
  printf ("%s\n", json->str);
  g_free (res);
  cs_pool_free (pool);
  cs_backend_close (be);
  return 0;
}
