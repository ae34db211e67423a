/* cs-backend.h: the compute backend behind the engine (CPU always; CUDA loaded at run time).
 *
 * A backend is a vtable plus a context, as ggml's backends are. Every op works on raw
 * float pointers in the backend's own memory (host memory for the CPU backend, device
 * memory for CUDA) that came from ops->alloc. Shapes are in one-line comments; every
 * backward op ACCUMULATES into its gradient outputs (+=), as llm.c does, unless it says
 * "writes". Token tensors are "packed": the tokens of all batch items one after the
 * other, item b occupying rows seq_off[b] .. seq_off[b] + seq_len[b] - 1.
 *
 * The CUDA backend (issue 5) is a module, libcs-backend-cuda.so, found at $CS_CUDA_MODULE,
 * in the build tree (src/engine/cuda) or in CS_PKGLIBDIR, exporting `CsBackend *cs_backend_cuda_open (int n_threads, char **reason)`.
 */
#pragma once

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct _CsBackend CsBackend;

typedef struct
{
  const char *name; /* "cpu", "cuda" */

  /* memory */
  void *(*alloc)        (CsBackend *be, size_t bytes);          /* zero-filled, 64-byte aligned */
  void  (*release)      (CsBackend *be, void *buffer);
  void  (*upload)       (CsBackend *be, void *dst, const void *host_src, size_t bytes);
  void  (*download)     (CsBackend *be, void *host_dst, const void *src, size_t bytes);
  void  (*zero)         (CsBackend *be, void *dst, size_t bytes);
  void  (*copy)         (CsBackend *be, void *dst, const void *src, size_t bytes);
  void  (*synchronize)  (CsBackend *be);
  void  (*close)        (CsBackend *be);

  /* C[m,n] = alpha * op(A) op(B) + beta * C, row-major; op(A) is [m,k], op(B) is [k,n]. */
  void (*gemm) (CsBackend *be, gboolean trans_a, gboolean trans_b, int m, int n, int k,
                float alpha, const float *a, int lda, const float *b, int ldb,
                float beta, float *c, int ldc);

  /* out[T,O] = inp[T,IN] w[O,IN]^T + b[O] (b may be NULL) */
  void (*linear_forward)  (CsBackend *be, float *out, const float *inp, const float *w,
                           const float *b, int T, int IN, int O);
  /* dinp[T,IN] += dout w; dw[O,IN] += dout^T inp; db[O] += sum_t dout (dinp/db may be NULL) */
  void (*linear_backward) (CsBackend *be, float *dinp, float *dw, float *db,
                           const float *dout, const float *inp, const float *w,
                           int T, int IN, int O);

  /* out[T,C] = (inp - mean) * rstd * w + b; writes mean[T], rstd[T] (eps 1e-5) */
  void (*layernorm_forward)  (CsBackend *be, float *out, float *mean, float *rstd,
                              const float *inp, const float *w, const float *b, int T, int C);
  void (*layernorm_backward) (CsBackend *be, float *dinp, float *dw, float *db,
                              const float *dout, const float *inp, const float *w,
                              const float *mean, const float *rstd, int T, int C);

  /* Multi-head self-attention of packed sequences (no causal mask).
   * qkv[T, 3C] (q | k | v, head h = channels h*hd .. h*hd+hd-1 of each), out[T, C] (writes),
   * lse[NH, T] (writes: log-sum-exp of the scaled scores of each query, for backward). */
  void (*attention_forward)  (CsBackend *be, float *out, float *lse, const float *qkv,
                              const int *seq_off, const int *seq_len, int n_seq,
                              int T, int C, int NH);
  /* dqkv[T, 3C] (accumulates) from dout[T, C], given the forward's qkv, out and lse. */
  void (*attention_backward) (CsBackend *be, float *dqkv, const float *dout,
                              const float *qkv, const float *out, const float *lse,
                              const int *seq_off, const int *seq_len, int n_seq,
                              int T, int C, int NH);

  /* out[N] = gelu(inp) (exact, erf); dinp += dout * gelu'(inp) */
  void (*gelu_forward)  (CsBackend *be, float *out, const float *inp, size_t N);
  void (*gelu_backward) (CsBackend *be, float *dinp, const float *inp, const float *dout,
                         size_t N);

  /* out[N] = a + b (residual; its backward is two accumulations: use add_inplace) */
  void (*add)         (CsBackend *be, float *out, const float *a, const float *b, size_t N);
  void (*add_inplace) (CsBackend *be, float *acc, const float *x, size_t N);

  /* Encoder input, in place: x[t] = cls[C] when token_patch[t] < 0,
   * else x[t] + pos[token_patch[t]] (x holds the patch projection). pos[N_patches, C]. */
  void (*embed_forward)  (CsBackend *be, float *x, const float *cls, const float *pos,
                          const int *token_patch, int T, int C);
  /* dcls[C] += sum of dx over class-token rows, whose dx rows are then zeroed (writes). */
  void (*embed_backward) (CsBackend *be, float *dcls, float *dx, const int *token_patch,
                          int T, int C);

  /* Decoder input: x[t] = (src[t] >= 0 ? y[src[t]] : mask_token) + (patch[t] >= 0 ?
   * pos[patch[t]] : 0). x[T,C] writes, y[T_src, C]. */
  void (*scatter_forward)  (CsBackend *be, float *x, const float *y, const float *mask_token,
                            const float *pos, const int *src, const int *patch, int T, int C);
  /* dy[src[t]] += dx[t] (sources are unique), dmask_token += dx[t] where src[t] < 0 */
  void (*scatter_backward) (CsBackend *be, float *dy, float *dmask_token, const float *dx,
                            const int *src, int T, int C);

  /* Sigmoid head + weighted squared error: pred[T,K] = sigmoid(logit) (writes);
   * loss = sum_t coef[t] * sum_k (pred - target)^2; dlogit[T,K] (may be NULL) writes
   * grad_scale * d loss / d logit (zero where coef is 0). Returns the loss. */
  double (*sigmoid_loss) (CsBackend *be, float *pred, float *dlogit, const float *logit,
                          const float *target, const float *coef, float grad_scale,
                          int T, int K);

  /* Adam (torch semantics, bias-corrected, no weight decay); step is 1-based. */
  void (*adam) (CsBackend *be, float *params, const float *grads, float *m, float *v,
                size_t N, float lr, float beta1, float beta2, float eps, long step);

  /* Device backends (may be NULL on the CPU one): the first error (file, line, what failed,
   * e.g. out of GPU memory) or NULL; free with g_free. After an error the backend runs no
   * further op (alloc gives NULL, downloads zeros, sigmoid_loss NaN): close it. */
  char *(*take_error) (CsBackend *be);
} CsBackendOps;

struct _CsBackend
{
  const CsBackendOps *ops;
  void *context;   /* the backend's own state */
  int   n_threads; /* CPU threads used by the host side and by the CPU backend */
};

/* "auto" (CUDA when it loads, else CPU), "cpu" or "cuda". Returns NULL and sets *reason
 * (free with g_free) when the requested backend is not available; with "auto", *reason
 * (may be NULL) says why CUDA was not used. n_threads <= 0: all cores. */
CsBackend *cs_backend_open     (const char *name, int n_threads, char **reason);
void       cs_backend_close    (CsBackend *be);
const char *cs_backend_name    (const CsBackend *be);
gboolean   cs_backend_is_host  (const CsBackend *be); /* buffers are plain host memory */
/* NULL while the backend works; else why it stopped (see take_error). Free with g_free. */
char      *cs_backend_take_error (CsBackend *be);

/* The CPU backend, always available. */
CsBackend *cs_backend_cpu_new  (int n_threads);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CsBackend, cs_backend_close)

G_END_DECLS
