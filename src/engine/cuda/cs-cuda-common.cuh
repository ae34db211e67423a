/* cs-cuda-common.cuh: the CUDA backend's context, check macros and launch helpers.
 *
 * Error model (llm.c's cudaCheck, but no exit): every CUDA and cuBLAS call goes through
 * CS_CUDA_CHECK / CS_CUBLAS_CHECK, which on failure records "file:line: call: error" as the
 * backend's first error, warns once, and marks the backend failed. A failed backend runs no
 * further op (ops return at once, downloads give zeros, sigmoid_loss NaN), so a bad pointer
 * never reaches the GPU after an allocation failed; cs_backend_take_error() returns the
 * message. All work runs in order on the legacy default stream: uploads and downloads are
 * blocking cudaMemcpy, so ordering never needs an explicit event. Internal header. */
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>

#include "engine/cs-backend.h"

typedef struct
{
  int device;
  char device_name[256];
  int sm_count;
  cublasHandle_t blas;
  cublasComputeType_t compute; /* CUBLAS_COMPUTE_32F unless CS_CUDA_MATH opts in */
  const char *math_name;       /* "fp32", "tf32", "bf16" */
  gboolean sync_each;           /* CS_CUDA_SYNC=1: synchronise after every kernel (debug) */
  gboolean failed;
  char *error;                 /* first error, owned */
  void *scratch;               /* grow-only device scratch (partial sums, loss rows) */
  size_t scratch_bytes;
} CsCudaContext;

static inline CsCudaContext *
cs_cuda_ctx (CsBackend *be)
{
  return (CsCudaContext *) be->context;
}

/* Records a failure (first one wins) and warns once; returns FALSE. */
gboolean cs_cuda_fail (CsCudaContext *ctx, const char *file, int line, const char *fmt, ...)
  G_GNUC_PRINTF (4, 5);
gboolean cs_cuda_check_rt (CsCudaContext *ctx, cudaError_t err, const char *what,
                           const char *file, int line);
gboolean cs_cuda_check_blas (CsCudaContext *ctx, cublasStatus_t st, const char *what,
                             const char *file, int line);
const char *cs_cublas_status_name (cublasStatus_t st);

#define CS_CUDA_CHECK(ctx, call) cs_cuda_check_rt ((ctx), (call), #call, __FILE__, __LINE__)
#define CS_CUBLAS_CHECK(ctx, call) cs_cuda_check_blas ((ctx), (call), #call, __FILE__, __LINE__)
/* after every kernel launch: a bad launch configuration is reported where it happened */
#define CS_CUDA_LAUNCHED(ctx, name) \
  cs_cuda_launched ((ctx), name, __FILE__, __LINE__)
/* a bad launch is reported where it happened; with sync_each, a fault in the kernel too */
gboolean cs_cuda_launched (CsCudaContext *ctx, const char *name, const char *file, int line);

/* Device scratch of at least bytes (NULL after recording an error). */
void *cs_cuda_scratch (CsCudaContext *ctx, size_t bytes);

/* blocks of threads covering n items, at most max_blocks (kernels use grid-stride loops) */
static inline unsigned
cs_cuda_blocks (size_t n, int threads, unsigned max_blocks)
{
  size_t b = (n + (size_t) threads - 1) / (size_t) threads;
  return (unsigned) (b < max_blocks ? (b > 0 ? b : 1) : max_blocks);
}

#define CS_CUDA_ELEM_THREADS 256
#define CS_CUDA_ELEM_MAX_BLOCKS 65535u
#define CS_CUDA_REDUCE_ROWS 64 /* rows per partial sum of a column reduction */

/* ---- kernels' host launchers (cs-cuda-kernels.cu, cs-cuda-attention.cu); each returns
 * FALSE after recording an error. Pointers are device memory; shapes as in cs-backend.h. */
gboolean cs_cuda_fill_bias (CsCudaContext *ctx, float *out, const float *b, int T, int O);
gboolean cs_cuda_scale_matrix (CsCudaContext *ctx, float *c, int m, int n, int ldc, float beta);
gboolean cs_cuda_colsum_add (CsCudaContext *ctx, float *out, const float *x, int T, int C);
gboolean cs_cuda_layernorm_forward (CsCudaContext *ctx, float *out, float *mean, float *rstd,
                                    const float *inp, const float *w, const float *b,
                                    int T, int C);
gboolean cs_cuda_layernorm_backward (CsCudaContext *ctx, float *dinp, float *dw, float *db,
                                     const float *dout, const float *inp, const float *w,
                                     const float *mean, const float *rstd, int T, int C);
gboolean cs_cuda_gelu_forward (CsCudaContext *ctx, float *out, const float *inp, size_t N);
gboolean cs_cuda_gelu_backward (CsCudaContext *ctx, float *dinp, const float *inp,
                                const float *dout, size_t N);
gboolean cs_cuda_add (CsCudaContext *ctx, float *out, const float *a, const float *b, size_t N);
gboolean cs_cuda_embed_forward (CsCudaContext *ctx, float *x, const float *cls,
                                const float *pos, const int *token_patch, int T, int C);
gboolean cs_cuda_embed_backward (CsCudaContext *ctx, float *dcls, float *dx,
                                 const int *token_patch, int T, int C);
gboolean cs_cuda_scatter_forward (CsCudaContext *ctx, float *x, const float *y,
                                  const float *mask_token, const float *pos, const int *src,
                                  const int *patch, int T, int C);
gboolean cs_cuda_scatter_backward (CsCudaContext *ctx, float *dy, float *dmask_token,
                                   const float *dx, const int *src, int T, int C);
/* writes the loss into *loss (host) */
gboolean cs_cuda_sigmoid_loss (CsCudaContext *ctx, double *loss, float *pred, float *dlogit,
                               const float *logit, const float *target, const float *coef,
                               float grad_scale, int T, int K);
gboolean cs_cuda_adam (CsCudaContext *ctx, float *params, const float *grads, float *m,
                       float *v, size_t N, float lr, float beta1, float beta2, float eps,
                       long step);
gboolean cs_cuda_attention_forward (CsCudaContext *ctx, float *out, float *lse,
                                    const float *qkv, const int *seq_off, const int *seq_len,
                                    int n_seq, int T, int C, int NH);
gboolean cs_cuda_attention_backward (CsCudaContext *ctx, float *dqkv, const float *dout,
                                     const float *qkv, const float *out, const float *lse,
                                     const int *seq_off, const int *seq_len, int n_seq,
                                     int T, int C, int NH);
