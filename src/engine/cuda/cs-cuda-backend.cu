/* cs-cuda-backend.cu: the CUDA backend module (libcs-backend-cuda.so), loaded at run time by
 * cs-backend.c, so the cordscope binaries never link the CUDA runtime or cuBLAS.
 *
 * Exports one symbol, cs_backend_cuda_open(). It fills the backend vtable of cs-backend.h:
 * buffers through cudaMalloc / cudaMemcpy, every GEMM through ONE cuBLAS wrapper (below),
 * the other ops through the kernels of cs-cuda-kernels.cu and cs-cuda-attention.cu.
 * Environment (read at open):
 *   CS_CUDA_DEVICE  device index (default 0)
 *   CS_CUDA_MATH    fp32 (default; what the tests use), tf32 or bf16: the GEMMs' compute
 *                   type (inputs and outputs stay fp32; tf32/bf16 trade accuracy for speed)
 *   CS_CUDA_SYNC=1  synchronise after every kernel, so a fault names its kernel (debug) */
#include "cs-cuda-common.cuh"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- errors */

gboolean
cs_cuda_fail (CsCudaContext *ctx, const char *file, int line, const char *fmt, ...)
{
  va_list ap;
  char *what;
  const char *base = strrchr (file, '/');

  va_start (ap, fmt);
  what = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  if (ctx->error == NULL)
    {
      ctx->error = g_strdup_printf ("CUDA backend: %s:%d: %s", base ? base + 1 : file, line,
                                    what);
      /* once: later ops are skipped, so they cannot pile up more messages */
      g_warning ("%s (the CUDA backend stops here; use --backend cpu)", ctx->error);
    }
  ctx->failed = TRUE;
  g_free (what);
  return FALSE;
}

gboolean
cs_cuda_check_rt (CsCudaContext *ctx, cudaError_t err, const char *what, const char *file,
                  int line)
{
  if (err == cudaSuccess)
    return TRUE;
  if (err == cudaErrorMemoryAllocation)
    {
      size_t free_b = 0, total_b = 0;
      cudaGetLastError (); /* clear it: the context is still usable for the query */
      cudaMemGetInfo (&free_b, &total_b);
      return cs_cuda_fail (ctx, file, line,
                           "%s: out of GPU memory (%zu of %zu MiB free on %s); "
                           "a smaller batch or the CPU backend may fit",
                           what, free_b >> 20, total_b >> 20, ctx->device_name);
    }
  return cs_cuda_fail (ctx, file, line, "%s: %s (%s)", what, cudaGetErrorString (err),
                       cudaGetErrorName (err));
}

gboolean
cs_cuda_launched (CsCudaContext *ctx, const char *name, const char *file, int line)
{
  if (!cs_cuda_check_rt (ctx, cudaGetLastError (), name, file, line))
    return FALSE;
  return !ctx->sync_each || cs_cuda_check_rt (ctx, cudaDeviceSynchronize (), name, file, line);
}

const char *
cs_cublas_status_name (cublasStatus_t st)
{
  switch (st)
    {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized (no driver or device?)";
    case CUBLAS_STATUS_ALLOC_FAILED: return "out of GPU memory";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "license error";
    default: return "unknown cuBLAS status";
    }
}

gboolean
cs_cuda_check_blas (CsCudaContext *ctx, cublasStatus_t st, const char *what, const char *file,
                    int line)
{
  if (st == CUBLAS_STATUS_SUCCESS)
    return TRUE;
  return cs_cuda_fail (ctx, file, line, "%s: cuBLAS %s (status %d)", what,
                       cs_cublas_status_name (st), (int) st);
}

void *
cs_cuda_scratch (CsCudaContext *ctx, size_t bytes)
{
  if (bytes <= ctx->scratch_bytes)
    return ctx->scratch;
  if (ctx->scratch != NULL)
    {
      /* earlier kernels may still read the old block */
      if (!CS_CUDA_CHECK (ctx, cudaDeviceSynchronize ())
          || !CS_CUDA_CHECK (ctx, cudaFree (ctx->scratch)))
        return NULL;
      ctx->scratch = NULL;
      ctx->scratch_bytes = 0;
    }
  bytes = MAX (bytes, (size_t) 1 << 20);
  if (!CS_CUDA_CHECK (ctx, cudaMalloc (&ctx->scratch, bytes)))
    {
      ctx->scratch = NULL;
      return NULL;
    }
  ctx->scratch_bytes = bytes;
  return ctx->scratch;
}

/* every op: nothing runs after a failure; a non-default device is made current for the
 * calling thread (the engine worker thread is not the one that opened the backend) */
static CsCudaContext *
op_begin (CsBackend *be)
{
  CsCudaContext *ctx = cs_cuda_ctx (be);

  if (ctx->failed)
    return NULL;
  if (ctx->device != 0 && !CS_CUDA_CHECK (ctx, cudaSetDevice (ctx->device)))
    return NULL;
  return ctx;
}

/* ---------------------------------------------------------------- memory */

static void *
cuda_alloc (CsBackend *be, size_t bytes)
{
  CsCudaContext *ctx = op_begin (be);
  void *p = NULL;

  if (ctx == NULL)
    return NULL;
  bytes = MAX (bytes, (size_t) 256);
  if (!CS_CUDA_CHECK (ctx, cudaMalloc (&p, bytes)))
    return NULL;
  /* zero-filled, as the contract says; cudaMalloc is 256-byte aligned */
  if (!CS_CUDA_CHECK (ctx, cudaMemset (p, 0, bytes)))
    {
      cudaFree (p);
      return NULL;
    }
  return p;
}

static void
cuda_release (CsBackend *be, void *buffer)
{
  CsCudaContext *ctx = cs_cuda_ctx (be);

  /* freeing is allowed after a failure (cleanup), but a broken context may refuse it */
  if (buffer != NULL)
    CS_CUDA_CHECK (ctx, cudaFree (buffer));
}

static void
cuda_upload (CsBackend *be, void *dst, const void *host_src, size_t bytes)
{
  CsCudaContext *ctx = op_begin (be);

  if (ctx != NULL && bytes > 0)
    CS_CUDA_CHECK (ctx, cudaMemcpy (dst, host_src, bytes, cudaMemcpyHostToDevice));
}

static void
cuda_download (CsBackend *be, void *host_dst, const void *src, size_t bytes)
{
  CsCudaContext *ctx = op_begin (be);

  if (bytes == 0)
    return;
  if (ctx == NULL || !CS_CUDA_CHECK (ctx, cudaMemcpy (host_dst, src, bytes,
                                                      cudaMemcpyDeviceToHost)))
    memset (host_dst, 0, bytes); /* never hand back uninitialised memory */
}

static void
cuda_zero (CsBackend *be, void *dst, size_t bytes)
{
  CsCudaContext *ctx = op_begin (be);

  if (ctx != NULL && bytes > 0)
    CS_CUDA_CHECK (ctx, cudaMemsetAsync (dst, 0, bytes, 0));
}

static void
cuda_copy (CsBackend *be, void *dst, const void *src, size_t bytes)
{
  CsCudaContext *ctx = op_begin (be);

  if (ctx != NULL && bytes > 0 && dst != src)
    CS_CUDA_CHECK (ctx, cudaMemcpyAsync (dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}

static void
cuda_synchronize (CsBackend *be)
{
  CsCudaContext *ctx = op_begin (be);

  if (ctx != NULL)
    CS_CUDA_CHECK (ctx, cudaDeviceSynchronize ());
}

static void
cuda_close (CsBackend *be)
{
  CsCudaContext *ctx = cs_cuda_ctx (be);

  if (!ctx->failed)
    cudaDeviceSynchronize ();
  if (ctx->scratch != NULL)
    cudaFree (ctx->scratch);
  if (ctx->blas != NULL)
    cublasDestroy (ctx->blas);
  g_free (ctx->error);
  g_free (ctx);
  g_free (be);
}

static char *
cuda_take_error (CsBackend *be)
{
  CsCudaContext *ctx = cs_cuda_ctx (be);
  return ctx->failed ? g_strdup (ctx->error ? ctx->error : "CUDA backend failed") : NULL;
}

/* ---------------------------------------------------------------- the GEMM wrapper */

/* Row-major C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C. cuBLAS is column-major: a
 * row-major matrix read column-major is its transpose, so we ask cuBLAS for
 * C^T[n,m] = op(B)^T op(A)^T, i.e. B first, with the same transpose flags and leading
 * dimensions. This is the only place that knows about the swap. */
static void
cuda_gemm (CsBackend *be, gboolean ta, gboolean tb, int m, int n, int k, float alpha,
           const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
  CsCudaContext *ctx = op_begin (be);

  if (ctx == NULL || m <= 0 || n <= 0)
    return;
  if (k <= 0)
    {
      cs_cuda_scale_matrix (ctx, c, m, n, ldc, beta);
      return;
    }
  /* row-major leading dimensions are at least the stored row length */
  if (lda < (ta ? m : k) || ldb < (tb ? k : n) || ldc < n)
    {
      cs_cuda_fail (ctx, __FILE__, __LINE__,
                    "gemm %c%c m=%d n=%d k=%d: leading dimensions lda=%d ldb=%d ldc=%d too small",
                    ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, lda, ldb, ldc);
      return;
    }
  CS_CUBLAS_CHECK (ctx, cublasGemmEx (ctx->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                      ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha,
                                      b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta,
                                      c, CUDA_R_32F, ldc, ctx->compute, CUBLAS_GEMM_DEFAULT));
}

/* ---------------------------------------------------------------- ops */

static void
cuda_linear_forward (CsBackend *be, float *out, const float *inp, const float *w,
                     const float *b, int T, int IN, int O)
{
  CsCudaContext *ctx = op_begin (be);

  if (ctx == NULL || T <= 0)
    return;
  /* out = b, then out += inp w^T (as the C reference) */
  if (b != NULL && !cs_cuda_fill_bias (ctx, out, b, T, O))
    return;
  cuda_gemm (be, FALSE, TRUE, T, O, IN, 1.0f, inp, IN, w, IN, b != NULL ? 1.0f : 0.0f, out, O);
}

static void
cuda_linear_backward (CsBackend *be, float *dinp, float *dw, float *db, const float *dout,
                      const float *inp, const float *w, int T, int IN, int O)
{
  CsCudaContext *ctx = op_begin (be);

  if (ctx == NULL || T <= 0)
    return;
  if (dinp != NULL)
    cuda_gemm (be, FALSE, FALSE, T, IN, O, 1.0f, dout, O, w, IN, 1.0f, dinp, IN);
  cuda_gemm (be, TRUE, FALSE, O, IN, T, 1.0f, dout, O, inp, IN, 1.0f, dw, IN);
  if (db != NULL && !ctx->failed)
    cs_cuda_colsum_add (ctx, db, dout, T, O);
}

static void
cuda_layernorm_forward (CsBackend *be, float *out, float *mean, float *rstd, const float *inp,
                        const float *w, const float *b, int T, int C)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_layernorm_forward (ctx, out, mean, rstd, inp, w, b, T, C);
}

static void
cuda_layernorm_backward (CsBackend *be, float *dinp, float *dw, float *db, const float *dout,
                         const float *inp, const float *w, const float *mean,
                         const float *rstd, int T, int C)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_layernorm_backward (ctx, dinp, dw, db, dout, inp, w, mean, rstd, T, C);
}

static void
cuda_attention_forward (CsBackend *be, float *out, float *lse, const float *qkv,
                        const int *seq_off, const int *seq_len, int n_seq, int T, int C, int NH)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_attention_forward (ctx, out, lse, qkv, seq_off, seq_len, n_seq, T, C, NH);
}

static void
cuda_attention_backward (CsBackend *be, float *dqkv, const float *dout, const float *qkv,
                         const float *out, const float *lse, const int *seq_off,
                         const int *seq_len, int n_seq, int T, int C, int NH)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_attention_backward (ctx, dqkv, dout, qkv, out, lse, seq_off, seq_len, n_seq, T, C,
                                NH);
}

static void
cuda_gelu_forward (CsBackend *be, float *out, const float *inp, size_t N)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_gelu_forward (ctx, out, inp, N);
}

static void
cuda_gelu_backward (CsBackend *be, float *dinp, const float *inp, const float *dout, size_t N)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_gelu_backward (ctx, dinp, inp, dout, N);
}

static void
cuda_add (CsBackend *be, float *out, const float *a, const float *b, size_t N)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_add (ctx, out, a, b, N);
}

static void
cuda_add_inplace (CsBackend *be, float *acc, const float *x, size_t N)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_add (ctx, acc, acc, x, N);
}

static void
cuda_embed_forward (CsBackend *be, float *x, const float *cls, const float *pos,
                    const int *token_patch, int T, int C)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_embed_forward (ctx, x, cls, pos, token_patch, T, C);
}

static void
cuda_embed_backward (CsBackend *be, float *dcls, float *dx, const int *token_patch, int T, int C)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_embed_backward (ctx, dcls, dx, token_patch, T, C);
}

static void
cuda_scatter_forward (CsBackend *be, float *x, const float *y, const float *mask_token,
                      const float *pos, const int *src, const int *patch, int T, int C)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_scatter_forward (ctx, x, y, mask_token, pos, src, patch, T, C);
}

static void
cuda_scatter_backward (CsBackend *be, float *dy, float *dmask_token, const float *dx,
                       const int *src, int T, int C)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_scatter_backward (ctx, dy, dmask_token, dx, src, T, C);
}

static double
cuda_sigmoid_loss (CsBackend *be, float *pred, float *dlogit, const float *logit,
                   const float *target, const float *coef, float grad_scale, int T, int K)
{
  CsCudaContext *ctx = op_begin (be);
  double loss = 0.0;

  /* NaN, not a plausible number, when the backend has failed */
  if (ctx == NULL || !cs_cuda_sigmoid_loss (ctx, &loss, pred, dlogit, logit, target, coef,
                                            grad_scale, T, K))
    return NAN;
  return loss;
}

static void
cuda_adam (CsBackend *be, float *params, const float *grads, float *m, float *v, size_t N,
           float lr, float beta1, float beta2, float eps, long step)
{
  CsCudaContext *ctx = op_begin (be);
  if (ctx != NULL)
    cs_cuda_adam (ctx, params, grads, m, v, N, lr, beta1, beta2, eps, step);
}

static CsBackendOps cuda_ops;

static void
fill_ops (void)
{
  /* assigned field by field: C++ (nvcc) has no out-of-order designated initialisers */
  cuda_ops.name = "cuda";
  cuda_ops.alloc = cuda_alloc;
  cuda_ops.release = cuda_release;
  cuda_ops.upload = cuda_upload;
  cuda_ops.download = cuda_download;
  cuda_ops.zero = cuda_zero;
  cuda_ops.copy = cuda_copy;
  cuda_ops.synchronize = cuda_synchronize;
  cuda_ops.close = cuda_close;
  cuda_ops.gemm = cuda_gemm;
  cuda_ops.linear_forward = cuda_linear_forward;
  cuda_ops.linear_backward = cuda_linear_backward;
  cuda_ops.layernorm_forward = cuda_layernorm_forward;
  cuda_ops.layernorm_backward = cuda_layernorm_backward;
  cuda_ops.attention_forward = cuda_attention_forward;
  cuda_ops.attention_backward = cuda_attention_backward;
  cuda_ops.gelu_forward = cuda_gelu_forward;
  cuda_ops.gelu_backward = cuda_gelu_backward;
  cuda_ops.add = cuda_add;
  cuda_ops.add_inplace = cuda_add_inplace;
  cuda_ops.embed_forward = cuda_embed_forward;
  cuda_ops.embed_backward = cuda_embed_backward;
  cuda_ops.scatter_forward = cuda_scatter_forward;
  cuda_ops.scatter_backward = cuda_scatter_backward;
  cuda_ops.sigmoid_loss = cuda_sigmoid_loss;
  cuda_ops.adam = cuda_adam;
  cuda_ops.take_error = cuda_take_error;
}

/* ---------------------------------------------------------------- open */

/* a kernel that proves this module holds code the GPU can run */
static __global__ void
probe_kernel (int *flag)
{
  *flag = 42;
}

static char *
open_failed (CsCudaContext *ctx, char *reason)
{
  if (ctx->blas != NULL)
    cublasDestroy (ctx->blas);
  g_free (ctx->error);
  g_free (ctx);
  return reason;
}

extern "C" __attribute__ ((visibility ("default"))) CsBackend *
cs_backend_cuda_open (int n_threads, char **reason)
{
  CsCudaContext *ctx;
  CsBackend *be;
  cudaDeviceProp prop;
  int count = 0, driver = 0, runtime = 0, probe = 0, *d_probe = NULL;
  const char *env_device = g_getenv ("CS_CUDA_DEVICE");
  const char *env_math = g_getenv ("CS_CUDA_MATH");
  cudaError_t err;
  cublasStatus_t st;

  *reason = NULL;
  cudaDriverGetVersion (&driver);
  cudaRuntimeGetVersion (&runtime);
  err = cudaGetDeviceCount (&count);
  if (err != cudaSuccess && driver == 0)
    {
      /* the static runtime found no libcuda.so.1: no NVIDIA driver on this machine */
      *reason = g_strdup_printf ("no NVIDIA driver (libcuda.so.1 is not installed or does not "
                                 "load): %s", cudaGetErrorName (err));
      return NULL;
    }
  if (err != cudaSuccess)
    {
      *reason = g_strdup_printf ("no usable CUDA driver or device: %s (%s; driver API %d, "
                                 "runtime %d)", cudaGetErrorString (err),
                                 cudaGetErrorName (err), driver, runtime);
      return NULL;
    }
  if (count == 0)
    {
      *reason = g_strdup ("no CUDA device found");
      return NULL;
    }
  ctx = g_new0 (CsCudaContext, 1);
  ctx->device = env_device != NULL ? atoi (env_device) : 0;
  if (ctx->device < 0 || ctx->device >= count)
    {
      *reason = open_failed (ctx, g_strdup_printf ("CS_CUDA_DEVICE=%s, but there are %d CUDA "
                                                   "devices", env_device, count));
      return NULL;
    }
  if ((err = cudaGetDeviceProperties (&prop, ctx->device)) != cudaSuccess
      || (err = cudaSetDevice (ctx->device)) != cudaSuccess
      || (err = cudaFree (NULL)) != cudaSuccess) /* creates the context now */
    {
      *reason = open_failed (ctx, g_strdup_printf ("CUDA device %d does not start: %s",
                                                   ctx->device, cudaGetErrorString (err)));
      return NULL;
    }
  g_strlcpy (ctx->device_name, prop.name, sizeof ctx->device_name);
  ctx->sm_count = prop.multiProcessorCount;
  if (prop.major < 8)
    {
      *reason = open_failed (ctx, g_strdup_printf (
                               "%s has compute capability %d.%d; this build needs 8.0 or newer",
                               prop.name, prop.major, prop.minor));
      return NULL;
    }
  /* run one kernel: "no kernel image" and driver/runtime mismatches show up here */
  if ((err = cudaMalloc (&d_probe, sizeof (int))) == cudaSuccess)
    {
      probe_kernel<<<1, 1>>> (d_probe);
      err = cudaGetLastError ();
      if (err == cudaSuccess)
        err = cudaMemcpy (&probe, d_probe, sizeof (int), cudaMemcpyDeviceToHost);
      cudaFree (d_probe);
    }
  if (err != cudaSuccess || probe != 42)
    {
      *reason = open_failed (ctx, g_strdup_printf ("%s cannot run this module's kernels: %s",
                                                   prop.name, cudaGetErrorString (err)));
      return NULL;
    }
  st = cublasCreate (&ctx->blas);
  if (st != CUBLAS_STATUS_SUCCESS)
    {
      ctx->blas = NULL;
      *reason = open_failed (ctx, g_strdup_printf ("cuBLAS does not start: %s",
                                                   cs_cublas_status_name (st)));
      return NULL;
    }
  ctx->sync_each = g_strcmp0 (g_getenv ("CS_CUDA_SYNC"), "1") == 0;
  ctx->compute = CUBLAS_COMPUTE_32F;
  ctx->math_name = "fp32";
  if (env_math != NULL && g_ascii_strcasecmp (env_math, "tf32") == 0)
    {
      ctx->compute = CUBLAS_COMPUTE_32F_FAST_TF32;
      ctx->math_name = "tf32";
    }
  else if (env_math != NULL && g_ascii_strcasecmp (env_math, "bf16") == 0)
    {
      ctx->compute = CUBLAS_COMPUTE_32F_FAST_16BF;
      ctx->math_name = "bf16";
    }
  else if (env_math != NULL && g_ascii_strcasecmp (env_math, "fp32") != 0)
    {
      *reason = open_failed (ctx, g_strdup_printf ("CS_CUDA_MATH=%s is not fp32, tf32 or bf16",
                                                   env_math));
      return NULL;
    }
  if ((st = cublasSetStream (ctx->blas, 0)) != CUBLAS_STATUS_SUCCESS
      || (st = cublasSetMathMode (ctx->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
    {
      *reason = open_failed (ctx, g_strdup_printf ("cuBLAS setup: %s",
                                                   cs_cublas_status_name (st)));
      return NULL;
    }

  fill_ops ();
  be = g_new0 (CsBackend, 1);
  be->ops = &cuda_ops;
  be->context = ctx;
  be->n_threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  g_debug ("CUDA backend: %s (sm_%d%d, %d SMs), GEMM math %s", ctx->device_name, prop.major,
           prop.minor, ctx->sm_count, ctx->math_name);
  return be;
}
