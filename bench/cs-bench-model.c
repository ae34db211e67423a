/* cs-bench-model: the C side of bench/engine-vs-pytorch. Prints one JSON line.
 *
 *   cs-bench-model sgemm [--threads T] [--size N]
 *       OpenBLAS sgemm N x N x N (the machine's practical peak): best GFLOP/s of a few runs.
 *   cs-bench-model model --weights W --inputs I [--mode train|infer] [--threads T]
 *                  [--iters N] [--warmup K] [--backend cpu|cuda|auto]
 *       Loads weights (cordscope-u2ad safetensors) and a batch (input.images,
 *       input.patch_state) and times training steps (forward + backward + Adam) or
 *       inference passes (forward + loss, no gradients), warm-up excluded.
 * Peak memory is this process's VmHWM (peak resident set).
 */
#include "cs-config.h"
#include "engine/cs-model.h"
#include "io/cs-safetensors.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* OpenBLAS's own thread control (Debian's cblas.h declares it only for openblas). */
void openblas_set_num_threads (int n_threads);

/* Peak resident memory of this program: VmHWM, not getrusage's maxrss, which Linux
 * carries over exec from the forking parent (a large Python parent would show). */
static double
peak_rss_mb (void)
{
  g_autofree char *status = NULL;
  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    {
      const char *hwm = strstr (status, "VmHWM:");
      if (hwm != NULL)
        return g_ascii_strtod (hwm + 6, NULL) / 1024.0;
    }
  struct rusage usage;
  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;
}

static int
run_sgemm (int n_threads, int size)
{
  openblas_set_num_threads (n_threads);
  size_t n = (size_t) size * size;
  float *a = g_new (float, n), *b = g_new (float, n), *c = g_new0 (float, n);
  for (size_t i = 0; i < n; i++)
    {
      a[i] = (float) ((i * 7) % 13) / 13.0f - 0.5f;
      b[i] = (float) ((i * 5) % 11) / 11.0f - 0.5f;
    }
  double best = 0;
  for (int r = 0; r < 6; r++)
    {
      gint64 t0 = g_get_monotonic_time ();
      cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, size, size, size, 1.0f, a, size,
                   b, size, 0.0f, c, size);
      double s = (g_get_monotonic_time () - t0) / 1e6;
      if (r > 0) /* the first run warms caches and threads up */
        best = MAX (best, 2.0 * size * size * (double) size / s / 1e9);
    }
  printf ("{\"sgemm_gflops\": %.3f, \"size\": %d, \"threads\": %d}\n", best, size, n_threads);
  g_free (a);
  g_free (b);
  g_free (c);
  return 0;
}

static int
fail (const char *message)
{
  fprintf (stderr, "cs-bench-model: %s\n", message);
  return 1;
}

static int
run_model (const char *weights, const char *inputs, const char *mode, const char *backend_name,
           int n_threads, int iters, int warmup)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (CsSafetensors) wfile = cs_safetensors_read (weights, CS_SAFETENSORS_FORMAT_MODEL,
                                                         NULL, 0, &error);
  if (wfile == NULL)
    return fail (error->message);
  CsModelConfig config;
  if (!cs_model_config_from_json (cs_safetensors_metadata (wfile, "config"), &config, &error))
    return fail (error->message);
  g_autoptr (CsSafetensors) ifile = cs_safetensors_read (inputs, NULL, NULL, 0, &error);
  if (ifile == NULL)
    return fail (error->message);

  openblas_set_num_threads (n_threads);
  g_autofree char *reason = NULL;
  CsBackend *backend = cs_backend_open (backend_name, n_threads, &reason);
  if (backend == NULL)
    return fail (reason);
  g_autoptr (CsModel) model = cs_model_new (&config, backend, 0, &error);
  if (model == NULL)
    return fail (error->message);
  for (int t = 0; t < cs_model_n_tensors (model); t++)
    {
      const CsTensorInfo *info = cs_model_tensor (model, t);
      CsTensorSpec spec;
      const float *data = cs_safetensors_lookup (wfile, info->name, &spec);
      if (data == NULL || cs_tensor_spec_n_elements (&spec) != info->numel)
        return fail ("weights do not match the configuration");
      if (!cs_model_set_tensor (model, info->name, data, info->numel, &error))
        return fail (error->message);
    }

  CsTensorSpec ispec, sspec;
  const float *images = cs_safetensors_lookup (ifile, "input.images", &ispec);
  const float *state_f = cs_safetensors_lookup (ifile, "input.patch_state", &sspec);
  int n_patches = cs_model_config_n_patches (&config);
  if (images == NULL || state_f == NULL || ispec.n_dims != 4 || sspec.n_dims != 2
      || sspec.shape[1] != n_patches || ispec.shape[0] != sspec.shape[0])
    return fail ("inputs need input.images [B,1,H,W] and input.patch_state [B,N]");
  int batch = (int) ispec.shape[0];
  g_autofree guint8 *state = g_new (guint8, (size_t) batch * n_patches);
  double flops = 0;
  for (int b = 0; b < batch; b++)
    {
      int kept = 0, shown = 0;
      for (int p = 0; p < n_patches; p++)
        {
          state[b * n_patches + p] = (guint8) state_f[b * n_patches + p];
          kept += state[b * n_patches + p] == CS_PATCH_VISIBLE;
          shown += state[b * n_patches + p] != CS_PATCH_DROPPED;
        }
      flops += cs_model_config_forward_flops (&config, 1 + kept, 1 + shown);
    }
  gboolean train = strcmp (mode, "train") == 0;
  if (train)
    flops *= 3.0;  /* backward: two matmuls (input and weight gradients) per forward one */
  CsBatch input = { batch, images, state };

  double total_s = 0, loss = 0;
  for (int i = 0; i < warmup + iters; i++)
    {
      CsForwardOut out = { 0 };
      gint64 t0 = g_get_monotonic_time ();
      if (!cs_model_forward_backward (model, &input, train, &out, &error))
        return fail (error->message);
      if (train)
        cs_model_adam_step (model, 3e-3f);
      backend->ops->synchronize (backend);
      double s = (g_get_monotonic_time () - t0) / 1e6;
      if (i >= warmup)
        total_s += s;
      loss = out.loss;
      fprintf (stderr, "  ours %s %d/%d: %.3f s, loss %.6f\n", mode, i + 1, warmup + iters, s,
               loss);
    }
  double step_s = total_s / iters;
  printf ("{\"mode\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"batch\": %d, "
          "\"step_s\": %.4f, \"images_per_s\": %.4f, \"model_gflops\": %.3f, "
          "\"gflops_per_s\": %.3f, \"loss\": %.6f, \"peak_mem_mb\": %.1f}\n",
          mode, cs_backend_name (backend), n_threads, batch, step_s, batch / step_s,
          flops / 1e9, flops / step_s / 1e9, loss, peak_rss_mb ());
  g_clear_pointer (&model, cs_model_free);
  cs_backend_close (backend);
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    return fail ("usage: cs-bench-model sgemm|model [options]");
  int n_threads = 2, size = 1024, iters = 3, warmup = 1;
  const char *weights = NULL, *inputs = NULL, *mode = "train", *backend = "cpu";
  for (int a = 2; a < argc; a++)
    {
      const char *value = a + 1 < argc ? argv[a + 1] : NULL;
      if (value == NULL)
        return fail ("every option takes a value");
      if (strcmp (argv[a], "--threads") == 0)
        n_threads = atoi (value);
      else if (strcmp (argv[a], "--size") == 0)
        size = atoi (value);
      else if (strcmp (argv[a], "--iters") == 0)
        iters = MAX (1, atoi (value));
      else if (strcmp (argv[a], "--warmup") == 0)
        warmup = MAX (0, atoi (value));
      else if (strcmp (argv[a], "--weights") == 0)
        weights = value;
      else if (strcmp (argv[a], "--inputs") == 0)
        inputs = value;
      else if (strcmp (argv[a], "--mode") == 0)
        mode = value;
      else if (strcmp (argv[a], "--backend") == 0)
        backend = value;
      else
        return fail ("unknown option");
      a++;
    }
  if (strcmp (argv[1], "sgemm") == 0)
    return run_sgemm (n_threads, size);
  if (strcmp (argv[1], "model") == 0 && weights && inputs)
    return run_model (weights, inputs, mode, backend, n_threads, iters, warmup);
  return fail ("usage: cs-bench-model sgemm|model --weights W --inputs I ...");
}
