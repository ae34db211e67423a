/* cs-backend.c: backend selection and the CPU backend (always present). */
#include "cs-config.h"

#include "cs-backend.h"

#include <cblas.h>
#include <gmodule.h>
#include <string.h>

#include "cs-cpu-ops.h"

typedef struct
{
  CsPool *pool;
} CpuContext;

static CsPool *
cpu_pool (CsBackend *be)
{
  return ((CpuContext *) be->context)->pool;
}

static void *
cpu_alloc (CsBackend *be, size_t bytes)
{
  void *p = g_aligned_alloc0 (MAX (bytes, 1), 1, 64);
  return p;
}

static void
cpu_release (CsBackend *be, void *buffer)
{
  g_aligned_free (buffer);
}

static void
cpu_copy (CsBackend *be, void *dst, const void *src, size_t bytes)
{
  if (bytes > 0 && dst != src)
    memmove (dst, src, bytes);
}

static void
cpu_zero (CsBackend *be, void *dst, size_t bytes)
{
  memset (dst, 0, bytes);
}

static void
cpu_synchronize (CsBackend *be)
{
}

static void
cpu_close (CsBackend *be)
{
  CpuContext *ctx = be->context;
  cs_pool_free (ctx->pool);
  g_free (ctx);
  g_free (be);
}

static void
cpu_gemm (CsBackend *be, gboolean ta, gboolean tb, int m, int n, int k, float alpha,
          const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
  cs_cpu_gemm (cpu_pool (be), ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void
cpu_linear_forward (CsBackend *be, float *out, const float *inp, const float *w,
                    const float *b, int T, int IN, int O)
{
  cs_cpu_linear_forward (cpu_pool (be), out, inp, w, b, T, IN, O);
}

static void
cpu_linear_backward (CsBackend *be, float *dinp, float *dw, float *db, const float *dout,
                     const float *inp, const float *w, int T, int IN, int O)
{
  cs_cpu_linear_backward (cpu_pool (be), dinp, dw, db, dout, inp, w, T, IN, O);
}

static void
cpu_layernorm_forward (CsBackend *be, float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int T, int C)
{
  cs_cpu_layernorm_forward (cpu_pool (be), out, mean, rstd, inp, w, b, T, C);
}

static void
cpu_layernorm_backward (CsBackend *be, float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int T, int C)
{
  cs_cpu_layernorm_backward (cpu_pool (be), dinp, dw, db, dout, inp, w, mean, rstd, T, C);
}

static void
cpu_attention_forward (CsBackend *be, float *out, float *lse, const float *qkv,
                       const int *seq_off, const int *seq_len, int n_seq, int T, int C, int NH)
{
  cs_cpu_attention_forward (cpu_pool (be), out, lse, qkv, seq_off, seq_len, n_seq, T, C, NH,
                            TRUE);
}

static void
cpu_attention_backward (CsBackend *be, float *dqkv, const float *dout, const float *qkv,
                        const float *out, const float *lse, const int *seq_off,
                        const int *seq_len, int n_seq, int T, int C, int NH)
{
  cs_cpu_attention_backward (cpu_pool (be), dqkv, dout, qkv, out, lse, seq_off, seq_len,
                             n_seq, T, C, NH, TRUE);
}

static void
cpu_gelu_forward (CsBackend *be, float *out, const float *inp, size_t N)
{
  cs_cpu_gelu_forward (cpu_pool (be), out, inp, N);
}

static void
cpu_gelu_backward (CsBackend *be, float *dinp, const float *inp, const float *dout, size_t N)
{
  cs_cpu_gelu_backward (cpu_pool (be), dinp, inp, dout, N);
}

static void
cpu_add (CsBackend *be, float *out, const float *a, const float *b, size_t N)
{
  cs_cpu_add (cpu_pool (be), out, a, b, N);
}

static void
cpu_add_inplace (CsBackend *be, float *acc, const float *x, size_t N)
{
  cs_cpu_add_inplace (cpu_pool (be), acc, x, N);
}

static void
cpu_embed_forward (CsBackend *be, float *x, const float *cls, const float *pos,
                   const int *token_patch, int T, int C)
{
  cs_cpu_embed_forward (cpu_pool (be), x, cls, pos, token_patch, T, C);
}

static void
cpu_embed_backward (CsBackend *be, float *dcls, float *dx, const int *token_patch, int T, int C)
{
  cs_cpu_embed_backward (cpu_pool (be), dcls, dx, token_patch, T, C);
}

static void
cpu_scatter_forward (CsBackend *be, float *x, const float *y, const float *mask_token,
                     const float *pos, const int *src, const int *patch, int T, int C)
{
  cs_cpu_scatter_forward (cpu_pool (be), x, y, mask_token, pos, src, patch, T, C);
}

static void
cpu_scatter_backward (CsBackend *be, float *dy, float *dmask_token, const float *dx,
                      const int *src, int T, int C)
{
  cs_cpu_scatter_backward (cpu_pool (be), dy, dmask_token, dx, src, T, C);
}

static double
cpu_sigmoid_loss (CsBackend *be, float *pred, float *dlogit, const float *logit,
                  const float *target, const float *coef, float grad_scale, int T, int K)
{
  return cs_cpu_sigmoid_loss (cpu_pool (be), pred, dlogit, logit, target, coef, grad_scale,
                              T, K);
}

static void
cpu_adam (CsBackend *be, float *params, const float *grads, float *m, float *v, size_t N,
          float lr, float beta1, float beta2, float eps, long step)
{
  cs_cpu_adam (cpu_pool (be), params, grads, m, v, N, lr, beta1, beta2, eps, step);
}

static const CsBackendOps cpu_ops = {
  .name = "cpu",
  .alloc = cpu_alloc,
  .release = cpu_release,
  .upload = cpu_copy,
  .download = cpu_copy,
  .zero = cpu_zero,
  .copy = cpu_copy,
  .synchronize = cpu_synchronize,
  .close = cpu_close,
  .gemm = cpu_gemm,
  .linear_forward = cpu_linear_forward,
  .linear_backward = cpu_linear_backward,
  .layernorm_forward = cpu_layernorm_forward,
  .layernorm_backward = cpu_layernorm_backward,
  .attention_forward = cpu_attention_forward,
  .attention_backward = cpu_attention_backward,
  .gelu_forward = cpu_gelu_forward,
  .gelu_backward = cpu_gelu_backward,
  .add = cpu_add,
  .add_inplace = cpu_add_inplace,
  .embed_forward = cpu_embed_forward,
  .embed_backward = cpu_embed_backward,
  .scatter_forward = cpu_scatter_forward,
  .scatter_backward = cpu_scatter_backward,
  .sigmoid_loss = cpu_sigmoid_loss,
  .adam = cpu_adam,
};

CsBackend *
cs_backend_cpu_new (int n_threads)
{
  CsBackend *be = g_new0 (CsBackend, 1);
  CpuContext *ctx = g_new0 (CpuContext, 1);

  if (n_threads <= 0)
    n_threads = (int) g_get_num_processors ();
  /* our pool splits every GEMM itself: OpenBLAS must not start (and spin) threads too */
  openblas_set_num_threads (1);
  ctx->pool = cs_pool_new (n_threads);
  be->ops = &cpu_ops;
  be->context = ctx;
  be->n_threads = n_threads;
  return be;
}

/* The CUDA module is looked for in the build tree first (tests, bench), then installed. */
static CsBackend *
cuda_backend_load (int n_threads, char **reason)
{
  typedef CsBackend *(*OpenFunc) (int n_threads, char **reason);
  const char *dirs[] = { CS_BUILD_ROOT "/src/engine/cuda", CS_PKGLIBDIR };
  const char *env_module = g_getenv ("CS_CUDA_MODULE"); /* a build moved to a GPU machine */
  OpenFunc open_func = NULL;
  GModule *module = NULL;
  g_autofree char *tried = NULL;

  if (!g_module_supported ())
    {
      *reason = g_strdup ("dynamic modules are not supported on this platform");
      return NULL;
    }
  for (guint i = 0; i < G_N_ELEMENTS (dirs) && module == NULL; i++)
    {
      g_autofree char *path = env_module != NULL && i == 0
        ? g_strdup (env_module) : g_build_filename (dirs[i], "libcs-backend-cuda.so", NULL);
      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        {
          char *t = g_strdup_printf ("%s%s%s", tried ? tried : "", tried ? ", " : "", path);
          g_free (tried);
          tried = t;
          continue;
        }
      module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
      if (module == NULL)
        {
          *reason = g_strdup_printf ("the CUDA module %s does not load: %s", path,
                                     g_module_error ());
          return NULL;
        }
    }
  if (module == NULL)
    {
      *reason = g_strdup_printf ("this build has no CUDA backend module (looked for %s)",
                                 tried);
      return NULL;
    }
  if (!g_module_symbol (module, "cs_backend_cuda_open", (gpointer *) &open_func)
      || open_func == NULL)
    {
      *reason = g_strdup_printf ("the CUDA module %s lacks cs_backend_cuda_open",
                                 g_module_name (module));
      g_module_close (module);
      return NULL;
    }
  /* the module stays loaded for the life of the process: its vtable points into it */
  g_module_make_resident (module);
  return open_func (n_threads, reason);
}

CsBackend *
cs_backend_open (const char *name, int n_threads, char **reason)
{
  g_autofree char *why = NULL;
  CsBackend *be;

  if (reason != NULL)
    *reason = NULL;
  if (name == NULL || g_str_equal (name, "auto"))
    {
      be = cuda_backend_load (n_threads, &why);
      if (be != NULL)
        return be;
      if (reason != NULL)
        *reason = g_strdup_printf ("using the CPU: %s", why ? why : "CUDA is not available");
      return cs_backend_cpu_new (n_threads);
    }
  if (g_str_equal (name, "cpu"))
    return cs_backend_cpu_new (n_threads);
  if (g_str_equal (name, "cuda"))
    {
      be = cuda_backend_load (n_threads, &why);
      if (be == NULL && reason != NULL)
        *reason = g_strdup_printf ("CUDA backend unavailable: %s",
                                   why ? why : "no usable GPU");
      return be;
    }
  if (reason != NULL)
    *reason = g_strdup_printf ("unknown backend “%s” (expected auto, cpu or cuda)", name);
  return NULL;
}

void
cs_backend_close (CsBackend *be)
{
  if (be != NULL)
    be->ops->close (be);
}

char *
cs_backend_take_error (CsBackend *be)
{
  return be->ops->take_error != NULL ? be->ops->take_error (be) : NULL;
}

const char *
cs_backend_name (const CsBackend *be)
{
  return be->ops->name;
}

gboolean
cs_backend_is_host (const CsBackend *be)
{
  return g_str_equal (be->ops->name, "cpu");
}
