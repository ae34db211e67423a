/* test-parity: the C engine against our PyTorch reference (tests/reference/u2ad_ref.py).
 *
 * Loads a fixture made by make_fixtures.py (weights, inputs with explicit patch states,
 * and the float64 reference's outputs, losses, every parameter gradient, and the losses
 * and weights of 10 Adam steps), runs the same through the engine API on the CPU
 * backend, prints the largest difference of every tensor and exits non-zero on a
 * mismatch.
 *
 * Tolerances. The reference is float64 from the same float32 weights and inputs, so the
 * difference is the engine's own float32 error. A float32 PyTorch run of the same
 * fixture (make_fixtures.py --check) is within 5e-7 x the tensor's largest magnitude of
 * it everywhere; we allow 20x that and a relative term:
 *   outputs, losses, gradients:  |a - b| <= 1e-5 * max|b over the tensor| + 1e-4 * |b|
 *   weights after 10 Adam steps: |a - b| <= 1e-4 + 1e-4 * |b|
 * (Adam divides by sqrt(v): a gradient that is float32 noise around zero becomes an
 * update of up to lr, so the weights get an absolute bound, 1/300 of the 10 x lr they can
 * move.) The key part of qkv.bias has an exactly zero gradient (softmax ignores a shift
 * shared by all keys), so its Adam update is pure noise over noise: it is only held to
 * the 10 x lr bound; its zero gradient is checked with the gradients.
 *
 * Usage: test-parity [--no-adam] [--threads N] [FIXTURE]
 */
#include "cs-config.h"
#include "engine/cs-model.h"
#include "io/cs-safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE_FORMAT "cordscope-u2ad-fixture"

static int n_failed;

/* Compares n values; tol(i) = atol + rtol * |want[i]| (+ scale_atol * max|want|). */
static void
compare (const char *what, const float *got, const float *want, size_t n, double scale_atol,
         double atol, double rtol)
{
  double max_want = 0;
  for (size_t i = 0; i < n; i++)
    max_want = fmax (max_want, fabs (want[i]));
  double max_diff = 0, worst_ratio = 0;
  size_t worst = 0;
  for (size_t i = 0; i < n; i++)
    {
      double diff = fabs ((double) got[i] - (double) want[i]);
      double tol = atol + scale_atol * max_want + rtol * fabs (want[i]);
      double ratio = isfinite (diff) ? diff / tol : INFINITY;
      max_diff = fmax (max_diff, diff);
      if (!(ratio <= worst_ratio))
        worst_ratio = ratio, worst = i;
    }
  gboolean ok = worst_ratio <= 1.0;
  printf ("%-4s %-44s max|diff| %.3e  max|ref| %.3e  worst diff/tol %.3f (at %zu: %.8g vs %.8g)\n",
          ok ? "ok" : "FAIL", what, max_diff, max_want, worst_ratio, worst,
          n ? (double) got[worst] : 0.0, n ? (double) want[worst] : 0.0);
  if (!ok)
    n_failed++;
}

/* The named fixture tensor, which must hold numel values. */
static const float *
fixture_get (CsSafetensors *file, const char *name, size_t numel)
{
  CsTensorSpec spec;
  const float *data = cs_safetensors_lookup (file, name, &spec);
  if (data == NULL || cs_tensor_spec_n_elements (&spec) != numel)
    {
      fprintf (stderr, "test-parity: %s: tensor %s %s\n", cs_safetensors_path (file), name,
               data == NULL ? "is missing" : "has the wrong size");
      exit (1);
    }
  return data;
}

static void
load_weights (CsModel *model, CsSafetensors *file, const char *prefix)
{
  for (int t = 0; t < cs_model_n_tensors (model); t++)
    {
      const CsTensorInfo *info = cs_model_tensor (model, t);
      g_autofree char *name = g_strconcat (prefix, info->name, NULL);
      g_autoptr (GError) error = NULL;
      if (!cs_model_set_tensor (model, info->name, fixture_get (file, name, info->numel),
                                info->numel, &error))
        {
          fprintf (stderr, "test-parity: %s\n", error->message);
          exit (1);
        }
    }
}

static gboolean
is_key_bias (const CsTensorInfo *info)
{
  return g_str_has_suffix (info->name, ".attn.qkv.bias");
}

int
main (int argc, char **argv)
{
  gboolean run_adam = TRUE;
  int n_threads = 2;
  g_autofree char *path = g_build_filename (CS_SOURCE_ROOT, "tests", "reference", "fixtures",
                                            "tiny.safetensors", NULL);
  for (int a = 1; a < argc; a++)
    {
      if (strcmp (argv[a], "--no-adam") == 0)
        run_adam = FALSE;
      else if (strcmp (argv[a], "--threads") == 0 && a + 1 < argc)
        n_threads = atoi (argv[++a]);
      else
        {
          g_free (path);
          path = g_strdup (argv[a]);
        }
    }

  g_autoptr (GError) error = NULL;
  g_autoptr (CsSafetensors) file = cs_safetensors_read (path, FIXTURE_FORMAT, NULL, 0, &error);
  if (file == NULL)
    {
      fprintf (stderr, "test-parity: %s\n", error->message);
      return 1;
    }
  CsModelConfig config;
  const char *config_json = cs_safetensors_metadata (file, "config");
  if (config_json == NULL || !cs_model_config_from_json (config_json, &config, &error))
    {
      fprintf (stderr, "test-parity: %s: bad config: %s\n", path,
               error ? error->message : "none");
      return 1;
    }

  g_autofree char *reason = NULL;
  CsBackend *backend = cs_backend_open ("cpu", n_threads, &reason);
  if (backend == NULL)
    {
      fprintf (stderr, "test-parity: no CPU backend: %s\n", reason);
      return 1;
    }
  g_autoptr (CsModel) model = cs_model_new (&config, backend, 0, &error);
  if (model == NULL)
    {
      fprintf (stderr, "test-parity: %s\n", error->message);
      return 1;
    }
  load_weights (model, file, "param.");

  CsTensorSpec images_spec;
  if (cs_safetensors_lookup (file, "input.images", &images_spec) == NULL
      || images_spec.n_dims != 4)
    {
      fprintf (stderr, "test-parity: %s: no input.images [B,1,H,W]\n", path);
      return 1;
    }
  int batch = (int) images_spec.shape[0];
  int n_patches = cs_model_config_n_patches (&config);
  int pp = config.patch * config.patch;
  size_t n_pred = (size_t) batch * n_patches * pp;
  const float *images = fixture_get (file, "input.images",
                                     (size_t) batch * config.img_size * config.img_size);
  const float *state_f = fixture_get (file, "input.patch_state", (size_t) batch * n_patches);
  g_autofree guint8 *state = g_new (guint8, (size_t) batch * n_patches);
  for (int i = 0; i < batch * n_patches; i++)
    state[i] = (guint8) state_f[i];
  CsBatch input = { batch, images, state };
  printf ("fixture %s: img %d, enc %dx%d, dec %dx%d, batch %d, %zu params, %d threads\n",
          path, config.img_size, config.enc_dim, config.enc_depth, config.dec_dim,
          config.dec_depth, batch, cs_model_n_params (model), n_threads);

  /* Forward, loss and every gradient. */
  g_autofree float *pred_img = g_new0 (float, n_pred);
  g_autofree float *pred_edge = g_new0 (float, n_pred);
  CsForwardOut out = { 0 };
  out.pred_img = pred_img;
  out.pred_edge = pred_edge;
  if (!cs_model_forward_backward (model, &input, TRUE, &out, &error))
    {
      fprintf (stderr, "test-parity: forward: %s\n", error->message);
      return 1;
    }
  compare ("out.pred_img", pred_img, fixture_get (file, "out.pred_img", n_pred), n_pred,
           1e-5, 0, 1e-4);
  compare ("out.pred_edge", pred_edge, fixture_get (file, "out.pred_edge", n_pred), n_pred,
           1e-5, 0, 1e-4);
  float losses[3] = { (float) out.loss, (float) out.loss_img, (float) out.loss_edge };
  compare ("out.loss (total, img, edge)", losses, fixture_get (file, "out.loss", 3), 3,
           1e-5, 0, 1e-4);
  const float *grads = cs_model_grads (model);
  for (int t = 0; t < cs_model_n_tensors (model); t++)
    {
      const CsTensorInfo *info = cs_model_tensor (model, t);
      g_autofree char *name = g_strconcat ("grad.", info->name, NULL);
      compare (name, grads + info->offset, fixture_get (file, name, info->numel), info->numel,
               1e-5, 0, 1e-4);
    }

  if (run_adam && cs_safetensors_lookup (file, "adam.loss", NULL) != NULL)
    {
      CsTensorSpec steps_spec;
      const float *want_losses = cs_safetensors_lookup (file, "adam.loss", &steps_spec);
      int steps = (int) cs_tensor_spec_n_elements (&steps_spec);
      const char *lr_text = cs_safetensors_metadata (file, "lr");
      float lr = lr_text ? (float) g_ascii_strtod (lr_text, NULL) : 3e-3f;

      load_weights (model, file, "param.");
      memset (cs_model_adam_m (model), 0, cs_model_n_params (model) * sizeof (float));
      memset (cs_model_adam_v (model), 0, cs_model_n_params (model) * sizeof (float));
      cs_model_host_changed (model);
      cs_model_set_adam_step (model, 0);
      g_autofree float *got_losses = g_new0 (float, steps);
      for (int s = 0; s < steps; s++)
        {
          CsForwardOut step_out = { 0 };
          if (!cs_model_forward_backward (model, &input, TRUE, &step_out, &error))
            {
              fprintf (stderr, "test-parity: step %d: %s\n", s, error->message);
              return 1;
            }
          got_losses[s] = (float) step_out.loss;
          cs_model_adam_step (model, lr);
        }
      compare ("adam.loss (before each step)", got_losses, want_losses, steps, 1e-5, 0, 1e-4);
      const float *params = cs_model_params (model);
      for (int t = 0; t < cs_model_n_tensors (model); t++)
        {
          const CsTensorInfo *info = cs_model_tensor (model, t);
          g_autofree char *name = g_strconcat ("adam.", info->name, NULL);
          const float *want = fixture_get (file, name, info->numel);
          if (is_key_bias (info))
            {
              size_t third = info->numel / 3;
              g_autofree char *qv = g_strconcat (name, " (q)", NULL);
              g_autofree char *kk = g_strconcat (name, " (k, zero grad)", NULL);
              g_autofree char *vv = g_strconcat (name, " (v)", NULL);
              compare (qv, params + info->offset, want, third, 0, 1e-4, 1e-4);
              compare (kk, params + info->offset + third, want + third, third, 0,
                       steps * lr, 0);
              compare (vv, params + info->offset + 2 * third, want + 2 * third, third, 0,
                       1e-4, 1e-4);
            }
          else
            compare (name, params + info->offset, want, info->numel, 0, 1e-4, 1e-4);
        }
    }

  g_clear_pointer (&model, cs_model_free);
  cs_backend_close (backend);
  if (n_failed)
    printf ("FAILED: %d tensors differ from the PyTorch reference beyond tolerance\n",
            n_failed);
  else
    printf ("all tensors match the PyTorch reference\n");
  return n_failed ? 1 : 0;
}
