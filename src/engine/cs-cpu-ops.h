/* cs-cpu-ops.h: the plain C reference of every engine op (the CPU backend's kernels).
 *
 * llm.c style: op_forward (out, cache..., inp, params..., dims) and op_backward (dinp,
 * dparams..., dout, cache..., inp, params..., dims); backward ACCUMULATES (+=) unless
 * it says "writes". Parallel loops run on pool with a static split, so results never
 * depend on timing; reductions use fixed row chunks, so they do not depend on the
 * thread count either (GEMMs excepted: OpenBLAS's own blocking). Internal header. */
#pragma once

#include <glib.h>
#include <stddef.h>

#include "cs-pool.h"

G_BEGIN_DECLS

/* The one GEMM wrapper (row-major, over cblas_sgemm; the work is split over pool threads,
 * each calling single-threaded OpenBLAS). C[m,n] = alpha op(A)[m,k] op(B)[k,n] + beta C */
void cs_cpu_gemm (CsPool *pool, gboolean trans_a, gboolean trans_b, int m, int n, int k,
                  float alpha, const float *a, int lda, const float *b, int ldb,
                  float beta, float *c, int ldc);

/* out[T,O] = inp[T,IN] w[O,IN]^T + b[O] */
void cs_cpu_linear_forward  (CsPool *pool, float *out, const float *inp, const float *w,
                             const float *b, int T, int IN, int O);
/* dinp[T,IN] += dout w; dw[O,IN] += dout^T inp; db[O] += sum_t dout (dinp, db may be NULL) */
void cs_cpu_linear_backward (CsPool *pool, float *dinp, float *dw, float *db,
                             const float *dout, const float *inp, const float *w,
                             int T, int IN, int O);

/* out[T,C], mean[T], rstd[T] (writes) */
void cs_cpu_layernorm_forward  (CsPool *pool, float *out, float *mean, float *rstd,
                                const float *inp, const float *w, const float *b,
                                int T, int C);
void cs_cpu_layernorm_backward (CsPool *pool, float *dinp, float *dw, float *db,
                                const float *dout, const float *inp, const float *w,
                                const float *mean, const float *rstd, int T, int C);

/* Attention over packed sequences; see cs-backend.h. use_simd FALSE forces the scalar
 * path (tests compare the two). */
void cs_cpu_attention_forward  (CsPool *pool, float *out, float *lse, const float *qkv,
                                const int *seq_off, const int *seq_len, int n_seq,
                                int T, int C, int NH, gboolean use_simd);
void cs_cpu_attention_backward (CsPool *pool, float *dqkv, const float *dout,
                                const float *qkv, const float *out, const float *lse,
                                const int *seq_off, const int *seq_len, int n_seq,
                                int T, int C, int NH, gboolean use_simd);

void cs_cpu_gelu_forward  (CsPool *pool, float *out, const float *inp, size_t N);
void cs_cpu_gelu_backward (CsPool *pool, float *dinp, const float *inp, const float *dout,
                           size_t N);

void cs_cpu_add         (CsPool *pool, float *out, const float *a, const float *b, size_t N);
void cs_cpu_add_inplace (CsPool *pool, float *acc, const float *x, size_t N);

void cs_cpu_embed_forward  (CsPool *pool, float *x, const float *cls, const float *pos,
                            const int *token_patch, int T, int C);
void cs_cpu_embed_backward (CsPool *pool, float *dcls, float *dx, const int *token_patch,
                            int T, int C);
void cs_cpu_scatter_forward  (CsPool *pool, float *x, const float *y, const float *mask_token,
                              const float *pos, const int *src, const int *patch, int T, int C);
void cs_cpu_scatter_backward (CsPool *pool, float *dy, float *dmask_token, const float *dx,
                              const int *src, int T, int C);

double cs_cpu_sigmoid_loss (CsPool *pool, float *pred, float *dlogit, const float *logit,
                            const float *target, const float *coef, float grad_scale,
                            int T, int K);

void cs_cpu_adam (CsPool *pool, float *params, const float *grads, float *m, float *v,
                  size_t N, float lr, float beta1, float beta2, float eps, long step);

/* Fixed 2-D sin-cos position embedding pos[G*G, D] (contract order). */
void cs_pos_embed_sincos (float *pos, int G, int D);

G_END_DECLS
